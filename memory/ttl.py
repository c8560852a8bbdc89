"""How long each kind of short-term data lives."""

from __future__ import annotations

from enum import IntEnum


class TTLStrategy(IntEnum):
    """Default time-to-live, in seconds, for each kind of data."""

    WORKING_RESULTS = 60 * 60
    STAGED_PATTERNS = 24 * 60 * 60
    COORDINATION = 5 * 60
    CONFLICT_CONTEXT = 7 * 24 * 60 * 60
    SESSION = 30 * 60
