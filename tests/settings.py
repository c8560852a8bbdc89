"""Settings for the test suite: the project's own, in development mode."""

import os

os.environ.setdefault("DJANGO_DEBUG", "true")
os.environ.setdefault("AXES_ENABLED", "true")

from empathy_web.settings import *  # noqa: E402, F403
