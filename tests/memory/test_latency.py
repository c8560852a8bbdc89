"""Queue latency: how long each team's oldest pending task of each type has waited since
it last became pending, followed through adds, claims, failures, reaps, requeues and
cancels, against the server's clock."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from memory import AccessTier, AgentCoordinator, AgentTask, InvalidValue, RedisShortTermMemory
from memory.metrics import queue_latency
from memory.tiers import Caller

READER = Caller("reader", AccessTier.OBSERVER)


class Clock:
    """Moments by the server's clock, to bound what a latency may be."""

    def __init__(self, memory: RedisShortTermMemory) -> None:
        self.memory = memory

    def during(self, action: Callable[[], object]) -> tuple[int, int]:
        """The server's time just before and just after ``action``."""
        before = self.memory.server_time_ms()
        action()
        return before, self.memory.server_time_ms()

    def latency(self, team: str = "alpha") -> tuple[dict[str, int], int, int]:
        """The team's latencies, with the server's time just before and after reading."""
        before = self.memory.server_time_ms()
        found = queue_latency(self.memory, READER, [team])[team]
        return found, before, self.memory.server_time_ms()

    def assert_waited_since(self, task_type: str, since: tuple[int, int]) -> int:
        """The type's latency is that of a task pending since a moment in ``since``."""
        found, read_from, read_to = self.latency()
        assert read_from - since[1] <= found[task_type] <= read_to - since[0], (found, since)
        return found[task_type]


def add(coordinator: AgentCoordinator, task_id: str, task_type: str = "review", **kw) -> None:
    assert coordinator.add_task(AgentTask(task_id, task_type, **kw))


@pytest.fixture
def steward(memory: RedisShortTermMemory) -> AgentCoordinator:
    return AgentCoordinator(memory, "alpha", access_tier=AccessTier.STEWARD, max_attempts=2)


def test_the_oldest_pending_task_whatever_its_priority(memory, steward):
    clock = Clock(memory)
    old = clock.during(lambda: add(steward, "low", priority=1))
    time.sleep(0.05)
    add(steward, "high", priority=10)
    add(steward, "other", task_type="lint")
    assert clock.assert_waited_since("review", old) >= 50
    # The claim takes the high-priority task; the low one, older, still waits.
    assert steward.claim_task("w", "review").task_id == "high"
    assert clock.assert_waited_since("review", old) >= 50
    assert set(clock.latency()[0]) == {"review", "lint"}
    assert steward.claim_task("w", "review").task_id == "low"
    assert set(clock.latency()[0]) == {"lint"}  # only types with pending tasks


def test_the_next_oldest_once_the_oldest_is_claimed(memory, steward):
    clock = Clock(memory)
    add(steward, "first")
    time.sleep(0.03)
    second = clock.during(lambda: add(steward, "second"))
    steward.claim_task("w", "review")
    clock.assert_waited_since("review", second)


def test_a_failure_that_retries_is_pending_from_the_failure(memory, steward):
    clock = Clock(memory)
    add(steward, "t")
    steward.claim_task("w", "review")
    time.sleep(0.05)
    failed = clock.during(lambda: steward.fail_task("t", "boom"))
    clock.assert_waited_since("review", failed)  # not since the add, 50 ms before
    steward.claim_task("w", "review")
    assert steward.fail_task("t", "boom") == "dead"  # its last attempt
    assert clock.latency()[0] == {}


def test_a_lease_that_ran_out_is_pending_from_the_reap(memory):
    clock = Clock(memory)
    steward = AgentCoordinator(memory, "alpha", access_tier=AccessTier.STEWARD, max_attempts=3)
    add(steward, "t")
    add(steward, "u")
    steward.claim_task("w", "review")
    time.sleep(0.05)
    leases = memory.keys.leases("alpha", "review")
    memory.client.zadd(leases, {"t": 0})  # the lease runs out
    steward.cancel_task("u")
    assert clock.latency()[0] == {}
    reaped = clock.during(lambda: steward.reap_expired())
    clock.assert_waited_since("review", reaped)
    # A claim reaps too: the task goes back, pending from that claim, then is claimed.
    steward.claim_task("w", "review")
    memory.client.zadd(leases, {"t": 0})
    assert steward.claim_task("w2", "review").task_id == "t"
    assert clock.latency()[0] == {}


def test_requeue_and_cancel(memory, steward):
    clock = Clock(memory)
    first = clock.during(lambda: add(steward, "first"))
    add(steward, "dead")
    steward.claim_task("w", "review")  # first
    steward.fail_task("first", "boom", retry=False)  # dead-lettered
    time.sleep(0.05)
    # A pending task requeued keeps its time; a dead one is pending from the requeue.
    pending_since = clock.latency()[0]["review"]
    steward.requeue_task("dead")
    assert clock.latency()[0]["review"] >= pending_since
    requeued = clock.during(lambda: steward.requeue_task("first"))
    steward.cancel_task("dead")
    clock.assert_waited_since("review", requeued)
    assert first[0] < requeued[0]
    steward.cancel_task("first")
    assert clock.latency()[0] == {}


def test_many_teams_in_one_call(memory):
    for team, n in (("alpha", 2), ("beta", 1)):
        coordinator = AgentCoordinator(memory, team)
        for i in range(n):
            add(coordinator, f"{team}-{i}", task_type=f"type-{i}")
    found = queue_latency(memory, READER, ["beta", "alpha", "never", "alpha"])
    assert list(found) == ["beta", "alpha", "never"]
    assert set(found["alpha"]) == {"type-0", "type-1"}
    assert set(found["beta"]) == {"type-0"} and found["never"] == {}
    assert all(0 <= age < 10_000 for ages in found.values() for age in ages.values())
    assert queue_latency(memory, READER, []) == {}


def test_bad_teams(memory):
    with pytest.raises(InvalidValue):
        queue_latency(memory, READER, "alpha")
    with pytest.raises(InvalidValue):
        queue_latency(memory, READER, ["a{b}"])
