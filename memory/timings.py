"""How long a team's tasks take from claim to completion, by task type, by agent or for
the whole team, over the last hour or day: count, p50, p95 and max, without reading any
task; and per agent, how many tasks it completed and failed.

A completion adds its time (server ms from the claim, whose fencing token carries the
claim's time, to the completion) to two hashes, its type's and its holder's, and a
failure counts in its holder's (``lua/includes/timings.lua``). Each hash holds a
histogram per time slot, in two rings: 14 slots of five minutes, read for the last hour
(the 13 that overlap it), and 26 of an hour, for the last day (25). A slot is reused
once its ring comes round, emptied first, so a hash never holds more than 40 slots of
at most 229 fields, and one nobody writes expires a day after its last slot began.

Why log-scaled buckets: a slot's histogram has a bounded number of fields whatever the
times, a window is the sum of at most 25 slots, and a percentile read from it has a
known relative error: bucket ``b`` holds times from 2^((b-1)/8) to 2^(b/8) ms and is
reported as its geometric middle, so p50 and p95 are within 4.4% of the true
nearest-rank percentiles (times of 0 ms are exact, and none is reported above the
maximum, which is exact). Past 2^28 ms (3.1 days) all times share the top bucket,
reported as the maximum.

Limits: a window covers its slots whole (the last hour: 60 to 65 minutes); a lease that
ran out is not an agent's failure here (the team's ``tasks_lease_expired`` series
counts it); and after a failover whose clock was behind, the first claims' times count
as shorter than they were, down to 0.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .codec import check_id
from .connection import RedisConnection, queue_time, redis_errors, time_ms
from .exceptions import InvalidValue
from .formats import TIMING_FINE_MS, TIMING_RINGS, TIMING_TOP, bucket_ms, parse_timing_field
from .tiers import READ, Caller

# A window: the ring it reads, and how far back it reaches (ms).
WINDOWS = {"1h": ("m", 3_600_000), "24h": ("h", 86_400_000)}
BY = ("type", "agent", "team")


@dataclass
class Histogram:
    """Times in buckets (``memory.formats.timing_bucket``), their maximum, and
    failures."""

    buckets: Counter[int] = field(default_factory=Counter)
    max_ms: int = 0
    failed: int = 0

    def add(self, other: Histogram) -> None:
        self.buckets.update(other.buckets)
        self.max_ms = max(self.max_ms, other.max_ms)
        self.failed += other.failed

    @property
    def count(self) -> int:
        return sum(self.buckets.values())

    def percentile(self, q: float) -> float:
        """The nearest-rank ``q`` percentile (0 < q <= 1), from the buckets."""
        count = self.count
        if count == 0:
            return 0.0
        rank, seen = max(1, math.ceil(q * count)), 0
        for bucket in sorted(self.buckets):
            seen += self.buckets[bucket]
            if seen >= rank:
                if bucket == TIMING_TOP:
                    return float(self.max_ms)
                return min(bucket_ms(bucket), float(self.max_ms))
        return float(self.max_ms)

    def stats(self) -> dict[str, float]:
        return {
            "count": float(self.count),
            "p50_ms": self.percentile(0.5),
            "p95_ms": self.percentile(0.95),
            "max_ms": float(self.max_ms),
        }


def window_histogram(raw: dict[Any, Any], ring: str, first: int, last: int) -> Histogram:
    """The histogram of one timings hash (as HGETALL gives it) over the slots of ``ring``
    numbered ``first`` to ``last``."""
    slots: dict[int, dict[str, int]] = {}
    for name, value in raw.items():
        of_ring, index, part = parse_timing_field(name)
        if of_ring == ring:
            slots.setdefault(index, {})[part] = int(value)
    found = Histogram()
    for fields in slots.values():
        if first <= fields.get("at", -1) <= last:
            found.max_ms = max(found.max_ms, fields.pop("max", 0))
            found.failed += fields.pop("failed", 0)
            fields.pop("at")
            found.buckets.update({int(bucket): n for bucket, n in fields.items()})
    return found


def _check(window: object, by: object) -> tuple[str, int]:
    if window not in WINDOWS:
        raise InvalidValue(f"window must be one of {', '.join(WINDOWS)}, not {window!r}")
    if by not in BY:
        raise InvalidValue(f"by must be one of {', '.join(BY)}, not {by!r}")
    return WINDOWS[str(window)]


@redis_errors
def task_timings(
    memory: RedisConnection,
    caller: Caller,
    team_id: str,
    *,
    window: str,
    by: str,
    now_ms: int | None = None,
) -> dict[str, dict[str, float]]:
    """Times from claim to completion of ``team_id``'s tasks completed in the last
    ``window`` ("1h" or "24h") up to ``now_ms`` (default: the server's clock), by
    ``by``: "type" (every task type of the team), "agent" (every agent that completed
    or failed one of its tasks in the window) or "team" (one entry, the team). Each
    entry: ``count``, ``p50_ms``, ``p95_ms`` and ``max_ms`` (0 with no completion); by
    agent also ``completed`` (its count) and ``failed`` (its ``fail_task`` calls).
    Two round trips; each hash read holds at most 40 slots (see the module)."""
    caller.require(READ, "task_timings")
    team = check_id(team_id, "team_id")
    ring, span = _check(window, by)
    keys = memory.keys
    with memory.client.pipeline(transaction=False) as pipe:
        queue_time(pipe)
        if by == "agent":
            pipe.zrange(keys.team(team, "timings_agents"), 0, -1, withscores=True)
        else:
            pipe.smembers(keys.team(team, "types"))
        clock, members = pipe.execute()
    now = time_ms(clock) if now_ms is None else now_ms
    if by == "agent":  # those active in the window (noted once per slot of theirs)
        members = [agent for agent, seen in members if seen >= now - span - TIMING_FINE_MS]
    names = sorted(member.decode() for member in members)
    key_of = keys.agent_timings if by == "agent" else keys.type_timings
    with memory.client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.hgetall(key_of(team, name))
        answers = pipe.execute() if names else []
    slot_ms, _ = TIMING_RINGS[ring]
    first, last = (now - span) // slot_ms, now // slot_ms
    histograms = {
        name: window_histogram(raw, ring, first, last)
        for name, raw in zip(names, answers, strict=True)
    }
    if by == "team":
        whole = Histogram()
        for histogram in histograms.values():
            whole.add(histogram)
        return {team: whole.stats()}
    found = {}
    for name, histogram in histograms.items():
        if by == "agent":
            found[name] = {
                **histogram.stats(),
                "completed": float(histogram.count),
                "failed": float(histogram.failed),
            }
        elif histogram.count:
            found[name] = histogram.stats()
    return found
