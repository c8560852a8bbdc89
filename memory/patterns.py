"""Staged patterns: discoveries waiting for a validator to promote or reject them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import scripts
from .codec import check_confidence, check_id, decode, encode, holds_nul
from .connection import RedisConnection, redis_errors
from .exceptions import AccessDenied, InvalidValue
from .formats import (
    MINUTE_MS,
    decode_per_minute,
    member_bound,
    parse_pattern_member,
)
from .page import Page, check_limit, offset_cursor
from .pattern_index import (
    SORTED_ORDERS,
    bodies,
    check_cursor,
    expiry_members,
    first_members,
    per_shard,
    sorted_members,
    staged_range,
)
from .tiers import READ, VALIDATE, WRITE, Caller
from .ttl import TTLStrategy

# The index holds one member per staged pattern (``memory.formats.pattern_member``), all
# with score 0, so lexicographic order is expiry order. That gives exact keyset paging
# (ties broken by id), counts of what expires within any window, and lets every write
# trim expired members by range, whatever TTL each pattern was staged with. Two more
# sorted sets hold the same members scored by confidence and by staging time, for the
# queue's other orders (lua/includes/pattern_indexes.lua keeps the three in step).
# Under Redis Cluster the patterns are spread over shards by id (``KeySchema.
# pattern_shard``), each with these indexes; a listing reads each shard's share of a page
# in one pipeline and merges them.

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
        if holds_nul([self.name, self.description, self.code, self.context, self.interests]):
            raise InvalidValue("a pattern's text may not hold NUL characters (\\x00)")

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


def stage(memory: RedisConnection, caller: Caller, pattern: StagedPattern) -> StagedPattern:
    """Stage ``pattern`` as the caller, who must be its ``agent_id`` (``AccessDenied``
    otherwise: nobody stages in another agent's name). Restaging your own id replaces
    it; an id another agent staged raises ``IdTaken``. Idempotent: sent again after a
    lost reply, it stages the same pattern again."""
    caller.require(WRITE, "stage_pattern")
    if not isinstance(pattern, StagedPattern):
        raise TypeError(f"stage_pattern takes a StagedPattern, not {type(pattern).__name__}")
    pattern.validate()
    if pattern.agent_id != caller.user_id:
        raise AccessDenied(
            f"{caller.user_id} cannot stage a pattern as {pattern.agent_id}: the staging "
            "agent is always the caller"
        )
    body = memory.run_script(
        scripts.STAGE_PATTERN,
        caller,
        _keys(memory, pattern.pattern_id, scripts.STAGE_PATTERN),
        {
            "pattern_id": pattern.pattern_id,
            "agent_id": pattern.agent_id,
            "pattern_json": pattern.to_json(memory.max_value_bytes),
            "ttl_ms": memory.ttl_ms(TTLStrategy.STAGED_PATTERNS),
            "confidence": repr(float(pattern.confidence)),
        },
    )
    return StagedPattern.from_json(body)


def _keys(memory: RedisConnection, pattern_id: str, script: scripts.LuaScript) -> dict[str, str]:
    """The keys of a script on one pattern: its record and decision, and its shard's
    indexes."""
    shard = memory.keys.pattern_shard(pattern_id)
    built = {
        "pattern": shard.pattern(pattern_id),
        "pattern_decision": shard.pattern_decision(pattern_id),
    }
    return {name: built.get(name) or getattr(shard, name) for name in script.keys}


@redis_errors
def list_staged(
    memory: RedisConnection, caller: Caller, limit: int = 50, cursor: str | None = None
) -> Page[StagedPattern]:
    """Staged patterns, newest first (the latest to expire first), a page at a time."""
    caller.require(READ, "get_staged_patterns")
    limit = check_limit(limit)
    if cursor is not None:
        check_cursor(cursor)
    low = member_bound(memory.server_time_ms())  # expired ones are gone
    high = "+" if cursor is None else "(" + cursor
    members = staged_range(memory, high, low, limit + 1, rev=True)
    found = bodies(memory, members[:limit])
    items = [StagedPattern.from_json(b) for b in found if b is not None]
    next_cursor = members[limit - 1] if len(members) > limit else None
    return Page(items, next_cursor)


@redis_errors
def get_staged(memory: RedisConnection, caller: Caller, pattern_id: str) -> StagedPattern | None:
    caller.require(READ, "reading a staged pattern")
    raw = memory.client.hget(memory.keys.pattern(check_id(pattern_id, "pattern_id")), "json")
    return None if raw is None else StagedPattern.from_json(raw)


@redis_errors
def count_staged(
    memory: RedisConnection, caller: Caller, expiring_within_ms: int | None = None
) -> int:
    """How many patterns are staged; or, with ``expiring_within_ms``, how many of them
    expire within that time."""
    caller.require(READ, "counting staged patterns")
    now = memory.server_time_ms()
    high = "+" if expiring_within_ms is None else member_bound(now + expiring_within_ms)
    low = member_bound(now)
    return sum(
        per_shard(memory, lambda pipe, shard: pipe.zlexcount(shard.patterns_staged, low, high))
    )


@redis_errors
def staged_ttl_ms(memory: RedisConnection, caller: Caller, pattern_ids: list[str]) -> list[int]:
    """Remaining TTL of each staged pattern, in ms (negative once gone)."""
    caller.require(READ, "reading staged patterns")
    with memory.client.pipeline(transaction=False) as pipe:
        for pattern_id in pattern_ids:
            pipe.pttl(memory.keys.pattern(pattern_id))
        return pipe.execute()


def decide(
    memory: RedisConnection,
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
    body = memory.run_script(
        scripts.DECIDE_PATTERN,
        caller,
        _keys(memory, pattern_id, scripts.DECIDE_PATTERN),
        {
            "pattern_id": pattern_id,
            "decision": decision,
            "reason": reason,
            "decision_ttl_ms": memory.ttl_ms(TTLStrategy.STAGED_PATTERNS),
        },
    )
    return StagedPattern.from_json(body)


@redis_errors
def decision(memory: RedisConnection, caller: Caller, pattern_id: str) -> dict[str, Any] | None:
    """How a recently decided pattern was decided: decision, by, reason, at (ms), the
    pattern, ``expires``, the server time in ms at which it would have expired, and
    ``agent``, who staged it."""
    caller.require(READ, "reading a pattern decision")
    raw = memory.client.hgetall(memory.keys.pattern_decision(check_id(pattern_id, "pattern_id")))
    if not raw:
        return None
    fields: dict[str, Any] = {k.decode(): v.decode() for k, v in raw.items()}
    fields["at"] = int(fields["at"])
    fields["expires"] = int(fields["expires"])
    fields["pattern"] = decode(fields.pop("json"))
    return fields


# --- undo, expiry accounting, listing by expiry -------------------------------------

UNDO_WINDOW_MS = 10_000
EXPIRED_WINDOW_MS = 24 * 3_600_000


def restore(
    memory: RedisConnection,
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
    body, ttl = memory.run_script(
        scripts.RESTORE_PATTERN,
        caller,
        _keys(memory, pattern_id, scripts.RESTORE_PATTERN),
        {"pattern_id": pattern_id, "window_ms": window_ms},
    )
    return StagedPattern.from_json(body), int(ttl)


def prune_expired(memory: RedisConnection, caller: Caller) -> int:
    """Sweep patterns that expired undecided out of the index, counting them (see
    ``expired_count``); emits ``pattern.expired`` when there were any. Returns how many."""
    caller.require(READ, "prune_expired_patterns")
    script = scripts.PRUNE_PATTERNS
    runs = [
        (script, caller, {name: getattr(shard, name) for name in script.keys}, {})
        for shard in memory.keys.pattern_shards
    ]
    if len(runs) == 1:
        return int(memory.run_script(*runs[0]))
    return sum(int(swept) for swept in memory.run_scripts(runs))


@redis_errors
def expired_count(
    memory: RedisConnection, caller: Caller, within_ms: int = EXPIRED_WINDOW_MS
) -> int:
    """How many patterns expired undecided within the last ``within_ms`` (to the
    minute), as far as sweeps have seen them: call ``prune_expired`` first for an
    up-to-date count."""
    caller.require(READ, "counting expired patterns")
    now = memory.server_time_ms()
    first, last = (now - within_ms) // MINUTE_MS, now // MINUTE_MS
    answers = per_shard(memory, lambda pipe, shard: pipe.hgetall(shard.patterns_expired_per_minute))
    return sum(
        n
        for raw in answers
        for minute, n in decode_per_minute(raw).items()
        if first <= minute <= last
    )


@redis_errors
def recent_expired(
    memory: RedisConnection, caller: Caller, limit: int = 10, within_ms: int = EXPIRED_WINDOW_MS
) -> list[dict[str, Any]]:
    """The latest patterns that expired undecided (newest first): ``pattern_id`` and
    ``expired_at`` (server ms)."""
    caller.require(READ, "listing expired patterns")
    oldest = memory.server_time_ms() - within_ms
    limit = check_limit(limit)
    logs = per_shard(
        memory, lambda pipe, shard: pipe.lrange(shard.patterns_expired_log, 0, limit - 1)
    )
    found = []
    for raw in first_members(logs, limit, rev=True):  # newest first: members lead by expiry
        expiry, pattern_id = parse_pattern_member(raw)
        if expiry >= oldest:
            found.append({"pattern_id": pattern_id, "expired_at": expiry})
    return found


def list_by_expiry(
    memory: RedisConnection, caller: Caller, limit: int = 50, cursor: str | None = None
) -> Page[tuple[StagedPattern, int]]:
    """Staged patterns, expiring soonest first, each with the server time (ms) at which
    it expires, a page at a time (keyset paging on the index)."""
    caller.require(READ, "get_staged_patterns")
    limit = check_limit(limit)
    shown, next_cursor = expiry_members(memory, cursor, memory.server_time_ms(), limit)
    return Page(_with_bodies(memory, shown), next_cursor)


def _with_bodies(
    memory: RedisConnection, members: list[str], now: int = 0
) -> list[tuple[StagedPattern, int]]:
    """The patterns behind index members, each with its expiry (ms); those gone, or
    expired by ``now``, are left out."""
    return [(pattern, expires) for pattern, expires, _ in _scanned(memory, members, members, now)]


def list_sorted(
    memory: RedisConnection,
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
    now, total, members = sorted_members(memory, order, start, limit)
    items = _with_bodies(memory, members, now)
    more = start + limit < total
    return Page(items, str(start + limit) if more else None, total)


SCAN_ORDERS = ("expiry", *SORTED_ORDERS)


Scanned = tuple[StagedPattern, int, str]


class StagedScan:
    """Staged patterns as ``scan_staged`` reads them. While and after it is iterated,
    ``read`` says how many patterns it has read (matching or not), ``cursor`` resumes
    right after the last of them, and ``out_of_budget`` says it stopped at its budget."""

    def __init__(
        self,
        rows: Iterator[Scanned],
        predicate: Callable[[StagedPattern], bool] | None,
        budget: int | None,
    ) -> None:
        self._rows, self._predicate, self._budget = rows, predicate, budget
        self.read = 0
        self.cursor: str | None = None
        self.out_of_budget = False
        self._walk = self._matches()

    def __iter__(self) -> StagedScan:
        return self

    def __next__(self) -> Scanned:
        return next(self._walk)

    def _matches(self) -> Iterator[Scanned]:
        for pattern, expires, after in self._rows:
            self.read += 1
            self.cursor = after
            if self._predicate is None or self._predicate(pattern):
                yield pattern, expires, after
            if self._budget is not None and self.read >= self._budget:
                self.out_of_budget = True
                return


def scan_staged(
    memory: RedisConnection,
    caller: Caller,
    order: str = "expiry",
    cursor: str | None = None,
    batch: int = 200,
    *,
    predicate: Callable[[StagedPattern], bool] | None = None,
    budget: int | None = None,
) -> StagedScan:
    """Staged patterns in ``order`` (``"expiry"`` or one of ``SORTED_ORDERS``) from
    ``cursor`` on, read ``batch`` at a time as the caller iterates, keeping those that
    ``predicate`` accepts and reading at most ``budget``. Each comes with its expiry
    (ms) and the cursor that resumes right after it (the kind ``list_by_expiry`` or
    ``list_sorted`` hands out), so a filtered listing can stop anywhere.
    """
    caller.require(READ, "get_staged_patterns")
    if order not in SCAN_ORDERS:
        raise InvalidValue(f"order must be one of {', '.join(SCAN_ORDERS)}, not {order!r}")
    batch = check_limit(batch)
    if budget is not None and (
        isinstance(budget, bool) or not isinstance(budget, int) or budget < 1
    ):
        raise InvalidValue(f"budget must be a positive integer, got {budget!r}")
    if order == "expiry":
        if cursor is not None:
            check_cursor(cursor)
        rows = _scan_by_expiry(memory, cursor, batch)
    else:
        rows = _scan_sorted(memory, order, offset_cursor(cursor), batch)
    return StagedScan(rows, predicate, budget)


def _scan_by_expiry(memory: RedisConnection, cursor: str | None, batch: int) -> Iterator[Scanned]:
    now = memory.server_time_ms()  # one clock for the whole scan: one round trip less
    while True:  # a batch at a time; each index member is its own resume cursor
        members, cursor = expiry_members(memory, cursor, now, batch)
        yield from _scanned(memory, members, members, now)
        if cursor is None:
            return


def _scan_sorted(memory: RedisConnection, order: str, start: int, batch: int) -> Iterator[Scanned]:
    while True:
        now, total, members = sorted_members(memory, order, start, batch)
        after = [str(position) for position in range(start + 1, start + len(members) + 1)]
        yield from _scanned(memory, members, after, now)
        start += len(members)
        if len(members) < batch or start >= total:
            return


def _scanned(
    memory: RedisConnection, members: list[str], cursors: list[str], now: int
) -> Iterator[Scanned]:
    """The patterns behind ``members`` that still exist and expire after ``now``, each
    with its expiry and its entry of ``cursors``."""
    for member, body, after in zip(members, bodies(memory, members), cursors, strict=True):
        expires = parse_pattern_member(member)[0]
        if body is not None and expires > now:
            yield StagedPattern.from_json(body), expires, after
