"""Per-minute series for the last hour: signals sent, and each team's queue depth."""

from __future__ import annotations

from .coordination import list_teams
from .redis_memory import RedisShortTermMemory

MINUTES = 60


def signal_rate(memory: RedisShortTermMemory, minutes: int = MINUTES) -> list[int]:
    """Signals sent in each of the last ``minutes`` minutes, oldest first."""
    now_minute = memory.server_time_ms() // 60000
    counts = {int(k): int(v) for k, v in memory.client.hgetall(memory.keys.signals_rate).items()}
    return [counts.get(m, 0) for m in range(now_minute - minutes + 1, now_minute + 1)]


def queue_depth(
    memory: RedisShortTermMemory, team_id: str | None = None, minutes: int = MINUTES
) -> list[int]:
    """Pending tasks at the end of each of the last ``minutes`` minutes, oldest first;
    for one team, or summed over every team."""
    now_minute = memory.server_time_ms() // 60000
    teams = [team_id] if team_id is not None else list_teams(memory)
    with memory.client.pipeline(transaction=False) as pipe:
        for team in teams:
            pipe.hgetall(memory.keys.team(team, "depth"))
        hashes = pipe.execute()
    total = [0] * minutes
    for raw in hashes:
        known = {int(k): int(v) for k, v in raw.items() if k != b"current"}
        earlier = [m for m in known if m <= now_minute - minutes]
        value = known[max(earlier)] if earlier else 0
        for i, minute in enumerate(range(now_minute - minutes + 1, now_minute + 1)):
            value = known.get(minute, value)
            total[i] += value
    return total
