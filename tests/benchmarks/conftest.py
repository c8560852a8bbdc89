"""Fixtures shared by the benchmarks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.redis_server import RedisServer, start_redis_server


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    """A private redis-server for one benchmark module (no persistence, as every test
    server)."""
    srv = start_redis_server([])
    try:
        yield srv
    finally:
        srv.stop()
