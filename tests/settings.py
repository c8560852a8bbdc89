"""Settings for the test suite: the project's own, in development mode."""

import os

os.environ.setdefault("DJANGO_DEBUG", "true")
os.environ.setdefault("AXES_ENABLED", "true")

from empathy_web.settings import *  # noqa: E402, F403

# Browser tests serve from another process, which cannot see an in-memory database.
if os.environ.get("DJANGO_TEST_DB_FILE"):
    DATABASES["default"]["TEST"] = {"NAME": os.environ["DJANGO_TEST_DB_FILE"]}  # noqa: F405
