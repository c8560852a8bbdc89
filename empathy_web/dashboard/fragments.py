"""Live updates as HTML: each panel's fragment, marked for an out-of-band swap.

The websocket consumer and the polling fallback both send what this module renders, so
a page looks the same whichever way its updates arrive.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.template.loader import render_to_string

from memory.signals import signals_after
from memory.tiers import AccessTier, Caller

from .agents_memory import get_memory
from .panels import PANELS, SIGNAL_FILTERS

FEED_CATCH_UP = 200


def template_context(viewer: Caller, csrf_token: str) -> dict[str, Any]:
    """What the context processors would give a page: the tier names, and a CSRF token
    (the cookie's secret, which the CSRF check accepts) for action buttons."""
    return {
        "tier": viewer.tier,
        **{t.name: t for t in AccessTier},
        "csrf_token": csrf_token,
        "user": {"get_username": viewer.user_id},
        "oob": True,
    }


def render_panels(
    names: Iterable[str], params: Mapping[str, str], viewer: Caller, csrf_token: str
) -> str:
    """The named panels, rebuilt from Redis, each swapped in by its id."""
    base = template_context(viewer, csrf_token)
    parts = []
    for name in names:
        panel = PANELS[name]
        context = {**base, **panel.build(params, viewer)}
        parts.append(render_to_string(f"{panel.template}#{name}", context))
    return "".join(parts)


def render_new_signals(
    after: str | None, params: Mapping[str, str], viewer: Caller, csrf_token: str
) -> tuple[str, str | None]:
    """Signals newer than ``after`` for the feed, prepended newest first; returns the
    HTML and the id to continue from."""
    filters = {name: params.get(name) or None for name in SIGNAL_FILTERS}
    page = signals_after(get_memory(), after, FEED_CATCH_UP, **filters)
    if not page:
        return "", page.next_cursor
    context = {**template_context(viewer, csrf_token), "signals": list(reversed(page))}
    return render_to_string("dashboard/_new_signals.html", context), page.next_cursor
