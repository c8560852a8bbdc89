"""Staged patterns by team: the team each pattern is staged in, decided once when it is
staged, and reads of the per-team orderings (``memory.formats.team_member``) restricted
to some teams. A restricted read asks each pattern shard about each listed team (and
the org-wide patterns), so its cost follows those teams and a page, never the whole
index."""

from __future__ import annotations

from collections.abc import Collection
from enum import Enum
from typing import TYPE_CHECKING, Any

from . import team_filter
from .codec import check_id
from .connection import RedisConnection, redis_errors
from .exceptions import InvalidValue
from .formats import (
    expiry_part,
    series_bucket,
    sort_part_member,
    split_team_member,
    team_bound,
    team_minute,
    team_range,
)
from .keys import PatternShard
from .pattern_index import SORTED_ORDERS, per_shard
from .registry import agent_teams_of
from .tiers import Caller

if TYPE_CHECKING:
    from .patterns import StagedPattern

# The listings' orders: the per-team ordering each reads, whether from its end, and the
# order whose sort parts it holds. "newest" is the expiry order from its end.
TEAM_ORDERS = {
    "newest": ("patterns_team_expiry", True, "expiry"),
    "expiry": ("patterns_team_expiry", False, "expiry"),
    "confidence": ("patterns_team_confidence", True, "confidence"),
    "staged_at": ("patterns_team_staged_at", False, "staged_at"),
}
# Teams as the reads below take them: None stands for the org-wide patterns.
Teams = list[str | None]


class AnyTeam(Enum):
    """What ``patterns.decide`` takes for a pattern of any team (its default)."""

    ANY = "any"


ANY_TEAM = AnyTeam.ANY


def resolve_team(memory: RedisConnection, caller: Caller, pattern: StagedPattern) -> str | None:
    """The team ``pattern`` is staged in: its ``team`` if given; else its context's
    ``"team"`` when that is a valid team id; else the one team its agent is registered
    in; else (registered in no team, or in several) None: org-wide."""
    if pattern.team is not None:
        return pattern.team
    named = pattern.context.get("team")
    if isinstance(named, str):
        try:
            return check_id(named, "team")
        except InvalidValue:
            pass
    found = registered_teams(memory, caller, pattern.agent_id)
    return found[0] if len(found) == 1 else None


@redis_errors
def registered_teams(memory: RedisConnection, caller: Caller, agent_id: str) -> list[str]:
    """The teams ``agent_id`` is registered in (a member of the team's ``heartbeats``),
    sorted.

    Read from the agent's own index of its teams (``registry.agent_teams_of``), each
    checked against the team's heartbeats, since that index may hold a team left over:
    O(the agent's teams), in two round trips. ``registry.agent_teams`` would read every
    member of every team: O(all registered agents)."""
    named = agent_teams_of(memory, caller, [agent_id]).get(agent_id, [])
    if not named:
        return []
    with memory.client.pipeline(transaction=False) as pipe:
        for team_id in named:
            pipe.zscore(memory.keys.team(team_id, "heartbeats"), agent_id)
        scores = pipe.execute()
    return [team for team, score in zip(named, scores, strict=True) if score is not None]


def check_teams(teams: Collection[str]) -> Teams:
    """The teams a restricted listing reads (``memory.team_filter.check_teams``): those
    given, each once, and the org-wide patterns (None, first)."""
    return [None, *sorted(team_filter.check_teams(teams) or ())]


def check_team_cursor(order: str, cursor: object) -> str:
    """A cursor of a restricted listing in ``order`` is a sort part of that order."""
    if isinstance(cursor, str):
        try:
            sort_part_member(TEAM_ORDERS[order][2], cursor)
            return cursor
        except InvalidValue:
            pass
    raise InvalidValue(f"cursor {str(cursor)[:40]!r} is not one this listing handed out")


def _bounds(team: str | None, after: str | None, floor: str | None, rev: bool) -> list[str]:
    """The ZRANGE BYLEX bounds of ``team``'s members after ``after`` and above ``floor``
    (sort parts, exclusive), in the order a read (``rev``: from the end) takes them."""
    low, high = team_range(team)
    if rev and after is not None:
        high = team_bound(team, after)
    start = floor if rev or after is None else max(after, floor or "")
    if start is not None:
        low = team_bound(team, start)
    return [high, low, "BYLEX", "REV"] if rev else [low, high, "BYLEX"]


@redis_errors
def team_parts(
    memory: RedisConnection,
    order: str,
    teams: Teams,
    after: str | None,
    count: int,
    floor: str | None = None,
) -> list[str]:
    """The first ``count`` sort parts of ``teams``' patterns in ``order`` (of
    ``TEAM_ORDERS``) after ``after`` and, with ``floor``, above it, merged over the teams
    and every shard: one ZRANGE BYLEX per team and shard, in one pipeline."""
    index, rev, _ = TEAM_ORDERS[order]
    with memory.client.pipeline(transaction=False) as pipe:
        for shard in memory.keys.pattern_shards:
            for team in teams:
                bounds = _bounds(team, after, floor, rev)
                pipe.execute_command("ZRANGE", getattr(shard, index), *bounds, "LIMIT", 0, count)
        answers = pipe.execute()
    parts = sorted((split_team_member(m)[1] for found in answers for m in found), reverse=rev)
    return parts[:count]


def team_page(
    memory: RedisConnection,
    order: str,
    teams: Teams,
    cursor: str | None,
    limit: int,
    now: int,
) -> tuple[list[str], list[str], str | None]:
    """Up to ``limit`` of ``teams``' patterns in ``order`` after ``cursor``: their index
    members, their sort parts (each the cursor that resumes right after it), and the
    cursor of the next page (None when none follow). The orders by expiry leave out
    what expired by ``now``."""
    if cursor is not None:
        check_team_cursor(order, cursor)
    fmt = TEAM_ORDERS[order][2]
    floor = expiry_part(now) if fmt == "expiry" else None
    parts = team_parts(memory, order, teams, cursor, limit + 1, floor)
    shown = parts[:limit]
    members = [sort_part_member(fmt, part) for part in shown]
    return members, shown, shown[-1] if len(parts) > limit else None


def check_sorted_order(order: object) -> str:
    if order not in SORTED_ORDERS:
        raise InvalidValue(f"order must be one of {', '.join(SORTED_ORDERS)}, not {order!r}")
    return str(order)


@redis_errors
def count_in_teams(
    memory: RedisConnection,
    order: str,
    teams: Teams,
    low: str | None = None,
    high: str | None = None,
) -> int:
    """How many of ``teams``' patterns the ordering of ``order`` holds with sort parts
    above ``low`` and below ``high`` (exclusive; None: unbounded): one ZLEXCOUNT per
    team and shard."""
    index = TEAM_ORDERS[order][0]

    def count(pipe: Any, shard: PatternShard) -> None:
        for team in teams:
            start, stop = team_range(team)
            start = start if low is None else team_bound(team, low)
            stop = stop if high is None else team_bound(team, high)
            pipe.zlexcount(getattr(shard, index), start, stop)

    return sum(per_shard(memory, count))


def expiring_count(memory: RedisConnection, teams: Teams, now: int, within_ms: int | None) -> int:
    """How many of ``teams``' patterns are staged (expire after ``now``), or with
    ``within_ms``, expire within that time."""
    high = None if within_ms is None else expiry_part(now + within_ms)
    return count_in_teams(memory, "expiry", teams, expiry_part(now), high)


@redis_errors
def expired_in_teams(memory: RedisConnection, teams: Teams, first: int, last: int) -> int:
    """How many of ``teams``' patterns expired undecided in the minutes from ``first``
    to ``last``: per shard, the teams' counts of those minutes, or all its counts (by
    minute and by hour) when it holds fewer."""
    fields = [team_minute(team, minute) for team in teams for minute in range(first, last + 1)]
    sizes = per_shard(memory, lambda pipe, shard: pipe.hlen(shard.patterns_expired_team_minute))
    with memory.client.pipeline(transaction=False) as pipe:
        for shard, size in zip(memory.keys.pattern_shards, sizes, strict=True):
            if size <= len(fields):
                pipe.hgetall(shard.patterns_expired_team_minute)
            else:
                pipe.hmget(shard.patterns_expired_team_minute, fields)
        answers = pipe.execute()
    wanted, total = set(teams), 0
    for answer in answers:
        if isinstance(answer, dict):
            for field, n in answer.items():
                team, bucket = split_team_member(field)
                hourly, minute = series_bucket(bucket)
                total += int(n) if not hourly and team in wanted and first <= minute <= last else 0
        else:
            total += sum(int(n) for n in answer if n is not None)
    return total
