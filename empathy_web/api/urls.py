"""Where the API's routers are mounted."""

from __future__ import annotations

from . import agents, library, patterns, sessions, signals, tasks, working
from .core import api

api.add_router("/memory", working.router)
api.add_router("/signals", signals.router)
api.add_router("/teams", tasks.router)
api.add_router("/patterns", patterns.router)
api.add_router("/sessions", sessions.router)
api.add_router("/library", library.router)
api.add_router("", agents.router)

__all__ = ["api"]
