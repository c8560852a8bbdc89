"""Staged patterns: discoveries waiting for a validator to promote or reject them."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from typing import Any

from . import scripts
from .codec import check_id, decode
from .connection import RedisConnection, redis_errors
from .exceptions import AccessDenied, InvalidValue
from .formats import (
    MINUTE_MS,
    ORG_WIDE,
    confidence_key,
    decode_per_minute,
    member_bound,
    parse_expired_entry,
)
from .page import Page, check_limit, offset_cursor
from .pattern_index import (
    bodies,
    check_cursor,
    expiry_members,
    first_members,
    per_shard,
    sorted_members,
    staged_range,
)
from .pattern_scan import SCAN_ORDERS as SCAN_ORDERS
from .pattern_scan import StagedScan as StagedScan
from .pattern_scan import scan_staged as scan_staged
from .pattern_scan import with_bodies
from .pattern_teams import (
    ANY_TEAM,
    AnyTeam,
    check_sorted_order,
    check_teams,
    count_in_teams,
    expired_in_teams,
    expiring_count,
    resolve_team,
    team_page,
)
from .staged_pattern import StagedPattern
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
# in one pipeline and merges them. Each pattern belongs to a team (or to the whole org),
# and each shard orders its patterns by team too, so that every listing can be
# restricted to some teams (``teams``) at a cost that follows them (memory/pattern_teams.py).

# The longest reason (or note) a decision may carry.
MAX_REASON_LENGTH = 2000


def stage(memory: RedisConnection, caller: Caller, pattern: StagedPattern) -> StagedPattern:
    """Stage ``pattern`` as the caller, who must be its ``agent_id`` (``AccessDenied``
    otherwise: nobody stages in another agent's name). Restaging your own id replaces
    it; an id another agent staged raises ``IdTaken``. Idempotent: sent again after a
    lost reply, it stages the same pattern again. The pattern's team is decided here
    (``pattern_teams.resolve_team``); the stored and returned pattern carry it."""
    caller.require(WRITE, "stage_pattern")
    if not isinstance(pattern, StagedPattern):
        raise TypeError(f"stage_pattern takes a StagedPattern, not {type(pattern).__name__}")
    pattern.validate()
    if pattern.agent_id != caller.user_id:
        raise AccessDenied(
            f"{caller.user_id} cannot stage a pattern as {pattern.agent_id}: the staging "
            "agent is always the caller"
        )
    pattern = replace(pattern, team=resolve_team(memory, caller, pattern))
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
            "team": pattern.team or ORG_WIDE,
            "confidence_key": confidence_key(pattern.confidence),
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
    memory: RedisConnection,
    caller: Caller,
    limit: int = 50,
    cursor: str | None = None,
    *,
    teams: Collection[str] | None = None,
) -> Page[StagedPattern]:
    """Staged patterns, newest first (the latest to expire first), a page at a time;
    with ``teams``, only theirs and the org-wide ones (same cursors either way)."""
    caller.require(READ, "get_staged_patterns")
    limit = check_limit(limit)
    now = memory.server_time_ms()
    if teams is not None:
        shown, _, next_cursor = team_page(memory, "newest", check_teams(teams), cursor, limit, now)
    else:
        if cursor is not None:
            check_cursor(cursor)
        high = "+" if cursor is None else "(" + cursor
        members = staged_range(memory, high, member_bound(now), limit + 1, rev=True)
        shown = members[:limit]
        next_cursor = members[limit - 1] if len(members) > limit else None
    found = bodies(memory, shown)
    return Page([StagedPattern.from_json(b) for b in found if b is not None], next_cursor)


@redis_errors
def get_staged(memory: RedisConnection, caller: Caller, pattern_id: str) -> StagedPattern | None:
    """A staged pattern as it is stored, its team included; None when it is not staged."""
    caller.require(READ, "reading a staged pattern")
    raw = memory.client.hget(memory.keys.pattern(check_id(pattern_id, "pattern_id")), "json")
    return None if raw is None else StagedPattern.from_json(raw)


@redis_errors
def count_staged(
    memory: RedisConnection,
    caller: Caller,
    expiring_within_ms: int | None = None,
    *,
    teams: Collection[str] | None = None,
) -> int:
    """How many patterns are staged; or, with ``expiring_within_ms``, how many of them
    expire within that time; with ``teams``, of theirs and the org-wide ones."""
    caller.require(READ, "counting staged patterns")
    now = memory.server_time_ms()
    if teams is not None:
        return expiring_count(memory, check_teams(teams), now, expiring_within_ms)
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
    *,
    team: str | None | AnyTeam = ANY_TEAM,
) -> StagedPattern:
    """Promote or reject a staged pattern, atomically; returns the pattern decided.
    With ``team`` (a team id, or None: org-wide), only while the pattern is of that
    team: ``NotFound`` otherwise, as for a pattern no longer staged."""
    action = "promote_pattern" if decision == "promoted" else "reject_pattern"
    caller.require(VALIDATE, action)
    if decision not in ("promoted", "rejected"):
        raise InvalidValue(f"decision must be promoted or rejected, not {decision!r}")
    check_id(pattern_id, "pattern_id")
    if decision == "rejected" and not (isinstance(reason, str) and reason.strip()):
        raise InvalidValue("rejecting a pattern needs a reason")
    if not isinstance(reason, str) or len(reason) > MAX_REASON_LENGTH:
        raise InvalidValue(f"reason must be a string of at most {MAX_REASON_LENGTH} characters")
    if team is not ANY_TEAM and team is not None:
        check_id(team, "team")
    body = memory.run_script(
        scripts.DECIDE_PATTERN,
        caller,
        _keys(memory, pattern_id, scripts.DECIDE_PATTERN),
        {
            "pattern_id": pattern_id,
            "decision": decision,
            "reason": reason,
            "decision_ttl_ms": memory.ttl_ms(TTLStrategy.STAGED_PATTERNS),
            "team": "" if team is ANY_TEAM else team or ORG_WIDE,
            "check_team": "" if team is ANY_TEAM else "1",
        },
    )
    return StagedPattern.from_json(body)


@redis_errors
def decision(memory: RedisConnection, caller: Caller, pattern_id: str) -> dict[str, Any] | None:
    """How a recently decided pattern was decided: decision, by, reason, at (ms), the
    pattern (with its team), ``expires``, the server time in ms at which it would have
    expired, and ``agent``, who staged it."""
    caller.require(READ, "reading a pattern decision")
    raw = memory.client.hgetall(memory.keys.pattern_decision(check_id(pattern_id, "pattern_id")))
    if not raw:
        return None
    fields: dict[str, Any] = {k.decode(): v.decode() for k, v in raw.items()}
    fields["at"] = int(fields["at"])
    fields["expires"] = int(fields["expires"])
    fields["pattern"] = decode(fields.pop("json"))
    fields.pop("team_entry", None)  # what an undo restores the team orderings from
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
    memory: RedisConnection,
    caller: Caller,
    within_ms: int = EXPIRED_WINDOW_MS,
    *,
    teams: Collection[str] | None = None,
) -> int:
    """How many patterns expired undecided within the last ``within_ms`` (to the
    minute), as far as sweeps have seen them: call ``prune_expired`` first for an
    up-to-date count. With ``teams``, of theirs and the org-wide ones."""
    caller.require(READ, "counting expired patterns")
    now = memory.server_time_ms()
    first, last = (now - within_ms) // MINUTE_MS, now // MINUTE_MS
    if teams is not None:
        return expired_in_teams(memory, check_teams(teams), first, last)
    answers = per_shard(memory, lambda pipe, shard: pipe.hgetall(shard.patterns_expired_per_minute))
    return sum(
        n
        for raw in answers
        for minute, n in decode_per_minute(raw).items()
        if first <= minute <= last
    )


@redis_errors
def recent_expired(
    memory: RedisConnection,
    caller: Caller,
    limit: int = 10,
    within_ms: int = EXPIRED_WINDOW_MS,
    *,
    teams: Collection[str] | None = None,
) -> list[dict[str, Any]]:
    """The latest patterns that expired undecided (newest first): ``pattern_id``,
    ``expired_at`` (server ms) and ``team`` (None: org-wide). With ``teams``, those of
    theirs and the org-wide ones among the latest that each shard's log keeps (50)."""
    caller.require(READ, "listing expired patterns")
    oldest = memory.server_time_ms() - within_ms
    limit = check_limit(limit)
    wanted = None if teams is None else set(check_teams(teams))
    last = limit - 1 if wanted is None else -1
    logs = per_shard(memory, lambda pipe, shard: pipe.lrange(shard.patterns_expired_log, 0, last))
    found: list[dict[str, Any]] = []
    # newest first: entries lead by their index member, which leads by expiry
    for raw in first_members(logs, sum(map(len, logs)), rev=True):
        expiry, pattern_id, team = parse_expired_entry(raw)
        if expiry >= oldest and (wanted is None or team in wanted) and len(found) < limit:
            found.append({"pattern_id": pattern_id, "expired_at": expiry, "team": team})
    return found


def list_by_expiry(
    memory: RedisConnection,
    caller: Caller,
    limit: int = 50,
    cursor: str | None = None,
    *,
    teams: Collection[str] | None = None,
) -> Page[tuple[StagedPattern, int]]:
    """Staged patterns, expiring soonest first, each with the server time (ms) at which
    it expires, a page at a time (keyset paging on the index); with ``teams``, only
    theirs and the org-wide ones (same cursors either way)."""
    caller.require(READ, "get_staged_patterns")
    limit = check_limit(limit)
    now = memory.server_time_ms()
    if teams is not None:
        shown, _, next_cursor = team_page(memory, "expiry", check_teams(teams), cursor, limit, now)
    else:
        shown, next_cursor = expiry_members(memory, cursor, now, limit)
    return Page(with_bodies(memory, shown), next_cursor)


def list_sorted(
    memory: RedisConnection,
    caller: Caller,
    order: str,
    limit: int = 50,
    cursor: str | None = None,
    *,
    teams: Collection[str] | None = None,
) -> Page[tuple[StagedPattern, int]]:
    """Staged patterns in one of ``SORTED_ORDERS``, each with the server time (ms) at
    which it expires, a page at a time (offset cursors; ``total`` is how many are
    staged). Call ``prune_expired`` first: patterns that expired since the last sweep
    are left out, so a page can come back short.

    With ``teams``, only theirs and the org-wide ones, with keyset cursors instead (the
    sort part of the last pattern read, ``memory.formats.sort_part``), which only a
    restricted call takes back; ``total`` is how many those teams have staged."""
    caller.require(READ, "get_staged_patterns")
    limit = check_limit(limit)
    if teams is not None:
        chosen, now = check_teams(teams), memory.server_time_ms()
        shown, _, next_cursor = team_page(
            memory, check_sorted_order(order), chosen, cursor, limit, now
        )
        total = count_in_teams(memory, order, chosen)
        return Page(with_bodies(memory, shown, now), next_cursor, total)
    start = offset_cursor(cursor)
    now, total, members = sorted_members(memory, order, start, limit)
    items = with_bodies(memory, members, now)
    more = start + limit < total
    return Page(items, str(start + limit) if more else None, total)
