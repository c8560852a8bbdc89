"""The bridge: memory event stream -> channel-layer hints for every open dashboard.

Delivery guarantees, in order of the loop below:
- It reads the stream with XREAD BLOCK from the last id it handled, never from ``$``, so
  nothing between two reads is skipped. That id is saved in Redis after each hint, so a
  restarted bridge resumes where the last one stopped (events it had read but not yet
  announced are announced again: at-least-once).
- Bursts are coalesced: a hint goes out as soon as events arrive, unless one went out
  less than ``coalesce`` seconds ago; then everything arriving until that much time has
  passed becomes the next hint, naming the panels it touched. So each panel is
  re-rendered at most once per ``coalesce``, and a lone event is not delayed at all.
- Each hint carries the id of the newest event it covers; consumers rendering the same
  fragment for the same hint share one rendering.
- Hints carry no data. Consumers re-read Redis, so a hint that the channel layer drops
  (it drops messages to consumers over capacity) delays an update until the next hint or
  the periodic refresh, and never corrupts one.
- Redis or channel-layer failures are retried with exponential backoff, forever. After
  an outage every panel is refreshed twice, a little apart, because a Redis restart also
  loses the consumers' group memberships until they re-join (every 2 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

from memory import RedisShortTermMemory

from .agents_memory import UNAVAILABLE
from .consumers import GROUP
from .panels import PANELS, panels_for

logger = logging.getLogger("empathy_web.bridge")


@dataclass
class Backoff:
    """Exponential backoff with full jitter."""

    base: float = 0.1
    cap: float = 2.0
    attempt: int = 0

    def next_delay(self) -> float:
        self.attempt += 1
        return random.uniform(0, min(self.cap, self.base * 2**self.attempt))

    def reset(self) -> None:
        self.attempt = 0


@dataclass
class Bridge:
    memory: RedisShortTermMemory
    channel_layer: Any
    coalesce: float = 0.25
    refresh_every: float = 10.0
    block_ms: int = 1000
    backoff: Backoff = field(default_factory=Backoff)
    last_id: str | None = None

    @property
    def cursor_key(self) -> str:
        return f"{self.memory.keys.prefix}bridge:last_id"

    def _start_id(self) -> str:
        saved = self.memory.client.get(self.cursor_key)
        return saved.decode() if saved else self.memory.latest_event_id()

    async def run(self, stop: asyncio.Event) -> None:
        """Tail the stream until ``stop`` is set."""
        pending: set[str] = set()
        last_hint = 0.0  # when the last hint went out
        last_refresh = time.monotonic()
        resyncs: list[float] = []  # when to refresh every panel after an outage
        while not stop.is_set():
            try:
                if self.last_id is None:
                    self.last_id = await asyncio.to_thread(self._start_id)
                    logger.info("bridge reading events after %s", self.last_id)
                if pending:  # wait no longer than until the next hint may go out
                    wait = max(1, int((last_hint + self.coalesce - time.monotonic()) * 1000))
                else:
                    wait = self.block_ms
                events = await asyncio.to_thread(
                    self.memory.read_events, self.last_id, block_ms=wait, count=500
                )
                if self.backoff.attempt:
                    logger.info("bridge: Redis is back")
                    resyncs = [time.monotonic() + delay for delay in (0.5, 2.5)]
                self.backoff.reset()
            except UNAVAILABLE as exc:
                delay = self.backoff.next_delay()
                logger.warning("bridge: Redis unavailable (%s); retrying in %.2fs", exc, delay)
                await _sleep_or_stop(stop, delay)
                continue
            for event in events:
                pending.add(event.type)
                self.last_id = event.id
            now = time.monotonic()
            if pending and now - last_hint >= self.coalesce:
                if await self._announce(panels_for(pending), stop):
                    pending.clear()
                    last_hint = last_refresh = now
            elif self._refresh_due(now, last_refresh, resyncs) and await self._announce(
                set(PANELS), stop
            ):
                last_refresh = now
                resyncs = [when for when in resyncs if when > now]

    def _refresh_due(self, now: float, last_refresh: float, resyncs: list[float]) -> bool:
        # Liveness and countdowns change with time alone, hints may be lost, and an
        # outage may have lost anything.
        return bool(resyncs and now >= resyncs[0]) or now - last_refresh >= self.refresh_every

    async def _announce(self, panels: set[str], stop: asyncio.Event) -> bool:
        try:
            await self.channel_layer.group_send(
                GROUP, {"type": "memory.changed", "panels": sorted(panels), "hint": self.last_id}
            )
            await asyncio.to_thread(self.memory.client.set, self.cursor_key, self.last_id)
        except Exception as exc:  # channel layer or Redis down: keep the events, retry
            delay = self.backoff.next_delay()
            logger.warning("bridge: could not announce (%s); retrying in %.2fs", exc, delay)
            await _sleep_or_stop(stop, delay)
            return False
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
    from channels.layers import get_channel_layer

    from .agents_memory import get_memory

    bridge = Bridge(get_memory(), get_channel_layer())
    _embedded = asyncio.get_running_loop().create_task(bridge.run(asyncio.Event()))
