"""Collaboration state: how an agent and the people it works with are getting on."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from . import scripts
from .codec import decode, encode
from .connection import RedisConnection, redis_errors
from .tiers import READ, WRITE, Caller


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


def persist(memory: RedisConnection, caller: Caller, state: CollaborationState) -> None:
    """Store ``state`` for the caller. Idempotent: sent again, it stores the same."""
    caller.require(WRITE, "persist_collaboration_state")
    payload = encode(asdict(state), memory.max_value_bytes, "collaboration state")
    memory.run_script(
        scripts.PERSIST_COLLABORATION,
        caller,
        {"collaboration": memory.keys.collaboration(caller.user_id)},
        {"state_json": payload},
    )


@redis_errors
def restore(memory: RedisConnection, caller: Caller) -> CollaborationState | None:
    caller.require(READ, "restore_collaboration_state")
    raw = memory.client.get(memory.keys.collaboration(caller.user_id))
    return None if raw is None else CollaborationState.from_dict(decode(raw))
