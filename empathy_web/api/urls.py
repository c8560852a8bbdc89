"""Where the API's routers are mounted."""

from __future__ import annotations

from . import working
from .core import api

api.add_router("/memory", working.router)

__all__ = ["api"]
