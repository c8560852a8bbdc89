"""``RedisShortTermMemory``, the memory agents hold, and the ways to get one."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any, NamedTuple

from .connection import DEFAULT_URL, RedisConnection
from .exceptions import InvalidValue, MemoryConnectionError
from .stats import collect_stats

logger = logging.getLogger("memory")


class Sentinels(NamedTuple):
    sentinels: list[tuple[str, int]]
    master: str


class RedisShortTermMemory(RedisConnection):
    """Short-term memory on one Redis server, or on the in-process mock.

    The backends are ``RedisConnection``'s (a URL, a host, Sentinel, a client or the
    mock).
    """

    def get_stats(self, *, teams: bool = True) -> dict[str, Any]:
        """Mode, counts of each kind of data (with ``teams``: tasks by state and agents
        by liveness summed over every team, a walk of the whole teams index; without,
        those two are None), and memory used."""
        return collect_stats(self, teams=teams)


def sentinel_settings(environ: Mapping[str, str] = os.environ) -> Sentinels | None:
    """The sentinels and master name that ``REDIS_SENTINELS`` (``host:port,...``) and
    ``REDIS_SENTINEL_MASTER`` give, or None when ``REDIS_SENTINELS`` is unset or empty;
    ``InvalidValue`` when they are malformed."""
    listed = environ.get("REDIS_SENTINELS", "").strip()
    if not listed:
        return None
    master = environ.get("REDIS_SENTINEL_MASTER", "").strip()
    if not master:
        raise InvalidValue("REDIS_SENTINELS needs REDIS_SENTINEL_MASTER, the master's name")
    sentinels = []
    for item in listed.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise InvalidValue(f"REDIS_SENTINELS: {item.strip()!r} is not host:port")
        sentinels.append((host.strip("[]"), int(port)))
    return Sentinels(sentinels, master)


def get_redis_memory(**options: Any) -> RedisShortTermMemory:
    """Short-term memory from the environment.

    - ``REDIS_WAIT_REPLICAS``: writes wait for that many replicas (``wait_replicas``).
    - ``REDIS_SENTINELS`` and ``REDIS_SENTINEL_MASTER`` (see ``sentinel_settings``): the
      master the sentinels name, with ``REDIS_USERNAME`` and ``REDIS_PASSWORD``; not
      together with ``REDIS_URL``.
    - ``REDIS_URL`` set and not empty: that server (``rediss://`` for TLS). If it does
      not answer, ``MemoryConnectionError``: never a silent switch to the mock.
    - ``REDIS_URL=""``: the in-process mock.
    - ``REDIS_URL`` unset: ``localhost:6379`` if it answers, else the mock, with a
      logged warning.
    """
    url = os.environ.get("REDIS_URL")
    waits = os.environ.get("REDIS_WAIT_REPLICAS", "").strip() or "0"
    if not waits.isdigit():
        raise InvalidValue(f"REDIS_WAIT_REPLICAS must be a whole number, not {waits!r}")
    options.setdefault("wait_replicas", int(waits))
    sentinel = sentinel_settings()
    if sentinel is not None:
        if url and url.strip():
            raise InvalidValue("set REDIS_SENTINELS or REDIS_URL, not both")
        return RedisShortTermMemory(
            sentinels=sentinel.sentinels,
            sentinel_master=sentinel.master,
            username=os.environ.get("REDIS_USERNAME") or None,
            password=os.environ.get("REDIS_PASSWORD") or None,
            **options,
        )
    if url is not None and url.strip():
        return RedisShortTermMemory(url=url.strip(), **options)
    if url is not None:
        return RedisShortTermMemory(use_mock=True, **options)
    try:
        return RedisShortTermMemory(url=DEFAULT_URL, **options)
    except MemoryConnectionError as exc:
        if not exc.unreachable:  # something answers there, but refuses us: say so
            raise
        logger.warning(
            "REDIS_URL is not set and no Redis answers on localhost:6379; using the "
            "in-process mock, which other processes cannot see. Set REDIS_URL to share "
            'memory, or REDIS_URL="" to choose the mock explicitly.'
        )
        return RedisShortTermMemory(use_mock=True, **options)


def get_railway_redis(
    host: str, port: int, password: str | None = None, **options: Any
) -> RedisShortTermMemory:
    """Short-term memory on a hosted Redis given by host, port and password."""
    return RedisShortTermMemory(host=host, port=port, password=password, **options)


def check_redis_connection(url: str | None = None) -> bool:
    """True when a real Redis server answers at ``url`` (default: ``REDIS_URL``, else
    localhost). The mock does not count."""
    if url is None:
        url = os.environ.get("REDIS_URL", DEFAULT_URL).strip()
        if not url:  # REDIS_URL="" chooses the mock, which is not a Redis server
            return False
    try:
        memory = RedisShortTermMemory(url=url)
    except (MemoryConnectionError, ValueError):
        return False
    memory.close()
    return True
