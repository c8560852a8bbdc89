from __future__ import annotations

import threading
import time

import pytest

from memory import AccessTier, AgentCoordinator, AgentTask, EmpathyOS, StagedPattern, TeamSession


def test_every_mutation_appends_one_event(memory):
    start = memory.latest_event_id()
    agent = EmpathyOS("worker", short_term_memory=memory)
    agent.stash("k", 1)
    agent.send_signal("t", 1, target_agent="lead")
    agent.stage_pattern(StagedPattern("p1", "worker", "type", "name", "desc"))
    EmpathyOS("lead", short_term_memory=memory, access_tier=AccessTier.VALIDATOR).promote_pattern(
        "p1"
    )
    coordinator = AgentCoordinator(memory, "team")
    coordinator.add_task(AgentTask("t1", "review", "d", 5))
    coordinator.claim_task("worker", "review")
    coordinator.complete_task("t1", "ok")
    TeamSession(memory, "s1", "p").add_agent("worker")
    agent.delete("k")

    events = memory.read_events(start)
    in_order = [
        "working.stashed",
        "signal.sent",
        "pattern.staged",
        "pattern.promoted",
        "task.added",
        "task.claimed",
        "task.completed",
        "session.created",
        "session.joined",
        "working.deleted",
    ]
    if memory.cluster:
        # The stream is sharded: one group's events keep their order, and events of
        # different groups are in order of their millisecond.
        assert sorted(e.type for e in events) == sorted(in_order)
        events = sorted(events, key=lambda e: in_order.index(e.type))
    else:
        assert [e.type for e in events] == in_order
    claimed = events[5]
    assert claimed.actor == "worker"
    assert claimed.tier == "CONTRIBUTOR"
    assert claimed.ids["task_id"] == "t1" and claimed.ids["team"] == "team"
    # The entry id is the server time of the change.
    assert claimed.ts == int(claimed.id.split("-")[0])
    assert abs(claimed.ts - memory.server_time_ms()) < 5_000
    assert all(a.ts <= b.ts for a, b in zip(events, events[1:], strict=False))
    assert events[3].actor == "lead" and events[3].tier == "VALIDATOR"


def test_reads_and_refused_writes_append_nothing(memory):
    start = memory.latest_event_id()
    agent = EmpathyOS("worker", short_term_memory=memory)
    agent.retrieve("k")
    agent.get_staged_patterns()
    with pytest.raises(ValueError):
        agent.stash("", 1)
    assert memory.read_events(start) == []


def test_reading_after_an_id_pages_through(memory):
    agent = EmpathyOS("worker", short_term_memory=memory)
    for i in range(25):
        agent.stash(f"k{i}", i)
    seen, last = [], "0-0"
    while batch := memory.read_events(last, count=10):
        seen += batch
        last = batch[-1].id
    assert [e.ids["key"] for e in seen] == [f"k{i}" for i in range(25)]


def test_blocking_read_wakes_on_a_new_event(memory):
    start = memory.latest_event_id()
    agent = EmpathyOS("worker", short_term_memory=memory)
    timer = threading.Timer(0.2, agent.stash, args=("late", 1))
    timer.start()
    try:
        events = memory.read_events(start, block_ms=5000)
    finally:
        timer.join()
    assert [e.ids["key"] for e in events] == ["late"]


def test_blocking_read_times_out_empty(memory):
    started = time.monotonic()
    assert memory.read_events(memory.latest_event_id(), block_ms=100) == []
    assert time.monotonic() - started >= 0.09


def test_the_stream_is_bounded(make_memory):
    memory = make_memory(events_maxlen=100)
    agent = EmpathyOS("worker", short_term_memory=memory)
    for i in range(1000):
        agent.stash("k", i)
    assert memory.client.xlen(memory.keys.events) < 300
