from __future__ import annotations

from typing import Any

from django import template

from empathy_web.dashboard.agents_memory import UNAVAILABLE, get_memory
from memory import patterns as staged

from ..decisions import PAST

register = template.Library()


@register.simple_tag(takes_context=True)
def undo_offer(context: template.Context) -> dict[str, Any] | None:
    """The viewer's last single decision while it can still be undone (by the
    decision record in Redis, on the server's clock), or None."""
    request = context.get("request")
    session = getattr(request, "session", None)
    last = session.get("last_decision") if session is not None else None
    if not last:
        return None
    try:
        memory = get_memory()
        found = staged.decision(memory, last["pattern_id"])
        now = memory.server_time_ms()
    except (*UNAVAILABLE, ValueError, KeyError):
        return None
    if found is None or found["by"] != request.user.get_username():
        return None
    left = staged.UNDO_WINDOW_MS - (now - found["at"])
    if left <= 0:
        return None
    return {
        "pattern_id": last["pattern_id"],
        "name": found["pattern"].get("name", ""),
        "past": PAST.get(found["decision"], found["decision"]),
        "left_ms": left,
        "left_s": (left + 999) // 1000,
    }
