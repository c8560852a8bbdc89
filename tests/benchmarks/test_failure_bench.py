"""How long the library takes to report a failure, with its default timeouts.

Each call is made through the fault-injecting proxy (``tests/faultproxy.py``) while the
proxy holds every byte (a silent partition: packets dropped, nothing reset), or after
the server was killed (connections refused), or with its reply replaced by a reset.
The figure is the wall time from the call to its ``MemoryConnectionError`` (or to its
answer, for the reset, which the library retries). Run with ``make bench``; set
``BENCH_MARKDOWN`` to a path to append the table there.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from memory import AgentCoordinator, AgentTask, EmpathyOS, MemoryConnectionError
from memory import RedisShortTermMemory as Memory
from memory.connection import DEFAULT_SOCKET_TIMEOUT
from tests.benchmarks.report import markdown_table, text_table
from tests.faultproxy import FaultProxy
from tests.redis_server import RedisServer, start_redis_server

pytestmark = pytest.mark.benchmark

TRIES = 3
BLOCK_MS = 1000  # what the dashboard's bridge blocks for at most
HEADER = ("call", "fault", "tries", "slowest s", "bound s")


def timed(call: Callable[[], object]) -> float:
    started = time.monotonic()
    with contextlib.suppress(MemoryConnectionError):
        call()
    return time.monotonic() - started


def calls(memory: Memory) -> dict[str, Callable[[], object]]:
    team = AgentCoordinator(memory, "t")
    agent = EmpathyOS("a", short_term_memory=memory)
    team.add_task(AgentTask(f"t{time.monotonic_ns()}", "x"))
    held = team.claim_task("w", "x")
    assert held is not None
    return {
        "claim_task": lambda: team.claim_task("w", "x"),
        "complete_task": lambda: team.complete_task(held.task_id, "r"),
        "get_task": lambda: team.get_task(held.task_id),
        "stash": lambda: agent.stash("k", 1),
        f"read_events(block_ms={BLOCK_MS})": lambda: memory.read_events("0-0", block_ms=BLOCK_MS),
    }


def silent(server: RedisServer, name: str) -> float:
    with FaultProxy(server.port) as proxy:
        memory = Memory(url=f"redis://127.0.0.1:{proxy.port}/0")
        call = calls(memory)[name]
        if name.startswith("read_events"):
            memory.read_events("0-0", block_ms=1)  # its connection is open
        proxy.blackhole()
        took = timed(call)
        proxy.heal(deliver=False)
        memory.close()
    return took


def reset(server: RedisServer, name: str) -> float:
    with FaultProxy(server.port) as proxy:
        memory = Memory(url=f"redis://127.0.0.1:{proxy.port}/0")
        call = calls(memory)[name]
        proxy.reset_replies(1)
        took = timed(call)
        memory.close()
    return took


def refused(name: str) -> float:
    server = start_redis_server([])
    memory = Memory(url=server.url)
    call = calls(memory)[name]
    server.kill()
    took = timed(call)
    memory.close()
    return took


def test_failure_detection(server: RedisServer) -> None:
    rows = []
    bound = DEFAULT_SOCKET_TIMEOUT
    for name in calls(Memory(url=server.url)):
        limit = bound + (BLOCK_MS / 1000 if name.startswith("read_events") else 1)
        slowest = max(silent(server, name) for _ in range(TRIES))
        rows.append((name, "silent partition", str(TRIES), f"{slowest:.2f}", f"{limit:.2f}"))
    for name in ("claim_task", "complete_task", "get_task"):
        slowest = max(refused(name) for _ in range(TRIES))
        rows.append((name, "server killed", str(TRIES), f"{slowest:.3f}", "-"))
        slowest = max(reset(server, name) for _ in range(TRIES))
        rows.append((name, "reply lost, reset", str(TRIES), f"{slowest:.3f}", "-"))
    header = (
        f"Defaults: socket_timeout {DEFAULT_SOCKET_TIMEOUT:g} s, connect_timeout 1 s, one "
        "retry on a failed connection (not after a timeout) for reads and for the writes "
        "that can be replayed. 'slowest' is the longest of the tries, from the call to its "
        "MemoryConnectionError (to its answer for the reset, which is retried)."
    )
    print()
    print(header)
    print(text_table(HEADER, rows, {2, 3, 4}))
    path = os.environ.get("BENCH_MARKDOWN")
    if path:
        with Path(path).open("a", encoding="utf-8") as out:
            out.write(f"\n{header}\n\n{markdown_table(HEADER, rows, {2, 3, 4})}\n")
