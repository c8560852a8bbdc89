"""``manage.py redis_acl`` printed, piped to redis-cli, and used: the server's user runs
the memory, the channel layer's user runs the layer, and neither reaches the other."""

from __future__ import annotations

import io
import re
import shutil
import subprocess

import pytest
import redis
from channels_redis.core import RedisChannelLayer
from django.core.management import call_command

from memory import AccessDenied, AccessTier, EmpathyOS, RedisShortTermMemory
from tests.redis_server import start_redis_server


@pytest.fixture
def applied():
    """The printed users, applied with redis-cli to a redis-server of their own; their
    URLs by user name."""
    server = start_redis_server([])
    out = io.StringIO()
    call_command("redis_acl", "--url", server.url, stdout=out)
    text = out.getvalue()
    lines = [line for line in text.splitlines() if line.startswith("ACL SETUSER")]
    host, port = server.url.removeprefix("redis://").split("/")[0].split(":")
    cli = shutil.which("redis-cli")
    assert cli, "redis-cli comes with redis-server"
    done = subprocess.run(
        [cli, "-h", host, "-p", port], input="\n".join(lines), text=True,
        capture_output=True, check=True,
    )  # fmt: skip
    assert done.stdout.split() == ["OK"] * 6, done.stdout + done.stderr
    urls = dict(re.findall(r"#   (redis://(empathy-[a-z]+):\S+)", text)[i][::-1] for i in range(6))
    try:
        yield urls
    finally:
        server.stop()


def test_six_users_each_with_its_url(applied):
    assert set(applied) == {
        f"empathy-{n}"
        for n in ("observer", "contributor", "validator", "steward", "server", "channels")
    }


def test_the_servers_user_runs_the_memory(applied):
    memory = RedisShortTermMemory(url=applied["empathy-server"])
    memory.load_library()

    EmpathyOS("agent", memory).stash("k", 1)

    assert memory.eviction_problem() is None  # it may read the policy
    observer = RedisShortTermMemory(url=applied["empathy-observer"])
    assert EmpathyOS("r", observer, AccessTier.OBSERVER).retrieve("k", "agent") == 1
    with pytest.raises(AccessDenied):
        EmpathyOS("r", observer, AccessTier.STEWARD).stash("k", 2)


async def test_the_channel_layers_user_runs_the_layer_alone(applied):
    layer = RedisChannelLayer(hosts=[{"address": applied["empathy-channels"]}])
    channel = await layer.new_channel()
    await layer.group_add("dashboard", channel)
    await layer.group_send("dashboard", {"type": "hint", "panels": ["x"]})
    assert (await layer.receive(channel))["panels"] == ["x"]
    await layer.close_pools()

    server = redis.Redis.from_url(applied["empathy-server"])
    with pytest.raises(redis.exceptions.NoPermissionError):
        server.zadd("asgi:group:dashboard", {"forged!": 1})
