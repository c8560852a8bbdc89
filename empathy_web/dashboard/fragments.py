"""Live updates as HTML: each panel's fragment, marked for an out-of-band swap.

The websocket consumer and the polling fallback both send what this module renders, so
a page looks the same whichever way its updates arrive.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.template.loader import render_to_string

from memory.signals import signals_after
from memory.tiers import AccessTier, Caller

from .agents_memory import get_memory
from .panels import PANELS, SIGNAL_FILTERS

FEED_CATCH_UP = 200


def masked_csrf_token(cookie_secret: str) -> str:
    """A fresh masked CSRF token for the browser's csrftoken cookie, as ``{% csrf_token %}``
    gives a page (masking differs per response, which defeats BREACH-style guessing)."""
    if not cookie_secret:
        return ""
    request = HttpRequest()
    request.META["CSRF_COOKIE"] = cookie_secret
    return get_token(request)


def template_context(viewer: Caller, csrf_token: str) -> dict[str, Any]:
    """What the context processors would give a page: the tier names, and the CSRF
    token for action buttons."""
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
