"""The bridge: memory event stream -> channel-layer hints for every open dashboard (one
message per web process, whose relay hands it to its dashboards: relay.py).

Delivery guarantees, in order of the loop below:
- It reads the stream with XREAD BLOCK from the last id it handled, never from ``$``, so
  nothing between two reads is skipped. That id is saved in Redis after each hint, so a
  restarted bridge resumes where the last one stopped (events it had read but not yet
  announced are announced again: at-least-once).
- Bursts are coalesced per panel: a panel's hint goes out as soon as an event touches
  it, unless its last hint went out less than its window ago; then everything touching
  it until the window has passed becomes its next hint. So each panel is re-rendered at
  most once per ``coalesce`` (``PANEL_WINDOW``, 150 ms), and a lone event is not delayed
  at all; a panel that changes all the time reaches the screen within that window plus
  the delivery. The signal feed only appends the new signals (one shared rendering per
  hint, see ``fragments.render_new_signals``), so its window is shorter
  (``feed_coalesce``, ``FEED_WINDOW``, 100 ms). The README's live benchmark has the
  figures behind both: at 1,000 viewers on two cores, p95 under 250 ms on every page.
- Each hint carries the id of the newest event it covers; consumers rendering the same
  fragment for the same hint share one rendering.
- Hints carry no data. Consumers re-read Redis, so a hint that the channel layer drops
  (it drops messages to consumers over capacity) delays an update until the next hint or
  the periodic refresh, and never corrupts one.
- Several bridges may run; one leads (``memory.leadership``), under a lease it renews
  every ``lead_ttl / 3``. The others stand by and try for the lead every
  ``STANDBY_POLL``, so when a leader dies another takes over within ``lead_ttl`` plus
  that, and reads on from the cursor the last leader saved. The cursor is saved under
  the leader's fencing token, so a leader that stalled past its lease stops at its next
  save instead of moving the cursor back.
- Redis or channel-layer failures are retried with exponential backoff, forever. After
  an outage every panel is refreshed twice, a little apart, because a Redis restart also
  loses the processes' group memberships until their relays re-join: at once, with a
  fresh copy of every page, when their channel layer saw the outage; else within 2 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from channels.layers import get_channel_layer
from redis.backoff import AbstractBackoff, FullJitterBackoff

from memory import RedisShortTermMemory, leadership

from .agents_memory import UNAVAILABLE, get_memory
from .panels import GROUP, PANELS, panels_for

logger = logging.getLogger("empathy_web.bridge")
STANDBY_POLL = 0.5  # seconds between a standing-by bridge's tries for the lead
PANEL_WINDOW = 0.15  # least seconds between two updates of a panel
FEED_WINDOW = 0.1  # the same for the signal feed


def holder_name() -> str:
    """This process, as the holder of the lead."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _default_backoff() -> AbstractBackoff:
    # The n-th retry in a row waits up to 0.1 * 2**n s (at most 2 s), full jitter.
    return FullJitterBackoff(cap=2.0, base=0.1)


@dataclass
class Bridge:
    memory: RedisShortTermMemory
    channel_layer: Any
    coalesce: float = PANEL_WINDOW
    feed_coalesce: float = FEED_WINDOW
    refresh_every: float = 10.0
    block_ms: int = 1000
    backoff: AbstractBackoff = field(default_factory=_default_backoff)
    lead_ttl: float = 3.0
    holder: str = field(default_factory=holder_name)
    failures: int = 0  # failed reads or announcements in a row
    last_id: str | None = None
    token: str | None = None  # the fencing token while it leads
    standing_by: bool = False
    renew_at: float = 0.0

    def _retry_delay(self) -> float:
        self.failures += 1
        return self.backoff.compute(self.failures)

    def _start_id(self) -> str:
        return self.memory.bridge_cursor() or self.memory.latest_event_id()

    def window(self, panel: str) -> float:
        """The least time between two updates of ``panel``."""
        return self.feed_coalesce if panel == "signal-feed" else self.coalesce

    async def run(self, stop: asyncio.Event) -> None:
        """Tail the stream until ``stop`` is set."""
        pending: set[str] = set()  # panels changed since their last hint
        last_hint: dict[str, float] = {}
        last_refresh = time.monotonic()
        resyncs: list[float] = []  # when to refresh every panel after an outage
        while not stop.is_set():
            try:
                if not await self._lead(stop):
                    continue
                if self.last_id is None:
                    self.last_id = await asyncio.to_thread(self._start_id)
                    logger.info("bridge reading events after %s", self.last_id)
                wait = self.block_ms
                if pending:  # wait no longer than until the next hint may go out
                    due = min(last_hint.get(p, 0.0) + self.window(p) for p in pending)
                    wait = max(1, min(wait, int((due - time.monotonic()) * 1000)))
                events = await asyncio.to_thread(
                    self.memory.read_events, self.last_id, block_ms=wait, count=500
                )
                if self.failures:
                    logger.info("bridge: Redis is back")
                    resyncs = [time.monotonic() + delay for delay in (0.5, 2.5)]
                self.failures = 0
            except UNAVAILABLE as exc:
                delay = self._retry_delay()
                logger.warning("bridge: Redis unavailable (%s); retrying in %.2fs", exc, delay)
                await _sleep_or_stop(stop, delay)
                continue
            if events:
                pending |= panels_for({event.type for event in events})
                self.last_id = events[-1].cursor
            now = time.monotonic()
            due = {p for p in pending if now - last_hint.get(p, 0.0) >= self.window(p)}
            if due:
                if await self._announce(due, stop):
                    pending -= due
                    last_hint.update(dict.fromkeys(due, now))
                    last_refresh = now
            elif self._refresh_due(now, last_refresh, resyncs) and await self._announce(
                set(PANELS), stop
            ):
                last_refresh = now
                resyncs = [when for when in resyncs if when > now]
        await self.release()

    async def _lead(self, stop: asyncio.Event) -> bool:
        """Whether this bridge leads, taking or renewing the lead when due; a bridge
        that does not lead waits ``STANDBY_POLL`` first."""
        now = time.monotonic()
        if self.token is not None and now < self.renew_at:
            return True
        token = await asyncio.to_thread(leadership.lead, self.memory, self.holder, self.lead_ttl)
        if token is None:
            if self.token is not None or not self.standing_by:
                logger.info("bridge %s stands by: another bridge leads", self.holder)
            self.token, self.standing_by = None, True
            await _sleep_or_stop(stop, STANDBY_POLL)
            return False
        self.standing_by = False
        if token != self.token:
            logger.info("bridge %s leads (token %s)", self.holder, token)
            self.last_id = None  # read on from the cursor the last leader saved
        self.token, self.renew_at = token, now + self.lead_ttl / 3
        return True

    async def release(self) -> None:
        """Hand the lead on at once (a clean stop)."""
        if self.token is not None:
            with contextlib.suppress(*UNAVAILABLE):
                await asyncio.to_thread(leadership.release, self.memory, self.token)
            self.token = None

    def _refresh_due(self, now: float, last_refresh: float, resyncs: list[float]) -> bool:
        # Liveness and countdowns change with time alone, hints may be lost, and an
        # outage may have lost anything.
        return bool(resyncs and now >= resyncs[0]) or now - last_refresh >= self.refresh_every

    async def _announce(self, panels: set[str], stop: asyncio.Event) -> bool:
        try:
            await self.channel_layer.group_send(
                GROUP, {"type": "memory.changed", "panels": sorted(panels), "hint": self.last_id}
            )
            saved = await asyncio.to_thread(
                leadership.save_cursor, self.memory, self.token, self.last_id
            )
        except Exception as exc:  # channel layer or Redis down: keep the events, retry
            delay = self._retry_delay()
            logger.warning("bridge: could not announce (%s); retrying in %.2fs", exc, delay)
            await _sleep_or_stop(stop, delay)
            return False
        if not saved:
            logger.warning("bridge: lost the lead while announcing; standing by")
            self.token = None
        return True


async def _sleep_or_stop(stop: asyncio.Event, delay: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=delay)


_embedded: asyncio.Task | None = None


def ensure_embedded_bridge() -> None:
    """Start a bridge inside this server's event loop, once (the one-process demo).

    The in-memory channel layer only works within one event loop, so the embedded
    bridge must run in the server's loop rather than in a thread of its own.
    """
    global _embedded
    if _embedded is not None and not _embedded.done():
        return
    bridge = Bridge(get_memory(), get_channel_layer())
    _embedded = asyncio.get_running_loop().create_task(bridge.run(asyncio.Event()))
