"""The channel layer the dashboards run on: channels-redis, except that losing Redis does
not end every open websocket.

channels-redis lets a connection error escape ``receive``, which ends the consumer and
closes its websocket with 1011; every browser then reconnects at once, into a Redis that
may still be down. Here ``receive`` turns the outage into two messages for the consumer
instead: ``LOST`` at once, then ``RESTORED`` when Redis answers again, so it can tell its
page, then re-join its group (a restart without persistence forgets memberships) and
re-send what the page shows (the process's relay says when: relay.py). One ping loop
per Redis and process waits for the return, for ``receive`` and for consumers retrying
(``until_reachable``). A read that fails while Redis answers a PING (a pooled
connection that went stale in a restart) is made once more instead of reported.

A restart can also be too quick for anyone to see an error: the pooled connections'
retries hide it, and the group memberships are gone all the same. So relays re-join
now and then with ``rejoin``, which says when the membership had been lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Any

from channels_redis.core import RedisChannelLayer
from channels_redis.utils import create_pool
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import EqualJitterBackoff, NoBackoff

from .agents_memory import UNAVAILABLE

logger = logging.getLogger("empathy_web.live")

# Message types ``receive`` returns; consumers handle them as ``layer_lost`` and
# ``layer_restored``.
LOST = "layer.lost"
RESTORED = "layer.restored"
# Pings wait 25-50 ms, then twice as long after each failure, up to 0.5-1 s: the random
# half spreads the pings of many processes.
PING_BACKOFF = EqualJitterBackoff(cap=1.0, base=0.05)


class ResilientRedisChannelLayer(RedisChannelLayer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lost: set[str] = set()  # channels told LOST and not yet RESTORED
        self._recoveries: dict[int, asyncio.Future[None]] = {}
        self._probes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, Redis]] = (
            weakref.WeakKeyDictionary()
        )

    async def receive(self, channel: str) -> dict[str, Any]:
        if channel in self._lost:
            self._lost.discard(channel)
            await self.until_reachable(channel)
            return {"type": RESTORED}
        for attempt in (1, 2):
            try:
                return await super().receive(channel)
            except UNAVAILABLE as exc:
                error = exc
                # A connection that went stale while Redis restarted fails once though
                # Redis is back: no outage to report then, just the read to make again.
                if attempt == 2 or not await self._answers(channel):
                    break
        logger.warning("channel layer lost Redis (%s); waiting for it", error)
        self._lost.add(channel)
        return {"type": LOST}

    async def _answers(self, channel: str) -> bool:
        """Whether the Redis serving ``channel`` answers a PING now."""
        try:
            return bool(await self._probe(self.consistent_hash(channel)).ping())
        except UNAVAILABLE:
            return False

    def _probe(self, index: int) -> Redis:
        """A client of Redis ``index`` for PINGs, which try twice at once (the first may
        meet a pooled connection gone stale in a restart). The layer's own pools retry
        with backoff (settings.py: up to 3 s), which would make each PING to a Redis that
        is down that slow: the outage told that much later, and the ping loop slower than
        ``PING_BACKOFF``."""
        probes = self._probes.setdefault(asyncio.get_running_loop(), {})
        probe = probes.get(index)
        if probe is None:
            host = {**self.hosts[index], "retry": Retry(NoBackoff(), 1)}
            probe = probes[index] = Redis(connection_pool=create_pool(host))
        return probe

    async def close_pools(self) -> None:
        await super().close_pools()
        for probe in self._probes.pop(asyncio.get_running_loop(), {}).values():
            await probe.aclose()

    async def rejoin(self, group: str, channel: str) -> bool:
        """``group_add``, and True when ``channel`` was no longer in ``group``: Redis lost
        the membership (a restart without persistence), and with it any hints since."""
        key = self._group_key(group)
        connection = self.connection(self.consistent_hash(group))
        added = await connection.zadd(key, {channel: time.time()})
        await connection.expire(key, self.group_expiry)
        return bool(added)

    async def until_reachable(self, channel: str) -> None:
        """Return once the Redis serving ``channel`` answers a PING. While it does not,
        every caller in this process waits on the same ping loop."""
        await asyncio.shield(self._recovery(self.consistent_hash(channel)))

    def _recovery(self, index: int) -> asyncio.Future[None]:
        """The running wait for Redis ``index`` to answer, shared by this loop's consumers."""
        loop = asyncio.get_running_loop()
        waiting = self._recoveries.get(index)
        if waiting is None or waiting.done() or waiting.get_loop() is not loop:
            waiting = self._recoveries[index] = loop.create_task(self._until_answers(index))
        return waiting

    async def _until_answers(self, index: int) -> None:
        """Ping with ``PING_BACKOFF`` until Redis ``index`` answers."""
        connection = self._probe(index)
        failures = 0
        while True:
            await asyncio.sleep(PING_BACKOFF.compute(failures))
            try:
                await connection.ping()
            except UNAVAILABLE:
                failures += 1
            else:
                if failures:
                    logger.info("channel layer: Redis is back")
                # Forget channels that were told LOST and never asked again (their
                # consumers ended); a consumer that asks only now re-joins on its own.
                self._lost = {ch for ch in self._lost if self.consistent_hash(ch) != index}
                return
