"""Per-minute series for the last hour: signals sent (in all, or of some teams), and each
team's queue depth; and how long each team's oldest pending task of each type has
waited (``queue_latency``)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from .codec import check_id
from .connection import RedisConnection, redis_errors
from .exceptions import InvalidValue
from .formats import MINUTE_MS, ORG_WIDE, decode_per_minute, team_minute
from .registry import list_teams
from .summaries import team_summaries
from .team_filter import check_teams
from .tiers import READ, Caller

MINUTES = 60


@redis_errors
def signal_rate(
    memory: RedisConnection,
    caller: Caller,
    minutes: int = MINUTES,
    *,
    teams: Collection[str] | None = None,
) -> list[int]:
    """Signals sent in each of the last ``minutes`` minutes, oldest first; with
    ``teams``, only those of these teams and org-wide ones (``memory.team_filter``)."""
    caller.require(READ, "signal_rate")
    allowed = check_teams(teams)
    now_minute = memory.server_time_ms() // MINUTE_MS
    span = range(now_minute - minutes + 1, now_minute + 1)
    if allowed is None:
        counts = decode_per_minute(memory.client.hgetall(memory.keys.signals_rate))
        return [counts.get(m, 0) for m in span]
    groups = [ORG_WIDE, *sorted(allowed)]
    fields = [team_minute(team, minute) for team in groups for minute in span]
    answers = memory.client.hmget(memory.keys.signals_team_rate, fields) if fields else []
    rate = [0] * len(span)
    for i, count in enumerate(answers):
        rate[i % len(span)] += int(count or 0)
    return rate


@redis_errors
def queue_depth(
    memory: RedisConnection,
    caller: Caller,
    team_id: str | list[str] | None = None,
    minutes: int = MINUTES,
) -> list[int]:
    """Pending tasks at the end of each of the last ``minutes`` minutes, oldest first;
    for one team, summed over a list of teams, or over every team (None: a walk of the
    whole teams index, for totals; a page of teams costs only that page).

    The scripts record each minute's net change of the pending count; the series walks
    back from the queues' current sizes, read in the same transaction as the changes.
    """
    now_minute = memory.server_time_ms() // MINUTE_MS
    keys = memory.keys
    caller.require(READ, "queue_depth")
    if team_id is None:
        teams = list_teams(memory, caller)
    else:
        teams = [team_id] if isinstance(team_id, str) else list(team_id)
    with memory.client.pipeline(transaction=False) as pipe:
        for team in teams:
            pipe.smembers(keys.team(team, "types"))
        types = [sorted(t.decode() for t in members) for members in pipe.execute()]
    answers = iter(_changes_and_sizes(memory, teams, types))
    total = [0] * minutes
    for team_types in types:
        changes = decode_per_minute(next(answers))
        value = sum(next(answers) for _ in team_types)
        for i in range(minutes - 1, -1, -1):
            total[i] += value
            value -= changes.get(now_minute - (minutes - 1 - i), 0)
    return total


def _changes_and_sizes(
    memory: RedisConnection, teams: list[str], types: list[list[str]]
) -> list[Any]:
    """Each team's per-minute changes and then its queues' sizes, each team's read in
    one transaction (under Cluster, a transaction covers one team's hash slot)."""
    keys = memory.keys
    groups = [list(zip(teams, types, strict=True))]
    if memory.cluster:
        groups = [[pair] for pair in groups[0]]
    answers: list[Any] = []
    for group in groups:
        with memory.client.pipeline(transaction=True) as pipe:
            for team, team_types in group:
                pipe.hgetall(keys.team(team, "queue_changes"))
                for task_type in team_types:
                    pipe.zcard(keys.queue(team, task_type))
            answers.extend(pipe.execute())
    return answers


@redis_errors
def queue_latency(
    memory: RedisConnection, caller: Caller, team_ids: Collection[str]
) -> dict[str, dict[str, int]]:
    """For each team, by task type, how long (ms, by the server's clock) the oldest of
    its pending tasks of that type has waited since it last became pending: added, or
    put back by a failure, a lease that ran out or a requeue. Only types with pending
    tasks are listed.

    Each type's pending tasks are also kept by when they became pending (``waiting``,
    by the scripts that add, claim, requeue, cancel and reap), beside the queue, whose
    order is priority first: the oldest is its first member, O(1) per team and type.
    The figures are ``team_summaries``' (``waiting_ms``): two round trips, however many
    teams."""
    caller.require(READ, "queue_latency")
    if isinstance(team_ids, str | bytes):
        raise InvalidValue("team_ids must be a collection of team ids, not one string")
    teams = list(dict.fromkeys(check_id(team, "team") for team in team_ids))
    summaries = team_summaries(memory, caller, teams, agents=False)
    return {team: summaries[team]["waiting_ms"] for team in teams}
