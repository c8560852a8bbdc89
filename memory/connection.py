"""The connection to Redis (or to the in-process mock), and what every operation shares:
the key schema, the scripts, the event stream, the server's clock and error translation.

It knows nothing of the kinds of data built on it (tasks, patterns, signals...): they
import it, never the other way round.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar

import redis
from redis.cluster import RedisCluster
from redis.retry import Retry

from . import cluster
from .clients import (
    DEFAULT_SOCKET_TIMEOUT,
    DEFAULT_URL,
    cluster_client,
    default_retry,
    describe,
    eviction_problem,
    mock_client,
    mock_server,
    probe,
    real_client,
    warn_of_eviction,
)
from .codec import DEFAULT_MAX_VALUE_BYTES, ttl_ms
from .events import Event, event_fields, join_cursor
from .exceptions import AccessDenied, InvalidValue, MemoryConnectionError, ShortTermMemoryError
from .keys import PATTERN_SHARDS, KeySchema
from .scripts import CLUSTER_LIBRARY, LIBRARY, SCRIPT_ERRORS, FunctionLibrary, LuaScript
from .tiers import Caller
from .ttl import TTLStrategy

__all__ = ["DEFAULT_SOCKET_TIMEOUT", "DEFAULT_URL", "RedisConnection", "mock_server"]

logger = logging.getLogger("memory")

MAX_BLOCK_MS = 60_000

P = ParamSpec("P")
R = TypeVar("R")


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
        self._ttl_ms = _ttls_ms(ttls or {})
        self._reader: redis.ConnectionPool | None = None

        if client is None and not use_mock:
            options: dict[str, Any] = {
                "socket_timeout": socket_timeout,
                "socket_connect_timeout": connect_timeout,
                "retry": retry or default_retry(),
                "health_check_interval": 30,
            }
            where = {"url": url, "host": host, "port": port, "db": db, "ssl": ssl}
            sentinel = {"sentinels": sentinels, "master": sentinel_master}
            client = real_client(where, sentinel, username, password, options)
        self._use(client if client is not None else mock_client(), connect_timeout,
                  may_be_cluster=sentinels is None, db=db)  # fmt: skip

    def _use(self, client: Any, timeout: float, *, may_be_cluster: bool, db: int) -> None:
        """Talk through ``client``: a real server's is checked first (within
        ``timeout``), and becomes a Redis Cluster client when the server is a node of
        one."""
        self.client = client
        self.mode = "mock" if type(client).__module__.startswith("fakeredis") else "redis"
        probed = self.mode == "redis" and not isinstance(client, RedisCluster)
        if probed and self._check_server(timeout) and may_be_cluster:
            self.client = cluster_client(client, db)
        # Redis Cluster: found at the address given, or passed in as the client.
        self.cluster = isinstance(self.client, RedisCluster)
        if self.cluster:
            self.mode = "cluster"
            self.keys = KeySchema(self.keys.prefix, PATTERN_SHARDS)
        if self.cluster and self.wait_replicas:
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
        return "in-process mock" if self.mode == "mock" else describe(self.client)

    def _check_server(self, timeout: float) -> bool:
        """Check that the server answers; True when it is a node of a Redis Cluster."""
        return probe(self.client, timeout, self.address)

    def _warn_of_eviction(self) -> None:
        warn_of_eviction(self.eviction_problem)

    def eviction_problem(self) -> str | None:
        """What is wrong with the server's ``maxmemory-policy``, or None. An
        ``allkeys-*`` policy evicts queued tasks and staged patterns, and half of a
        task's keys (its queue entry but not its state) as easily as all of them. Raises
        ``EvictionUnknown`` when the server refuses ``CONFIG``, as managed ones often do,
        and ``MemoryConnectionError`` when it does not answer. Under Cluster, every
        master's policy counts."""
        try:
            return eviction_problem(self.client, self.address)
        except redis.RedisError as exc:
            raise self.connection_error(exc) from exc

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
        return self._answer(reply, call) if self.cluster else reply

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
        command, function = "FCALL_RO" if script.reads else "FCALL", self.library.function(script)
        common = (self.events_maxlen, caller.user_id, caller.tier_name)
        if self.cluster:
            # Only the script's own keys are keys: the others go to the outbox's call.
            own, elsewhere, rest = script.split_keys(keys)
            arg_values = script.arg_values(args)
            return (command, function, len(own), *own, *common, *elsewhere, *arg_values, *rest)
        keys_sent = script.server_keys(keys)
        return (command, function, len(keys_sent) + 1, self.keys.events, *keys_sent, *common,
                *script.arg_values(args))  # fmt: skip

    def _answer(self, reply: Any, call: tuple[Any, ...]) -> Any:
        """A script's reply; under Cluster, once its outbox is sent (it ran in the slot
        of its first key, ``call[3]``)."""
        if not self.cluster:
            return reply
        reply, outbox = reply
        if outbox:
            cluster.deliver(self, outbox, call[3])
        return reply

    def follow(
        self, pipe: Any, near_key: str, commands: Sequence[Sequence[Any]]
    ) -> Callable[[], None]:
        """Queue ``commands`` on the MULTI/EXEC pipeline ``pipe``, beside the change in
        ``near_key``'s slot they go with: writes elsewhere, and events (``event``). Call
        what this returns after the pipeline ran: under Cluster, it sends them then."""
        if self.cluster:
            return lambda: cluster.deliver(self, commands, near_key)
        for command in commands:
            pipe.execute_command(*cluster.complete(self, command, self.keys.events))
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
            return cluster.read_shards(self, after, count, block_ms or 0)
        try:
            if block_ms is None or self.mode == "mock":
                answer = self.client.xread({self.keys.events: after}, count=count, block=block_ms)
            else:
                answer = self._read_blocking(after, count, block_ms)
        except redis.RedisError as exc:
            raise self.connection_error(exc) from exc
        return [
            Event.from_entry(eid, fields)
            for _, entries in cluster.streams(answer)
            for eid, fields in entries
        ]

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


def _ttls_ms(ttls: Mapping[TTLStrategy, float]) -> dict[TTLStrategy, int]:
    """Each kind's TTL in milliseconds: its default, or the one in ``ttls``."""
    chosen = {kind: kind.value * 1000 for kind in TTLStrategy}
    for kind, seconds in ttls.items():
        chosen[TTLStrategy(kind)] = ttl_ms(seconds, f"ttl for {kind.name}")
    return chosen


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
