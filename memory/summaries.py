"""Per-team counts for overviews: tasks by state, and agents by liveness."""

from __future__ import annotations

import json
from typing import Any

from .codec import ttl_ms
from .connection import RedisConnection, queue_time, redis_errors, time_ms
from .keys import KeySchema
from .registry import liveness_ranges
from .scripts import TEAM_SUMMARY
from .team import ALIVE_SECONDS
from .tiers import READ, Caller
from .ttl import TTLStrategy


@redis_errors
def team_summaries(
    memory: RedisConnection, caller: Caller, team_ids: list[str], *, agents: bool = True
) -> dict[str, dict[str, Any]]:
    """For each team: tasks per state, pending per task type, how long (ms) the oldest
    pending task of each type has waited (``waiting_ms``, only types with pending tasks:
    see ``metrics.queue_latency``), and (with ``agents``) how many agents are alive,
    late and dead (by a coordinator's default thresholds). Two round trips, however
    many teams: the teams' task types, then one read function a team
    (``lua/team_summary.lua``)."""
    caller.require(READ, "team summaries")
    keys = memory.keys
    with memory.client.pipeline(transaction=False) as pipe:
        queue_time(pipe)
        for team_id in team_ids:
            pipe.smembers(keys.team(team_id, "types"))
        clock, *type_sets = pipe.execute()
    now = time_ms(clock)
    cutoff = now - memory.ttl_ms(TTLStrategy.WORKING_RESULTS)
    ranges = liveness_ranges(now, ttl_ms(ALIVE_SECONDS), memory.ttl_ms(TTLStrategy.COORDINATION))
    types = [sorted(t.decode() for t in members) for members in type_sets]
    wanted = json.dumps([[str(low), str(high)] for _, low, high in ranges] if agents else [])
    runs = [
        (TEAM_SUMMARY, caller, _summary_keys(keys, team, team_types),
         {"cutoff": cutoff, "ranges": wanted})
        for team, team_types in zip(team_ids, types, strict=True)
    ]  # fmt: skip
    replies = memory.run_scripts(runs) if runs else []
    states = [state for state, _, _ in ranges] if agents else None
    return {
        team: _summary(reply, team_types, now, states)
        for team, team_types, reply in zip(team_ids, types, replies, strict=True)
    }


def _summary_keys(keys: KeySchema, team: str, task_types: list[str]) -> dict[str, Any]:
    return {
        "completed": keys.team(team, "completed"),
        "dead": keys.team(team, "dead"),
        "heartbeats": keys.team(team, "heartbeats"),
        "queues": [
            key
            for task_type in task_types
            for key in (
                keys.queue(team, task_type),
                keys.leases(team, task_type),
                keys.waiting(team, task_type),  # by when each became pending
            )
        ],
    }


def _summary(
    reply: list[Any], task_types: list[str], now: int, states: list[str] | None
) -> dict[str, Any]:
    """A team's summary from its ``team_summary`` reply."""
    answers = iter(reply)
    figures = [(task_type, next(answers), next(answers), next(answers)) for task_type in task_types]
    completed, dead = next(answers), next(answers)
    pending_by_type = {task_type: pending for task_type, pending, _, _ in figures}
    summary: dict[str, Any] = {
        "pending": sum(pending_by_type.values()),
        "claimed": sum(claimed for _, _, claimed, _ in figures),
        "completed": completed,
        "dead": dead,
        "pending_by_type": pending_by_type,
        "waiting_ms": {
            task_type: max(0, now - int(float(oldest)))
            for task_type, _, _, oldest in figures
            if oldest is not None
        },
    }
    if states is not None:
        summary["agents"] = {state: next(answers) for state in states}
    return summary
