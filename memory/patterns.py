"""Staged patterns: discoveries waiting for a validator to promote or reject them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis

from .codec import check_confidence, check_id, decode, encode
from .exceptions import InvalidValue
from .page import Page, check_limit, offset_cursor
from .redis_memory import RedisShortTermMemory
from .tiers import READ, VALIDATE, WRITE, Caller
from .ttl import TTLStrategy

# The index holds one member per staged pattern, "<expiry ms, 13 digits>|<id>", all with
# score 0, so lexicographic order is expiry order. That gives exact keyset paging (ties
# broken by id), counts of what expires within any window, and lets every write trim
# expired members by range, whatever TTL each pattern was staged with.
#
# Two more sorted sets hold the same members scored by confidence and by staging time (ms),
# for the queue's other orders; every script that adds or removes a member of the index
# does the same to both (``SORTED`` below), so the three always hold the same patterns.
#
# Members trimmed that way are patterns nobody decided before they expired. The sweep
# counts them per minute of their expiry (a small hash, kept to about a day) and notes
# the newest 50 in a log, so the dashboard can say how many expired undecided lately.
_SORTED = """
local function sorted_remove(by_confidence, by_staged_at, members)
  for i = 1, #members, 500 do
    local chunk = {unpack(members, i, math.min(i + 499, #members))}
    redis.call('ZREM', by_confidence, unpack(chunk))
    redis.call('ZREM', by_staged_at, unpack(chunk))
  end
end
local function sorted_add(by_confidence, by_staged_at, member, body)
  local fields = cjson.decode(body)
  redis.call('ZADD', by_confidence, fields.confidence, member)
  redis.call('ZADD', by_staged_at, math.floor(fields.staged_at * 1000 + 0.5), member)
end
"""

_SWEEP = (
    _SORTED
    + """
local function sweep_expired(index, per_minute, log, by_confidence, by_staged_at)
  local cutoff = '(' .. string.format('%013d', now)
  local gone = redis.call('ZRANGEBYLEX', index, '-', cutoff)
  if #gone == 0 then return gone end
  sorted_remove(by_confidence, by_staged_at, gone)
  for _, member in ipairs(gone) do
    redis.call('HINCRBY', per_minute, math.floor(tonumber(string.sub(member, 1, 13)) / 60000), 1)
  end
  redis.call('ZREMRANGEBYLEX', index, '-', cutoff)
  for i = math.max(1, #gone - 49), #gone do redis.call('LPUSH', log, gone[i]) end
  redis.call('LTRIM', log, 0, 49)
  redis.call('PEXPIRE', log, 172800000)
  redis.call('PEXPIRE', per_minute, 172800000)
  if redis.call('HLEN', per_minute) > 1500 then
    local oldest = math.floor(now / 60000) - 1500
    for _, minute in ipairs(redis.call('HKEYS', per_minute)) do
      if tonumber(minute) < oldest then redis.call('HDEL', per_minute, minute) end
    end
  end
  return gone
end
"""
)

_STAGE = (
    _SWEEP
    + """
if redis.call('EXISTS', KEYS[4]) == 1 then
  return fail('DECIDED', 'pattern ' .. ARGV[4] .. ' was already decided; stage it under a new id')
end
local ttl = tonumber(ARGV[7])
local old = redis.call('HMGET', KEYS[2], 'agent', 'member')
if old[1] and old[1] ~= ARGV[5] then
  return fail('TAKEN', 'pattern ' .. ARGV[4] .. ' is already staged by ' .. old[1])
end
local expired = sweep_expired(KEYS[3], KEYS[5], KEYS[6], KEYS[7], KEYS[8])
if old[2] then
  redis.call('ZREM', KEYS[3], old[2])
  sorted_remove(KEYS[7], KEYS[8], {old[2]})
end
local member = string.format('%013d', now + ttl) .. '|' .. ARGV[4]
local body = '{"staged_at":' .. string.format('%.3f', now / 1000) .. ',' .. string.sub(ARGV[6], 2)
redis.call('HSET', KEYS[2], 'json', body, 'agent', ARGV[5], 'member', member)
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('ZADD', KEYS[3], 0, member)
redis.call('ZADD', KEYS[7], ARGV[8], member)
redis.call('ZADD', KEYS[8], now, member)
if #expired > 0 then
  emit('pattern.staged', 'pattern_id', ARGV[4], 'agent', ARGV[5], 'expired', #expired)
else
  emit('pattern.staged', 'pattern_id', ARGV[4], 'agent', ARGV[5])
end
return body
"""
)

# Deciding deletes the staged record and writes the decision in one script, so of two
# validators racing on one pattern exactly one sees it staged; the other gets DECIDED.
_DECIDE = (
    _SORTED
    + """
local done = redis.call('HMGET', KEYS[4], 'decision', 'by')
if done[1] then
  return fail('DECIDED', 'pattern ' .. ARGV[4] .. ' was already ' .. done[1] .. ' by ' .. done[2])
end
local rec = redis.call('HMGET', KEYS[2], 'json', 'member', 'agent')
if not rec[1] then
  return fail('NOTFOUND', 'no staged pattern ' .. ARGV[4] .. ' (never staged, or expired)')
end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], rec[2])
sorted_remove(KEYS[5], KEYS[6], {rec[2]})
redis.call('HSET', KEYS[4], 'decision', ARGV[5], 'by', ARGV[2], 'reason', ARGV[6],
           'at', now, 'json', rec[1])
-- when it would have expired, and who staged it: what an undo needs to restage it
if rec[2] then redis.call('HSET', KEYS[4], 'expires', string.sub(rec[2], 1, 13)) end
if rec[3] then redis.call('HSET', KEYS[4], 'agent', rec[3]) end
redis.call('PEXPIRE', KEYS[4], ARGV[7])
emit('pattern.' .. ARGV[5], 'pattern_id', ARGV[4], 'reason', ARGV[6])
return rec[1]
"""
)


# The longest reason (or note) a decision may carry.
MAX_REASON_LENGTH = 2000


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
    # Where it was found, when the agent says so (the dashboard filters by them).
    team: str | None = None
    session_id: str | None = None

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
        if self.team is not None:
            check_id(self.team, "team")
        if self.session_id is not None:
            check_id(self.session_id, "session_id")

    def to_json(self, limit: int) -> bytes:
        fields = asdict(self)
        del fields["staged_at"]
        for optional in ("team", "session_id"):
            if fields[optional] is None:
                del fields[optional]
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
            *_expired_keys(memory),
            *_sorted_keys(memory),
        ],
        [
            pattern.pattern_id,
            pattern.agent_id,
            pattern.to_json(memory.max_value_bytes),
            memory.ttl_ms(TTLStrategy.STAGED_PATTERNS),
            repr(float(pattern.confidence)),
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
    if not isinstance(reason, str) or len(reason) > MAX_REASON_LENGTH:
        raise InvalidValue(f"reason must be a string of at most {MAX_REASON_LENGTH} characters")
    keys = memory.keys
    body = memory.run_script(
        _DECIDE,
        caller,
        [
            keys.pattern(pattern_id),
            keys.patterns_staged,
            keys.pattern_decision(pattern_id),
            *_sorted_keys(memory),
        ],
        [pattern_id, decision, reason, memory.ttl_ms(TTLStrategy.STAGED_PATTERNS)],
    )
    return StagedPattern.from_json(body)


def decision(memory: RedisShortTermMemory, pattern_id: str) -> dict[str, Any] | None:
    """How a recently decided pattern was decided: decision, by, reason, at (ms), the
    pattern, and (for decisions recorded since undo exists) ``expires``, the server time
    in ms at which it would have expired, and ``agent``, who staged it."""
    raw = memory.client.hgetall(memory.keys.pattern_decision(check_id(pattern_id, "pattern_id")))
    if not raw:
        return None
    fields = {k.decode(): v.decode() for k, v in raw.items()}
    fields["at"] = int(fields["at"])
    if "expires" in fields:
        fields["expires"] = int(fields["expires"])
    fields["pattern"] = decode(fields.pop("json"))
    return fields


# --- undo, expiry accounting, listing by expiry -------------------------------------

UNDO_WINDOW_MS = 10_000

# Undo: only the validator who decided, only within the window (server time), and only
# while the pattern would not yet have expired. The pattern goes back exactly as it was
# (same staged_at), until the moment it would have expired anyway, and the decision
# record goes, so the pattern can be decided again.
# KEYS[2] record, KEYS[3] index, KEYS[4] decision; ARGV[4] id, ARGV[5] window ms,
# ARGV[6] TTL for records without an expiry, ARGV[7] agent for records without one.
_RESTORE = (
    _SORTED
    + """
local rec = redis.call('HMGET', KEYS[4], 'decision', 'by', 'at', 'json', 'expires', 'agent')
if not rec[1] then
  return fail('NOTFOUND', 'pattern ' .. ARGV[4] .. ' has no recent decision to undo')
end
if rec[2] ~= ARGV[2] then
  return fail('DECIDED', 'pattern ' .. ARGV[4] .. ' was ' .. rec[1] .. ' by ' .. rec[2]
              .. '; only ' .. rec[2] .. ' can undo that')
end
local window = tonumber(ARGV[5])
local age = now - tonumber(rec[3])
if age > window then
  return fail('STATE', 'too late to undo the decision on ' .. ARGV[4] .. ': it was made '
              .. string.format('%.1f', age / 1000) .. ' s ago, and undo works for '
              .. string.format('%d', window / 1000) .. ' s')
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return fail('STATE', 'pattern ' .. ARGV[4] .. ' is staged again already')
end
local expiry = now + tonumber(ARGV[6])
if rec[5] then expiry = tonumber(rec[5]) end
if expiry <= now then
  return fail('STATE', 'pattern ' .. ARGV[4] .. ' would have expired by now; it cannot go back')
end
local agent = ARGV[7]
if rec[6] then agent = rec[6] end
local member = string.format('%013d', expiry) .. '|' .. ARGV[4]
redis.call('HSET', KEYS[2], 'json', rec[4], 'agent', agent, 'member', member)
redis.call('PEXPIRE', KEYS[2], expiry - now)
redis.call('ZADD', KEYS[3], 0, member)
sorted_add(KEYS[5], KEYS[6], member, rec[4])
redis.call('DEL', KEYS[4])
emit('pattern.restored', 'pattern_id', ARGV[4], 'undone', rec[1])
return {rec[4], expiry - now}
"""
)

_PRUNE = (
    _SWEEP
    + """
local gone = sweep_expired(KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
-- The sorted sets hold what the index holds. Patterns staged before they existed (or
-- any difference at all) make them be rebuilt from the index, once; index members whose
-- record is gone (deleted by hand) leave with it, so the sizes agree afterwards.
local size = redis.call('ZCARD', KEYS[2])
if redis.call('ZCARD', KEYS[5]) ~= size or redis.call('ZCARD', KEYS[6]) ~= size then
  redis.call('DEL', KEYS[5], KEYS[6])
  for _, member in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    local body = redis.call('HGET', ARGV[4] .. string.sub(member, 15), 'json')
    if body then
      sorted_add(KEYS[5], KEYS[6], member, body)
    else
      redis.call('ZREM', KEYS[2], member)
    end
  end
end
if #gone > 0 then
  local ids = {}
  for i = 1, math.min(#gone, 20) do table.insert(ids, string.sub(gone[i], 15)) end
  emit('pattern.expired', 'count', #gone, 'pattern_ids', table.concat(ids, ','))
end
return #gone
"""
)

_CURSOR_DIGITS = 13


def _expired_keys(memory: RedisShortTermMemory) -> tuple[str, str]:
    """The per-minute counts of patterns that expired undecided, and the log of the
    latest of them (in the patterns' hash slot, beside the index)."""
    base = f"{memory.keys.prefix}{{patterns}}:expired"
    return f"{base}:per_minute", f"{base}:log"


def _sorted_keys(memory: RedisShortTermMemory) -> tuple[str, str]:
    return memory.keys.patterns_by_confidence, memory.keys.patterns_by_staged_at


def restore(
    memory: RedisShortTermMemory,
    caller: Caller,
    pattern_id: str,
    *,
    window_ms: int = UNDO_WINDOW_MS,
) -> tuple[StagedPattern, int]:
    """Undo the caller's own decision on ``pattern_id``, made at most ``window_ms`` ago
    (server time): the pattern is staged again as it was, with the TTL it had left, and
    the decision is forgotten. Returns the pattern and its remaining TTL in ms.

    Raises ``NotFound`` when there is no decision to undo, ``AlreadyDecided`` when
    someone else made it, and ``StateConflict`` when it is too late.
    """
    caller.require(VALIDATE, "undo_pattern_decision")
    check_id(pattern_id, "pattern_id")
    if isinstance(window_ms, bool) or not isinstance(window_ms, int) or window_ms < 0:
        raise InvalidValue("window_ms must be a non-negative whole number of milliseconds")
    keys = memory.keys
    record = decision(memory, pattern_id)  # older records do not say who staged it
    agent = str(record["pattern"].get("agent_id", "")) if record else ""
    body, ttl = memory.run_script(
        _RESTORE,
        caller,
        [
            keys.pattern(pattern_id),
            keys.patterns_staged,
            keys.pattern_decision(pattern_id),
            *_sorted_keys(memory),
        ],
        [pattern_id, window_ms, memory.ttl_ms(TTLStrategy.STAGED_PATTERNS), agent],
    )
    return StagedPattern.from_json(body), int(ttl)


def prune_expired(memory: RedisShortTermMemory, caller: Caller) -> int:
    """Sweep patterns that expired undecided out of the index, counting them (see
    ``expired_count``); emits ``pattern.expired`` when there were any. Returns how many."""
    caller.require(READ, "prune_expired_patterns")
    return int(
        memory.run_script(
            _PRUNE,
            caller,
            [memory.keys.patterns_staged, *_expired_keys(memory), *_sorted_keys(memory)],
            [memory.keys.pattern("")],
        )
    )


def expired_count(memory: RedisShortTermMemory, within_ms: int = 24 * 3_600_000) -> int:
    """How many patterns expired undecided within the last ``within_ms`` (to the
    minute), as far as sweeps have seen them: call ``prune_expired`` first for an
    up-to-date count."""
    per_minute, _ = _expired_keys(memory)
    now = memory.server_time_ms()
    first, last = (now - within_ms) // 60_000, now // 60_000
    counts = memory.client.hgetall(per_minute)
    return sum(int(n) for minute, n in counts.items() if first <= int(minute) <= last)


def recent_expired(
    memory: RedisShortTermMemory, limit: int = 10, within_ms: int = 24 * 3_600_000
) -> list[dict[str, Any]]:
    """The latest patterns that expired undecided (newest first): ``pattern_id`` and
    ``expired_at`` (server ms)."""
    _, log = _expired_keys(memory)
    oldest = memory.server_time_ms() - within_ms
    found = []
    for raw in memory.client.lrange(log, 0, check_limit(limit) - 1):
        expiry, _, pattern_id = raw.decode().partition("|")
        if int(expiry) >= oldest:
            found.append({"pattern_id": pattern_id, "expired_at": int(expiry)})
    return found


def list_by_expiry(
    memory: RedisShortTermMemory, caller: Caller, limit: int = 50, cursor: str | None = None
) -> Page[tuple[StagedPattern, int]]:
    """Staged patterns, expiring soonest first, each with the server time (ms) at which
    it expires, a page at a time (keyset paging on the index)."""
    caller.require(READ, "get_staged_patterns")
    limit = check_limit(limit)
    shown, next_cursor = _expiry_members(memory, cursor, memory.server_time_ms(), limit)
    return Page(_with_bodies(memory, shown), next_cursor)


def _expiry_members(
    memory: RedisShortTermMemory, cursor: str | None, now: int, limit: int
) -> tuple[list[str], str | None]:
    """Up to ``limit`` index members after ``cursor`` that expire after ``now``, and the
    cursor for the next ones (``None`` when there are none)."""
    if cursor is not None and not (
        isinstance(cursor, str)
        and len(cursor) > _CURSOR_DIGITS + 1
        and cursor[:_CURSOR_DIGITS].isdigit()
        and cursor[_CURSOR_DIGITS] == "|"
    ):
        raise InvalidValue(f"cursor {cursor!r} is not one this listing handed out")
    low = "(" + f"{now:0{_CURSOR_DIGITS}d}"  # expired ones are gone
    if cursor is not None:
        low = max(low, "(" + cursor)
    try:
        members = memory.client.execute_command(
            "ZRANGE", memory.keys.patterns_staged, low, "+", "BYLEX", "LIMIT", 0, limit + 1
        )
    except redis.RedisError as exc:
        raise memory.connection_error(exc) from exc
    shown = [m.decode() for m in members[:limit]]
    return shown, shown[-1] if len(members) > limit else None


def _bodies(memory: RedisShortTermMemory, members: list[str]) -> list[bytes | None]:
    """The stored JSON behind each index member, ``None`` where the pattern is gone."""
    try:
        with memory.client.pipeline(transaction=False) as pipe:
            for member in members:
                pipe.hget(memory.keys.pattern(member.split("|", 1)[1]), "json")
            return pipe.execute()
    except redis.RedisError as exc:
        raise memory.connection_error(exc) from exc


def _with_bodies(
    memory: RedisShortTermMemory, members: list[str], now: int = 0
) -> list[tuple[StagedPattern, int]]:
    """The patterns behind index members, each with its expiry (ms); those gone, or
    expired by ``now``, are left out."""
    return [(pattern, expires) for pattern, expires, _ in _scanned(memory, members, members, now)]


SORTED_ORDERS = {"confidence": "highest confidence first", "staged_at": "staged longest ago first"}


def list_sorted(
    memory: RedisShortTermMemory,
    caller: Caller,
    order: str,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[tuple[StagedPattern, int]]:
    """Staged patterns in one of ``SORTED_ORDERS``, each with the server time (ms) at
    which it expires, a page at a time (offset cursors; ``total`` is how many are
    staged). Call ``prune_expired`` first: patterns that expired since the last sweep
    are left out, so a page can come back short."""
    caller.require(READ, "get_staged_patterns")
    limit = check_limit(limit)
    start = offset_cursor(cursor)
    now, total, members = _sorted_members(memory, order, start, limit)
    items = _with_bodies(memory, members, now)
    more = start + limit < total
    return Page(items, str(start + limit) if more else None, total)


def _sorted_members(
    memory: RedisShortTermMemory, order: str, start: int, count: int
) -> tuple[int, int, list[str]]:
    """Server time (ms), how many are staged, and ``count`` index members of ``order``
    from position ``start``."""
    if order not in SORTED_ORDERS:
        raise InvalidValue(f"order must be one of {', '.join(SORTED_ORDERS)}, not {order!r}")
    keys = memory.keys
    index = keys.patterns_by_confidence if order == "confidence" else keys.patterns_by_staged_at
    try:
        with memory.client.pipeline(transaction=False) as pipe:
            pipe.time()
            pipe.zcard(index)
            pipe.zrange(index, start, start + count - 1, desc=order == "confidence")
            (seconds, micros), total, members = pipe.execute()
    except redis.RedisError as exc:
        raise memory.connection_error(exc) from exc
    now = int(seconds) * 1000 + int(micros) // 1000
    return now, total, [m.decode() for m in members]


SCAN_ORDERS = ("expiry", *SORTED_ORDERS)


def scan_staged(
    memory: RedisShortTermMemory,
    caller: Caller,
    order: str = "expiry",
    cursor: str | None = None,
    batch: int = 200,
) -> Iterator[tuple[StagedPattern, int, str]]:
    """Staged patterns in ``order`` (``"expiry"`` or one of ``SORTED_ORDERS``) from
    ``cursor`` on, read ``batch`` at a time as the caller iterates. Each comes with its
    expiry (ms) and the cursor that resumes right after it (the kind ``list_by_expiry``
    or ``list_sorted`` hands out), so a filtered listing can stop anywhere.
    """
    caller.require(READ, "get_staged_patterns")
    if order not in SCAN_ORDERS:
        raise InvalidValue(f"order must be one of {', '.join(SCAN_ORDERS)}, not {order!r}")
    batch = check_limit(batch)
    if order == "expiry":
        now = memory.server_time_ms()  # one clock for the whole scan: one round trip less
        while True:  # a batch at a time; each index member is its own resume cursor
            members, cursor = _expiry_members(memory, cursor, now, batch)
            yield from _scanned(memory, members, members, now)
            if cursor is None:
                return
    start = offset_cursor(cursor)
    while True:
        now, total, members = _sorted_members(memory, order, start, batch)
        after = [str(position) for position in range(start + 1, start + len(members) + 1)]
        yield from _scanned(memory, members, after, now)
        start += len(members)
        if len(members) < batch or start >= total:
            return


def _scanned(
    memory: RedisShortTermMemory, members: list[str], cursors: list[str], now: int
) -> Iterator[tuple[StagedPattern, int, str]]:
    """The patterns behind ``members`` that still exist and expire after ``now``, each
    with its expiry and its entry of ``cursors``."""
    for member, body, after in zip(members, _bodies(memory, members), cursors, strict=True):
        expires = int(member[:_CURSOR_DIGITS])
        if body is not None and expires > now:
            yield StagedPattern.from_json(body), expires, after
