"""Live updates as HTML: each panel's fragment, marked for an out-of-band swap.

The websocket consumer and the polling fallback both send what this module renders, so
a page looks the same whichever way its updates arrive.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple, TypeVar

from asgiref.sync import sync_to_async
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from empathy_web.accounts.teams import Viewer
from memory.signals import newest_signals, signals_after
from memory.tiers import AccessTier

from .agents_memory import get_memory
from .panels import PANELS, SIGNAL_FILTERS

FEED_BATCH = 200  # signals read per round trip, and at most sent in one message
FEED_READS = 5  # round trips per message at most, when a filter skips most signals
SHARED_HINTS = 2  # renderings are shared within a hint; only the newest hints' are kept
# Each signal's line in the feed, rendered once per process and kept for the newest
# SIGNAL_LINES signals: a signal never changes once sent, and every viewer sees the same
# line (every tier may read the feed). Pages at different places in the feed then share
# the lines they have in common, however their batches fall.
SIGNAL_LINES = 4 * FEED_BATCH
_signal_lines: dict[str, str] = {}
_signal_lines_lock = threading.Lock()  # renderings run in worker threads

# Viewers handling the same hint who would render the same thing share one rendering:
# with many dashboards open, the cost of a hint follows the number of distinct views,
# not the number of viewers. The rendering runs in a worker thread; the consumers in
# the event loop wait for it without taking a thread each. Shared panels carry
# this stand-in for the CSRF token in their forms, which each viewer's copy replaces
# with its own; it is random per process, so no text an agent writes can predict it.
_CSRF_STAND_IN = secrets.token_hex(24)
# event loop -> hint -> what is rendered -> its rendering, done or under way
_renderings: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[str, dict[tuple, asyncio.Future[Any]]]
] = weakref.WeakKeyDictionary()
T = TypeVar("T")


def rendering(hint: str, key: tuple, render: Callable[[], T]) -> asyncio.Future[T]:
    """The rendering of ``key`` for ``hint`` that the consumers of this event loop share:
    ``render()``, started now in a worker thread unless it is under way or done. One
    that fails fails for every consumer that waits for it, and is forgotten, so that
    the next to ask starts afresh."""
    loop = asyncio.get_running_loop()
    by_hint = _renderings.setdefault(loop, {})
    by_key = by_hint.setdefault(hint, {})
    while len(by_hint) > SHARED_HINTS:
        by_hint.pop(next(iter(by_hint)))
    shared = by_key.get(key)
    if shared is None:
        shared = by_key[key] = loop.create_task(sync_to_async(render, thread_sensitive=False)())
        shared.add_done_callback(functools.partial(_forget_if_failed, by_key, key))
    return shared


def _forget_if_failed(by_key: dict[tuple, Any], key: tuple, shared: asyncio.Task[Any]) -> None:
    if (shared.cancelled() or shared.exception() is not None) and by_key.get(key) is shared:
        del by_key[key]


async def _shared(hint: str, key: tuple, render: Callable[[], T]) -> T:
    shared = rendering(hint, key, render)
    if shared.done():
        return shared.result()
    # (shielded: a waiter that is cancelled must not cancel the others' rendering)
    return await asyncio.shield(shared)


def masked_csrf_token(cookie_secret: str) -> str:
    """A fresh masked CSRF token for the browser's csrftoken cookie, as ``{% csrf_token %}``
    gives a page (masking differs per response, which defeats BREACH-style guessing)."""
    if not cookie_secret:
        return ""
    request = HttpRequest()
    request.META["CSRF_COOKIE"] = cookie_secret
    return get_token(request)


def template_context(viewer: Viewer, csrf_token: str) -> dict[str, Any]:
    """What the context processors would give a page: the tier names, and the CSRF
    token for action buttons."""
    return {
        "viewer": viewer,
        "tier": viewer.tier,
        **{t.name: t for t in AccessTier},
        "csrf_token": csrf_token,
        "user": {"get_username": viewer.user_id},
        "oob": True,
    }


def render_panels(
    names: Iterable[str], params: Mapping[str, str], viewer: Viewer, csrf_token: str
) -> str:
    """The named panels, rebuilt from Redis, each swapped in by its id."""
    return _render_panels(tuple(names), params, viewer, csrf_token)


def panels_view(
    names: Iterable[str], params: Mapping[str, str], viewer: Viewer
) -> tuple[tuple, Callable[[], str]]:
    """The key that viewers who see the same panels with the same query, tiers and
    teams share, and the rendering they share (with the CSRF stand-in)."""
    names = tuple(names)
    key = ("panels", names, tuple(sorted(params.items())), viewer.key)
    return key, lambda: _render_panels(names, params, viewer, _CSRF_STAND_IN)


async def panels_for_hint(
    names: Iterable[str],
    params: Mapping[str, str],
    viewer: Viewer,
    csrf_token: str,
    hint: str | None,
) -> str:
    """``render_panels`` for a consumer: viewers handling the same ``hint`` who see the
    same panels with the same query and tier share one rendering."""
    if hint is None:
        return await sync_to_async(_render_panels, thread_sensitive=False)(
            tuple(names), params, viewer, csrf_token
        )
    html = await _shared(hint, *panels_view(names, params, viewer))
    return html.replace(_CSRF_STAND_IN, csrf_token)


def _render_panels(
    names: Iterable[str], params: Mapping[str, str], viewer: Viewer, csrf_token: str
) -> str:
    base = template_context(viewer, csrf_token)
    parts = []
    for name in names:
        panel = PANELS[name]
        context = {**base, **panel.build(params, viewer)}
        parts.append(render_to_string(f"{panel.template}#{name}", context))
    return "".join(parts)


class FeedBatch(NamedTuple):
    html: str  # the signals, to prepend newest first ("" when there are none)
    cursor: str | None  # the id to continue from
    more: bool  # the batch is full: there may be more after it


def render_new_signals(viewer: Viewer, after: str | None, params: Mapping[str, str]) -> FeedBatch:
    """One batch of the signals newer than ``after`` for the feed, at most
    ``FEED_BATCH`` of them (call again from ``cursor`` while ``more``). With no
    ``after`` (a page that shows none yet), the newest batch only."""
    return _render_new_signals(viewer, after, _feed_filters(params))


def feed_view(
    viewer: Viewer, after: str | None, params: Mapping[str, str]
) -> tuple[tuple, Callable[[], FeedBatch]]:
    """The key that feeds at the same place with the same filters and teams share, and
    their batch (the same for every tier: every tier may read the feed)."""
    filters = _feed_filters(params)
    teams = None if viewer.teams is None else tuple(sorted(viewer.teams))
    key = ("feed", after, tuple(filters.items()), teams)
    return key, lambda: _render_new_signals(viewer, after, filters)


async def new_signals_for_hint(
    viewer: Viewer, after: str | None, params: Mapping[str, str], hint: str | None
) -> FeedBatch:
    """``render_new_signals`` for a consumer. The consumers that handle one hint at the
    same position share one rendering, read as whichever of them asked first."""
    key, render = feed_view(viewer, after, params)
    if hint is None:  # a resume or a poll: nobody to share with, and nothing to key on
        return await sync_to_async(render, thread_sensitive=False)()
    return await _shared(hint, key, render)


def _feed_filters(params: Mapping[str, str]) -> dict[str, str | None]:
    return {name: params.get(name) or None for name in SIGNAL_FILTERS}


def _render_new_signals(
    viewer: Viewer, after: str | None, filters: dict[str, str | None]
) -> FeedBatch:
    memory = get_memory()
    if after is None:
        newest = newest_signals(memory, viewer, FEED_BATCH, teams=viewer.teams, **filters)
        signals, cursor = list(newest), newest.next_cursor
    else:
        signals, cursor = [], after
        for _ in range(FEED_READS):
            page = signals_after(memory, viewer, cursor, FEED_BATCH, teams=viewer.teams, **filters)
            signals.extend(page)
            moved, cursor = page.next_cursor != cursor, page.next_cursor
            if signals or not moved:
                break
    if not signals:
        return FeedBatch("", cursor, False)
    lines = [_signal_line(signal) for signal in signals]  # oldest first: kept the longest
    newest_first = mark_safe("".join(reversed(lines)))  # noqa: S308 (rendered, escaped)
    html = render_to_string("dashboard/_new_signals.html", {"lines": newest_first})
    return FeedBatch(html, cursor, after is not None and len(signals) >= FEED_BATCH)


def _signal_line(signal: Mapping[str, Any]) -> str:
    """The feed's line for ``signal`` (``dashboard/_signal.html``), rendered once."""
    line = _signal_lines.get(signal["id"])
    if line is None:
        line = render_to_string("dashboard/_signal.html", {"signal": signal})
        with _signal_lines_lock:
            _signal_lines[signal["id"]] = line
            while len(_signal_lines) > SIGNAL_LINES:  # the first kept go first
                del _signal_lines[next(iter(_signal_lines))]
    return line
