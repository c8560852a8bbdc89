"""Conflict context: agents' differing positions on one topic, kept until resolved."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import scripts
from .codec import check_id, decode, encode
from .connection import RedisConnection, redis_errors
from .exceptions import InvalidValue
from .page import Page, check_limit, offset_cursor
from .tiers import READ, VALIDATE, WRITE, Caller
from .ttl import TTLStrategy


@dataclass(frozen=True)
class Conflict:
    conflict_id: str
    topic: str
    positions: dict[str, Any]
    created_by: str
    created_at_ms: int
    status: str
    resolution: Any = None
    resolved_by: str | None = None


def create(
    memory: RedisConnection,
    caller: Caller,
    conflict_id: str,
    positions: dict[str, Any],
    topic: str = "",
) -> None:
    """Record that agents disagree: ``positions`` maps each agent id to its position."""
    caller.require(WRITE, "create_conflict")
    check_id(conflict_id, "conflict_id")
    if not isinstance(positions, dict) or len(positions) < 2:
        raise InvalidValue("a conflict needs the positions of at least two agents")
    for agent_id in positions:
        check_id(agent_id, "agent_id")
    if not isinstance(topic, str):
        raise InvalidValue("topic must be a string")
    memory.run_script(
        scripts.CREATE_CONFLICT,
        caller,
        {"conflict": memory.keys.conflict(conflict_id), "conflicts": memory.keys.conflicts},
        {
            "conflict_id": conflict_id,
            "topic": topic,
            "positions_json": encode(positions, memory.max_value_bytes, "positions"),
            "ttl_ms": memory.ttl_ms(TTLStrategy.CONFLICT_CONTEXT),
        },
    )


def resolve(memory: RedisConnection, caller: Caller, conflict_id: str, resolution: Any) -> None:
    """Resolve an open conflict (VALIDATOR and up); exactly one resolution wins."""
    caller.require(VALIDATE, "resolve_conflict")
    check_id(conflict_id, "conflict_id")
    memory.run_script(
        scripts.RESOLVE_CONFLICT,
        caller,
        {"conflict": memory.keys.conflict(conflict_id)},
        {
            "conflict_id": conflict_id,
            "resolution_json": encode(resolution, memory.max_value_bytes, "resolution"),
        },
    )


@redis_errors
def get(memory: RedisConnection, caller: Caller, conflict_id: str) -> Conflict | None:
    caller.require(READ, "get_conflict")
    raw = memory.client.hgetall(memory.keys.conflict(check_id(conflict_id, "conflict_id")))
    if not raw:
        return None
    f = {k.decode(): v.decode() for k, v in raw.items()}
    return Conflict(
        conflict_id,
        f["topic"],
        decode(f["positions"]),
        f["created_by"],
        int(f["created_at"]),
        f["status"],
        decode(f["resolution"]) if "resolution" in f else None,
        f.get("resolved_by"),
    )


@redis_errors
def list_conflicts(
    memory: RedisConnection, caller: Caller, limit: int = 50, cursor: str | None = None
) -> Page[Conflict]:
    """Conflicts still within their TTL, newest first."""
    caller.require(READ, "list_conflicts")
    start = offset_cursor(cursor)
    limit = check_limit(limit)
    cutoff = memory.server_time_ms() - memory.ttl_ms(TTLStrategy.CONFLICT_CONTEXT)
    index = memory.keys.conflicts
    total = memory.client.zcount(index, f"({cutoff}", "+inf")
    ids = memory.client.zrevrangebyscore(index, "+inf", f"({cutoff}", start=start, num=limit)
    found = [get(memory, caller, i.decode()) for i in ids]
    more = start + limit < total
    return Page([c for c in found if c is not None], str(start + limit) if more else None, total)
