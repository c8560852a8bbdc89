"""An open signal feed across a bridge takeover: two real ``run_bridge`` processes, the
leader killed with SIGKILL while an agent keeps signalling; the feed, a real websocket
through the whole ASGI application, shows every signal exactly once. On one redis-server,
and on a Redis Cluster (with the channel layer on a Redis of its own)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers

from memory import EmpathyOS, RedisShortTermMemory, leadership
from tests.redis_server import RedisServer
from tests.web.conftest import web_memory
from tests.web.sockets import signal_ids
from tests.web.test_bridge_process import BridgeProcesses

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
SIGNALS = 90


@pytest.fixture
def redis_layer(settings, redis_server: RedisServer) -> Iterator[None]:
    """Consumers here on the Redis channel layer that the bridge processes send to, as
    the settings make it with a shared Redis (its timeout outlasts its 5 s pops)."""
    host = {"address": redis_server.url, "socket_timeout": 15, "socket_connect_timeout": 5}
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "empathy_web.dashboard.layers.ResilientRedisChannelLayer",
            "CONFIG": {"hosts": [host]},
        }
    }
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(params=["server", "cluster"])
def agents_redis(request: pytest.FixtureRequest, redis_server: RedisServer) -> str:
    """Where the agents' memory is: the session's redis-server (which the channel layer
    shares), or a Redis Cluster."""
    if request.param == "server":
        return redis_server.url
    cluster = request.getfixturevalue("redis_cluster")
    with cluster.client() as client:
        client.flushall()
    return cluster.url


@pytest.fixture
def memory(agents_redis: str, redis_client) -> Iterator[RedisShortTermMemory]:
    with web_memory(agents_redis) as shared:
        yield shared


@pytest.fixture
def bridges(
    agents_redis: str, redis_server: RedisServer, tmp_path: Path
) -> Iterator[BridgeProcesses]:
    processes = BridgeProcesses(agents_redis, tmp_path)
    processes.env["CHANNEL_LAYER_REDIS_URL"] = redis_server.url
    yield processes
    processes.stop_all()


async def test_a_feed_shows_each_signal_once_across_a_bridge_takeover(
    memory,
    redis_layer,
    bridges,
    connect,  # noqa: F811
):
    agent = EmpathyOS("agent", short_term_memory=memory)
    first = await bridges.start()
    second = await bridges.start(until="stands by")
    start = (await sync_to_async(agent.send_signal)("start", 0))["id"]
    communicator, connected, _ = await connect("panels=signal-feed")
    assert connected
    await communicator.send_to(text_data=json.dumps({"resume": start}))

    sent: list[str] = []
    a_third_sent = threading.Event()

    def signal_on() -> None:
        for n in range(SIGNALS):
            sent.append(agent.send_signal("progress", n)["id"])
            if n == SIGNALS // 3:
                a_third_sent.set()
            time.sleep(0.05)  # an agent's pace, about 20 signals a second

    sender = threading.Thread(target=signal_on)
    sender.start()
    await asyncio.to_thread(a_third_sent.wait, 30)
    assert leadership.leader(memory).holder.endswith(f":{first.pid}")
    os.kill(first.pid, signal.SIGKILL)

    await asyncio.to_thread(sender.join, 60)  # the frames wait in the communicator
    shown: list[str] = []
    while not set(sent) <= set(shown):
        # (a receive that times out ends the application: wait long, one frame at a time)
        shown += signal_ids(await communicator.receive_from(timeout=20))
    await communicator.disconnect()

    assert leadership.leader(memory).holder.endswith(f":{second.pid}")
    assert sorted(shown) == sorted(sent)  # each once: none twice, none skipped
