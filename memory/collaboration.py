"""Collaboration state: how an agent and the people it works with are getting on."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .codec import decode, encode
from .redis_memory import RedisShortTermMemory
from .tiers import READ, WRITE, Caller

# KEYS: 2 the state. ARGV: 4 json. The state has no TTL: it outlives sessions.
_PERSIST = """
redis.call('SET', KEYS[2], ARGV[4])
emit('collaboration.persisted', 'agent', ARGV[2])
return 1
"""


@dataclass
class CollaborationState:
    trust_level: float = 0.5
    successful_interventions: int = 0
    failed_interventions: int = 0
    total_interactions: int = 0
    shared_context: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CollaborationState:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def persist(memory: RedisShortTermMemory, caller: Caller, state: CollaborationState) -> None:
    caller.require(WRITE, "persist_collaboration_state")
    payload = encode(asdict(state), memory.max_value_bytes, "collaboration state")
    memory.run_script(_PERSIST, caller, [memory.keys.collaboration(caller.user_id)], [payload])


def restore(memory: RedisShortTermMemory, caller: Caller) -> CollaborationState | None:
    caller.require(READ, "restore_collaboration_state")
    raw = memory.client.get(memory.keys.collaboration(caller.user_id))
    return None if raw is None else CollaborationState.from_dict(decode(raw))
