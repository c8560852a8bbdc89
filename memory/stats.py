"""Counts for ``RedisConnection.get_stats``."""

from __future__ import annotations

from typing import Any

import redis

from .connection import RedisConnection, redis_errors
from .formats import member_bound, signal_bound
from .registry import list_teams
from .summaries import team_summaries
from .tiers import READ, Caller
from .ttl import TTLStrategy

# ``get_stats`` belongs to the memory, which has no caller of its own: its counts are
# read as an observer would read them.
_STATS = Caller("memory:get_stats", READ)


@redis_errors
def used_memory(memory: RedisConnection) -> int | None:
    """Bytes the server uses (``INFO memory``), or None where it does not say."""
    try:
        return memory.client.info("memory").get("used_memory")
    except redis.ResponseError:
        return None


@redis_errors
def collect_stats(memory: RedisConnection, *, teams: bool = True) -> dict[str, Any]:
    """Counts of each kind of data; with ``teams``, tasks by state and agents by
    liveness summed over every team (a walk of the whole teams index: pages that list a
    page of teams sum that page's summaries instead)."""
    keys = memory.keys
    now = memory.server_time_ms()
    patterns_cutoff = member_bound(now)  # the index is ordered by expiry time
    signals_cutoff = signal_bound(now - memory.ttl_ms(TTLStrategy.COORDINATION))
    agents = [a.decode() for a in memory.client.zrangebyscore(keys.working_agents, now, "+inf")]
    with memory.client.pipeline(transaction=False) as pipe:
        for agent_id in agents:
            pipe.zcount(keys.working_index(agent_id), f"({now}", "+inf")
        for shard in keys.pattern_shards:
            pipe.zlexcount(shard.patterns_staged, patterns_cutoff, "+")
        pipe.zlexcount(keys.signals_recent, signals_cutoff, "+")
        pipe.zcount(keys.sessions, f"({now}", "+inf")
        for stream in memory.event_streams:
            pipe.xlen(stream)
        answers = pipe.execute()
    working_keys = sum(answers[: len(agents)])
    shards = len(keys.pattern_shards)
    staged = sum(answers[len(agents) : len(agents) + shards])
    signals, sessions, *lengths = answers[len(agents) + shards :]
    events = sum(lengths)
    tasks = {"pending": 0, "claimed": 0, "completed": 0, "dead": 0}
    liveness = {"alive": 0, "late": 0, "dead": 0}
    team_ids = list_teams(memory, _STATS) if teams else []
    for summary in team_summaries(memory, _STATS, team_ids).values():
        for state in tasks:
            tasks[state] += summary[state]
        for state in liveness:
            liveness[state] += summary["agents"][state]
    return {
        "mode": memory.mode,
        "address": memory.address,
        "working_keys": working_keys,
        "working_agents": len(agents),
        "staged_patterns": staged,
        "signals": signals,
        "tasks": tasks if teams else None,
        "agents": liveness if teams else None,
        "sessions": sessions,
        "events": events,
        "used_memory": used_memory(memory),
    }
