"""The staged-pattern queue as a live panel: the page, the websocket and the poll all
render the one ``pattern-queue`` partial of ``triage/patterns.html``."""

from __future__ import annotations

from typing import Any

from empathy_web.accounts.teams import Viewer
from empathy_web.dashboard.agents_memory import get_memory
from empathy_web.dashboard.panels import Panel, Params

from .queue import build_queue


def pattern_queue(params: Params, viewer: Viewer) -> dict[str, Any]:
    """Staged patterns sorted (``sort``: ttl, confidence, age, type) and filtered
    (``type``, ``agent``, ``team``, ``q``) as the query string says, with remaining TTLs
    and how many expired undecided lately."""
    return build_queue(get_memory(), params, viewer)


PATTERN_QUEUE = Panel("pattern-queue", "triage/patterns.html", pattern_queue, ("pattern.",))
