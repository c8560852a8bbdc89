"""The redis-py client a memory talks through: one server, a master that Redis Sentinel
names, a Redis Cluster, or the in-process mock; and the checks of a first contact (does
it answer, is it a cluster node, will it evict the agents' keys).

``memory.connection`` builds on this; nothing else needs it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool

from .exceptions import EvictionUnknown, InvalidValue, MemoryConnectionError

if TYPE_CHECKING:
    import fakeredis

logger = logging.getLogger("memory")

DEFAULT_URL = "redis://localhost:6379/0"
DEFAULT_SOCKET_TIMEOUT = 5.0

_mock_lock = threading.Lock()
_mock_server: fakeredis.FakeServer | None = None
_eviction_unknown_logged = False


def mock_server() -> fakeredis.FakeServer:
    """The one in-process fake Redis server of this process.

    The library, the dashboard's bridge and demo agents in one process all share it, the
    way separate processes share one real Redis.
    """
    import fakeredis  # only when the mock is chosen

    global _mock_server
    with _mock_lock:
        if _mock_server is None:
            _mock_server = fakeredis.FakeServer()
        return _mock_server


def default_retry() -> Retry:
    """No retry inside redis-py: a retry there would send any command again after a
    lost reply, and not every write can be replayed. The library retries once, on a
    failed connection and never after a timeout, the reads and the scripts that are
    safe to run twice (``LuaScript.retry``; ``redis_errors``)."""
    return Retry(NoBackoff(), 0)


def real_client(
    where: dict[str, Any],
    sentinel: dict[str, Any],
    username: str | None,
    password: str | None,
    options: dict[str, Any],
) -> redis.Redis:
    """A client of the server that ``where`` (a URL, or host and port) or ``sentinel``
    (sentinels and the master's name) gives; the master the sentinels name is found
    again on each new connection."""
    if sentinel["sentinels"]:
        if not sentinel["master"]:
            raise InvalidValue("sentinels need sentinel_master, the monitored master's name")
        timeouts = {k: options[k] for k in ("socket_timeout", "socket_connect_timeout")}
        manager = Sentinel(list(sentinel["sentinels"]), sentinel_kwargs=timeouts, **timeouts)
        return manager.master_for(
            sentinel["master"], username=username, password=password, db=where["db"], **options
        )
    if where["url"] is not None:
        return redis.Redis.from_url(where["url"], **options)
    if where["host"] is not None:
        return redis.Redis(
            host=where["host"], port=where["port"] or 6379, username=username,
            password=password, db=where["db"], ssl=where["ssl"], **options,
        )  # fmt: skip
    return redis.Redis.from_url(DEFAULT_URL, **options)


def cluster_client(node: redis.Redis, db: int) -> RedisCluster:
    """A Redis Cluster client that starts from the node ``node`` reaches, with its
    credentials and timeouts (the library's own retry rules, as for one server)."""
    if db != 0:
        raise InvalidValue(f"Redis Cluster has database 0 only, not {db}")
    kwargs = node.connection_pool.connection_kwargs
    node.close()
    options = {
        name: kwargs[name]
        for name in ("username", "password", "socket_timeout", "socket_connect_timeout")
        if kwargs.get(name) is not None
    }
    ssl = issubclass(node.connection_pool.connection_class, redis.SSLConnection)
    return RedisCluster(
        host=kwargs.get("host", "localhost"), port=kwargs.get("port", 6379), ssl=ssl,
        retry=default_retry(), health_check_interval=30, **options,
    )  # fmt: skip


def hello_field(reply: Any, name: bytes) -> Any:
    """A field of HELLO's reply (a flat list for RESP2, a dict for RESP3)."""
    if isinstance(reply, dict):
        return reply.get(name, reply.get(name.decode()))
    fields = dict(zip(reply[::2], reply[1::2], strict=True))
    return fields.get(name)


def policy_of(reply: Mapping[Any, Any]) -> str:
    """The policy in a ``CONFIG GET maxmemory-policy`` answer."""
    policy = reply.get("maxmemory-policy", reply.get(b"maxmemory-policy", ""))
    return policy.decode() if isinstance(policy, bytes) else policy


def mock_client() -> fakeredis.FakeRedis:
    """A client of this process's in-process fake Redis server."""
    import fakeredis  # only when the mock is chosen

    return fakeredis.FakeRedis(server=mock_server())


def describe(client: redis.Redis | RedisCluster) -> str:
    """Where a real client connects, without credentials (for messages)."""
    if isinstance(client, RedisCluster):
        node = client.get_default_node()
        return f"cluster {node.host}:{node.port}" if node else "cluster"
    pool = client.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        return f"sentinel master {pool.service_name}"
    kwargs = pool.connection_kwargs
    if "path" in kwargs:
        return f"unix:{kwargs['path']}"
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


def probe(client: redis.Redis, timeout: float, address: str) -> bool:
    """Check that the server answers; True when it is a node of a Redis Cluster.

    The client's own timeouts and retries suit steady work, not a first contact: a
    server that accepts but never answers would hold the caller for many seconds. So the
    first PING goes through a one-off connection with one short timeout."""
    pool = client.connection_pool
    options = {**pool.connection_kwargs, "socket_timeout": timeout, "retry": None}
    options["socket_connect_timeout"] = timeout
    connection = pool.connection_class(**options)
    try:
        connection.connect()
        connection.send_command("PING")
        connection.read_response()
        # HELLO (which every user may send) says the server's mode.
        connection.send_command("HELLO", 2)
        return hello_field(connection.read_response(), b"mode") == b"cluster"
    except (redis.RedisError, OSError) as exc:
        unreachable = not isinstance(exc, redis.AuthenticationError | redis.ResponseError)
        raise MemoryConnectionError(
            f"cannot reach Redis at {address}: {str(exc).rstrip('.')}. Start the server, "
            'fix REDIS_URL, or set REDIS_URL="" to use the in-process mock on purpose.',
            unreachable=unreachable,
        ) from exc
    finally:
        connection.disconnect()


def eviction_problem(client: redis.Redis | RedisCluster, address: str) -> str | None:
    """``RedisConnection.eviction_problem``: raises ``EvictionUnknown`` when CONFIG is
    refused, and redis-py's errors when the server does not answer."""
    try:
        if isinstance(client, RedisCluster):
            replies = client.config_get("maxmemory-policy", target_nodes=RedisCluster.PRIMARIES)
            # One master's problem is the cluster's: report the first.
            evicting = [r for r in replies.values() if policy_of(r).startswith("allkeys-")]
            reply = evicting[0] if evicting else {}
        else:
            reply = client.config_get("maxmemory-policy")
    except redis.ResponseError as exc:
        raise EvictionUnknown(
            f"could not check the maxmemory-policy of Redis at {address} "
            f"(CONFIG GET refused: {exc}); make sure it is noeviction or volatile-*"
        ) from None
    policy = policy_of(reply)
    if not policy.startswith("allkeys-"):
        return None
    return (
        f"Redis at {address} has maxmemory-policy {policy}: under memory pressure it "
        "evicts queued tasks and staged patterns without an error, or half of a task's "
        "keys. Use noeviction or volatile-*."
    )


def warn_of_eviction(problem: Any) -> None:
    """Log what ``problem()`` (``RedisConnection.eviction_problem``) finds, once per
    process when the policy cannot be read."""
    global _eviction_unknown_logged
    try:
        found = problem()
    except EvictionUnknown as exc:
        if not _eviction_unknown_logged:  # once per process: it stays true
            _eviction_unknown_logged = True
            logger.warning("%s", exc)
        return
    if found:
        logger.warning("%s", found)
