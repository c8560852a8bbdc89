"""Fixtures shared by the web tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from empathy_web.dashboard.agents_memory import use_memory
from memory import RedisShortTermMemory
from tests.redis_server import RedisServer


@pytest.fixture
def memory(redis_server: RedisServer, redis_client: redis.Redis) -> Iterator[RedisShortTermMemory]:
    """The memory the web reads: on the session redis-server, flushed first."""
    shared = RedisShortTermMemory(url=redis_server.url)
    use_memory(shared)
    try:
        yield shared
    finally:
        use_memory(None)
        shared.close()
