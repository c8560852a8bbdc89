from __future__ import annotations

from memory import AccessTier, AgentCoordinator, AgentTask, EmpathyOS
from memory.metrics import queue_depth, signal_rate


def test_signal_rate_counts_this_minute(memory):
    agent = EmpathyOS("a", short_term_memory=memory)
    for _ in range(3):
        agent.send_signal("t", None)
    rate = signal_rate(memory)
    assert len(rate) == 60
    assert sum(rate[-2:]) == 3


def test_queue_depth_follows_every_move(memory):
    steward = AgentCoordinator(memory, "team", access_tier=AccessTier.STEWARD, max_attempts=1)
    other = AgentCoordinator(memory, "other")
    for i in range(4):
        steward.add_task(AgentTask(f"t{i}", "review", priority=5))
    other.add_task(AgentTask("o", "review"))
    assert queue_depth(memory, "team")[-1] == 4
    steward.claim_task("w", "review")
    assert queue_depth(memory, "team")[-1] == 3
    steward.cancel_task("t1")
    assert queue_depth(memory, "team")[-1] == 2
    assert steward.fail_task("t0", "boom") == "dead"
    assert queue_depth(memory, "team")[-1] == 2
    steward.requeue_task("t0")
    assert queue_depth(memory, "team")[-1] == 3
    steward.requeue_task("t2")  # already pending: stays one task
    assert queue_depth(memory, "team")[-1] == 3
    assert queue_depth(memory)[-1] == 4
    assert steward.counts()["pending"] == 3
