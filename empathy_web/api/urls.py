"""Where the API's routers are mounted."""

from __future__ import annotations

from . import signals, tasks, working
from .core import api

api.add_router("/memory", working.router)
api.add_router("/signals", signals.router)
api.add_router("/teams", tasks.router)

__all__ = ["api"]
