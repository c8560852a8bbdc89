"""What waiting for a replica costs (``wait_replicas=1``, ``REDIS_WAIT_REPLICAS=1``):
each write then waits until a replica has it (``WAIT``), so an acknowledged write
survives a failover to that replica.

A master and one replica on 127.0.0.1 (no persistence). Stash and claim+complete, with
and without the wait, taking turns in blocks of 100 calls; the raw SET is the baseline.

Run with ``make bench`` (or ``pytest -m benchmark -s tests/benchmarks/test_replica_bench.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from memory import AgentCoordinator, AgentTask, EmpathyOS, RedisShortTermMemory
from tests.benchmarks.report import Op, Row, measure, render_markdown, render_text
from tests.redis_server import HOST, RedisServer, start_redis_server, until

pytestmark = pytest.mark.benchmark

N = int(os.environ.get("BENCH_N", "2000"))
WARMUP = 200


@pytest.fixture(scope="module")
def replicated() -> Iterator[RedisServer]:
    master = start_redis_server([])
    replica = start_redis_server(["--replicaof", HOST, str(master.port)])
    with replica.client() as client:
        until(lambda: client.info("replication")["master_link_status"] == "up", "no sync")
    try:
        yield master
    finally:
        replica.stop()
        master.stop()


def _ops(label: str, memory: RedisShortTermMemory) -> list[Op]:
    agent = EmpathyOS(f"agent-{label}", short_term_memory=memory)
    team = AgentCoordinator(memory, f"team-{label}")

    def claim_complete(i: int) -> None:
        team.add_task(AgentTask(f"t{i}", "review", "d", 5))
        task = team.claim_task(agent.user_id, "review")
        team.complete_task(task.task_id, "ok")

    return [
        Op(f"stash{label}", lambda i: agent.stash(f"k{i % 1000}", {"step": i})),
        Op(f"add+claim+complete{label}", claim_complete),
    ]


def test_what_waiting_for_a_replica_costs(replicated: RedisServer) -> None:
    plain = RedisShortTermMemory(url=replicated.url)
    waiting = RedisShortTermMemory(url=replicated.url, wait_replicas=1)
    raw = replicated.client()
    ops = [
        Op("raw redis-py SET", lambda i: raw.set(f"raw{i % 1000}", b"x" * 64)),
        *_ops("", plain),
        *_ops(" (WAIT 1)", waiting),
    ]
    stats = measure(ops, n=N, warmup=WARMUP)
    base = stats["raw redis-py SET"]
    rows = [Row(name, stat, base, "SET") for name, stat in stats.items()]
    print("\n" + render_text(rows))
    if path := os.environ.get("BENCH_MARKDOWN"):
        with open(path, "a") as out:
            out.write(render_markdown(rows) + "\n")
    for memory in (plain, waiting):
        memory.close()
    raw.close()
