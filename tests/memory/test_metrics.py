from __future__ import annotations

import time

from memory import AccessTier, AgentCoordinator, AgentTask, EmpathyOS
from memory.metrics import queue_depth, signal_rate
from memory.tiers import Caller

READER = Caller("reader", AccessTier.OBSERVER)  # the reads below read as an observer


def test_signal_rate_counts_this_minute(memory):
    agent = EmpathyOS("a", short_term_memory=memory)
    for _ in range(3):
        agent.send_signal("t", None)
    rate = signal_rate(memory, READER)
    assert len(rate) == 60
    assert sum(rate[-2:]) == 3


def test_queue_depth_follows_every_move(memory):
    steward = AgentCoordinator(memory, "team", access_tier=AccessTier.STEWARD, max_attempts=1)
    other = AgentCoordinator(memory, "other")
    for i in range(4):
        steward.add_task(AgentTask(f"t{i}", "review", priority=5))
    other.add_task(AgentTask("o", "review"))
    assert queue_depth(memory, READER, "team")[-1] == 4
    steward.claim_task("w", "review")
    assert queue_depth(memory, READER, "team")[-1] == 3
    steward.cancel_task("t1")
    assert queue_depth(memory, READER, "team")[-1] == 2
    assert steward.fail_task("t0", "boom") == "dead"
    assert queue_depth(memory, READER, "team")[-1] == 2
    steward.requeue_task("t0")
    assert queue_depth(memory, READER, "team")[-1] == 3
    steward.requeue_task("t2")  # already pending: stays one task
    assert queue_depth(memory, READER, "team")[-1] == 3
    assert queue_depth(memory, READER)[-1] == 4
    assert steward.counts()["pending"] == 3


def _away_from_a_minute_boundary(memory) -> int:
    """The current server minute, waiting out a boundary closer than 3 s."""
    now = memory.server_time_ms()
    if now % 60_000 > 57_000:
        time.sleep((60_000 - now % 60_000) / 1000 + 0.05)
        now = memory.server_time_ms()
    return now // 60_000


def test_queue_depth_walks_back_through_recorded_changes(memory):
    minute = _away_from_a_minute_boundary(memory)
    coordinator = AgentCoordinator(memory, "team")
    for i in range(4):
        coordinator.add_task(AgentTask(f"t{i}", "review"))
    coordinator.claim_task("w", "review")
    changes = memory.keys.team("team", "queue_changes")
    assert memory.client.hgetall(changes) == {str(minute).encode(): b"3"}
    # Earlier minutes as an earlier run of the team would have left them.
    memory.client.hset(changes, mapping={minute - 2: 1, minute - 1: -1, minute - 70: 9})
    # Pending at the end of each minute, walking back from the 3 queued now: 3 - 3 = 0 a
    # minute ago, 0 + 1 = 1 before that, 1 - 1 = 0 before that, and so on.
    assert queue_depth(memory, READER, "team", minutes=5) == [0, 0, 1, 0, 3]


def test_queue_changes_keep_two_hours(memory):
    minute = _away_from_a_minute_boundary(memory)
    changes = memory.keys.team("team", "queue_changes")
    memory.client.hset(changes, mapping={minute - m: 1 for m in range(1, 200)})
    AgentCoordinator(memory, "team").add_task(AgentTask("t", "review"))
    kept = sorted(int(m) for m in memory.client.hkeys(changes))
    assert kept == list(range(minute - 120, minute + 1))
