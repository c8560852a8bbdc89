"""The connection to Redis (or to the in-process mock), and what every operation shares:
the key schema, the scripts, the event stream, the server's clock and error translation.

It knows nothing of the kinds of data built on it (tasks, patterns, signals...): they
import it, never the other way round.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from .codec import DEFAULT_MAX_VALUE_BYTES, ttl_ms
from .events import Event, event_fields
from .exceptions import InvalidValue, MemoryConnectionError
from .keys import KeySchema
from .scripts import LIBRARY, SCRIPT_ERRORS, LuaScript
from .tiers import Caller
from .ttl import TTLStrategy

if TYPE_CHECKING:
    import fakeredis

logger = logging.getLogger("memory")

DEFAULT_URL = "redis://localhost:6379/0"
MAX_BLOCK_MS = 60_000

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
    """One quick retry on connection errors; writes are idempotent or fenced."""
    return Retry(ExponentialBackoff(cap=0.2, base=0.02), retries=1)


def time_ms(reply: Sequence[Any]) -> int:
    """Milliseconds from the server's answer to ``TIME`` (seconds, microseconds), as a
    pipeline returns it."""
    seconds, micros = reply
    return int(seconds) * 1000 + int(micros) // 1000


class RedisConnection:
    """One Redis server, or the in-process mock, with the library's keys and scripts.

    Pick the backend with exactly one of ``url``, ``host``/``port``/``password``,
    ``client`` or ``use_mock=True``; with none, ``redis://localhost:6379/0``. A real
    server that does not answer raises ``MemoryConnectionError`` at once: the library
    never falls back to the mock on its own (``get_redis_memory`` decides that).
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
        socket_timeout: float = 5.0,
        connect_timeout: float = 1.0,
        retry: Retry | None = None,
    ) -> None:
        if max_value_bytes <= 0:
            raise InvalidValue("max_value_bytes must be positive")
        if events_maxlen <= 0:
            raise InvalidValue("events_maxlen must be positive")
        self.keys = KeySchema(prefix)
        self.max_value_bytes = max_value_bytes
        self.events_maxlen = events_maxlen
        self._ttl_ms = {kind: kind.value * 1000 for kind in TTLStrategy}
        for kind, seconds in (ttls or {}).items():
            self._ttl_ms[TTLStrategy(kind)] = ttl_ms(seconds, f"ttl for {kind.name}")
        self._reader: redis.Redis | None = None

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
            if url is not None:
                self.client = redis.Redis.from_url(url, **options)
            elif host is not None:
                self.client = redis.Redis(
                    host=host, port=port or 6379, password=password, db=db, ssl=ssl, **options
                )
            else:
                self.client = redis.Redis.from_url(DEFAULT_URL, **options)
        self.mode = "mock" if type(self.client).__module__.startswith("fakeredis") else "redis"
        if self.mode == "redis":
            self._check_server(connect_timeout)

    # connection -------------------------------------------------------------------

    @property
    def address(self) -> str:
        """Where this memory lives, without credentials (for messages and the dashboard)."""
        if self.mode == "mock":
            return "in-process mock"
        kwargs = self.client.connection_pool.connection_kwargs
        if "path" in kwargs:
            return f"unix:{kwargs['path']}"
        return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"

    def _check_server(self, timeout: float) -> None:
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
        try:
            policy = self.client.config_get("maxmemory-policy").get("maxmemory-policy", "")
        except redis.ResponseError:  # managed servers often disable CONFIG
            return
        policy = policy.decode() if isinstance(policy, bytes) else policy
        if policy.startswith("allkeys-"):
            logger.warning(
                "Redis at %s has maxmemory-policy %s: under memory pressure it evicts queued "
                "tasks and staged patterns without an error. Use noeviction or volatile-*.",
                self.address,
                policy,
            )

    def ping(self) -> bool:
        """True when the backend answers."""
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    def connection_error(self, exc: redis.RedisError) -> MemoryConnectionError:
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
        key_values = [self.keys.events, *script.key_values(keys)]
        arg_values = [self.events_maxlen, caller.user_id, caller.tier_name]
        arg_values += script.arg_values(args)
        call = ("FCALL", LIBRARY.function(script), len(key_values), *key_values, *arg_values)
        try:
            try:
                return self.client.execute_command(*call)
            except redis.ResponseError as exc:
                if not _needs_library(exc):
                    raise
            # The first call, or Redis lost its functions (a restart without
            # persistence, FUNCTION FLUSH): load the library, then call again. A Redis
            # without functions fails here, with an error that says so.
            self.load_library()
            return self.client.execute_command(*call)
        except redis.ResponseError as exc:
            raise script_error(exc) from None
        except redis.RedisError as exc:
            raise self.connection_error(exc) from exc

    def load_library(self) -> None:
        """Load the library's functions into Redis (``FUNCTION LOAD REPLACE``)."""
        try:
            self.client.execute_command("FUNCTION", "LOAD", "REPLACE", LIBRARY.source)
        except redis.ResponseError as exc:
            if not _needs_library(exc):
                raise
            raise MemoryConnectionError(
                f"Redis at {self.address} has no functions (FUNCTION LOAD, FCALL): "
                "the library needs Redis 7.0 or later",
                unreachable=False,
            ) from None

    # events -----------------------------------------------------------------------

    def append_event(self, pipe: Any, kind: str, caller: Caller, **ids: object) -> None:
        """Queue an event on a MULTI/EXEC pipeline, beside the change it records."""
        fields = event_fields(kind, caller.user_id, caller.tier_name, **ids)
        pipe.xadd(self.keys.events, fields, maxlen=self.events_maxlen, approximate=True)

    def latest_event_id(self) -> str:
        """The id of the newest event, or ``"0-0"``; tail the stream from here."""
        try:
            entries = self.client.xrevrange(self.keys.events, count=1)
        except redis.RedisError as exc:
            raise self.connection_error(exc) from exc
        return entries[0][0].decode() if entries else "0-0"

    def bridge_cursor(self) -> str | None:
        """The id of the last event the dashboard's bridge announced, if it saved one."""
        try:
            saved = self.client.get(self.keys.bridge_cursor)
        except redis.RedisError as exc:
            raise self.connection_error(exc) from exc
        return saved.decode() if saved else None

    def save_bridge_cursor(self, event_id: str) -> None:
        """Remember that the bridge has announced the events up to ``event_id``."""
        try:
            self.client.set(self.keys.bridge_cursor, event_id)
        except redis.RedisError as exc:
            raise self.connection_error(exc) from exc

    def read_events(
        self, after: str = "0-0", *, block_ms: int | None = None, count: int = 100
    ) -> list[Event]:
        """Events newer than ``after``, oldest first, waiting up to ``block_ms`` for one.

        Pass the id of the last event seen; never ``$``, which would skip whatever
        arrived while the caller was away (use ``latest_event_id`` once to start).
        """
        if block_ms is not None and not 0 <= block_ms <= MAX_BLOCK_MS:
            raise InvalidValue(f"block_ms must be from 0 to {MAX_BLOCK_MS}")
        client = self.client if block_ms is None else self._blocking_reader()
        try:
            answer = client.xread({self.keys.events: after}, count=count, block=block_ms)
        except redis.RedisError as exc:
            raise self.connection_error(exc) from exc
        if not answer:
            return []
        # redis-py answers a list for RESP2 and a dict for RESP3.
        streams = answer.values() if isinstance(answer, dict) else [s[1] for s in answer]
        return [Event.from_entry(eid, fields) for entries in streams for eid, fields in entries]

    def _blocking_reader(self) -> redis.Redis:
        # XREAD BLOCK n raises TimeoutError when n exceeds the socket timeout, so blocking
        # reads get their own connection whose timeout outlasts the longest block.
        if self._reader is None:
            if self.mode == "mock":
                self._reader = self.client
            else:
                pool = self.client.connection_pool
                kwargs = {**pool.connection_kwargs, "socket_timeout": MAX_BLOCK_MS / 1000 + 5}
                self._reader = redis.Redis(
                    connection_pool=redis.ConnectionPool(
                        connection_class=pool.connection_class, **kwargs
                    )
                )
        return self._reader

    def close(self) -> None:
        self.client.close()
        if self._reader is not None and self._reader is not self.client:
            self._reader.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.mode} {self.address} prefix={self.keys.prefix!r}>"


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
    naming the server. The first argument is the memory, or an object with a
    ``memory``."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except redis.RedisError as exc:
            owner = args[0]
            memory = owner if isinstance(owner, RedisConnection) else owner.memory  # type: ignore[attr-defined]
            raise memory.connection_error(exc) from exc

    return wrapper
