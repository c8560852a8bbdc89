"""Live updates as HTML: each panel's fragment, marked for an out-of-band swap.

The websocket consumer and the polling fallback both send what this module renders, so
a page looks the same whichever way its updates arrive.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.template.loader import render_to_string

from memory.signals import signals_after
from memory.tiers import AccessTier, Caller

from .agents_memory import get_memory
from .panels import PANELS, SIGNAL_FILTERS

FEED_CATCH_UP = 200  # signals read per round trip
FEED_MAX = 2000  # signals sent in one message; a longer backlog continues on the next hint
FEED_CACHE_HINTS = 2
_feed_lock = threading.Lock()
_feed_cache: dict[str, dict[tuple, tuple[str, str | None]]] = {}  # hint -> place -> HTML

# Panels rendered for one hint are shared by the viewers that see the same thing: the
# same panels, query and tier. Their forms carry this stand-in for the CSRF token, which
# each viewer's copy replaces with its own. It is random per process, so no text an
# agent writes can predict it.
_CSRF_STAND_IN = secrets.token_hex(24)
_panels_lock = threading.Lock()
_panels_cache: dict[str, dict[tuple, _Shared]] = {}  # hint -> what is seen -> rendering


class _Shared:
    """One rendering that several consumers wait on; ``html`` stays None if it failed."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.html: str | None = None


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
    names: Iterable[str],
    params: Mapping[str, str],
    viewer: Caller,
    csrf_token: str,
    hint: str | None = None,
) -> str:
    """The named panels, rebuilt from Redis, each swapped in by its id.

    Viewers handling the same ``hint`` who see the same panels with the same query and
    tier share one rendering, as the feed's viewers do.
    """
    names = tuple(names)
    if hint is None:
        return _render_panels(names, params, viewer, csrf_token)
    seen = (names, tuple(sorted(params.items())), viewer.tier)
    with _panels_lock:
        by_seen = _panels_cache.setdefault(hint, {})
        shared = by_seen.get(seen)
        first = shared is None
        if first:
            shared = by_seen[seen] = _Shared()
        while len(_panels_cache) > FEED_CACHE_HINTS:
            _panels_cache.pop(next(iter(_panels_cache)))
    if first:
        try:
            shared.html = _render_panels(names, params, viewer, _CSRF_STAND_IN)
        finally:
            shared.done.set()
    else:
        shared.done.wait()
    if shared.html is None:  # the first viewer's rendering failed: try on our own
        return _render_panels(names, params, viewer, csrf_token)
    return shared.html.replace(_CSRF_STAND_IN, csrf_token)


def _render_panels(
    names: Iterable[str], params: Mapping[str, str], viewer: Caller, csrf_token: str
) -> str:
    base = template_context(viewer, csrf_token)
    parts = []
    for name in names:
        panel = PANELS[name]
        context = {**base, **panel.build(params, viewer)}
        parts.append(render_to_string(f"{panel.template}#{name}", context))
    return "".join(parts)


def render_new_signals(
    after: str | None, params: Mapping[str, str], hint: str | None = None
) -> tuple[str, str | None]:
    """Every signal newer than ``after`` for the feed, prepended newest first (at most
    ``FEED_MAX`` of them); returns the HTML and the id to continue from.

    The fragment is the same for every viewer, so the consumers that handle one hint at
    the same position share one rendering: with many dashboards open, the cost of a
    hint follows the number of distinct positions, not the number of viewers.
    """
    filters = tuple((name, params.get(name) or None) for name in SIGNAL_FILTERS)
    if hint is None:  # a resume or a poll: nobody to share with, and nothing to key on
        return _render_new_signals(after, dict(filters))
    with _feed_lock:
        by_place = _feed_cache.setdefault(hint, {})
        cached = by_place.get((after, filters))
        if cached is None:
            cached = by_place[(after, filters)] = _render_new_signals(after, dict(filters))
        # Renderings are shared within a hint; keep only the newest few hints' worth.
        while len(_feed_cache) > FEED_CACHE_HINTS:
            _feed_cache.pop(next(iter(_feed_cache)))
    return cached


def _render_new_signals(
    after: str | None, filters: dict[str, str | None]
) -> tuple[str, str | None]:
    signals: list = []
    cursor = after
    while len(signals) < FEED_MAX:
        page = signals_after(get_memory(), cursor, FEED_CATCH_UP, **filters)
        signals.extend(page)
        moved, cursor = page.next_cursor != cursor, page.next_cursor
        if not moved:
            break
    if not signals:
        return "", cursor
    html = render_to_string("dashboard/_new_signals.html", {"signals": list(reversed(signals))})
    return html, cursor
