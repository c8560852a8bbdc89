"""Short-term memory for teams of AI agents, on Redis.

Working memory with TTLs, staged patterns, coordination signals, task queues, team
sessions, conflict context and collaboration state, all behind four access tiers.
"""

from __future__ import annotations

from .collaboration import CollaborationState
from .conflicts import Conflict
from .coordination import AgentCoordinator
from .empathy_os import EmpathyOS
from .events import Event
from .exceptions import (
    AccessDenied,
    AlreadyDecided,
    IdTaken,
    InvalidValue,
    LeaseLost,
    MemoryConnectionError,
    NotFound,
    RateLimited,
    ShortTermMemoryError,
    StateConflict,
    Suspended,
    UnserialisableValue,
    ValueTooLarge,
)
from .page import Page
from .patterns import StagedPattern
from .redis_memory import (
    RedisShortTermMemory,
    check_redis_connection,
    get_railway_redis,
    get_redis_memory,
)
from .registry import AgentInfo
from .sessions import SessionInfo, TeamSession
from .tasks import AgentTask
from .tiers import AccessTier, Caller
from .ttl import TTLStrategy

__all__ = [
    "AccessDenied",
    "AccessTier",
    "AgentCoordinator",
    "AgentInfo",
    "AgentTask",
    "AlreadyDecided",
    "Caller",
    "CollaborationState",
    "Conflict",
    "EmpathyOS",
    "Event",
    "IdTaken",
    "InvalidValue",
    "LeaseLost",
    "MemoryConnectionError",
    "NotFound",
    "Page",
    "RateLimited",
    "Suspended",
    "RedisShortTermMemory",
    "SessionInfo",
    "ShortTermMemoryError",
    "StagedPattern",
    "StateConflict",
    "TTLStrategy",
    "TeamSession",
    "UnserialisableValue",
    "ValueTooLarge",
    "check_redis_connection",
    "get_railway_redis",
    "get_redis_memory",
]
