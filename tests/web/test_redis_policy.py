"""What the web side says about the Redis it is given: an evicting policy is an error
of ``manage.py check`` in production settings and makes /readyz fail, and the channel
layer's settings start without a warning."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from empathy_web.dashboard.agents_memory import use_memory
from memory import RedisShortTermMemory
from tests.redis_server import RedisServer, start_redis_server

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def evicting() -> Iterator[RedisServer]:
    server = start_redis_server(["--maxmemory-policy", "allkeys-lru"])
    yield server
    server.stop()


def run_django(url: str, code: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """``python <code>`` in a fresh process with production settings on ``url``."""
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "REDIS_"))},
        "DJANGO_SETTINGS_MODULE": "empathy_web.settings",
        "SECRET_KEY": "x" * 50,
        "ALLOWED_HOSTS": "localhost",
        "REDIS_URL": url,
        **env,
    }
    return subprocess.run(
        [sys.executable, *code], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60
    )


def test_check_reports_an_evicting_policy_as_an_error_in_production(evicting):
    done = run_django(evicting.url, ["manage.py", "check"])
    assert done.returncode != 0
    assert "empathy.E001" in done.stderr and "allkeys-lru" in done.stderr


def test_check_passes_a_policy_that_keeps_the_agents_keys(redis_server):
    done = run_django(redis_server.url, ["manage.py", "check"])
    assert done.returncode == 0, done.stderr
    assert "empathy" not in done.stderr


@pytest.mark.django_db
def test_readyz_fails_on_an_evicting_policy(evicting, client):
    memory = RedisShortTermMemory(url=evicting.url)
    use_memory(memory)
    try:
        response = client.get("/readyz")
    finally:
        use_memory(None)
        memory.close()
    assert response.status_code == 503
    assert response.json()["problems"] == {"redis": "maxmemory-policy evicts the agents' keys"}


LAYER_ROUND_TRIP = """
import asyncio, warnings, django
warnings.simplefilter("always")
django.setup()
from channels.layers import get_channel_layer
async def main():
    layer = get_channel_layer()
    await layer.send("probe", {"type": "probe"})
    print((await layer.receive("probe"))["type"])
    await layer.close_pools()
asyncio.run(main())
"""


def test_the_channel_layer_starts_without_a_warning(redis_server):
    done = run_django(redis_server.url, ["-c", LAYER_ROUND_TRIP])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "probe"
    assert "Warning" not in done.stderr, done.stderr


def test_check_refuses_the_channel_layer_on_a_cluster(redis_cluster, redis_server):
    done = run_django(redis_cluster.url, ["manage.py", "check"])
    assert done.returncode != 0
    assert "empathy.E002" in done.stderr and "CHANNEL_LAYER_REDIS_URL" in done.stderr
    # With a Redis of its own for the layer, the cluster is fine.
    done = run_django(
        redis_cluster.url, ["manage.py", "check"], CHANNEL_LAYER_REDIS_URL=redis_server.url
    )
    assert done.returncode == 0, done.stderr
