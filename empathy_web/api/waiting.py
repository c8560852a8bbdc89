"""Long polls that hold no thread: ``receive`` and ``claim`` wait for work on one shared
reader of the event stream per event loop, not on a thread each.

Their views are plain sync views, so a call that finds work at once costs what any
other call costs. One that finds nothing and may wait raises ``Wait``; whoever runs
the view then waits in its event loop (``Wait.outcome``): the agent API's handler, the
MCP server, or, with no loop of its own (a test client), the request's thread.

A waiter registers what it waits for (a predicate on events), then tries its operation,
then sleeps until a matching event arrives or ``RETRY_EVERY`` passes (a lease that runs
out emits nothing until a claim reaps it), and tries again until its ``wait`` is over.
Registering before trying means no event can slip between the try and the sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from asgiref.sync import async_to_sync, sync_to_async
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponse

from empathy_web.dashboard.agents_memory import UNAVAILABLE, get_memory
from memory.events import Event

logger = logging.getLogger("empathy_web.api")

T = TypeVar("T")
MAX_WAIT = 30.0  # seconds a request may wait
RETRY_EVERY = 1.0
READ_BLOCK_MS = 1000


class Hub:
    """The event stream's one reader in this event loop, and who waits on it."""

    def __init__(self) -> None:
        self.waiters: dict[asyncio.Event, Callable[[Event], bool]] = {}
        self.reader: asyncio.Task[None] | None = None
        self.started = asyncio.Event()

    async def listen(self, wanted: Callable[[Event], bool]) -> asyncio.Event:
        """Start waking a new event flag for events ``wanted`` picks; from the stream's
        current end (the reader has its position before this returns)."""
        flag = asyncio.Event()
        self.waiters[flag] = wanted
        if self.reader is None or self.reader.done():
            self.started = asyncio.Event()
            self.reader = asyncio.get_running_loop().create_task(self._read())
        await self.started.wait()
        return flag

    def forget(self, flag: asyncio.Event) -> None:
        self.waiters.pop(flag, None)

    async def _read(self) -> None:
        memory = get_memory()
        try:
            after = await sync_to_async(memory.latest_event_id, thread_sensitive=False)()
        finally:
            self.started.set()
        while self.waiters:
            try:
                events = await sync_to_async(memory.read_events, thread_sensitive=False)(
                    after, block_ms=READ_BLOCK_MS
                )
            except UNAVAILABLE as exc:  # the waiters retry on their own meanwhile
                logger.info("api: waiting on events: %s", exc)
                await asyncio.sleep(RETRY_EVERY)
                continue
            for event in events:
                after = event.cursor
                for flag, wanted in list(self.waiters.items()):
                    if wanted(event):
                        flag.set()


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


def hub() -> Hub:
    loop = asyncio.get_running_loop()
    if loop not in _hubs:
        _hubs[loop] = Hub()
    return _hubs[loop]


async def until(
    attempt: Callable[[], Awaitable[T | None]],
    wanted: Callable[[Event], bool],
    wait: float,
) -> T | None:
    """``attempt()``'s first result that is not None, trying again when an event
    ``wanted`` picks arrives (or every ``RETRY_EVERY``), for up to ``wait`` seconds
    (then one last time)."""
    if wait <= 0:
        return await attempt()
    deadline = time.monotonic() + min(wait, MAX_WAIT)
    waiting = hub()
    flag = await waiting.listen(wanted)
    try:
        while True:
            flag.clear()
            result = await attempt()
            left = deadline - time.monotonic()
            if result is not None or left <= 0:
                return result
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(flag.wait(), min(left, RETRY_EVERY))
    finally:
        waiting.forget(flag)


class Wait(Exception):
    """Raised by a view whose first attempt found nothing, for a caller who may wait:
    ``outcome`` waits, then gives ``answer`` of what a later attempt found (or None)."""

    def __init__(
        self,
        attempt: Callable[[], Any],
        wanted: Callable[[Event], bool],
        seconds: float,
        answer: Callable[[Any], Any],
    ) -> None:
        super().__init__("waiting for work")
        self.attempt = attempt
        self.wanted = wanted
        self.deadline = time.monotonic() + min(seconds, MAX_WAIT)
        self.answer = answer

    async def outcome(self, run: Callable[[Callable[[], Any]], Awaitable[Any]]) -> Any:
        """Wait in the running loop; ``run(attempt)`` runs the sync attempt off it."""
        found = await until(
            lambda: run(self.attempt), self.wanted, self.deadline - time.monotonic()
        )
        return self.answer(found)

    def outcome_here(self) -> Any:
        """Wait in this thread (for callers with no event loop of their own)."""
        return async_to_sync(self.outcome)(off_loop)


def outside_a_request(function: Callable[[], T]) -> Callable[[], T]:
    """``function``, closing the thread's stale database connections before and after,
    as Django does around each request: for work in a pool thread that no request
    frames (MCP's tool calls, a long poll's later tries), whose connections would
    otherwise stay open in that thread, or stay taken from the pool, for good."""

    def run() -> T:
        close_old_connections()
        try:
            return function()
        finally:
            close_old_connections()

    return run


def off_loop(function: Callable[[], T]) -> Awaitable[T]:
    """``function`` in a thread of the loop's pool, outside a request."""
    return sync_to_async(outside_a_request(function), thread_sensitive=False)()


def at_once_or_wait(
    attempt: Callable[[], T | None],
    wanted: Callable[[Event], bool],
    seconds: float,
    answer: Callable[[T | None], Any],
) -> Any:
    """For a view: ``answer`` of the first attempt if it found something or the caller
    will not wait; else ``Wait`` (see the module docstring)."""
    found = attempt()
    if found is not None or seconds <= 0:
        return answer(found)
    raise Wait(attempt, wanted, seconds, answer)


class Pending(HttpResponse):
    """The agent API handler's placeholder for a request still waiting (``Wait``); it
    never reaches the client."""

    def __init__(self, request: HttpRequest, wait: Wait) -> None:
        super().__init__(status=202)
        self.request = request
        self.wait = wait
