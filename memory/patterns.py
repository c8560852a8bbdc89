"""Staged patterns: discoveries waiting for a validator to promote or reject them."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis

from .codec import check_confidence, check_id, decode, encode
from .exceptions import InvalidValue
from .page import Page, check_limit
from .redis_memory import RedisShortTermMemory
from .tiers import READ, VALIDATE, WRITE, Caller
from .ttl import TTLStrategy

# The index holds one member per staged pattern, "<expiry ms, 13 digits>|<id>", all with
# score 0, so lexicographic order is expiry order. That gives exact keyset paging (ties
# broken by id), counts of what expires within any window, and lets every write trim
# expired members by range, whatever TTL each pattern was staged with.
_STAGE = """
if redis.call('EXISTS', KEYS[4]) == 1 then
  return fail('DECIDED', 'pattern ' .. ARGV[4] .. ' was already decided; stage it under a new id')
end
local ttl = tonumber(ARGV[7])
local old = redis.call('HMGET', KEYS[2], 'agent', 'member')
if old[1] and old[1] ~= ARGV[5] then
  return fail('TAKEN', 'pattern ' .. ARGV[4] .. ' is already staged by ' .. old[1])
end
redis.call('ZREMRANGEBYLEX', KEYS[3], '-', '(' .. string.format('%013d', now))
if old[2] then redis.call('ZREM', KEYS[3], old[2]) end
local member = string.format('%013d', now + ttl) .. '|' .. ARGV[4]
local body = '{"staged_at":' .. string.format('%.3f', now / 1000) .. ',' .. string.sub(ARGV[6], 2)
redis.call('HSET', KEYS[2], 'json', body, 'agent', ARGV[5], 'member', member)
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('ZADD', KEYS[3], 0, member)
emit('pattern.staged', 'pattern_id', ARGV[4], 'agent', ARGV[5])
return body
"""

# Deciding deletes the staged record and writes the decision in one script, so of two
# validators racing on one pattern exactly one sees it staged; the other gets DECIDED.
_DECIDE = """
local done = redis.call('HMGET', KEYS[4], 'decision', 'by')
if done[1] then
  return fail('DECIDED', 'pattern ' .. ARGV[4] .. ' was already ' .. done[1] .. ' by ' .. done[2])
end
local rec = redis.call('HMGET', KEYS[2], 'json', 'member')
if not rec[1] then
  return fail('NOTFOUND', 'no staged pattern ' .. ARGV[4] .. ' (never staged, or expired)')
end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], rec[2])
redis.call('HSET', KEYS[4], 'decision', ARGV[5], 'by', ARGV[2], 'reason', ARGV[6],
           'at', now, 'json', rec[1])
redis.call('PEXPIRE', KEYS[4], ARGV[7])
emit('pattern.' .. ARGV[5], 'pattern_id', ARGV[4], 'reason', ARGV[6])
return rec[1]
"""


@dataclass
class StagedPattern:
    """A pattern an agent discovered, staged until a validator decides on it."""

    pattern_id: str
    agent_id: str
    pattern_type: str
    name: str
    description: str
    code: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    confidence: float = 0.5
    interests: list[str] = field(default_factory=list)
    staged_at: datetime | None = None

    def validate(self) -> None:
        """Raise ``ValueError`` / ``TypeError`` unless the pattern can be staged."""
        check_id(self.pattern_id, "pattern_id")
        check_id(self.agent_id, "agent_id")
        check_id(self.pattern_type, "pattern_type")
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidValue("a pattern needs a non-empty name")
        if not isinstance(self.description, str):
            raise InvalidValue("description must be a string")
        if self.code is not None and not isinstance(self.code, str):
            raise InvalidValue("code must be a string or None")
        if not isinstance(self.context, dict):
            raise InvalidValue("context must be a dict")
        check_confidence(self.confidence)

    def to_json(self, limit: int) -> str:
        fields = asdict(self)
        del fields["staged_at"]
        return encode(fields, limit, "pattern")

    @classmethod
    def from_json(cls, raw: bytes | str) -> StagedPattern:
        fields = json.loads(raw)
        staged = fields.pop("staged_at", None)
        pattern = cls(**fields)
        if staged is not None:
            pattern.staged_at = datetime.fromtimestamp(staged, tz=UTC)
        return pattern


def stage(memory: RedisShortTermMemory, caller: Caller, pattern: StagedPattern) -> StagedPattern:
    """Stage ``pattern``. Restaging your own id replaces it; another agent's id is refused."""
    caller.require(WRITE, "stage_pattern")
    if not isinstance(pattern, StagedPattern):
        raise TypeError(f"stage_pattern takes a StagedPattern, not {type(pattern).__name__}")
    pattern.validate()
    keys = memory.keys
    body = memory.run_script(
        _STAGE,
        caller,
        [
            keys.pattern(pattern.pattern_id),
            keys.patterns_staged,
            keys.pattern_decision(pattern.pattern_id),
        ],
        [
            pattern.pattern_id,
            pattern.agent_id,
            pattern.to_json(memory.max_value_bytes),
            memory.ttl_ms(TTLStrategy.STAGED_PATTERNS),
        ],
    )
    return StagedPattern.from_json(body)


def list_staged(
    memory: RedisShortTermMemory, caller: Caller, limit: int = 50, cursor: str | None = None
) -> Page[StagedPattern]:
    """Staged patterns, newest first (the latest to expire first), a page at a time."""
    caller.require(READ, "get_staged_patterns")
    limit = check_limit(limit)
    if cursor is not None and not (isinstance(cursor, str) and "|" in cursor):
        raise InvalidValue(f"cursor {cursor!r} is not one this listing handed out")
    keys = memory.keys
    low = "(" + f"{memory.server_time_ms():013d}"  # expired ones are gone
    high = "+" if cursor is None else "(" + cursor
    try:
        members = memory.client.execute_command(
            "ZRANGE", keys.patterns_staged, high, low, "BYLEX", "REV", "LIMIT", 0, limit + 1
        )
        ids = [m.decode().split("|", 1)[1] for m in members]
        with memory.client.pipeline(transaction=False) as pipe:
            for pattern_id in ids[:limit]:
                pipe.hget(keys.pattern(pattern_id), "json")
            bodies = pipe.execute()
    except redis.RedisError as exc:
        raise memory.connection_error(exc) from exc
    items = [StagedPattern.from_json(b) for b in bodies if b is not None]
    next_cursor = members[limit - 1].decode() if len(members) > limit else None
    return Page(items, next_cursor)


def get_staged(
    memory: RedisShortTermMemory, caller: Caller, pattern_id: str
) -> StagedPattern | None:
    caller.require(READ, "reading a staged pattern")
    raw = memory.client.hget(memory.keys.pattern(check_id(pattern_id, "pattern_id")), "json")
    return None if raw is None else StagedPattern.from_json(raw)


def count_staged(memory: RedisShortTermMemory, expiring_within_ms: int | None = None) -> int:
    """How many patterns are staged; or, with ``expiring_within_ms``, how many of them
    expire within that time."""
    now = memory.server_time_ms()
    high = "+" if expiring_within_ms is None else f"({now + expiring_within_ms:013d}"
    return memory.client.zlexcount(memory.keys.patterns_staged, f"({now:013d}", high)


def staged_ttl_ms(memory: RedisShortTermMemory, pattern_ids: list[str]) -> list[int]:
    """Remaining TTL of each staged pattern, in ms (negative once gone)."""
    with memory.client.pipeline(transaction=False) as pipe:
        for pattern_id in pattern_ids:
            pipe.pttl(memory.keys.pattern(pattern_id))
        return pipe.execute()


def decide(
    memory: RedisShortTermMemory,
    caller: Caller,
    pattern_id: str,
    decision: str,
    reason: str = "",
) -> StagedPattern:
    """Promote or reject a staged pattern, atomically; returns the pattern decided."""
    action = "promote_pattern" if decision == "promoted" else "reject_pattern"
    caller.require(VALIDATE, action)
    check_id(pattern_id, "pattern_id")
    if decision == "rejected" and not (isinstance(reason, str) and reason.strip()):
        raise InvalidValue("rejecting a pattern needs a reason")
    if not isinstance(reason, str) or len(reason) > 2000:
        raise InvalidValue("reason must be a string of at most 2000 characters")
    keys = memory.keys
    body = memory.run_script(
        _DECIDE,
        caller,
        [keys.pattern(pattern_id), keys.patterns_staged, keys.pattern_decision(pattern_id)],
        [pattern_id, decision, reason, memory.ttl_ms(TTLStrategy.STAGED_PATTERNS)],
    )
    return StagedPattern.from_json(body)


def decision(memory: RedisShortTermMemory, pattern_id: str) -> dict[str, Any] | None:
    """How a recently decided pattern was decided: decision, by, reason, at (ms)."""
    raw = memory.client.hgetall(memory.keys.pattern_decision(check_id(pattern_id, "pattern_id")))
    if not raw:
        return None
    fields = {k.decode(): v.decode() for k, v in raw.items()}
    fields["at"] = int(fields["at"])
    fields["pattern"] = decode(fields.pop("json"))
    return fields
