"""Series of what happens per team (``memory.series``): counts by minute and hour after a
known workload, the minute-to-hour boundary, the 7-day and 90-day trimming (bounded per
write), all-time totals, and what a 24 h read costs.

Writes happen on the server's clock; the reads take ``now_ms``, so the tests look at
one workload from later moments, and plant fields where another time's writes would
have left them."""

from __future__ import annotations

import re
import time
from functools import partial
from pathlib import Path

import pytest

from memory import AccessTier, AgentCoordinator, AgentTask, InvalidValue, StagedPattern, TTLStrategy
from memory import patterns as staged
from memory.formats import (
    HOUR_MS,
    MINUTE_MS,
    SERIES_HOURS,
    SERIES_MINUTES,
    hour_field,
    minute_field,
    own_series,
    team_series,
)
from memory.series import (
    SERIES_KINDS,
    TASK_KINDS,
    counter_totals,
    series,
    series_totals,
    since_buckets,
)
from memory.signals import send
from memory.tiers import Caller

READER = Caller("reader", AccessTier.OBSERVER)
SENDER = Caller("sender", AccessTier.CONTRIBUTOR)
VERA = Caller("vera", AccessTier.VALIDATOR)
LUA = Path(__file__).resolve().parents[2] / "memory" / "lua"
HOUR_SHIFT = SERIES_HOURS * 60 - SERIES_MINUTES  # an hour field's leaving score, less its minute

EXPECTED_ALPHA = {
    "tasks_added": 4,
    "tasks_claimed": 4,
    "tasks_completed": 1,
    "tasks_failed": 1,
    "tasks_dead_lettered": 1,
    "tasks_lease_expired": 1,
    "signals_sent": 3,
    "patterns_staged": 3,
    "patterns_promoted": 1,
    "patterns_rejected": 1,
    "patterns_expired": 1,
}
ORG_WIDE = {"signals_sent": 1, "patterns_staged": 1}


def away_from_a_minute_boundary(memory) -> int:
    """The server's time, after waiting out a minute boundary closer than 10 s."""
    now = memory.server_time_ms()
    if now % MINUTE_MS > MINUTE_MS - 10_000:
        time.sleep((MINUTE_MS - now % MINUTE_MS) / 1000 + 0.05)
        now = memory.server_time_ms()
    return now


def pattern(pattern_id: str, team: str | None) -> StagedPattern:
    return StagedPattern(pattern_id, "agent", "fix", "name", "d", team=team)


def workload(make_memory) -> int:
    """A known workload (EXPECTED_ALPHA, ORG_WIDE, and beta's two tasks and two signals),
    all within one minute; returns the server time (ms) it began at."""
    memory = make_memory()
    began = away_from_a_minute_boundary(memory)
    alpha = AgentCoordinator(memory, "alpha", max_attempts=2)
    for i in range(4):
        alpha.add_task(AgentTask(f"r{i}", "review"))
    alpha.complete_task(alpha.claim_task("w", "review").task_id, "ok")  # r0
    assert alpha.fail_task(alpha.claim_task("w", "review").task_id, "x") == "pending"  # r1
    assert alpha.fail_task(alpha.claim_task("w", "review").task_id, "x") == "dead"  # r1
    alpha.claim_task("w", "review")  # r2, whose lease runs out
    memory.client.zadd(memory.keys.leases("alpha", "review"), {"r2": 0})
    assert alpha.reap_expired() == 1
    beta = AgentCoordinator(memory, "beta")
    beta.add_task(AgentTask("b0", "lint"))
    beta.add_task(AgentTask("b1", "lint"))
    for team in ("alpha", "alpha", "alpha", None, "beta", "beta"):
        send(memory, SENDER, "t", None, team=team)
    agent = Caller("agent", AccessTier.CONTRIBUTOR)
    for pattern_id, team in (("p0", "alpha"), ("p1", "alpha"), ("p2", None)):
        staged.stage(memory, agent, pattern(pattern_id, team))
    staged.stage(memory, agent, pattern("p0", "alpha"))  # restaged: not counted again
    staged.decide(memory, VERA, "p0", "promoted")
    staged.decide(memory, VERA, "p1", "rejected", "no")
    brief = make_memory(ttls={TTLStrategy.STAGED_PATTERNS: 0.05})
    staged.stage(brief, agent, pattern("p3", "alpha"))
    time.sleep(0.1)
    assert staged.prune_expired(memory, READER) == 1
    return began


def test_a_known_workload_in_its_minute_and_its_hour(make_memory):
    began = workload(make_memory)
    memory = make_memory()
    now = memory.server_time_ms()
    assert now // MINUTE_MS == began // MINUTE_MS
    for kind, expected in EXPECTED_ALPHA.items():
        minutes = series(memory, READER, kind, teams=["alpha"], range="1h", now_ms=now)
        assert len(minutes) == 60 and minutes[-1] == (
            now // MINUTE_MS * MINUTE_MS,
            expected + ORG_WIDE.get(kind, 0),
        )
        assert sum(count for _, count in minutes) == expected + ORG_WIDE.get(kind, 0), kind
        hours = series(memory, READER, kind, teams=["alpha"], range="7d", now_ms=now)
        assert len(hours) == 168 and hours[-1] == (now // HOUR_MS * HOUR_MS, minutes[-1][1])
        day = series(memory, READER, kind, teams=["alpha"], range="24h", now_ms=now)
        assert len(day) == 1440 and day[-60:] == minutes
    every = series(memory, READER, "tasks_added", teams=None, range="24h", now_ms=now)
    assert every[-1][1] == 6  # alpha's four and beta's two
    assert series(memory, READER, "signals_sent", teams=None, range="1h")[-1][1] == 6
    assert series(memory, READER, "signals_sent", teams=[], range="1h")[-1][1] == 1  # org-wide
    assert series(memory, READER, "tasks_added", teams=[], range="1h")[-1][1] == 0


def test_later_reads_find_the_workload_where_it_happened(make_memory):
    began = workload(make_memory)
    memory = make_memory()
    minute_start = began // MINUTE_MS * MINUTE_MS
    hour_start = began // HOUR_MS * HOUR_MS

    def read(range_: str, later_ms: int) -> dict[int, int]:
        found = series(memory, READER, "tasks_added", teams=["alpha"], range=range_,
                       now_ms=began + later_ms)  # fmt: skip
        return {start: count for start, count in found if count}

    assert read("1h", 59 * MINUTE_MS) == {minute_start: 4}
    assert read("1h", 61 * MINUTE_MS) == {}  # past the last hour's minutes
    assert read("24h", 23 * HOUR_MS) == {minute_start: 4}
    assert read("24h", 25 * HOUR_MS) == {}
    assert read("7d", 6 * 24 * HOUR_MS) == {hour_start: 4}
    assert read("7d", 7 * 24 * HOUR_MS + HOUR_MS) == {}


def test_minutes_and_hours_meet_at_the_hour(memory):
    """Fields on both sides of an hour's start, as writes then would have left them."""
    hour = memory.server_time_ms() // HOUR_MS - 3
    prefix, key = own_series("tasks_claimed"), memory.keys.team("alpha", "series")
    memory.client.hset(key, mapping={
        minute_field(prefix, hour * 60 - 1): 2, hour_field(prefix, hour - 1): 7,
        minute_field(prefix, hour * 60): 3, minute_field(prefix, hour * 60 + 59): 1,
        hour_field(prefix, hour): 4, hour_field(prefix, hour + 1): 5,
    })  # fmt: skip
    memory.client.zadd(memory.keys.teams, {"alpha": 1})
    at = (hour + 1) * HOUR_MS + 30 * MINUTE_MS  # half past the next hour

    def read(range_: str) -> dict[int, int]:
        found = series(memory, READER, "tasks_claimed", teams=None, range=range_, now_ms=at)
        return {start // MINUTE_MS: count for start, count in found if count}

    assert read("24h") == {hour * 60 - 1: 2, hour * 60: 3, hour * 60 + 59: 1}
    assert read("7d") == {(hour - 1) * 60: 7, hour * 60: 4, (hour + 1) * 60: 5}
    since = (hour * 60 - 1) * MINUTE_MS  # a minute before the hour: that minute, then hours
    assert (
        series_totals(memory, READER, ["alpha"], since, now_ms=at)["alpha"]["tasks_claimed"]
        == 2 + 4 + 5
    )


def test_since_buckets_are_minutes_to_the_hour_then_hours():
    m = 1_000 * 60  # a minute that starts an hour
    assert since_buckets((m - 2) * MINUTE_MS, (m + 130) * MINUTE_MS) == (
        [m - 2, m - 1],
        [m // 60, m // 60 + 1, m // 60 + 2],
    )
    assert since_buckets(m * MINUTE_MS, (m + 5) * MINUTE_MS + 7) == (list(range(m, m + 6)), [])
    assert since_buckets((m + 5) * MINUTE_MS, m * MINUTE_MS) == ([], [])
    old = since_buckets((m - SERIES_MINUTES - 30) * MINUTE_MS, m * MINUTE_MS)
    assert old == ([], list(range((m - SERIES_MINUTES - 30) // 60, m // 60 + 1)))


def test_minutes_leave_after_7_days_and_hours_after_90_a_hundred_at_a_time(memory):
    """A team's own series: its trimming set holds buckets, each for every kind's field."""
    minute = away_from_a_minute_boundary(memory) // MINUTE_MS
    key, leaving = (memory.keys.team("alpha", part) for part in ("series", "series_leaving"))
    due = {
        str(minute - SERIES_MINUTES - 1 - i): minute - SERIES_MINUTES - 1 - i for i in range(240)
    }
    old_hour = (minute - SERIES_HOURS * 60) // 60 - 1
    due[f"h{old_hour}"] = old_hour * 60 + HOUR_SHIFT
    old_five = (minute - SERIES_MINUTES) // 5 - 60
    due[f"f{old_five}"] = old_five * 5
    kept_minute, kept_hour = minute - SERIES_MINUTES + 5, (minute - SERIES_HOURS * 60) // 60 + 2
    kept_five = (minute - SERIES_MINUTES) // 5 + 2
    kept = {str(kept_minute): kept_minute, f"h{kept_hour}": kept_hour * 60 + HOUR_SHIFT,
            f"f{kept_five}": kept_five * 5}  # fmt: skip
    fields = {f"{own_series(kind)}{bucket}": 1 for kind in TASK_KINDS for bucket in {**due, **kept}}
    memory.client.hset(key, mapping=fields)
    memory.client.zadd(leaving, {**due, **kept})
    coordinator = AgentCoordinator(memory, "alpha")
    coordinator.add_task(AgentTask("t", "review"))  # a new minute field: 100 buckets leave
    assert memory.client.zcount(leaving, "-inf", f"({minute - SERIES_MINUTES}") == 142
    # and the add's minute, hour and 5 minutes
    assert memory.client.hlen(key) == len(fields) - 100 * len(TASK_KINDS) + 3
    coordinator.claim_task("w", "review")  # another: 100 more
    coordinator.add_task(AgentTask("u", "review"))  # no new field: none leave
    assert memory.client.zcount(leaving, "-inf", f"({minute - SERIES_MINUTES}") == 42
    coordinator.complete_task("t", "ok")  # the rest
    now = {str(minute), f"h{minute // 60}", f"f{minute // 5}"}
    left = {f.decode() for f in memory.client.hkeys(key)}
    assert {f.rpartition("\x00")[2] for f in left} == {*kept, *now}
    assert {b.decode() for b in memory.client.zrange(leaving, 0, -1)} == {*kept, *now}


def test_shared_counts_leave_by_field(memory):
    """A hash teams share (signals sent): its trimming set holds fields."""
    minute = away_from_a_minute_boundary(memory) // MINUTE_MS
    key, leaving = memory.keys.signals_team_rate, memory.keys.signals_team_minutes
    gone = hour_field(team_series("alpha"), (minute - SERIES_HOURS * 60) // 60 - 1)
    kept = hour_field(team_series("beta"), (minute - SERIES_HOURS * 60) // 60 + 1)
    memory.client.hset(key, mapping={gone: 1, kept: 1})
    memory.client.zadd(leaving, {
        gone: (minute - SERIES_HOURS * 60) // 60 * 60 - 60 + HOUR_SHIFT,
        kept: (minute - SERIES_HOURS * 60) // 60 * 60 + 60 + HOUR_SHIFT,
    })  # fmt: skip
    send(memory, SENDER, "t", None, team="gamma")
    assert {f.decode() for f in memory.client.hkeys(key)} == {
        kept,
        minute_field(team_series("gamma"), minute),
        hour_field(team_series("gamma"), minute // 60),
    }


def test_totals_since_and_for_ever(make_memory):
    began = workload(make_memory)
    memory = make_memory()
    found = series_totals(memory, READER, ["alpha"], began - HOUR_MS)
    assert found["alpha"] == EXPECTED_ALPHA
    assert found[""] == {kind: ORG_WIDE.get(kind, 0) for kind in SERIES_KINDS[6:]}
    assert series_totals(memory, READER, None, began - HOUR_MS)["beta"]["tasks_added"] == 2
    later = series_totals(memory, READER, ["alpha"], began + MINUTE_MS, now_ms=began + HOUR_MS)
    assert set(later["alpha"].values()) == {0}
    totals = counter_totals(memory, READER)
    assert totals["alpha"]["tasks_added"] == {"review": 4}
    assert totals["alpha"]["patterns_expired"] == {"": 1}
    assert totals["beta"] == {"tasks_added": {"lint": 2}, "signals_sent": {"": 2}}
    assert totals[""] == {"signals_sent": {"": 1}, "patterns_staged": {"": 1}}
    assert {kind: n[""] if "" in n else sum(n.values()) for kind, n in totals["alpha"].items()} == {
        kind: n for kind, n in EXPECTED_ALPHA.items() if n
    }
    assert counter_totals(memory, READER, ["beta"]).keys() == {"", "beta"}


def test_totals_only_go_up_while_minutes_leave(memory):
    coordinator = AgentCoordinator(memory, "alpha")
    coordinator.add_task(AgentTask("t", "review"))
    memory.client.delete(memory.keys.team("alpha", "series"))  # as if they had all left
    coordinator.add_task(AgentTask("u", "review"))
    assert counter_totals(memory, READER, ["alpha"])["alpha"]["tasks_added"] == {"review": 2}


def test_bad_arguments(memory):
    with pytest.raises(InvalidValue):
        series(memory, READER, "tasks_eaten", teams=None, range="1h")
    with pytest.raises(InvalidValue):
        series(memory, READER, "tasks_added", teams=None, range="2h")
    with pytest.raises(InvalidValue):
        series(memory, READER, "tasks_added", teams="alpha", range="1h")
    with pytest.raises(InvalidValue):
        series_totals(memory, READER, None, 1.5)
    with pytest.raises(InvalidValue):
        staged.decide(memory, VERA, "p", "postponed")


def test_the_lua_keeps_the_python_retention_and_kinds():
    text = "".join(path.read_text() for path in LUA.rglob("*.lua"))
    assert re.search(rf"SERIES_MINUTES = {SERIES_MINUTES}\b", text)
    assert re.search(rf"SERIES_HOURS = {SERIES_HOURS}\b", text)
    counted = set(re.findall(r"'((?:tasks|patterns|signals)_[a-z_]+)'", text))
    counted |= {f"patterns_{decision}" for decision in ("promoted", "rejected")}
    assert counted == set(SERIES_KINDS)
    own = re.search(r"TASK_KINDS = \{([^}]*)\}", text)[1]
    assert re.findall(r"'([a-z_]+)'", own) == list(TASK_KINDS)


def commands(memory) -> list[tuple[str, str, int]]:
    """The commands the server logged since its slow log was reset: name, key, and how
    many arguments followed the key."""
    entries = memory.client.execute_command("SLOWLOG", "GET", "1000")
    found = []
    for entry in reversed(entries):
        args = [a.decode() for a in entry[3]]
        more = re.fullmatch(r"\.\.\. \((\d+) more arguments\)", args[-1])
        count = len(args) - 2 + (int(more.group(1)) - 1 if more else 0)
        found.append((args[0].upper(), args[1] if len(args) > 1 else "", count))
    return found


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
def test_a_day_reads_its_1440_fields_whatever_the_hash_holds(memory):
    now = memory.server_time_ms()
    minute = now // MINUTE_MS
    for team in ("alpha", "beta"):
        AgentCoordinator(memory, team).add_task(AgentTask("t", "review"))
    key = memory.keys.team("alpha", "series")
    fill = {
        minute_field(own_series(kind), minute - i): 1
        for kind in SERIES_KINDS[:6]
        for i in range(SERIES_MINUTES)
    }
    before = memory.client.config_get("slowlog-log-slower-than")["slowlog-log-slower-than"]
    memory.client.config_set("slowlog-log-slower-than", 0)
    try:
        logged = []
        for filled in (False, True):
            if filled:
                with memory.client.pipeline(transaction=False) as pipe:
                    for i in range(0, len(fill), 10_000):
                        pipe.hset(key, mapping=dict(list(fill.items())[i : i + 10_000]))
                    pipe.execute()
            memory.client.slowlog_reset()
            day = series(memory, READER, "tasks_added", teams=None, range="24h", now_ms=now)
            logged.append([c for c in commands(memory) if c[0] not in ("SLOWLOG", "TIME")])
        assert sum(count for _, count in day) == 1440 + 1  # the filled minutes, and the task
    finally:
        memory.client.config_set("slowlog-log-slower-than", before)
    assert memory.client.hlen(key) > 60_000
    assert logged[0] == logged[1]
    series_reads = [c for c in logged[1] if c[0] == "HMGET"]
    assert sorted(series_reads) == sorted(
        ("HMGET", memory.keys.team(team, "series"), 1440) for team in ("alpha", "beta")
    )
    # A read function per team, in one MULTI, and the teams index.
    assert {name for name, _, _ in logged[1]} <= {"MULTI", "FCALL_RO", "HMGET", "EXEC", "ZREVRANGE"}


def test_grouped_points_are_the_sums_of_their_buckets(memory):
    """Each point of a grouped read starts at a multiple of its length and counts the
    buckets inside it; tasks by 5 minutes come from their own fields, which agree."""
    began = memory.server_time_ms()
    team = AgentCoordinator(memory, "alpha")
    for i in range(7):
        team.add_task(AgentTask(f"t{i}", "review"))
    later = began + 3 * HOUR_MS  # so the workload is inside a range, not at its end
    for range_, group, now in (("1h", 5, began), ("24h", 5, later), ("24h", 60, later),
                               ("7d", 24, later)):  # fmt: skip
        read = partial(series, memory, READER, "tasks_added", teams=["alpha"], range=range_,
                       now_ms=now)  # fmt: skip
        buckets, grouped = dict(read()), read(group=group)
        step = (max(buckets) - min(buckets)) // (len(buckets) - 1)
        size = step * group
        assert len(grouped) == len(buckets) // group
        assert grouped[-1][0] <= now < grouped[-1][0] + size
        for start, count in grouped:
            assert start % size == 0
            inside = [buckets[t] for t in range(start, start + size, step) if t in buckets]
            assert len(inside) < group or count == sum(inside)
        assert sum(n for _, n in grouped) == 7
    for bad in (0, 7, True, "5"):
        with pytest.raises(InvalidValue, match="group must divide"):
            series(memory, READER, "tasks_added", teams=None, range="1h", group=bad)
