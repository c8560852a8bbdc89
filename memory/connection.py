"""The connection to Redis (or to the in-process mock), and what every operation shares:
the key schema, the scripts, the event stream, the server's clock and error translation.

It knows nothing of the kinds of data built on it (tasks, patterns, signals...): they
import it, never the other way round.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool

from .codec import DEFAULT_MAX_VALUE_BYTES, ttl_ms
from .events import Event, event_fields, join_cursor, split_cursor
from .exceptions import (
    AccessDenied,
    EvictionUnknown,
    InvalidValue,
    MemoryConnectionError,
    ShortTermMemoryError,
)
from .keys import KeySchema
from .scripts import CLUSTER_LIBRARY, LIBRARY, SCRIPT_ERRORS, FunctionLibrary, LuaScript
from .tiers import Caller
from .ttl import TTLStrategy

if TYPE_CHECKING:
    import fakeredis

logger = logging.getLogger("memory")
_eviction_unknown_logged = False

DEFAULT_URL = "redis://localhost:6379/0"
MAX_BLOCK_MS = 60_000
DEFAULT_SOCKET_TIMEOUT = 5.0
# Under Cluster, the event stream's shards are on several masters, which no one
# blocking read can wait on: a blocked reader looks at them this often instead.
SHARD_POLL_S = 0.025

_mock_lock = threading.Lock()
_mock_server: fakeredis.FakeServer | None = None

P = ParamSpec("P")
R = TypeVar("R")


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


def _real_client(
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


def _cluster_client(node: redis.Redis, db: int) -> RedisCluster:
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


def queue_time(pipe: Any) -> None:
    """Queue ``TIME`` on a pipeline (a Cluster pipeline refuses ``pipe.time()``, and
    ``MGET``: send that as ``execute_command`` too)."""
    pipe.execute_command("TIME")


def time_ms(reply: Sequence[Any]) -> int:
    """Milliseconds from the server's answer to ``TIME`` (seconds, microseconds), as a
    pipeline returns it."""
    seconds, micros = reply
    return int(seconds) * 1000 + int(micros) // 1000


class RedisConnection:
    """One Redis server, or the in-process mock, with the library's keys and scripts.

    Pick the backend with exactly one of ``url``, ``host``/``port``/``password``,
    ``sentinels`` with ``sentinel_master`` (and ``username``/``password`` for the
    master), ``client`` or ``use_mock=True``; with none, ``redis://localhost:6379/0``.
    A real server that does not answer raises ``MemoryConnectionError`` at once: the
    library never falls back to the mock on its own (``get_redis_memory`` decides that).

    Through Sentinel, every connection asks the sentinels for the current master, so
    after a failover the next call reaches the new one (a call in flight when the
    master died fails with ``MemoryConnectionError``, as any lost connection does).
    """

    def __init__(
        self,
        host: str | None = None,
        port: int | None = None,
        password: str | None = None,
        *,
        url: str | None = None,
        use_mock: bool = False,
        client: redis.Redis | None = None,
        db: int = 0,
        ssl: bool = False,
        prefix: str = "empathy:",
        ttls: Mapping[TTLStrategy, float] | None = None,
        max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
        events_maxlen: int = 10_000,
        socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
        connect_timeout: float = 1.0,
        retry: Retry | None = None,
        sentinels: Sequence[tuple[str, int]] | None = None,
        sentinel_master: str | None = None,
        username: str | None = None,
        wait_replicas: int = 0,
        wait_timeout: float = 1.0,
    ) -> None:
        if max_value_bytes <= 0:
            raise InvalidValue("max_value_bytes must be positive")
        if events_maxlen <= 0:
            raise InvalidValue("events_maxlen must be positive")
        self.keys = KeySchema(prefix)
        # Writes (scripts) wait for this many replicas to have them (WAIT), so that a
        # write acknowledged here survives a failover to one of them.
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = ttl_ms(wait_timeout, "wait_timeout")
        self.max_value_bytes = max_value_bytes
        self.events_maxlen = events_maxlen
        self._ttl_ms = {kind: kind.value * 1000 for kind in TTLStrategy}
        for kind, seconds in (ttls or {}).items():
            self._ttl_ms[TTLStrategy(kind)] = ttl_ms(seconds, f"ttl for {kind.name}")
        self._reader: redis.ConnectionPool | None = None

        if client is not None:
            self.client = client
        elif use_mock:
            import fakeredis  # only when the mock is chosen

            self.client = fakeredis.FakeRedis(server=mock_server())
        else:
            options: dict[str, Any] = {
                "socket_timeout": socket_timeout,
                "socket_connect_timeout": connect_timeout,
                "retry": retry or default_retry(),
                "health_check_interval": 30,
            }
            where = {"url": url, "host": host, "port": port, "db": db, "ssl": ssl}
            sentinel = {"sentinels": sentinels, "master": sentinel_master}
            self.client = _real_client(where, sentinel, username, password, options)
        self.mode = "mock" if type(self.client).__module__.startswith("fakeredis") else "redis"
        probed = self.mode == "redis" and not isinstance(self.client, RedisCluster)
        if probed and self._check_server(connect_timeout) and sentinels is None:
            self.client = _cluster_client(self.client, db)
        # Redis Cluster: found at the address given, or passed in as the client.
        self.cluster = isinstance(self.client, RedisCluster)
        if self.cluster:
            self.mode = "cluster"
        if self.cluster and wait_replicas:
            self.client.close()
            raise InvalidValue("wait_replicas is for one master and its replicas, not Cluster")
        self.library: FunctionLibrary = CLUSTER_LIBRARY if self.cluster else LIBRARY
        self.event_streams = self.keys.event_shards if self.cluster else (self.keys.events,)
        if probed:
            self._warn_of_eviction()

    # connection -------------------------------------------------------------------

    @property
    def address(self) -> str:
        """Where this memory lives, without credentials (for messages and the dashboard)."""
        if self.mode == "mock":
            return "in-process mock"
        if isinstance(self.client, RedisCluster):
            node = self.client.get_default_node()
            return f"cluster {node.host}:{node.port}" if node else "cluster"
        pool = self.client.connection_pool
        if isinstance(pool, SentinelConnectionPool):
            return f"sentinel master {pool.service_name}"
        kwargs = pool.connection_kwargs
        if "path" in kwargs:
            return f"unix:{kwargs['path']}"
        return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"

    def _check_server(self, timeout: float) -> bool:
        """Check that the server answers; True when it is a node of a Redis Cluster."""
        # The client's own timeouts and retries suit steady work, not a first contact: a
        # server that accepts but never answers would hold the caller for many seconds.
        # So the first PING goes through a one-off connection with one short timeout.
        pool = self.client.connection_pool
        probe_options = {**pool.connection_kwargs, "socket_timeout": timeout, "retry": None}
        probe_options["socket_connect_timeout"] = timeout
        probe = pool.connection_class(**probe_options)
        try:
            probe.connect()
            probe.send_command("PING")
            probe.read_response()
            # HELLO (which every user may send) says the server's mode.
            probe.send_command("HELLO", 2)
            hello = probe.read_response()
            cluster = _hello_field(hello, b"mode") == b"cluster"
        except (redis.RedisError, OSError) as exc:
            unreachable = not isinstance(exc, redis.AuthenticationError | redis.ResponseError)
            raise MemoryConnectionError(
                f"cannot reach Redis at {self.address}: {str(exc).rstrip('.')}. Start the "
                'server, fix REDIS_URL, or set REDIS_URL="" to use the in-process mock on '
                "purpose.",
                unreachable=unreachable,
            ) from exc
        finally:
            probe.disconnect()
        return cluster

    def _warn_of_eviction(self) -> None:
        try:
            problem = self.eviction_problem()
        except EvictionUnknown as exc:
            global _eviction_unknown_logged
            if not _eviction_unknown_logged:  # once per process: it stays true
                _eviction_unknown_logged = True
                logger.warning("%s", exc)
            return
        if problem:
            logger.warning("%s", problem)

    def eviction_problem(self) -> str | None:
        """What is wrong with the server's ``maxmemory-policy``, or None. An
        ``allkeys-*`` policy evicts queued tasks and staged patterns, and half of a
        task's keys (its queue entry but not its state) as easily as all of them. Raises
        ``EvictionUnknown`` when the server refuses ``CONFIG``, as managed ones often do,
        and ``MemoryConnectionError`` when it does not answer. Under Cluster, every
        master's policy counts."""
        try:
            if self.cluster:
                replies = self.client.config_get(
                    "maxmemory-policy", target_nodes=RedisCluster.PRIMARIES
                )
                # One master's problem is the cluster's: report the first.
                replies = {
                    node: r for node, r in replies.items() if _policy(r).startswith("allkeys-")
                }
                reply = next(iter(replies.values()), {})
            else:
                reply = self.client.config_get("maxmemory-policy")
        except redis.ResponseError as exc:
            raise EvictionUnknown(
                f"could not check the maxmemory-policy of Redis at {self.address} "
                f"(CONFIG GET refused: {exc}); make sure it is noeviction or volatile-*"
            ) from None
        except redis.RedisError as exc:
            raise self.connection_error(exc) from exc
        policy = _policy(reply)
        if not policy.startswith("allkeys-"):
            return None
        return (
            f"Redis at {self.address} has maxmemory-policy {policy}: under memory pressure "
            "it evicts queued tasks and staged patterns without an error, or half of a "
            "task's keys. Use noeviction or volatile-*."
        )

    def ping(self) -> bool:
        """True when the backend answers."""
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    def connection_error(self, exc: redis.RedisError) -> ShortTermMemoryError:
        """The library's error for a Redis failure: ``AccessDenied`` when the Redis
        user's ACL refused the command (see ``memory.acl``), else
        ``MemoryConnectionError``."""
        if isinstance(exc, redis.exceptions.NoPermissionError):
            return AccessDenied(f"Redis at {self.address} refused it for this Redis user: {exc}")
        return MemoryConnectionError(f"Redis at {self.address} failed: {exc}")

    def ttl_ms(self, kind: TTLStrategy) -> int:
        """This memory's TTL for ``kind``, in milliseconds (tests may shorten them)."""
        return self._ttl_ms[kind]

    def server_time_ms(self) -> int:
        """The server's clock, in milliseconds."""
        try:
            return time_ms(self.client.time())
        except redis.RedisError as exc:
            raise self.connection_error(exc) from exc

    # scripts ----------------------------------------------------------------------

    def run_script(
        self,
        script: LuaScript,
        caller: Caller,
        keys: Mapping[str, str | Sequence[str]],
        args: Mapping[str, Any],
    ) -> Any:
        """Run ``script`` in one atomic round trip as ``caller``, with its keys and
        arguments by the names it declares (see ``memory.scripts``)."""
        call = self._call(script, caller, keys, args)
        try:
            try:
                reply = self._fcall(call)
            except redis.ConnectionError:
                # The connection failed (not a timeout): the script ran or it did not.
                # Only a script that answers the same when run twice is sent again.
                if not script.retry:
                    raise
                reply = self._fcall(call)
        except redis.exceptions.NoPermissionError as exc:
            raise self.connection_error(exc) from None
        except redis.ResponseError as exc:
            raise script_error(exc) from None
        except redis.RedisError as exc:
            raise self.connection_error(exc) from exc
        return self._answer(reply, call)

    def run_scripts(
        self, runs: Sequence[tuple[LuaScript, Caller, Mapping[str, Any], Mapping[str, Any]]]
    ) -> list[Any]:
        """Run several scripts (each as ``run_script`` takes it) in one round trip, and
        return their replies. On one server they run in one MULTI/EXEC, so all of them
        or none; under Cluster each runs on its own master, atomic alone. Sent once."""
        calls = [self._call(*run) for run in runs]
        try:
            replies = self._exec(calls)
            missing = [i for i, r in enumerate(replies) if isinstance(r, redis.ResponseError)
                       and _needs_library(r)]  # fmt: skip
            if missing:  # none of them ran: load the library, then run them
                self.load_library()
                again = self._exec([calls[i] for i in missing])
                for i, reply in zip(missing, again, strict=True):
                    replies[i] = reply
        except redis.exceptions.NoPermissionError as exc:
            raise self.connection_error(exc) from None
        except redis.RedisError as exc:
            raise self.connection_error(exc) from exc
        for reply in replies:
            if isinstance(reply, redis.exceptions.NoPermissionError):
                raise self.connection_error(reply) from None
            if isinstance(reply, redis.ResponseError):
                raise script_error(reply) from None
        return [self._answer(reply, call) for reply, call in zip(replies, calls, strict=True)]

    def _exec(self, calls: Sequence[tuple[Any, ...]]) -> list[Any]:
        with self.client.pipeline(transaction=False) as pipe:
            if self.cluster:
                for call in calls:
                    pipe.execute_command(*call)
                return pipe.execute(raise_on_error=False)
            # MULTI/EXEC by hand, so that WAIT (which counts this connection's writes)
            # can follow in the same round trip.
            pipe.execute_command("MULTI")
            for call in calls:
                pipe.execute_command(*call)
            pipe.execute_command("EXEC")
            if self.wait_replicas:
                pipe.execute_command("WAIT", self.wait_replicas, self.wait_timeout_ms)
            answers = pipe.execute(raise_on_error=False)
        replies = answers[len(calls) + 1]
        if isinstance(replies, Exception):  # EXECABORT: say why a call was refused
            refused = [a for a in answers[1 : len(calls) + 1] if isinstance(a, Exception)]
            raise refused[0] if refused else replies
        if self.wait_replicas:
            self._check_replicas(answers[-1])
        return list(replies)

    def _call(
        self,
        script: LuaScript,
        caller: Caller,
        keys: Mapping[str, str | Sequence[str]],
        args: Mapping[str, Any],
    ) -> tuple[Any, ...]:
        """The ``FCALL`` that runs ``script`` (see ``LuaScript.body`` for the layout)."""
        own, elsewhere, rest = script.split_keys(keys)
        function = self.library.function(script)
        common = (self.events_maxlen, caller.user_id, caller.tier_name)
        arg_values = script.arg_values(args)
        if self.cluster:
            # Only the script's own keys are keys: the others go to the outbox's call.
            return ("FCALL", function, len(own), *own, *common, *elsewhere, *arg_values, *rest)
        keys_sent = (self.keys.events, *elsewhere, *own, *rest)
        return ("FCALL", function, len(keys_sent), *keys_sent, *common, *arg_values)

    def _answer(self, reply: Any, call: tuple[Any, ...]) -> Any:
        """A script's reply; under Cluster, once its outbox is sent (it ran in the slot
        of its first key, ``call[3]``)."""
        if not self.cluster:
            return reply
        reply, outbox = reply
        if outbox:
            self._deliver(outbox, call[3])
        return reply

    def _deliver(self, outbox: Sequence[Sequence[Any]], near_key: str) -> None:
        """Under Cluster, send the writes a change made outside its hash slot (its events
        and index entries), which ``near_key``'s slot ran. The change is made: if they
        are lost, the event (a hint to readers, who refresh anyway) or the index entry
        (which the group's next change writes again) is missing, and that is logged."""
        stream = self.keys.event_shards[self.client.keyslot(near_key) % len(self.event_streams)]
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for command in outbox:
                    pipe.execute_command(*self._complete(command, stream))
                answers = pipe.execute(raise_on_error=False)
            failed = [answer for answer in answers if isinstance(answer, Exception)]
            lost = str(len(failed))
        except redis.RedisError as exc:
            failed, lost = [exc], "some or all"
        if failed:
            logger.warning(
                "Redis at %s: a change was made, but %s of its %d writes elsewhere "
                "(events and index entries) failed: %s", self.address, lost, len(outbox),
                failed[0],
            )  # fmt: skip

    def _complete(self, command: Sequence[Any], stream: str) -> Sequence[Any]:
        """An outbox's command as sent: an event (``XADD`` and its fields) gets its
        stream and the stream's bound."""
        name = command[0].decode() if isinstance(command[0], bytes) else command[0]
        if name == "XADD":
            return (name, stream, "MAXLEN", "~", self.events_maxlen, "*", *command[1:])
        return (name, *command[1:])

    def follow(
        self, pipe: Any, near_key: str, commands: Sequence[Sequence[Any]]
    ) -> Callable[[], None]:
        """Queue ``commands`` on the MULTI/EXEC pipeline ``pipe``, beside the change in
        ``near_key``'s slot they go with: writes elsewhere, and events (``event``). Call
        what this returns after the pipeline ran: under Cluster, it sends them then."""
        if self.cluster:
            return lambda: self._deliver(commands, near_key)
        for command in commands:
            pipe.execute_command(*self._complete(command, self.keys.events))
        return lambda: None

    @staticmethod
    def event(kind: str, caller: Caller, **ids: object) -> tuple[str, ...]:
        """The command that records event ``kind``, for ``follow``."""
        fields = event_fields(kind, caller.user_id, caller.tier_name, **ids)
        return ("XADD", *(part for item in fields.items() for part in item))

    def _fcall(self, call: tuple[Any, ...]) -> Any:
        try:
            return self._send(call)
        except redis.ResponseError as exc:
            if not _needs_library(exc):
                raise
        # The first call, or Redis lost its functions (a restart without persistence,
        # FUNCTION FLUSH): load the library, then call again. A Redis without functions
        # fails here, with an error that says so.
        self.load_library()
        return self._send(call)

    def _send(self, call: tuple[Any, ...]) -> Any:
        if not self.wait_replicas:
            return self.client.execute_command(*call)
        # WAIT counts the writes of its own connection: one pipeline, one connection.
        with self.client.pipeline(transaction=False) as pipe:
            pipe.execute_command(*call)
            pipe.execute_command("WAIT", self.wait_replicas, self.wait_timeout_ms)
            result, replicas = pipe.execute(raise_on_error=False)
        if isinstance(result, Exception):
            raise result  # as the call alone would have raised it
        self._check_replicas(replicas)
        return result

    def _check_replicas(self, replicas: int) -> None:
        if replicas < self.wait_replicas:
            raise MemoryConnectionError(
                f"the write reached {replicas} of {self.wait_replicas} replicas within "
                f"{self.wait_timeout_ms} ms: it is on the master, but a failover may lose it",
                unreachable=False,
            )

    def load_library(self) -> None:
        """Load the library's functions into Redis (``FUNCTION LOAD REPLACE``)."""
        try:
            self.client.execute_command("FUNCTION", "LOAD", "REPLACE", self.library.source)
        except redis.ResponseError as exc:
            why = "the library needs Redis 7.0 or later" if _needs_library(exc) else "a bug"
            raise MemoryConnectionError(
                f"Redis at {self.address} refused the library's functions ({exc}): {why}",
                unreachable=False,
            ) from None
        except redis.RedisError as exc:
            raise self.connection_error(exc) from exc

    # events -----------------------------------------------------------------------

    def latest_event_id(self) -> str:
        """The cursor of the newest event (``"0-0"`` for none); tail the stream from
        here."""
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for stream in self.event_streams:
                    pipe.xrevrange(stream, count=1)
                newest = pipe.execute()
        except redis.RedisError as exc:
            raise self.connection_error(exc) from exc
        ids = [entries[0][0].decode() if entries else "0-0" for entries in newest]
        return join_cursor(ids)

    def bridge_cursor(self) -> str | None:
        """The id of the last event the dashboard's bridge announced, if it saved one."""
        try:
            saved = self.client.get(self.keys.bridge_cursor)
        except redis.RedisError as exc:
            raise self.connection_error(exc) from exc
        return saved.decode() if saved else None

    def read_events(
        self, after: str = "0-0", *, block_ms: int | None = None, count: int = 100
    ) -> list[Event]:
        """Events newer than ``after``, oldest first, waiting up to ``block_ms`` for one.

        Pass the cursor of the last event seen (``Event.cursor``); never ``$``, which
        would skip whatever arrived while the caller was away (use ``latest_event_id``
        once to start).
        """
        if block_ms is not None and not 0 <= block_ms <= MAX_BLOCK_MS:
            raise InvalidValue(f"block_ms must be from 0 to {MAX_BLOCK_MS}")
        if self.cluster:
            return self._read_shards(after, count, block_ms or 0)
        try:
            if block_ms is None or self.mode == "mock":
                answer = self.client.xread({self.keys.events: after}, count=count, block=block_ms)
            else:
                answer = self._read_blocking(after, count, block_ms)
        except redis.RedisError as exc:
            raise self.connection_error(exc) from exc
        return [
            Event.from_entry(eid, fields)
            for _, entries in _streams(answer)
            for eid, fields in entries
        ]

    def _read_shards(self, after: str, count: int, block_ms: int) -> list[Event]:
        """``read_events`` of a sharded stream: the oldest ``count`` of the shards' new
        entries, each with the cursor after it, looking again every ``SHARD_POLL_S``
        for up to ``block_ms``."""
        positions = split_cursor(after, len(self.event_streams))
        deadline = time.monotonic() + block_ms / 1000
        while True:
            try:
                with self.client.pipeline(transaction=False) as pipe:
                    for stream, position in zip(self.event_streams, positions, strict=True):
                        pipe.xread({stream: position}, count=count)
                    answers = pipe.execute()
            except redis.RedisError as exc:
                raise self.connection_error(exc) from exc
            entries = [
                (_entry_order(eid), shard, eid.decode(), fields)
                for shard, answer in enumerate(answers)
                for _, stream_entries in _streams(answer)
                for eid, fields in stream_entries
            ]
            left = deadline - time.monotonic()
            if entries or left <= 0:
                break
            time.sleep(min(SHARD_POLL_S, left))
        events = []
        for _, shard, eid, fields in sorted(entries)[:count]:
            positions[shard] = eid
            event = Event.from_entry(eid, fields)
            events.append(dataclasses.replace(event, cursor=join_cursor(positions)))
        return events

    def _read_blocking(self, after: str, count: int, block_ms: int) -> Any:
        # XREAD BLOCK n needs a read timeout longer than n, and no longer than n plus the
        # usual timeout, or a silent connection would hold the reader for the longest
        # block there is. So blocking reads have a connection of their own, and each
        # read waits block_ms + socket_timeout for its reply.
        if self._reader is None:
            pool = self.client.connection_pool
            kwargs = {**pool.connection_kwargs, "health_check_interval": 0}
            self._reader = redis.ConnectionPool(connection_class=pool.connection_class, **kwargs)
        timeout = self._reader.connection_kwargs.get("socket_timeout") or DEFAULT_SOCKET_TIMEOUT
        connection = self._reader.get_connection()
        try:
            connection.send_command(
                "XREAD", "COUNT", count, "BLOCK", block_ms, "STREAMS", self.keys.events, after
            )
            raw = connection.read_response(timeout=block_ms / 1000 + timeout)
        finally:
            self._reader.release(connection)
        return self.client.response_callbacks["XREAD"](raw) if raw else raw

    def close(self) -> None:
        self.client.close()
        if self._reader is not None:
            self._reader.disconnect()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.mode} {self.address} prefix={self.keys.prefix!r}>"


def _streams(answer: Any) -> list[tuple[Any, list[Any]]]:
    """An XREAD answer's (stream, entries) pairs: redis-py answers a list for RESP2
    and a dict for RESP3."""
    if not answer:
        return []
    return list(answer.items()) if isinstance(answer, dict) else list(answer)


def _policy(reply: Mapping[Any, Any]) -> str:
    """The policy in a ``CONFIG GET maxmemory-policy`` answer."""
    policy = reply.get("maxmemory-policy", reply.get(b"maxmemory-policy", ""))
    return policy.decode() if isinstance(policy, bytes) else policy


def _hello_field(reply: Any, name: bytes) -> Any:
    """A field of HELLO's reply (a flat list for RESP2, a dict for RESP3)."""
    if isinstance(reply, dict):
        return reply.get(name, reply.get(name.decode()))
    fields = dict(zip(reply[::2], reply[1::2], strict=True))
    return fields.get(name)


def _entry_order(entry_id: bytes) -> tuple[int, int]:
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq)


def _needs_library(exc: redis.ResponseError) -> bool:
    """True when Redis lacks the library (or has no functions at all)."""
    message = str(exc)
    return message.startswith("Function not found") or message.startswith("unknown command")


def script_error(exc: redis.ResponseError) -> Exception:
    code, _, message = str(exc).partition(" ")
    kind = SCRIPT_ERRORS.get(code)
    return kind(message) if kind else exc


def redis_errors(function: Callable[P, R]) -> Callable[P, R]:
    """Let no raw Redis error out of a read: it becomes ``MemoryConnectionError``,
    naming the server. A read whose connection failed (not timed out) is tried once
    more, on a new connection. The first argument is the memory, or an object with a
    ``memory``."""
    first = next(iter(inspect.signature(function).parameters))

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            try:
                return function(*args, **kwargs)
            except redis.ConnectionError:
                pass
            return function(*args, **kwargs)
        except redis.RedisError as exc:
            owner = args[0] if args else kwargs[first]
            memory = owner if isinstance(owner, RedisConnection) else owner.memory  # type: ignore[attr-defined]
            raise memory.connection_error(exc) from exc

    return wrapper
