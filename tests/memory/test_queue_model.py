"""One team's task queue, checked step by step against a small pure-Python model.

Hypothesis drives random sequences of adds, claims, completions, failures, lease
expiries, reaps, requeues and cancels; after every step the queue's counts, listings
and per-task state must equal what the model predicts. Every example runs on its own
key prefix, on the real redis-server and on fakeredis.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from memory import (
    AccessDenied,
    AccessTier,
    AgentCoordinator,
    AgentTask,
    LeaseLost,
    NotFound,
    RedisShortTermMemory,
    StateConflict,
)
from tests.memory.conftest import MakeMemory

TEAM = "model-team"
TASK_IDS = ("t1", "t2", "t3", "t4", "t5", "t6")
TASK_TYPES = ("build", "review")
AGENTS = ("agent-a", "agent-b", "agent-c")
# Far longer than any example runs, so a lease only runs out when a rule says so.
LEASE_SECONDS = 600.0

task_ids = st.sampled_from(TASK_IDS)
task_types = st.sampled_from(TASK_TYPES)
priorities = st.integers(min_value=1, max_value=10)
agents = st.sampled_from(AGENTS)


@dataclass
class ModelTask:
    task_type: str
    priority: int
    seq: int  # order of the add that created it: FIFO within a priority
    status: str = "pending"  # pending | claimed | completed | dead
    attempts: int = 0
    holder: str | None = None
    token: int | None = None
    expired: bool = False  # claimed, but its lease has run out (not reaped yet)
    result: Any = None

    @property
    def claim_key(self) -> tuple[int, int]:
        return (-self.priority, self.seq)


class QueueMachine(RuleBasedStateMachine):
    def __init__(self, memory: RedisShortTermMemory) -> None:
        super().__init__()
        self.memory = memory
        self.tasks: dict[str, ModelTask] = {}
        self.types: set[str] = set()
        self.adds = 0
        self.last_token = 0
        # Every fencing token ever handed out, per task id (kept across cancels).
        self.issued: dict[str, list[int]] = {}
        self.max_attempts = 1

    @initialize(
        max_attempts=st.integers(min_value=1, max_value=3),
        seed=st.lists(st.tuples(task_ids, task_types, priorities), max_size=len(TASK_IDS)),
    )
    def start(self, max_attempts: int, seed: list[tuple[str, str, int]]) -> None:
        self.max_attempts = max_attempts
        options = {"lease_seconds": LEASE_SECONDS, "max_attempts": max_attempts}
        self.worker = AgentCoordinator(self.memory, TEAM, **options)
        self.steward = AgentCoordinator(
            self.memory, TEAM, access_tier=AccessTier.STEWARD, actor="steward", **options
        )
        for task_id, task_type, priority in seed:
            self.add_task(task_id, task_type, priority)

    def teardown(self) -> None:
        client = self.memory.client
        for key in client.scan_iter(match=f"{self.memory.keys.prefix}*", count=500):
            client.delete(key)
        self.memory.close()

    # model helpers --------------------------------------------------------------

    def with_status(self, status: str) -> list[str]:
        return sorted(i for i, t in self.tasks.items() if t.status == status)

    def live_claims(self) -> list[str]:
        return [i for i in self.with_status("claimed") if not self.tasks[i].expired]

    def stale_tokens(self) -> list[tuple[str, int]]:
        """(task, token) pairs that no longer hold a lease: the task was completed,
        failed, reaped, requeued or cancelled since, or claimed again."""
        pairs = []
        for task_id, tokens in sorted(self.issued.items()):
            task = self.tasks.get(task_id)
            for token in tokens:
                if task is None or task.status != "claimed" or task.token != token:
                    pairs.append((task_id, token))
        return pairs

    def claimable_types(self) -> list[str]:
        """Types whose next claim gets a task: one is pending, or its lease ran out."""
        return sorted(
            {
                t.task_type
                for t in self.tasks.values()
                if t.status == "pending" or (t.status == "claimed" and t.expired)
            }
        )

    def pending_order(self, task_type: str) -> list[str]:
        pending = [
            (t.claim_key, i)
            for i, t in self.tasks.items()
            if t.status == "pending" and t.task_type == task_type
        ]
        return [i for _, i in sorted(pending)]

    def release(self, task: ModelTask, status: str) -> None:
        task.status = status
        task.holder = None
        task.token = None
        task.expired = False

    def model_reap(self, task_type: str | None) -> int:
        """What a reap does: expired leases (of ``task_type``, or all) go back to their
        queue, or to the dead-letter set once their attempts are used up."""
        reaped = 0
        for task in self.tasks.values():
            if task.status != "claimed" or not task.expired:
                continue
            if task_type is not None and task.task_type != task_type:
                continue
            self.release(task, "dead" if task.attempts >= self.max_attempts else "pending")
            reaped += 1
        return reaped

    # rules ----------------------------------------------------------------------

    @rule(task_id=task_ids, task_type=task_types, priority=priorities)
    def add_task(self, task_id: str, task_type: str, priority: int) -> None:
        fresh = task_id not in self.tasks
        added = self.worker.add_task(AgentTask(task_id, task_type, priority=priority))
        assert added is fresh
        if fresh:
            self.adds += 1
            self.tasks[task_id] = ModelTask(task_type, priority, self.adds)
            self.types.add(task_type)

    @rule(agent=agents, task_type=task_types)
    def claim(self, agent: str, task_type: str) -> None:
        self.model_reap(task_type)
        order = self.pending_order(task_type)
        claimed = self.worker.claim_task(agent, task_type)
        if not order:
            assert claimed is None
            return
        expected_id = order[0]
        task = self.tasks[expected_id]
        assert claimed is not None
        assert claimed.task_id == expected_id
        assert (claimed.task_type, claimed.priority) == (task.task_type, task.priority)
        assert claimed.status == "claimed"
        assert claimed.claimed_by == agent
        assert claimed.attempts == task.attempts + 1
        assert claimed.lease_expires_ms is not None
        token = claimed.fencing_token
        assert token is not None
        assert token > self.last_token, "fencing tokens must only grow"
        self.last_token = token
        self.issued.setdefault(expected_id, []).append(token)
        task.status = "claimed"
        task.attempts += 1
        task.holder = agent
        task.token = token
        task.expired = False

    @precondition(lambda self: self.claimable_types())
    @rule(agent=agents, data=st.data())
    def claim_claimable(self, agent: str, data: st.DataObject) -> None:
        """Claims of a type that has something to hand out, so that the queue moves."""
        self.claim(agent, data.draw(st.sampled_from(self.claimable_types()), label="type"))

    @precondition(lambda self: self.with_status("claimed"))
    @rule(data=st.data())
    def complete_current(self, data: st.DataObject) -> None:
        task_id = data.draw(st.sampled_from(self.with_status("claimed")), label="task")
        task = self.tasks[task_id]
        result = {"done_with": task.token}
        if task.expired:
            with pytest.raises(LeaseLost):
                self.worker.complete_task(task_id, result, fencing_token=task.token)
            return
        self.worker.complete_task(task_id, result, fencing_token=task.token)
        task.status = "completed"
        task.result = result

    @precondition(lambda self: self.with_status("claimed"))
    @rule(data=st.data(), retry=st.booleans())
    def fail_current(self, data: st.DataObject, retry: bool) -> None:
        task_id = data.draw(st.sampled_from(self.with_status("claimed")), label="task")
        task = self.tasks[task_id]
        if task.expired:
            with pytest.raises(LeaseLost):
                self.worker.fail_task(task_id, "boom", retry=retry, fencing_token=task.token)
            return
        status = self.worker.fail_task(task_id, "boom", retry=retry, fencing_token=task.token)
        expected = "pending" if retry and task.attempts < self.max_attempts else "dead"
        assert status == expected
        self.release(task, expected)

    @precondition(lambda self: self.with_status("claimed"))
    @rule(data=st.data())
    def extend_current(self, data: st.DataObject) -> None:
        task_id = data.draw(st.sampled_from(self.with_status("claimed")), label="task")
        task = self.tasks[task_id]
        if task.expired:
            with pytest.raises(LeaseLost):
                self.worker.extend_lease(task_id, fencing_token=task.token)
            return
        deadline = self.worker.extend_lease(task_id, fencing_token=task.token)
        assert deadline > 0

    @precondition(lambda self: self.stale_tokens())
    @rule(data=st.data(), action=st.sampled_from(["complete", "fail", "extend"]))
    def use_stale_token(self, data: st.DataObject, action: str) -> None:
        task_id, token = data.draw(st.sampled_from(self.stale_tokens()), label="stale")
        expected = LeaseLost if task_id in self.tasks else NotFound
        with pytest.raises(expected):
            if action == "complete":
                self.worker.complete_task(task_id, "late", fencing_token=token)
            elif action == "fail":
                self.worker.fail_task(task_id, "late", fencing_token=token)
            else:
                self.worker.extend_lease(task_id, fencing_token=token)

    @precondition(lambda self: self.live_claims())
    @rule(data=st.data())
    def expire_lease(self, data: st.DataObject) -> None:
        task_id = data.draw(st.sampled_from(self.live_claims()), label="task")
        # Stands in for the clock: leases are deadlines by the server's time, so moving
        # the deadline into the past is what waiting out the lease would do.
        leases = self.memory.keys.leases(TEAM, self.tasks[task_id].task_type)
        assert self.memory.client.zadd(leases, {task_id: 0}, xx=True) == 0
        self.tasks[task_id].expired = True

    @precondition(lambda self: any(t.expired for t in self.tasks.values()))
    @rule()
    def reap_expired(self) -> None:
        expected = self.model_reap(None)
        assert self.worker.reap_expired() == expected

    @precondition(lambda self: self.with_status("dead"))
    @rule(data=st.data())
    def requeue_dead(self, data: st.DataObject) -> None:
        task_id = data.draw(st.sampled_from(self.with_status("dead")), label="task")
        self.steward.requeue_task(task_id)
        task = self.tasks[task_id]
        self.release(task, "pending")
        task.attempts = 0

    @rule(task_id=task_ids, action=st.sampled_from(["requeue", "cancel"]))
    def steward_action(self, task_id: str, action: str) -> None:
        with pytest.raises(AccessDenied):
            getattr(self.worker, f"{action}_task")(task_id)
        act = getattr(self.steward, f"{action}_task")
        task = self.tasks.get(task_id)
        if task is None:
            with pytest.raises(NotFound):
                act(task_id)
        elif task.status == "completed":
            with pytest.raises(StateConflict):
                act(task_id)
        elif action == "requeue":
            act(task_id)
            self.release(task, "pending")
            task.attempts = 0
        else:
            act(task_id)
            del self.tasks[task_id]

    # invariants -----------------------------------------------------------------

    @invariant()
    def counts_match(self) -> None:
        counts = self.worker.counts()
        for status in ("pending", "claimed", "completed", "dead"):
            assert counts[status] == len(self.with_status(status)), status
        assert counts["pending_by_type"] == {
            t: len(self.pending_order(t)) for t in sorted(self.types)
        }

    @invariant()
    def pending_in_claim_order(self) -> None:
        for task_type in TASK_TYPES:
            listed = self.worker.list_tasks("pending", task_type)
            assert [t.task_id for t in listed] == self.pending_order(task_type), task_type
            assert listed.total == len(listed)

    @invariant()
    def other_listings_match(self) -> None:
        for status in ("claimed", "completed", "dead"):
            listed = self.worker.list_tasks(status)
            assert sorted(t.task_id for t in listed) == self.with_status(status), status

    @invariant()
    def every_task_matches(self) -> None:
        for task_id in TASK_IDS:
            got = self.worker.get_task(task_id)
            task = self.tasks.get(task_id)
            if task is None:
                assert got is None, task_id
                continue
            assert got is not None, task_id
            assert (got.task_type, got.priority) == (task.task_type, task.priority), task_id
            assert got.status == task.status, task_id
            assert got.attempts == task.attempts, task_id
            assert got.claimed_by == task.holder, task_id
            assert got.fencing_token == task.token, task_id
            if task.status == "claimed":
                assert got.lease_expires_ms is not None, task_id
                assert (got.lease_expires_ms == 0) is task.expired, task_id
            else:
                assert got.lease_expires_ms is None, task_id
            if task.status == "completed":
                assert got.result == task.result, task_id


MODEL_SETTINGS = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    database=None,
    # Explaining a failure replays it hundreds of times; the shrunk steps are enough.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def test_task_queue_matches_model(make_memory: MakeMemory) -> None:
    examples = itertools.count()

    def fresh_machine() -> QueueMachine:
        return QueueMachine(make_memory(prefix=f"ex{next(examples)}:"))

    run_state_machine_as_test(fresh_machine, settings=MODEL_SETTINGS)
