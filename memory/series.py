"""What happens, counted per team: by minute for 7 days, by hour for 90 days, and in
all-time totals.

Kinds (``SERIES_KINDS``): tasks added, claimed, completed, failed (a failure that
retries), dead-lettered (by a failure, or a lease that ran out on its last attempt) and
whose lease expired (each lease reaped, whatever became of its task); signals sent; and
patterns staged (one not staged already: restaging replaces), promoted, rejected and
expired undecided. Each is counted by the script that makes the change, in the same
call, in that change's hash slot:

- a team's tasks in its own series and totals (``{team:<id>}``);
- signals in the per-team counts beside the recent feed (``{signals}``), which
  ``metrics.signal_rate`` reads too;
- patterns in their shard (``{patterns:<n>}``): the per-team counts of expired ones
  that ``patterns.expired_count`` reads, and a series of staged and decided ones.

A series is a hash of counters, one field per team, kind and bucket
(``memory.formats``: ``<prefix><minute>`` and ``<prefix>h<hour>``); every event adds to
its minute's field and its hour's, so a read of N points names N fields: one HMGET per
team (and per pattern shard), O(points) whatever else the hash holds, and the 7-day
range reads 168 hour fields rather than 10,080 minutes. Minutes and hours share one
hash and one trimming set, so a write touches one pair of keys. The trimming set holds
every field by when it leaves (in a team's own series, every bucket, for all its kinds'
fields); each new minute field takes at most 100 of those due with it, so no write
scans a hash, and fields leave as fast as they came. A team busy in all six task kinds
every minute for 7 days holds about 6.3 MB of counts and 1.3 MB of trimming set.

Totals are what a Prometheus exporter scrapes (``counter_totals``): counts that only go
up, never trimmed, incremented by the same scripts; a team's by kind and task type
(bounded by its task types), signals' and patterns' by team and kind. They go when
``registry.prune_teams`` removes an empty team (its series too), or when Redis loses
writes; a scraper sees either as a counter reset.

Reads take ``now_ms`` (default: the server's clock) to say where the range ends.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from .connection import RedisConnection, redis_errors
from .exceptions import InvalidValue
from .formats import (
    FIVE_MARK,
    FIVE_MINUTES,
    HOUR_MARK,
    HOUR_MS,
    MINUTE_MS,
    ORG_WIDE,
    SERIES_MINUTES,
    hour_field,
    minute_field,
    own_series,
    parse_task_total,
    team_series,
    team_total,
)
from .registry import list_teams
from .scripts import READ_SERIES
from .team_filter import check_teams
from .tiers import READ, Caller

TASK_KINDS = (
    "tasks_added",
    "tasks_claimed",
    "tasks_completed",
    "tasks_failed",
    "tasks_dead_lettered",
    "tasks_lease_expired",
)
PATTERN_KINDS = ("patterns_staged", "patterns_promoted", "patterns_rejected", "patterns_expired")
SERIES_KINDS = (*TASK_KINDS, "signals_sent", *PATTERN_KINDS)
# A range's points and the length of each, in ms: minutes for 1 h and 24 h, hours for 7 d.
RANGES = {"1h": (60, MINUTE_MS), "24h": (1440, MINUTE_MS), "7d": (168, HOUR_MS)}

# A source: a series hash and the prefix of one team's fields of one kind in it.
Source = tuple[str, str]


def check_kind(kind: object) -> str:
    if kind not in SERIES_KINDS:
        raise InvalidValue(f"kind must be one of {', '.join(SERIES_KINDS)}, not {kind!r}")
    return str(kind)


def _teams(memory: RedisConnection, caller: Caller, teams: Collection[str] | None) -> list[str]:
    """The teams a read is of: those given, or (None) every team in the teams index."""
    checked = check_teams(teams)
    return list_teams(memory, caller) if checked is None else sorted(checked)


def _sources(memory: RedisConnection, kind: str, team: str | None) -> list[Source]:
    """Where ``kind`` is counted for ``team`` (None: the org-wide records)."""
    keys = memory.keys
    if kind in TASK_KINDS:
        return [] if team is None else [(keys.team(team, "series"), own_series(kind))]
    if kind == "signals_sent":
        return [(keys.signals_team_rate, team_series(team))]
    if kind == "patterns_expired":
        shards = memory.keys.pattern_shards
        return [(shard.patterns_expired_team_minute, team_series(team)) for shard in shards]
    return [(s.patterns_series, team_series(team, kind)) for s in memory.keys.pattern_shards]


def _read(memory: RedisConnection, reads: list[tuple[str, list[str]]]) -> list[list[int]]:
    """Each read's fields of its hash, as counts (0 for a missing field), in one
    pipeline."""
    with memory.client.pipeline(transaction=False) as pipe:
        for key, fields in reads:
            pipe.hmget(key, fields)
        answers = pipe.execute() if reads else []
    return [[int(n or 0) for n in answer] for answer in answers]


def _fields(prefix: str, minutes: Iterable[int], hours: Iterable[int]) -> list[str]:
    return [minute_field(prefix, m) for m in minutes] + [hour_field(prefix, h) for h in hours]


def _last(points: int, step: int, now_ms: int) -> list[int]:
    """The last ``points`` buckets of ``step`` ms up to ``now_ms``, oldest first."""
    last = now_ms // step
    return list(range(last - points + 1, last + 1))


@redis_errors
def series(
    memory: RedisConnection,
    caller: Caller,
    kind: str,
    *,
    teams: Collection[str] | None,
    range: str,  # shadows the builtin: the name callers use
    now_ms: int | None = None,
    group: int = 1,
) -> list[tuple[int, int]]:
    """How many of ``kind`` happened in each minute (``range`` "1h" or "24h") or hour
    ("7d") up to ``now_ms``: (bucket start in ms, count), oldest first. With ``group``
    (a divisor of the range's points), each point counts ``group`` buckets instead,
    from a multiple of their length since the epoch (5 minutes, or a UTC day of 24
    hours), the last one ``now_ms`` is in. ``teams``: the sum over those teams (and,
    for signals and patterns, the org-wide ones, as ``memory.team_filter`` says); None,
    over every team in the teams index (and the org-wide ones).

    One read function per team (and pattern shard), in one round trip, that sums the
    fields in Redis (``lua/read_series.lua``). Tasks by 5 minutes (a day's chart) read
    the 5-minute fields: 288 rather than 1,440."""
    caller.require(READ, "reading series")
    kind = check_kind(kind)
    if range not in RANGES:
        raise InvalidValue(f"range must be one of {', '.join(RANGES)}, not {range!r}")
    points, step = RANGES[range]
    if isinstance(group, bool) or not isinstance(group, int) or group < 1 or points % group:
        raise InvalidValue(f"group must divide the {points} points of {range}, not {group!r}")
    now = memory.server_time_ms() if now_ms is None else now_ms
    size = step * group
    starts = _last(points // group, size, now)
    mark, first, per = (HOUR_MARK if step == HOUR_MS else ""), starts[0] * group, group
    if step == MINUTE_MS and group % FIVE_MINUTES == 0 and kind in TASK_KINDS:
        mark, first, per = FIVE_MARK, starts[0] * group // FIVE_MINUTES, group // FIVE_MINUTES
    sources = [
        source
        for team in [None, *_teams(memory, caller, teams)]
        for source in _sources(memory, kind, team)
    ]
    args = {"mark": mark, "first": first, "points": len(starts), "group": per}
    runs = [
        (READ_SERIES, caller, {"series": key}, {**args, "prefix": prefix})
        for key, prefix in sources
    ]
    totals = [0] * len(starts)
    for counts in memory.run_scripts(runs) if runs else []:
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
    return [(start * size, total) for start, total in zip(starts, totals, strict=True)]


def since_buckets(since_ms: int, now_ms: int) -> tuple[list[int], list[int]]:
    """The minutes and hours whose counts add up to what happened from ``since_ms`` to
    ``now_ms``: to the minute within the minutes kept (the minutes up to the first whole
    hour, then hours), else from the start of the hour ``since_ms`` is in."""
    first, last = since_ms // MINUTE_MS, now_ms // MINUTE_MS
    if first > last:
        return [], []
    first_hour, last_hour = first // 60, last // 60
    if last - first >= SERIES_MINUTES:
        return [], list(range(first_hour, last_hour + 1))
    if first_hour == last_hour:
        return list(range(first, last + 1)), []
    return list(range(first, (first_hour + 1) * 60)), list(range(first_hour + 1, last_hour + 1))


@redis_errors
def series_totals(
    memory: RedisConnection,
    caller: Caller,
    teams: Collection[str] | None,
    since_ms: int,
    *,
    now_ms: int | None = None,
) -> dict[str, dict[str, int]]:
    """For each team, and ``""`` for the org-wide signals and patterns, how many of each
    kind that applies happened from ``since_ms`` to ``now_ms`` (``since_buckets``): per
    team and kind, at most 59 minute fields and one field per hour. ``teams`` None:
    every team in the teams index. For dashboards ("in the last 24 h"); a Prometheus
    exporter wants ``counter_totals``, which only go up."""
    caller.require(READ, "reading series")
    if isinstance(since_ms, bool) or not isinstance(since_ms, int):
        raise InvalidValue("since_ms must be a whole number of milliseconds")
    now = memory.server_time_ms() if now_ms is None else now_ms
    minutes, hours = since_buckets(since_ms, now)
    found: dict[str, dict[str, int]] = {}
    reads, labels = [], []
    for team in [ORG_WIDE, *_teams(memory, caller, teams)]:
        found[team] = {}
        for kind in SERIES_KINDS:
            for key, prefix in _sources(memory, kind, team or None):
                found[team][kind] = 0
                reads.append((key, _fields(prefix, minutes, hours)))
                labels.append((team, kind))
    for (team, kind), counts in zip(labels, _read(memory, reads), strict=True):
        found[team][kind] += sum(counts)
    return found


@redis_errors
def counter_totals(
    memory: RedisConnection, caller: Caller, teams: Collection[str] | None = None
) -> dict[str, dict[str, dict[str, int]]]:
    """All-time counts that only go up, for a Prometheus exporter's counters: team ->
    kind -> task type (``""`` for signals and patterns) -> count, for ``teams`` (None:
    every team in the teams index) and ``""``, the org-wide signals and patterns. Only
    what has happened is listed. One pipeline: each team's totals hash (bounded by its
    task types), and the shared totals' fields of these teams."""
    caller.require(READ, "reading counters")
    wanted = _teams(memory, caller, teams)
    keys, shared = memory.keys, [ORG_WIDE, *wanted]
    pattern_labels = [(team, kind) for team in shared for kind in PATTERN_KINDS]
    with memory.client.pipeline(transaction=False) as pipe:
        for team in wanted:
            pipe.hgetall(keys.team(team, "totals"))
        pipe.hmget(keys.signals_team_totals, [team_total(t, "signals_sent") for t in shared])
        for shard in keys.pattern_shards:
            pipe.hmget(shard.patterns_totals, [team_total(t, k) for t, k in pattern_labels])
        answers = iter(pipe.execute())
    found: dict[str, dict[str, dict[str, int]]] = {team: {} for team in shared}

    def add(team: str, kind: str, task_type: str, n: Any) -> None:
        if n is not None:
            counts = found[team].setdefault(kind, {})
            counts[task_type] = counts.get(task_type, 0) + int(n)

    for team in wanted:
        for field, n in next(answers).items():
            add(team, *parse_task_total(field), n)
    for team, n in zip(shared, next(answers), strict=True):
        add(team, "signals_sent", "", n)
    for answer in answers:
        for (team, kind), n in zip(pattern_labels, answer, strict=True):
            add(team, kind, "", n)
    return found
