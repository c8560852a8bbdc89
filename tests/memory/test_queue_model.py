"""One team's task queue, checked step by step against a small pure-Python model.

Hypothesis drives random sequences of adds, claims, completions, failures, lease
extensions and expiries, reaps, requeues and cancels, through two worker coordinators
(as two processes would) and a steward. After every step the queue's counts, listings,
depth series, per-task state and pending tasks by when they became pending must equal
what the model predicts. Every example runs on its own key prefix, on the real
redis-server and on fakeredis.
"""

from __future__ import annotations

import contextlib
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
from memory.metrics import queue_depth, queue_latency
from memory.tiers import Caller
from tests.memory.conftest import MakeMemory

READER = Caller("reader", AccessTier.OBSERVER)  # the reads below read as an observer

TEAM = "model-team"
TASK_IDS = ("t1", "t2", "t3", "t4", "t5", "t6")
TASK_TYPES = ("build", "review")
AGENTS = ("agent-a", "agent-b", "agent-c")
WORKERS = 2
# Far longer than any example runs, so a lease only runs out when a rule says so.
LEASE_SECONDS = 600.0

task_ids = st.sampled_from(TASK_IDS)
task_types = st.sampled_from(TASK_TYPES)
# Any priority, but often one of three, so that ties (FIFO within a priority) are common.
priorities = st.sampled_from([1, 5, 10]) | st.integers(min_value=1, max_value=10)
agents = st.sampled_from(AGENTS)
workers = st.integers(min_value=0, max_value=WORKERS - 1)
finishes = st.sampled_from(["complete", "fail", "extend"])


@dataclass
class ModelTask:
    task_type: str
    priority: int
    seq: int  # order of the add that created it: FIFO within a priority
    status: str = "pending"  # pending | claimed | completed | dead
    attempts: int = 0
    holder: str | None = None
    token: int | None = None
    deadline: int | None = None  # of the current lease, by the server's clock
    expired: bool = False  # claimed, but its lease has run out (not reaped yet)
    result: Any = None
    # The last completion or failure: (token, action, answer). The same call sent again
    # with that token answers the same and changes nothing (a replay after a lost reply).
    finished: tuple[int, str, str] | None = None

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
        # The lease (token, task type) each worker coordinator remembers per task, for
        # calls without a token.
        self.remembered: list[dict[str, tuple[int, str]]] = [{} for _ in range(WORKERS)]
        self.max_attempts = 1

    @initialize(
        max_attempts=st.integers(min_value=1, max_value=3),
        seed=st.lists(st.tuples(task_ids, task_types, priorities), min_size=2, max_size=8),
    )
    def start(self, max_attempts: int, seed: list[tuple[str, str, int]]) -> None:
        self.max_attempts = max_attempts
        options = {"lease_seconds": LEASE_SECONDS, "max_attempts": max_attempts}
        self.workers = [AgentCoordinator(self.memory, TEAM, **options) for _ in range(WORKERS)]
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
        task.deadline = None
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
        added = self.workers[0].add_task(AgentTask(task_id, task_type, priority=priority))
        assert added is fresh
        if fresh:
            self.adds += 1
            self.tasks[task_id] = ModelTask(task_type, priority, self.adds)
            self.types.add(task_type)

    @rule(data=st.data())
    def claim(self, data: st.DataObject) -> None:
        via = data.draw(workers, label="via")
        agent = data.draw(agents, label="agent")
        # Mostly a type with something to hand out, so that the queue moves.
        claimable = self.claimable_types()
        types = st.sampled_from(claimable) | task_types if claimable else task_types
        task_type = data.draw(types, label="task_type")
        self.model_reap(task_type)
        order = self.pending_order(task_type)
        claimed = self.workers[via].claim_task(agent, task_type)
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
        assert claimed.lease_expires_ms > 0
        token = claimed.fencing_token
        assert token is not None
        assert token > self.last_token, "fencing tokens must only grow"
        self.last_token = token
        self.issued.setdefault(expected_id, []).append(token)
        task.status = "claimed"
        task.attempts += 1
        task.holder = agent
        task.token = token
        task.deadline = claimed.lease_expires_ms
        task.expired = False
        self.remembered[via][expected_id] = (token, task.task_type)

    def finish(
        self, via: int, action: str, task_id: str, token: int | None, retry: bool = True
    ) -> None:
        """Complete, fail or extend ``task_id`` through worker ``via``: with ``token``,
        or with none, relying on the lease that worker remembers from its claim."""
        worker = self.workers[via]
        cached = self.remembered[via].get(task_id)
        used = (cached[0] if cached else None) if token is None else token
        task = self.tasks.get(task_id)
        replay = task is not None and task.finished is not None
        replay = replay and task.finished[:2] == (used, action)  # type: ignore[index]
        # A worker acts as the holder only with a lease it took: with another claim's
        # token it acts as itself, and a token alone is not enough.
        as_holder = cached is not None and cached[0] == used
        if used is None:
            expected: type[Exception] | None = LeaseLost  # this worker holds no lease on it
        elif task is None:
            expected = NotFound
        elif not as_holder:
            expected = LeaseLost
        elif replay:
            expected = None
        elif task.status != "claimed" or task.token != used or task.expired:
            expected = LeaseLost
        else:
            expected = None
        result = {"done_with": used}
        with pytest.raises(expected) if expected else contextlib.nullcontext():
            if action == "complete":
                worker.complete_task(task_id, result, fencing_token=token)
            elif action == "fail":
                answer = worker.fail_task(task_id, "boom", retry=retry, fencing_token=token)
            else:
                deadline = worker.extend_lease(task_id, fencing_token=token)
        if action != "extend" and cached is not None and cached[0] == used:
            del self.remembered[via][task_id]  # a used lease is forgotten, won or lost
        if expected is not None:
            return
        assert task is not None
        if replay:
            assert task.finished is not None
            assert action != "fail" or answer == task.finished[2]
            return
        if action == "complete":
            task.status = "completed"
            task.deadline = None
            task.result = result
            task.finished = (used, action, "completed")
        elif action == "fail":
            status = "pending" if retry and task.attempts < self.max_attempts else "dead"
            assert answer == status
            task.finished = (used, action, status)
            self.release(task, status)
        else:
            assert task.deadline is not None
            assert deadline >= task.deadline
            task.deadline = deadline

    # With the current token (refused once the lease has run out), through either worker.

    def finish_current(self, data: st.DataObject, action: str, retry: bool = True) -> None:
        task_id = data.draw(st.sampled_from(self.with_status("claimed")), label="task")
        via = data.draw(workers, label="via")
        self.finish(via, action, task_id, self.tasks[task_id].token, retry)

    @precondition(lambda self: self.with_status("claimed"))
    @rule(data=st.data())
    def complete_current(self, data: st.DataObject) -> None:
        self.finish_current(data, "complete")

    @precondition(lambda self: self.with_status("claimed"))
    @rule(data=st.data())
    def fail_current(self, data: st.DataObject) -> None:
        self.finish_current(data, "fail", data.draw(st.booleans(), label="retry"))

    @precondition(lambda self: self.with_status("claimed"))
    @rule(data=st.data())
    def extend_current(self, data: st.DataObject) -> None:
        self.finish_current(data, "extend")

    @rule(data=st.data(), action=finishes, retry=st.booleans())
    def finish_without_token(self, data: st.DataObject, action: str, retry: bool) -> None:
        """Through a worker, relying on the lease it remembers; mostly one it does."""
        held = sorted((via, i) for via, ids in enumerate(self.remembered) for i in ids)
        anywhere = st.tuples(workers, task_ids)
        pairs = st.sampled_from(held) | anywhere if held else anywhere
        via, task_id = data.draw(pairs, label="worker_and_task")
        self.finish(via, action, task_id, None, retry)

    @precondition(lambda self: self.stale_tokens())
    @rule(data=st.data(), via=workers, action=finishes)
    def use_stale_token(self, data: st.DataObject, via: int, action: str) -> None:
        task_id, token = data.draw(st.sampled_from(self.stale_tokens()), label="stale")
        self.finish(via, action, task_id, token)

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
        assert self.workers[1].reap_expired() == expected

    @precondition(lambda self: self.with_status("dead"))
    @rule(data=st.data())
    def requeue_dead(self, data: st.DataObject) -> None:
        task_id = data.draw(st.sampled_from(self.with_status("dead")), label="task")
        self.steward.requeue_task(task_id)
        task = self.tasks[task_id]
        self.release(task, "pending")
        task.attempts = 0

    @rule(data=st.data(), action=st.sampled_from(["requeue", "cancel"]), via=workers)
    def steward_action(self, data: st.DataObject, action: str, via: int) -> None:
        known = sorted(self.tasks)
        task_id = data.draw(st.sampled_from(known) | task_ids if known else task_ids, label="task")
        with pytest.raises(AccessDenied):
            getattr(self.workers[via], f"{action}_task")(task_id)
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
        counts = self.workers[0].counts()
        for status in ("pending", "claimed", "completed", "dead"):
            assert counts[status] == len(self.with_status(status)), status
        assert counts["pending_by_type"] == {
            t: len(self.pending_order(t)) for t in sorted(self.types)
        }

    @invariant()
    def depth_series_ends_at_pending(self) -> None:
        assert queue_depth(self.memory, READER, TEAM, minutes=1) == [
            len(self.with_status("pending"))
        ]

    @invariant()
    def waiting_holds_the_pending_tasks(self) -> None:
        """Each type's tasks by when they became pending are its pending tasks, so the
        queue latency names exactly the types with some."""
        for task_type in TASK_TYPES:
            waiting = self.memory.client.zrange(self.memory.keys.waiting(TEAM, task_type), 0, -1)
            assert sorted(w.decode() for w in waiting) == sorted(self.pending_order(task_type))
        latency = queue_latency(self.memory, READER, [TEAM])[TEAM]
        assert sorted(latency) == [t for t in sorted(self.types) if self.pending_order(t)]

    @invariant()
    def listings_and_tasks_match(self) -> None:
        """Each status's listing holds exactly the model's tasks in that status (pending
        ones in claim order), each with the model's state; unknown ids are not found."""
        worker = self.workers[1]
        listed: dict[str, AgentTask] = {}
        for task_type in TASK_TYPES:
            page = worker.list_tasks("pending", task_type)
            assert [t.task_id for t in page] == self.pending_order(task_type), task_type
            assert page.total == len(page)
            listed.update((t.task_id, t) for t in page)
        for status in ("claimed", "completed", "dead"):
            page = worker.list_tasks(status)
            assert sorted(t.task_id for t in page) == self.with_status(status), status
            listed.update((t.task_id, t) for t in page)
        for task_id in TASK_IDS:
            task = self.tasks.get(task_id)
            if task is None:
                assert task_id not in listed, task_id
                assert worker.get_task(task_id) is None, task_id
                continue
            got = listed[task_id]
            assert (got.task_type, got.priority) == (task.task_type, task.priority), task_id
            assert got.status == task.status, task_id
            assert got.attempts == task.attempts, task_id
            assert got.claimed_by == task.holder, task_id
            assert got.fencing_token == task.token, task_id
            if task.status == "claimed":
                expected = 0 if task.expired else task.deadline
                assert got.lease_expires_ms == expected, task_id
            else:
                assert got.lease_expires_ms is None, task_id
            if task.status == "completed":
                assert got.result == task.result, task_id


MODEL_SETTINGS = settings(
    max_examples=40,
    stateful_step_count=50,
    deadline=None,
    database=None,
    # The explain phase replays a failure far more often than shrinking does; the shrunk
    # steps are enough.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def test_task_queue_matches_model(make_memory: MakeMemory) -> None:
    examples = itertools.count()

    def fresh_machine() -> QueueMachine:
        return QueueMachine(make_memory(prefix=f"ex{next(examples)}:"))

    run_state_machine_as_test(fresh_machine, settings=MODEL_SETTINGS)


def test_current_token_is_honoured_after_the_id_changed_type(memory: RedisShortTermMemory) -> None:
    # first acts as agent-b too: it must be the holder of the token it presents.
    first = AgentCoordinator(memory, TEAM, lease_seconds=LEASE_SECONDS, actor="agent-b")
    second = AgentCoordinator(memory, TEAM, lease_seconds=LEASE_SECONDS)
    steward = AgentCoordinator(memory, TEAM, access_tier=AccessTier.STEWARD)
    first.add_task(AgentTask("t1", "build"))
    assert first.claim_task("agent-a", "build") is not None
    steward.cancel_task("t1")
    first.add_task(AgentTask("t1", "review"))
    current = second.claim_task("agent-b", "review")
    assert current is not None

    first.complete_task("t1", "done", fencing_token=current.fencing_token)

    done = second.get_task("t1")
    assert done is not None and done.status == "completed"
