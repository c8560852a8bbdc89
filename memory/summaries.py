"""Per-team counts for overviews: tasks by state, and agents by liveness."""

from __future__ import annotations

from typing import Any

from .codec import ttl_ms
from .connection import RedisConnection, queue_time, redis_errors, time_ms
from .registry import liveness_ranges
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
    many teams."""
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
    with memory.client.pipeline(transaction=False) as pipe:
        for team, team_types in zip(team_ids, types, strict=True):
            for task_type in team_types:
                pipe.zcard(keys.queue(team, task_type))
            for task_type in team_types:
                pipe.zcard(keys.leases(team, task_type))
            for task_type in team_types:  # its oldest pending task, by when it became so
                pipe.zrange(keys.waiting(team, task_type), 0, 0, withscores=True)
            pipe.zcount(keys.team(team, "completed"), f"({cutoff}", "+inf")
            pipe.zcard(keys.team(team, "dead"))
            if agents:
                for _, low, high in ranges:
                    pipe.zcount(keys.team(team, "heartbeats"), low, high)
        answers = iter(pipe.execute())
    summaries = {}
    for team, team_types in zip(team_ids, types, strict=True):
        pending_by_type = {task_type: next(answers) for task_type in team_types}
        claimed = sum(next(answers) for _ in team_types)
        oldest = {task_type: next(answers) for task_type in team_types}
        completed, dead = next(answers), next(answers)
        summary: dict[str, Any] = {
            "pending": sum(pending_by_type.values()),
            "claimed": claimed,
            "completed": completed,
            "dead": dead,
            "pending_by_type": pending_by_type,
            "waiting_ms": {
                task_type: max(0, now - int(first[0][1]))
                for task_type, first in oldest.items()
                if first
            },
        }
        if agents:
            summary["agents"] = {state: next(answers) for state, _, _ in ranges}
        summaries[team] = summary
    return summaries
