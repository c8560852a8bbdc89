"""The web process's one connection to the agents' short-term memory."""

from __future__ import annotations

import threading

import redis

from memory import (
    AgentCoordinator,
    EmpathyOS,
    MemoryConnectionError,
    RedisShortTermMemory,
    TeamSession,
    get_redis_memory,
)
from memory.tiers import Caller

_lock = threading.Lock()
_memory: RedisShortTermMemory | None = None

# Redis is unreachable: what a page catches to say so instead of failing, and what the
# live side (bridge, channel layer, consumers) waits out.
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


def empathy_for(caller: Caller) -> EmpathyOS:
    """The library identity a person acts as: their username, with their tier."""
    return EmpathyOS(
        user_id=caller.user_id, short_term_memory=get_memory(), access_tier=caller.tier
    )


def coordinator_for(caller: Caller, team_id: str) -> AgentCoordinator:
    """A team's agents and tasks, as a person reads or acts on them."""
    return AgentCoordinator(get_memory(), team_id, access_tier=caller.tier, actor=caller.user_id)


def session_for(caller: Caller, session_id: str) -> TeamSession:
    """A team session as a person reads or acts on it; never creates one."""
    return TeamSession(
        get_memory(), session_id, access_tier=caller.tier, actor=caller.user_id, create=False
    )
