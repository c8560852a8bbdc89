"""The dashboards' channel layer across a Redis outage, on a redis-server of its own."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import AbstractBackoff

from empathy_web.dashboard.layers import LOST, RESTORED, ResilientRedisChannelLayer
from tests.redis_server import RedisServer, start_redis_server


@pytest.fixture
def server() -> Iterator[RedisServer]:
    running = start_redis_server([])
    yield running
    running.stop()


def layer_on(server: RedisServer) -> ResilientRedisChannelLayer:
    return ResilientRedisChannelLayer(hosts=[{"address": server.url}])


async def test_an_outage_is_two_messages_and_delivery_resumes(server):
    layer = layer_on(server)
    first, second = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("g", first)
    waits = [asyncio.ensure_future(layer.receive(ch)) for ch in (first, second)]
    await asyncio.sleep(0.2)  # both are blocked in Redis

    port = server.port
    server.stop()
    lost = await asyncio.wait_for(asyncio.gather(*waits), timeout=5)
    assert lost == [{"type": LOST}, {"type": LOST}]

    # While Redis is down the next receive waits; both wait on one recovery.
    waits = [asyncio.ensure_future(layer.receive(ch)) for ch in (first, second)]
    await asyncio.sleep(0.5)
    assert not any(wait.done() for wait in waits)
    assert len(layer._recoveries) == 1

    restarted = start_redis_server([], port=port)
    try:
        restored = await asyncio.wait_for(asyncio.gather(*waits), timeout=5)
        assert restored == [{"type": RESTORED}, {"type": RESTORED}]
        # The restart forgot the group; re-joining and sending works as before.
        await layer.group_add("g", first)
        await layer.group_send("g", {"type": "hello"})
        assert await asyncio.wait_for(layer.receive(first), timeout=5) == {"type": "hello"}
    finally:
        await layer.flush()
        restarted.stop()


async def test_messages_pass_through_untouched_when_redis_stays_up(server):
    layer = layer_on(server)
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "memory.changed", "panels": ["task-board"]})
    message = await asyncio.wait_for(layer.receive(channel), timeout=5)
    assert message == {"type": "memory.changed", "panels": ["task-board"]}
    await layer.flush()


async def test_waiters_for_redis_share_one_ping_loop(server, monkeypatch):
    layer = layer_on(server)
    channels = [await layer.new_channel() for _ in range(50)]
    await asyncio.wait_for(layer.until_reachable(channels[0]), timeout=5)  # up: at once

    pings = 0
    ping = redis.asyncio.Redis.ping

    async def counted(self, **kwargs):
        nonlocal pings
        pings += 1
        return await ping(self, **kwargs)

    monkeypatch.setattr(redis.asyncio.Redis, "ping", counted)
    port = server.port
    server.stop()
    waits = [asyncio.ensure_future(layer.until_reachable(ch)) for ch in channels]
    await asyncio.sleep(1.5)
    assert not any(wait.done() for wait in waits)
    assert 1 <= pings <= 12  # one loop backing off, not fifty

    restarted = start_redis_server([], port=port)
    try:
        await asyncio.wait_for(asyncio.gather(*waits), timeout=5)
    finally:
        await layer.flush()
        restarted.stop()


async def test_a_rejoin_says_when_redis_forgot_the_membership(server):
    layer = layer_on(server)
    channel = await layer.new_channel()
    assert await layer.rejoin("g", channel) is True  # first time in
    assert await layer.rejoin("g", channel) is False  # still a member
    # A restart without persistence, too quick for any error: the memberships are gone.
    await redis.asyncio.Redis.from_url(server.url).flushall()
    assert await layer.rejoin("g", channel) is True
    await layer.group_send("g", {"type": "hello"})
    assert await asyncio.wait_for(layer.receive(channel), timeout=5) == {"type": "hello"}
    await layer.flush()


class CountedBackoff(AbstractBackoff):
    """A pool's backoff that waits no time and counts how often it is asked, in the
    class: each connection works on a deep copy of its retry."""

    waits = 0

    def reset(self) -> None:
        pass

    def compute(self, failures: int) -> float:
        CountedBackoff.waits += 1
        return 0


async def test_an_outage_is_told_after_the_pools_retries_alone(server):
    # As settings.py configures it, the layer's pools retry a failed command with backoff
    # (up to 3 s). Seeing whether Redis answers must not back off as long again: with
    # Redis down, LOST comes after one round of the pool's retries, not two.
    backoff = CountedBackoff()
    layer = ResilientRedisChannelLayer(hosts=[{"address": server.url, "retry": Retry(backoff, 5)}])
    channel = await layer.new_channel()
    await layer.group_add("g", channel)
    waiting = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0.2)  # blocked in Redis
    server.stop()
    assert await asyncio.wait_for(waiting, timeout=5) == {"type": LOST}
    assert CountedBackoff.waits == 5  # the blocked read's retries; the PING tried once
    await layer.close_pools()
