from collections.abc import Iterator

import pytest
import redis

from tests.redis_server import (
    ClusterOfServers,
    RedisServer,
    RedisServerNotInstalled,
    start_cluster,
    start_redis_server,
)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server on 127.0.0.1, shared by the whole test session."""
    try:
        server = start_redis_server([])
    except RedisServerNotInstalled as exc:
        missing = str(exc)
    else:
        missing = None
    if missing is not None:
        pytest.fail(missing, pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[ClusterOfServers]:
    """A 3-master Redis Cluster on 127.0.0.1, shared by the whole test session."""
    try:
        cluster = start_cluster(3)
    except RedisServerNotInstalled as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client on the session server, with every database flushed first."""
    client = redis.Redis.from_url(
        redis_server.url,
        decode_responses=False,
        socket_timeout=10,
        socket_connect_timeout=5,
    )
    client.flushall()
    try:
        yield client
    finally:
        client.close()
