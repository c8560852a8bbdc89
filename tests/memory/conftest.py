"""Every library test runs three times: on a real redis-server, on a 3-master Redis
Cluster, and on the in-process mock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import fakeredis
import pytest

from memory import RedisShortTermMemory

MakeMemory = Callable[..., RedisShortTermMemory]


@pytest.fixture(params=["redis", "cluster", "mock"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_memory(backend: str, request: pytest.FixtureRequest) -> Iterator[MakeMemory]:
    """Build memories on one empty backend; all memories of a test share its data."""
    made: list[RedisShortTermMemory] = []
    if backend in ("redis", "cluster"):
        server = request.getfixturevalue("redis_server" if backend == "redis" else "redis_cluster")
        with server.client() as client:
            client.flushall()

        def make(**options: Any) -> RedisShortTermMemory:
            memory = RedisShortTermMemory(url=server.url, **options)
            made.append(memory)
            return memory

    else:
        fake_server = fakeredis.FakeServer()

        def make(**options: Any) -> RedisShortTermMemory:
            memory = RedisShortTermMemory(client=fakeredis.FakeRedis(server=fake_server), **options)
            made.append(memory)
            return memory

    yield make
    for memory in made:
        memory.close()


@pytest.fixture
def memory(make_memory: MakeMemory) -> RedisShortTermMemory:
    return make_memory()
