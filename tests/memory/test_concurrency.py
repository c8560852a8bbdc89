"""Many real processes sharing one redis-server: task claims and pattern decisions.

Every worker is its own OS process (``tests/memory/workers.py``). Each test checks that
every task or pattern was handled exactly once three ways: by the state in Redis, by the
event stream, and by what the workers themselves report.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from memory import (
    AccessTier,
    AgentCoordinator,
    AgentTask,
    EmpathyOS,
    Event,
    RedisShortTermMemory,
    StagedPattern,
)
from memory.patterns import decision as pattern_decision
from memory.tiers import Caller
from tests.memory.workers import EVENTS_MAXLEN, EXIT_LEASE_LOST
from tests.redis_server import RedisServer

READER = Caller("reader", AccessTier.OBSERVER)  # the reads below read as an observer

ROOT = Path(__file__).resolve().parents[2]
# Every wait in this file is bounded by this, so a bug fails a test instead of hanging it.
WAIT_SECONDS = 50.0

TASK_TYPES = ["alpha", "beta", "gamma"]


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self.end


class Worker:
    """One ``python -m tests.memory.workers`` process and the lines it printed."""

    def __init__(self, mode: str, url: str, agent: str, *args: str, logdir: Path) -> None:
        self.agent = agent
        self.stderr_path = logdir / f"{agent}.stderr"
        extra_path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), extra_path]))}
        with open(self.stderr_path, "wb") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.memory.workers", mode, "--url", url]
                + ["--agent", agent, *args],
                cwd=ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                bufsize=1,
            )
        self.lines: list[list[str]] = []
        self._queue: queue.Queue[list[str] | None] = queue.Queue()
        self._pump = threading.Thread(target=self._read, daemon=True)
        self._pump.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.split())
        self._queue.put(None)

    def describe(self) -> str:
        with contextlib.suppress(queue.Empty):
            while (parts := self._queue.get_nowait()) is not None:
                self.lines.append(parts)
        err = self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""
        tail = [" ".join(parts) for parts in self.lines[-5:]]
        return f"worker {self.agent} (pid {self.pid}): last lines {tail}, stderr:\n{err}"

    def wait_for(self, word: str, deadline: Deadline) -> list[str]:
        """Read lines until one starts with ``word``; return its words."""
        while True:
            try:
                parts = self._queue.get(timeout=deadline.remaining())
            except queue.Empty:
                pytest.fail(f"timed out waiting for {word!r} from {self.describe()}")
            if parts is None:
                pytest.fail(f"stdout closed before {word!r} from {self.describe()}")
            self.lines.append(parts)
            if parts and parts[0] == word:
                return parts

    def send(self, line: str = "go") -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def join(self, deadline: Deadline) -> int:
        """Wait for the process to exit and collect the rest of its lines."""
        try:
            code = self.proc.wait(timeout=deadline.remaining())
        except subprocess.TimeoutExpired:
            pytest.fail(f"did not exit in time: {self.describe()}")
        self._pump.join(timeout=deadline.remaining())
        while True:
            try:
                parts = self._queue.get_nowait()
            except queue.Empty:
                break
            if parts is not None:
                self.lines.append(parts)
        return code

    def words(self, word: str) -> list[list[str]]:
        return [parts for parts in self.lines if parts and parts[0] == word]

    def state(self) -> str:
        """The process state letter from /proc ("T" when stopped)."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0]

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()


Spawn = Callable[..., Worker]


@pytest.fixture
def spawn(redis_server: RedisServer) -> Iterator[Spawn]:
    """Start worker processes on the session server; every one is killed at teardown."""
    started: list[Worker] = []
    with tempfile.TemporaryDirectory(prefix="workers-") as logdir:

        def start(mode: str, agent: str, *args: str) -> Worker:
            worker = Worker(mode, redis_server.url, agent, *args, logdir=Path(logdir))
            started.append(worker)
            return worker

        try:
            yield start
        finally:
            for worker in started:
                worker.stop()


@pytest.fixture
def memory(redis_server: RedisServer) -> Iterator[RedisShortTermMemory]:
    client = redis.Redis.from_url(redis_server.url, socket_timeout=10, socket_connect_timeout=5)
    client.flushall()
    client.close()
    mem = RedisShortTermMemory(url=redis_server.url, events_maxlen=EVENTS_MAXLEN)
    try:
        yield mem
    finally:
        mem.close()


def all_events(memory: RedisShortTermMemory) -> list[Event]:
    """The whole event stream, oldest first, read a thousand at a time."""
    events: list[Event] = []
    after = "0-0"
    while True:
        page = memory.read_events(after, count=1000)
        if not page:
            return events
        events.extend(page)
        after = page[-1].id


def of_type(events: list[Event], kind: str) -> list[Event]:
    return [e for e in events if e.type == kind]


def add_tasks(coordinator: AgentCoordinator, n: int) -> list[str]:
    ids = []
    for i in range(n):
        task = AgentTask(
            task_id=f"task-{i:04d}",
            task_type=TASK_TYPES[i % len(TASK_TYPES)],
            priority=1 + (i * 7) % 10,
            description=f"task number {i}",
        )
        assert coordinator.add_task(task)
        ids.append(task.task_id)
    return ids


def completed_results(coordinator: AgentCoordinator) -> dict[str, object]:
    results: dict[str, object] = {}
    cursor = None
    while True:
        page = coordinator.list_tasks("completed", limit=500, cursor=cursor)
        for task in page:
            assert task.status == "completed"
            assert task.task_id not in results
            results[task.task_id] = task.result
        cursor = page.next_cursor
        if cursor is None:
            return results


def start_together(workers: list[Worker], deadline: Deadline) -> None:
    for worker in workers:
        worker.wait_for("ready", deadline)
    for worker in workers:
        worker.send("go")


def check_drained(
    memory: RedisShortTermMemory,
    coordinator: AgentCoordinator,
    ids: list[str],
    workers: list[Worker],
) -> list[Event]:
    """Every task completed exactly once, by Redis, by the events and by the workers."""
    n = len(ids)
    counts = coordinator.counts()
    assert counts["completed"] == n
    assert (counts["pending"], counts["claimed"], counts["dead"]) == (0, 0, 0)
    assert counts["pending_by_type"] == dict.fromkeys(TASK_TYPES, 0)

    # What the workers say they completed: every id once, no id twice.
    reported = Counter(parts[1] for w in workers for parts in w.words("done"))
    assert [tid for tid, k in reported.items() if k > 1] == []
    assert set(reported) == set(ids)

    events = all_events(memory)
    # Nothing was trimmed: the stream still starts with every task.added.
    assert Counter(e.ids["task_id"] for e in of_type(events, "task.added")) == Counter(ids)
    completed = of_type(events, "task.completed")
    per_task = Counter(e.ids["task_id"] for e in completed)
    assert [tid for tid, k in per_task.items() if k != 1] == []
    assert set(per_task) == set(ids)
    assert of_type(events, "task.failed") == []
    assert of_type(events, "task.dead_lettered") == []

    # Each worker's report matches the completions the stream credits to it.
    by_agent: dict[str, set[str]] = {}
    for e in completed:
        by_agent.setdefault(e.ids["agent"], set()).add(e.ids["task_id"])
    for worker in workers:
        mine = {parts[1] for parts in worker.words("done")}
        assert by_agent.get(worker.agent, set()) == mine, worker.agent

    # Fencing tokens are never handed out twice.
    tokens = Counter(e.ids["token"] for e in of_type(events, "task.claimed"))
    assert [t for t, k in tokens.items() if k > 1] == []

    # The stored result is the one written by the completing worker.
    results = completed_results(coordinator)
    assert set(results) == set(ids)
    for e in completed:
        tid = e.ids["task_id"]
        assert results[tid] == {"agent": e.ids["agent"], "task_id": tid}
    return events


def drain_args(index: int, lease: float, *extra: str) -> list[str]:
    return [
        "--index",
        str(index),
        "--team",
        "crew",
        "--types",
        *TASK_TYPES,
        "--lease",
        str(lease),
        "--work-ms",
        "2",
        *extra,
    ]


N_WORKERS = 16
N_TASKS = 2000


def test_sixteen_workers_complete_every_task_exactly_once(
    memory: RedisShortTermMemory, spawn: Spawn
) -> None:
    deadline = Deadline(WAIT_SECONDS)
    coordinator = AgentCoordinator(memory, "crew")
    ids = add_tasks(coordinator, N_TASKS)
    workers = [spawn("drain", f"worker-{i:02d}", *drain_args(i, 30.0)) for i in range(N_WORKERS)]
    start_together(workers, deadline)
    for worker in workers:
        assert worker.join(deadline) == 0, worker.describe()
        assert worker.words("lost") == [], worker.describe()
        (exit_line,) = worker.words("exit")
        assert int(exit_line[1]) == len(worker.words("done"))

    events = check_drained(memory, coordinator, ids, workers)
    # With a long lease and no crash, every task was claimed once and no lease ran out.
    claims = Counter(e.ids["task_id"] for e in of_type(events, "task.claimed"))
    assert claims == Counter(ids)
    assert of_type(events, "task.lease_expired") == []


def test_killed_workers_tasks_are_completed_once_by_survivors(
    memory: RedisShortTermMemory, spawn: Spawn
) -> None:
    deadline = Deadline(WAIT_SECONDS)
    coordinator = AgentCoordinator(memory, "crew")
    ids = add_tasks(coordinator, N_TASKS)
    victims = {3, 8, 13}
    workers = [
        spawn(
            "drain",
            f"worker-{i:02d}",
            *drain_args(i, 1.0, *(["--hold-after", "10"] if i in victims else [])),
        )
        for i in range(N_WORKERS)
    ]
    start_together(workers, deadline)

    # Each victim completes ten tasks, claims an eleventh and is killed holding it.
    held: dict[str, tuple[str, str]] = {}
    for i in sorted(victims):
        victim = workers[i]
        _, task_id, token = victim.wait_for("holding", deadline)
        os.kill(victim.pid, signal.SIGKILL)
        assert victim.join(deadline) == -signal.SIGKILL
        assert len(victim.words("done")) == 10
        held[task_id] = (victim.agent, token)

    survivors = [w for i, w in enumerate(workers) if i not in victims]
    for worker in survivors:
        assert worker.join(deadline) == 0, worker.describe()

    events = check_drained(memory, coordinator, ids, workers)
    completed_by = {e.ids["task_id"]: e.ids["agent"] for e in of_type(events, "task.completed")}
    expired = of_type(events, "task.lease_expired")
    for task_id, (victim_agent, token) in held.items():
        # The dead worker's lease ran out, and someone alive completed the task once.
        assert any(e.ids["task_id"] == task_id and e.ids["holder"] == victim_agent for e in expired)
        assert completed_by[task_id] not in {workers[i].agent for i in victims}
        task = coordinator.get_task(task_id)
        assert task is not None
        assert task.status == "completed"
        assert task.attempts >= 2
        claims = [
            (e.ids["agent"], e.ids["token"])
            for e in of_type(events, "task.claimed")
            if e.ids["task_id"] == task_id
        ]
        # The victim's claim (with the token it reported) came first; the completer's last.
        assert claims[0] == (victim_agent, token)
        assert claims[-1][0] == completed_by[task_id]


@pytest.mark.parametrize("order", ["second_completes_first", "second_still_holds"])
def test_paused_worker_cannot_complete_after_its_lease_ran_out(
    memory: RedisShortTermMemory, spawn: Spawn, order: str
) -> None:
    deadline = Deadline(WAIT_SECONDS)
    coordinator = AgentCoordinator(memory, "pause")
    assert coordinator.add_task(AgentTask(task_id="the-task", task_type="work"))
    paused = spawn("claim-one", "worker-a", "--team", "pause", "--types", "work", "--lease", "0.5")
    second = spawn("claim-one", "worker-b", "--team", "pause", "--types", "work", "--lease", "30")
    paused.wait_for("ready", deadline)
    second.wait_for("ready", deadline)

    paused.send("go")
    _, task_id, token_a, lease_end_a, attempts_a = paused.wait_for("claimed", deadline)
    assert (task_id, attempts_a) == ("the-task", "1")
    os.kill(paused.pid, signal.SIGSTOP)
    while paused.state() != "T":
        assert not deadline.expired(), "the worker never stopped"
        time.sleep(0.01)
    # Its finish signal waits in the pipe; it cannot act on it while stopped.
    paused.send("finish")

    # Sleep past the paused worker's lease, by the server's clock.
    while memory.server_time_ms() <= int(lease_end_a):
        assert not deadline.expired(), "the lease never ran out"
        time.sleep(0.05)

    second.send("go")
    _, task_id_b, token_b, _, attempts_b = second.wait_for("claimed", deadline)
    assert (task_id_b, attempts_b) == ("the-task", "2")
    assert int(token_b) > int(token_a)

    def finish_second() -> None:
        second.send("finish")
        second.wait_for("completed", deadline)
        assert second.join(deadline) == 0, second.describe()

    if order == "second_completes_first":
        finish_second()
    os.kill(paused.pid, signal.SIGCONT)
    assert paused.wait_for("refused", deadline) == ["refused", "LeaseLost"]
    assert paused.join(deadline) == EXIT_LEASE_LOST, paused.describe()
    if order == "second_still_holds":
        # The refused late write changed nothing: the second worker still holds the lease.
        task = coordinator.get_task("the-task")
        assert task is not None
        assert (task.status, task.claimed_by, task.fencing_token) == (
            "claimed",
            "worker-b",
            int(token_b),
        )
        finish_second()

    task = coordinator.get_task("the-task")
    assert task is not None
    assert task.status == "completed"
    assert task.result == {"by": "worker-b"}
    assert task.fencing_token == int(token_b)
    counts = coordinator.counts()
    assert (counts["pending"], counts["claimed"], counts["completed"], counts["dead"]) == (
        0,
        0,
        1,
        0,
    )

    events = [e for e in all_events(memory) if e.ids.get("task_id") == "the-task"]
    completed = of_type(events, "task.completed")
    assert [(e.ids["agent"], e.ids["token"]) for e in completed] == [("worker-b", token_b)]
    assert [e.ids["agent"] for e in of_type(events, "task.claimed")] == ["worker-a", "worker-b"]
    assert [e.ids["holder"] for e in of_type(events, "task.lease_expired")] == ["worker-a"]


N_PATTERNS = 500


@pytest.mark.parametrize("second_order", ["reverse", "shuffle"])
def test_two_validators_decide_each_pattern_exactly_once(
    memory: RedisShortTermMemory, spawn: Spawn, second_order: str
) -> None:
    deadline = Deadline(WAIT_SECONDS)
    finder = EmpathyOS("finder", short_term_memory=memory)
    ids = [f"pattern-{i}" for i in range(N_PATTERNS)]
    for pattern_id in ids:
        finder.stage_pattern(
            StagedPattern(
                pattern_id=pattern_id,
                agent_id="finder",
                pattern_type="habit",
                name=f"name of {pattern_id}",
                description="seen twice",
            )
        )
    common = ["--count", str(N_PATTERNS), "--prefix", "pattern-"]
    validators = [
        spawn("validate", "validator-1", "--index", "0", "--order", "forward", *common),
        spawn(
            "validate",
            "validator-2",
            *["--index", "1", "--order", second_order, "--seed", "7", *common],
        ),
    ]
    start_together(validators, deadline)
    for validator in validators:
        assert validator.join(deadline) == 0, validator.describe()

    won: dict[str, dict[str, str]] = {}
    lost: dict[str, set[str]] = {}
    for validator in validators:
        wins = {parts[1]: parts[2] for parts in validator.words("won")}
        losses = [parts[1] for parts in validator.words("lost")]
        # Each validator tried every pattern exactly once.
        assert sorted([*wins, *losses]) == sorted(ids)
        won[validator.agent] = wins
        lost[validator.agent] = set(losses)
    first, second = (v.agent for v in validators)
    assert set(won[first]).isdisjoint(won[second])
    assert set(won[first]) | set(won[second]) == set(ids)
    # Whoever lost a pattern lost it to the other validator, with AlreadyDecided.
    assert lost[first] == set(won[second])
    assert lost[second] == set(won[first])

    winner = {pid: (agent, how) for agent, wins in won.items() for pid, how in wins.items()}
    events = all_events(memory)
    assert Counter(e.ids["pattern_id"] for e in of_type(events, "pattern.staged")) == Counter(ids)
    decisions = [e for e in events if e.type in ("pattern.promoted", "pattern.rejected")]
    per_pattern = Counter(e.ids["pattern_id"] for e in decisions)
    assert [pid for pid, k in per_pattern.items() if k != 1] == []
    assert set(per_pattern) == set(ids)
    for e in decisions:
        agent, how = winner[e.ids["pattern_id"]]
        assert (e.type, e.actor, e.tier) == (f"pattern.{how}", agent, "VALIDATOR")

    for pattern_id in ids:
        agent, how = winner[pattern_id]
        record = pattern_decision(memory, READER, pattern_id)
        assert record is not None
        assert (record["decision"], record["by"]) == (how, agent)
    reviewer = EmpathyOS("reviewer", short_term_memory=memory, access_tier=AccessTier.VALIDATOR)
    assert list(reviewer.get_staged_patterns(limit=500)) == []
