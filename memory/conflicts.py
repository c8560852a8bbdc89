"""Conflict context: agents' differing positions on one topic, kept until resolved."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .codec import check_id, decode, encode
from .exceptions import InvalidValue
from .page import Page, check_limit, offset_cursor
from .redis_memory import RedisShortTermMemory
from .tiers import READ, VALIDATE, WRITE, Caller
from .ttl import TTLStrategy

# KEYS: 2 conflict, 3 conflicts index. ARGV: 4 id, 5 topic, 6 positions json, 7 ttl
_CREATE = """
if redis.call('EXISTS', KEYS[2]) == 1 then
  return fail('TAKEN', 'conflict ' .. ARGV[4] .. ' already exists')
end
local ttl = tonumber(ARGV[7])
redis.call('HSET', KEYS[2], 'topic', ARGV[5], 'positions', ARGV[6], 'created_by', ARGV[2],
           'created_at', now, 'status', 'open')
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - ttl)
redis.call('ZADD', KEYS[3], now, ARGV[4])
emit('conflict.created', 'conflict_id', ARGV[4])
return 1
"""

# KEYS: 2 conflict. ARGV: 4 id, 5 resolution json
_RESOLVE = """
local status = redis.call('HGET', KEYS[2], 'status')
if not status then return fail('NOTFOUND', 'no conflict ' .. ARGV[4] .. ' (or it expired)') end
if status ~= 'open' then
  return fail('DECIDED', 'conflict ' .. ARGV[4] .. ' was already resolved by '
              .. redis.call('HGET', KEYS[2], 'resolved_by'))
end
redis.call('HSET', KEYS[2], 'status', 'resolved', 'resolution', ARGV[5],
           'resolved_by', ARGV[2], 'resolved_at', now)
emit('conflict.resolved', 'conflict_id', ARGV[4])
return 1
"""


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
    memory: RedisShortTermMemory,
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
        _CREATE,
        caller,
        [memory.keys.conflict(conflict_id), memory.keys.conflicts],
        [
            conflict_id,
            topic,
            encode(positions, memory.max_value_bytes, "positions"),
            memory.ttl_ms(TTLStrategy.CONFLICT_CONTEXT),
        ],
    )


def resolve(
    memory: RedisShortTermMemory, caller: Caller, conflict_id: str, resolution: Any
) -> None:
    """Resolve an open conflict (VALIDATOR and up); exactly one resolution wins."""
    caller.require(VALIDATE, "resolve_conflict")
    check_id(conflict_id, "conflict_id")
    memory.run_script(
        _RESOLVE,
        caller,
        [memory.keys.conflict(conflict_id)],
        [conflict_id, encode(resolution, memory.max_value_bytes, "resolution")],
    )


def get(memory: RedisShortTermMemory, caller: Caller, conflict_id: str) -> Conflict | None:
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


def list_conflicts(
    memory: RedisShortTermMemory, caller: Caller, limit: int = 50, cursor: str | None = None
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
