"""``RedisShortTermMemory``, the memory agents hold, and the ways to get one."""

from __future__ import annotations

import logging
import os
from typing import Any

from .connection import DEFAULT_URL, RedisConnection
from .exceptions import MemoryConnectionError
from .stats import collect_stats

logger = logging.getLogger("memory")


class RedisShortTermMemory(RedisConnection):
    """Short-term memory on one Redis server, or on the in-process mock.

    Pick the backend with exactly one of ``url``, ``host``/``port``/``password``,
    ``client`` or ``use_mock=True``; with none, ``redis://localhost:6379/0``. A real
    server that does not answer raises ``MemoryConnectionError`` at once: the library
    never falls back to the mock on its own (``get_redis_memory`` decides that).
    """

    def get_stats(self, *, teams: bool = True) -> dict[str, Any]:
        """Mode, counts of each kind of data (with ``teams``: tasks by state and agents
        by liveness summed over every team, a walk of the whole teams index; without,
        those two are None), and memory used."""
        return collect_stats(self, teams=teams)


def get_redis_memory(**options: Any) -> RedisShortTermMemory:
    """Short-term memory from the environment.

    - ``REDIS_URL`` set and not empty: that server (``rediss://`` for TLS). If it does
      not answer, ``MemoryConnectionError``: never a silent switch to the mock.
    - ``REDIS_URL=""``: the in-process mock.
    - ``REDIS_URL`` unset: ``localhost:6379`` if it answers, else the mock, with a
      logged warning.
    """
    url = os.environ.get("REDIS_URL")
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
