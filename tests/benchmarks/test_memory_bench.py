"""Per-operation latency of the memory library next to raw redis-py, on a real server.

Everything runs on one private redis-server on 127.0.0.1 (no persistence), through one
``RedisShortTermMemory`` (so one connection) plus one raw ``redis.Redis`` client for
the SET / GET baselines. The server and the benchmark are pinned to separate CPUs, so
the scheduler cannot move them together halfway through; the single-key group is then
run again with both on one CPU, and printed without targets. The single-key operations and the baselines take turns in
blocks of 100 calls, so a busy machine slows them alike. The targets
are printed as PASS or FAIL, not asserted: the asserts here only check that each
operation did its job (a full page, 1,000 signals received, a task claimed).

Run with ``make bench`` or ``python -m tests.benchmarks``; set ``BENCH_MARKDOWN`` to a
path to also get the table as Markdown.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from memory import AgentCoordinator, AgentTask, EmpathyOS, RedisShortTermMemory, StagedPattern
from memory.signals import list_signals
from memory.tiers import AccessTier, Caller
from tests.benchmarks.report import Op, Row, Stat, measure, render_markdown, render_text
from tests.redis_server import RedisServer

READER = Caller("reader", AccessTier.OBSERVER)  # the reads below read as an observer

pytestmark = pytest.mark.benchmark

N = int(os.environ.get("BENCH_N", "3000"))
WARMUP = 200
RECEIVE_N = 50
RECEIVE_WARMUP = 3
PENDING = 1_000
STAGED = 10_000
QUEUED = 10_000
UNRELATED = 300_000
PAGE = 50
KEYSPACE = 1_000  # stash / SET rotate over this many keys

VALUE = {"status": "ok", "step": 7, "score": 0.93, "tags": ["parse", "lint"], "file": "app.py"}
RAW_VALUE = json.dumps(VALUE, separators=(",", ":")).encode()
TEAM = "bench-team"
TASK_TYPE = "analyse"
BIG = f"[+{UNRELATED // 1000}k keys] "
SHARED = "[one CPU] "


def _pattern(i: int) -> StagedPattern:
    return StagedPattern(
        pattern_id=f"bench-p-{i}",
        agent_id="bench-agent",
        pattern_type="refactoring",
        name="Extract helper",
        description="Three handlers repeat the same validation; pull it into one helper.",
        context={"files": ["a.py", "b.py"], "lines": 42},
        confidence=0.8,
    )


def _task(i: int) -> AgentTask:
    return AgentTask(
        task_id=f"task-{i}",
        task_type=TASK_TYPE,
        description="Analyse one module",
        priority=5,
        context={"module": f"pkg/mod_{i % 100}.py"},
    )


class Bench:
    """The clients and agents of one run, and the rows measured so far."""

    def __init__(self, url: str) -> None:
        self.raw = redis.Redis.from_url(url)
        self.memory = RedisShortTermMemory(url=url)
        self.agent = EmpathyOS("bench-agent", self.memory)
        self.sender = EmpathyOS("bench-sender", self.memory)
        self.receiver = EmpathyOS("bench-receiver", self.memory)
        # A long lease, so no claim of this run ever finds expired leases to reap.
        self.coordinator = AgentCoordinator(self.memory, TEAM, lease_seconds=3600)
        self.queue = self.memory.keys.queue(TEAM, TASK_TYPE)
        self.rows: list[Row] = []
        self.baselines: dict[str, Stat] = {}
        self.next_pattern = 0
        self.next_task = 0

    def close(self) -> None:
        self.memory.close()
        self.raw.close()

    def add(
        self,
        op: str,
        stat: Stat,
        baseline: str,
        *,
        max_ratio: float | None = None,
        max_median_us: float | None = None,
    ) -> None:
        self.rows.append(
            Row(op, stat, self.baselines[baseline], baseline, max_ratio, max_median_us)
        )

    # filling, outside any timed section ----------------------------------------

    def new_pattern(self, _: int = 0) -> StagedPattern:
        self.next_pattern += 1
        return _pattern(self.next_pattern - 1)

    def new_task(self, _: int = 0) -> AgentTask:
        self.next_task += 1
        return _task(self.next_task - 1)

    def stage_up_to(self, count: int) -> None:
        while self.raw.zcard(self.memory.keys.pattern_shards[0].patterns_staged) < count:
            self.agent.stage_pattern(self.new_pattern())

    def queue_up_to(self, count: int) -> None:
        while self.raw.zcard(self.queue) < count:
            assert self.coordinator.add_task(self.new_task())

    def fill_inbox(self, _: int) -> None:
        for j in range(PENDING):
            self.sender.send_signal("bench.work", {"n": j}, target_agent="bench-receiver")

    def fill_unrelated(self, count: int) -> None:
        filler = b"x" * 32
        batch = 10_000
        for start in range(0, count, batch):
            with self.raw.pipeline(transaction=False) as pipe:
                for i in range(start, min(start + batch, count)):
                    pipe.set(f"unrelated:{i}", filler)
                pipe.execute()

    # measurements ------------------------------------------------------------------

    def single_ops(self, prefix: str, *, targets: bool = True) -> None:
        """SET, GET and the library's single-key operations, taking turns.

        Each round adds a block of tasks before claiming as many, so the queue never
        holds fewer than the QUEUED tasks it starts with.
        """
        raw, agent, sender, coordinator = self.raw, self.agent, self.sender, self.coordinator
        self.queue_up_to(QUEUED)
        queued = raw.zcard(self.queue)

        def same_value(value: Any) -> None:
            assert value == VALUE

        def added(result: bool) -> None:
            assert result

        def claimed(task: AgentTask | None) -> None:
            assert task is not None

        stats = measure(
            [
                Op("SET", lambda i: raw.set(f"bench:raw:{i % KEYSPACE}", RAW_VALUE)),
                Op("GET", lambda i: raw.get(f"bench:raw:{i % KEYSPACE}")),
                Op("stash", lambda i: agent.stash(f"result:{i % KEYSPACE}", VALUE)),
                Op(
                    "retrieve", lambda i: agent.retrieve(f"result:{i % KEYSPACE}"), None, same_value
                ),
                Op(
                    "send_signal",
                    lambda i: sender.send_signal(
                        "bench.ping", {"n": i}, target_agent="bench-target"
                    ),
                ),
                Op("stage_pattern", agent.stage_pattern, self.new_pattern),
                Op("add_task", coordinator.add_task, self.new_task, added),
                Op(
                    "claim_task",
                    lambda _: coordinator.claim_task("bench-worker", TASK_TYPE),
                    None,
                    claimed,
                ),
            ],
            n=N,
            warmup=WARMUP,
        )
        assert raw.zcard(self.queue) == queued
        self.baselines["SET"], self.baselines["GET"] = stats["SET"], stats["GET"]
        self.add(f"{prefix}raw redis-py SET", stats["SET"], "SET")
        self.add(f"{prefix}raw redis-py GET", stats["GET"], "GET")
        self.add(f"{prefix}stash", stats["stash"], "SET", max_ratio=1.5 if targets else None)
        self.add(f"{prefix}retrieve", stats["retrieve"], "GET", max_ratio=1.3 if targets else None)
        self.add(f"{prefix}send_signal (targeted)", stats["send_signal"], "SET")
        self.add(f"{prefix}stage_pattern", stats["stage_pattern"], "SET")
        self.add(f"{prefix}add_task", stats["add_task"], "SET")
        self.add(
            f"{prefix}claim_task ({queued:,} queued)",
            stats["claim_task"],
            "SET",
            max_ratio=2.0 if targets else None,
        )

    def receive(self, prefix: str) -> None:
        def all_pending(received: list[dict[str, Any]]) -> None:
            assert len(received) == PENDING

        stats = measure(
            [
                Op(
                    "receive",
                    lambda _: self.receiver.receive_signals(),
                    self.fill_inbox,
                    all_pending,
                )
            ],
            n=RECEIVE_N,
            warmup=RECEIVE_WARMUP,
        )
        self.add(f"{prefix}receive_signals ({PENDING:,} pending)", stats["receive"], "GET")

    def listings(self, prefix: str) -> None:
        agent, memory, coordinator = self.agent, self.memory, self.coordinator
        self.stage_up_to(STAGED)
        staged = self.raw.zcard(memory.keys.pattern_shards[0].patterns_staged)
        feed = self.raw.zcard(memory.keys.signals_recent)
        queued = self.raw.zcard(self.queue)

        def full_page(page: list[Any]) -> None:
            assert len(page) == PAGE

        stats = measure(
            [
                Op("staged", lambda _: agent.get_staged_patterns(limit=PAGE), None, full_page),
                Op("signals", lambda _: list_signals(memory, READER, limit=PAGE), None, full_page),
                Op(
                    "tasks",
                    lambda _: coordinator.list_tasks("pending", TASK_TYPE, limit=PAGE),
                    None,
                    full_page,
                ),
            ],
            n=N,
            warmup=WARMUP,
        )
        limit = 2000.0
        self.add(
            f"{prefix}get_staged_patterns, page of {PAGE} of {staged:,}",
            stats["staged"],
            "GET",
            max_median_us=limit,
        )
        self.add(
            f"{prefix}list_signals, page of {PAGE} of {feed:,}",
            stats["signals"],
            "GET",
            max_median_us=limit,
        )
        self.add(
            f"{prefix}list_tasks pending, page of {PAGE} of {queued:,}",
            stats["tasks"],
            "GET",
            max_median_us=limit,
        )


def _header(bench: Bench) -> str:
    info = bench.raw.info("server")
    return (
        f"redis-server {info['redis_version']} on 127.0.0.1 (no persistence), "
        f"redis-py {redis.__version__}, Python {platform.python_version()} on "
        f"{sys.platform}, {os.cpu_count()} CPUs. The server is pinned to one CPU and the "
        f"benchmark to another, as when Redis runs on its own host; the rows marked "
        f"{SHARED.strip()} pin both to the same CPU (with the 300k keys), where no wake-up "
        f"crosses CPUs, so the round trip is shorter and the library's extra work a "
        f"larger share of it; the targets apply to the first placement. One connection "
        f"per client. n timed "
        f"calls after {WARMUP} warm-up ({RECEIVE_WARMUP} for receive_signals), the ops of "
        f"a group taking turns in blocks of 100; p99 is nearest-rank (the maximum when "
        f"n < 100). Ratios compare medians with the raw redis-py SET or GET timed in "
        f"turns with the single-key operations, on the same database."
    )


@contextmanager
def placed(server_cpu: int, client_cpu: int, server: RedisServer) -> Iterator[None]:
    """Pin redis-server and this process to the given CPUs for the block."""
    before = os.sched_getaffinity(0), os.sched_getaffinity(server.pid)
    os.sched_setaffinity(server.pid, {server_cpu})
    os.sched_setaffinity(0, {client_cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before[0])
        os.sched_setaffinity(server.pid, before[1])


def test_memory_latency(server: RedisServer) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("needs two CPUs: the server and the client each get their own")
    bench = Bench(server.url)
    try:
        with placed(cpus[1], cpus[0], server):
            bench.single_ops("")
            bench.receive("")
            bench.listings("")

            bench.fill_unrelated(UNRELATED)
            assert bench.raw.dbsize() >= UNRELATED
            bench.listings(BIG)
            bench.single_ops(BIG)
            bench.receive(BIG)
        with placed(cpus[0], cpus[0], server):
            bench.single_ops(SHARED, targets=False)

        header = _header(bench)
        dbsize = bench.raw.dbsize()
    finally:
        bench.close()

    print()
    print(textwrap.fill(header, 100))
    print()
    print(render_text(bench.rows))
    print(f"\n(database at the end: {dbsize:,} keys)")
    path = os.environ.get("BENCH_MARKDOWN")
    if path:
        markdown = f"{header}\n\n{render_markdown(bench.rows)}\n"
        Path(path).write_text(markdown, encoding="utf-8")
        print(f"Markdown table written to {path}")
