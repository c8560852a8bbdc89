"""Task timings (``memory.timings``): percentiles of claim-to-completion times against a
known distribution, within the stated error; by type, agent and team; per agent
completed and failed; windows; and the rings' bounded slots.

A claim's time is the one its fencing token carries, so a test sets a claimed task's
token to "claimed d ms ago" by the server's clock, and completes it with that token."""

from __future__ import annotations

import math
import random
import re
from pathlib import Path

import pytest

from memory import AccessTier, AgentCoordinator, AgentTask, InvalidValue, RedisShortTermMemory
from memory.formats import (
    HOUR_MS,
    TIMING_FINE_MS,
    TIMING_FINE_SLOTS,
    TIMING_HOUR_SLOTS,
    TIMING_STEPS,
    TIMING_TOP,
    TaskState,
    timing_bucket,
)
from memory.tiers import Caller
from memory.timings import Histogram, task_timings

READER = Caller("reader", AccessTier.OBSERVER)
LUA = Path(__file__).resolve().parents[2] / "memory" / "lua" / "includes" / "timings.lua"
ERROR = 2 ** (1 / (2 * TIMING_STEPS)) - 1  # a bucket's middle to its edges: 4.4%


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def complete_after(memory: RedisShortTermMemory, worker: AgentCoordinator, ms: int) -> range:
    """Claim a task as the worker, have it claimed ``ms`` ago, and complete it. Returns
    the times (ms) it may have taken: from ``ms`` to ``ms`` plus the call's own time."""
    task = worker.claim_task(worker.caller.user_id, "review")
    state_key = memory.keys.team(worker.team_id, "state")
    state = TaskState.decode(memory.client.hget(state_key, task.task_id))
    before = memory.server_time_ms()
    token = (before - ms) * 1000
    memory.client.hset(state_key, task.task_id, TaskState(
        state.status, state.attempts, state.holder, str(token), state.score, state.task_type
    ).encode())  # fmt: skip
    worker.complete_task(task.task_id, "ok", fencing_token=token)
    return range(ms, ms + memory.server_time_ms() - before + 1)


def worker_of(memory: RedisShortTermMemory, agent: str, team: str = "alpha") -> AgentCoordinator:
    return AgentCoordinator(memory, team, actor=agent, max_attempts=10)


def add_tasks(memory: RedisShortTermMemory, n: int, task_type: str = "review") -> None:
    coordinator = AgentCoordinator(memory, "alpha")
    for i in range(n):
        coordinator.add_task(AgentTask(f"{task_type}-{i}", task_type))


def within(reported: float, low: float, high: float) -> bool:
    """Whether a percentile reported from buckets is that of times from ``low`` to
    ``high`` (the true percentile lies between them), within the stated error."""
    return low * (1 - ERROR) - 1e-9 <= reported <= high * (1 + ERROR) + 1e-9


def test_percentiles_of_a_known_distribution_are_within_the_stated_error(memory):
    rng = random.Random(7)
    times = [round(10 ** rng.uniform(0.5, 5.5)) for _ in range(120)]  # 3 ms to 5 min
    times += [0, 1, 2]
    add_tasks(memory, len(times))
    worker = worker_of(memory, "w")
    spans = [complete_after(memory, worker, ms) for ms in times]
    lows, highs = [s.start for s in spans], [s.stop - 1 for s in spans]
    for by, key in (("type", "review"), ("agent", "w"), ("team", "alpha")):
        for window in ("1h", "24h"):
            stats = task_timings(memory, READER, "alpha", window=window, by=by)[key]
            assert stats["count"] == len(times)
            for name, q in (("p50_ms", 0.5), ("p95_ms", 0.95)):
                low, high = nearest_rank(lows, q), nearest_rank(highs, q)
                assert within(stats[name], low, high), (by, window, name, stats[name], low, high)
            assert max(lows) <= stats["max_ms"] <= max(highs)


def test_times_of_no_time_are_exact(memory):
    add_tasks(memory, 3)
    worker = worker_of(memory, "w")
    for _ in range(3):
        complete_after(memory, worker, -5_000)  # a token from a clock ahead: no time
    stats = task_timings(memory, READER, "alpha", window="1h", by="team")["alpha"]
    assert stats == {"count": 3.0, "p50_ms": 0.0, "p95_ms": 0.0, "max_ms": 0.0}


def test_by_type_and_by_agent_with_completions_and_failures(memory):
    add_tasks(memory, 4, "review")
    add_tasks(memory, 2, "lint")
    ann, bob = worker_of(memory, "ann"), worker_of(memory, "bob")
    complete_after(memory, ann, 1_000)
    complete_after(memory, ann, 3_000)
    task = bob.claim_task("bob", "review")
    bob.fail_task(task.task_id, "boom")
    task = bob.claim_task("bob", "lint")
    bob.complete_task(task.task_id, "ok")
    by_type = task_timings(memory, READER, "alpha", window="24h", by="type")
    assert set(by_type) == {"review", "lint"}
    assert by_type["review"]["count"] == 2 and by_type["lint"]["count"] == 1
    by_agent = task_timings(memory, READER, "alpha", window="1h", by="agent")
    assert by_agent["ann"]["completed"] == 2 and by_agent["ann"]["failed"] == 0
    assert by_agent["bob"]["completed"] == 1 and by_agent["bob"]["failed"] == 1
    assert within(by_agent["ann"]["p50_ms"], 1_000, 1_100)
    assert task_timings(memory, READER, "beta", window="1h", by="agent") == {}
    assert task_timings(memory, READER, "beta", window="1h", by="team")["beta"]["count"] == 0


def test_windows_end_where_their_slots_do(memory):
    add_tasks(memory, 1)
    complete_after(memory, worker_of(memory, "w"), 500)
    now = memory.server_time_ms()

    def count(window: str, later_ms: int) -> float:
        found = task_timings(
            memory, READER, "alpha", window=window, by="agent", now_ms=now + later_ms
        )
        return found["w"]["count"] if "w" in found else 0.0

    assert count("1h", 55 * 60_000) == 1
    assert count("1h", 2 * HOUR_MS) == 0
    assert count("24h", 23 * HOUR_MS) == 1
    assert count("24h", 26 * HOUR_MS) == 0  # and the agent is no longer listed


def test_a_ring_reuses_a_slot_only_once_emptied(memory):
    add_tasks(memory, 1)
    now = memory.server_time_ms()
    number = now // TIMING_FINE_MS
    slot = f"m{number % TIMING_FINE_SLOTS}:"
    key = memory.keys.type_timings("alpha", "review")
    stale = {f"{slot}at": number - TIMING_FINE_SLOTS, f"{slot}7": 99, f"{slot}max": 10**9}
    memory.client.hset(key, mapping=stale)
    took = complete_after(memory, worker_of(memory, "w"), 50)
    fields = {k.decode(): int(v) for k, v in memory.client.hgetall(key).items()}
    fine = {k: v for k, v in fields.items() if k.startswith(slot)}
    if fine[f"{slot}at"] == number:  # (the slot did not turn meanwhile)
        assert fine[f"{slot}max"] in took and fine.get(f"{slot}7", 0) == 0
        assert sum(v for k, v in fine.items() if k[len(slot) :].isdigit()) == 1
    assert 0 < memory.client.pttl(key) <= (TIMING_HOUR_SLOTS + 1) * HOUR_MS
    assert len(fields) <= 2 * (TIMING_TOP + 4)


def test_histograms_from_buckets():
    histogram = Histogram()
    assert histogram.stats() == {"count": 0.0, "p50_ms": 0.0, "p95_ms": 0.0, "max_ms": 0.0}
    times = [1, 5, 5, 40, 1_000, 2**29]
    histogram.buckets.update(timing_bucket(ms) for ms in times)
    histogram.max_ms = max(times)
    assert within(histogram.percentile(0.5), 5, 5)
    assert histogram.percentile(1.0) == 2**29  # the top bucket: its maximum
    assert timing_bucket(0) == 0 and timing_bucket(1) == 1 and timing_bucket(2**40) == TIMING_TOP


def test_bad_arguments(memory):
    with pytest.raises(InvalidValue):
        task_timings(memory, READER, "alpha", window="7d", by="type")
    with pytest.raises(InvalidValue):
        task_timings(memory, READER, "alpha", window="1h", by="task")
    with pytest.raises(InvalidValue):
        task_timings(memory, READER, "a{b}", window="1h", by="type")


def test_the_lua_keeps_the_python_buckets_and_rings():
    text = LUA.read_text()
    assert re.search(rf"TIMING_STEPS = {TIMING_STEPS}\b", text)
    assert re.search(rf"TIMING_TOP = {TIMING_TOP}\b", text)
    assert re.search(
        rf"TIMING_FINE_MS, TIMING_FINE_SLOTS = {TIMING_FINE_MS}, {TIMING_FINE_SLOTS}\b", text
    )
    assert re.search(rf"TIMING_HOUR_MS, TIMING_HOUR_SLOTS = {HOUR_MS}, {TIMING_HOUR_SLOTS}\b", text)
