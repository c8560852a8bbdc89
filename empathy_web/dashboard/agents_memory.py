"""The web process's one connection to the agents' short-term memory."""

from __future__ import annotations

import threading

import redis

from memory import EmpathyOS, MemoryConnectionError, RedisShortTermMemory, get_redis_memory
from memory.tiers import AccessTier

_lock = threading.Lock()
_memory: RedisShortTermMemory | None = None

# What a page catches to show "Redis is down" instead of failing.
UNAVAILABLE = (MemoryConnectionError, redis.ConnectionError, redis.TimeoutError)


def get_memory() -> RedisShortTermMemory:
    """The shared memory, connected on first use by the rules of ``get_redis_memory``.

    A failed connection is not cached, so the next request tries again.
    """
    global _memory
    with _lock:
        if _memory is None:
            _memory = get_redis_memory()
        return _memory


def use_memory(memory: RedisShortTermMemory | None) -> None:
    """Point the web side at ``memory`` (the demo and tests pass theirs)."""
    global _memory
    with _lock:
        _memory = memory


def empathy_for(username: str, tier: AccessTier) -> EmpathyOS:
    """The library identity a person acts as: their username, with their tier."""
    return EmpathyOS(user_id=username, short_term_memory=get_memory(), access_tier=tier)
