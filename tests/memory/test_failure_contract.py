"""The library's failure contract, driven through a fault-injecting proxy on loopback:
lost replies, silent connections, and a Redis that restarts under a worker."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis

from memory import AgentCoordinator, AgentTask, LeaseLost, MemoryConnectionError
from memory import RedisShortTermMemory as Memory
from tests.faultproxy import FaultProxy
from tests.redis_server import RedisServer, start_redis_server

TIMEOUT = 1.0  # the memory's socket_timeout in these tests
SLACK = 1.0  # what a busy machine may add to a deadline


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    server = start_redis_server([])
    yield server
    server.stop()


@pytest.fixture
def direct(server: RedisServer) -> Iterator[redis.Redis]:
    client = server.client()
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def proxy(server: RedisServer, direct: redis.Redis) -> Iterator[FaultProxy]:
    with FaultProxy(server.port) as proxy:
        yield proxy


@pytest.fixture
def memory(proxy: FaultProxy) -> Iterator[Memory]:
    memory = Memory(url=f"redis://127.0.0.1:{proxy.port}/0", socket_timeout=TIMEOUT)
    yield memory
    memory.close()


@pytest.fixture
def team(memory: Memory) -> AgentCoordinator:
    team = AgentCoordinator(memory, "t")
    for i in (1, 2):
        team.add_task(AgentTask(f"t{i}", "x"))
    return team


def events(direct: redis.Redis, kind: str) -> list[dict]:
    entries = direct.xrange("empathy:events")
    return [fields for _, fields in entries if fields[b"type"] == kind.encode()]


# 1. A committed completion is never reported as lost -----------------------------


def test_a_completion_whose_reply_was_lost_is_not_reported_lost(team, proxy, direct):
    team.claim_task("w", "x")
    proxy.reset_replies(1)
    team.complete_task("t1", {"ok": True})  # sent again after the reset: same success
    assert proxy.replies_dropped == 1
    assert team.get_task("t1").status == "completed"
    assert len(events(direct, "task.completed")) == 1


def test_a_failure_whose_reply_was_lost_returns_the_same_status(team, proxy, direct):
    team.claim_task("w", "x")
    proxy.reset_replies(1)
    assert team.fail_task("t1", "boom") == "pending"
    assert proxy.replies_dropped == 1
    assert len(events(direct, "task.failed")) == 1
    assert team.get_task("t1").status == "pending"


def test_a_finish_sent_again_with_its_token_answers_as_the_first(team, memory):
    task = team.claim_task("w", "x")
    again = AgentCoordinator(memory, "t", actor="w")  # the holder, in another process
    team.complete_task("t1", "done")
    again.complete_task("t1", "done", fencing_token=task.fencing_token)
    with pytest.raises(LeaseLost):  # not the same call: another result
        again.complete_task("t1", "other", fencing_token=task.fencing_token)
    with pytest.raises(LeaseLost):  # not the same call: another caller
        AgentCoordinator(memory, "t").complete_task("t1", "done", fencing_token=task.fencing_token)
    second = team.claim_task("w", "x")
    assert team.fail_task("t2", "no", retry=False) == "dead"
    assert again.fail_task("t2", "no", fencing_token=second.fencing_token) == "dead"


# 2. A lease is forgotten only when the server answered ----------------------------


def test_a_connection_error_keeps_the_lease_for_the_next_try(team, proxy):
    team.claim_task("w", "x")
    proxy.blackhole()
    with pytest.raises(MemoryConnectionError):
        team.complete_task("t1", "result")
    proxy.heal(deliver=False)  # the completion never reached Redis
    team.complete_task("t1", "result")  # the README's plain retry
    assert team.get_task("t1").status == "completed"


def complete_until_done(team: AgentCoordinator, task_id: str, result: object) -> int:
    """The retry loop the README gives a worker; returns how many tries failed."""
    failures = 0
    while True:
        try:
            team.complete_task(task_id, result)
            return failures
        except MemoryConnectionError:
            failures += 1  # Redis is away; the lease is still ours until it runs out
            time.sleep(0.2)


def test_the_readmes_retry_loop_completes_across_a_redis_restart(tmp_path):
    persist = ["--dir", str(tmp_path), "--appendonly", "yes", "--appendfsync", "always"]
    server = start_redis_server(persist)
    try:
        memory = Memory(url=server.url, socket_timeout=TIMEOUT)
        team = AgentCoordinator(memory, "t")
        team.add_task(AgentTask("t1", "x"))
        team.claim_task("w", "x")
        server.kill()
        outcome: dict[str, int] = {}
        worker = threading.Thread(
            target=lambda: outcome.update(failures=complete_until_done(team, "t1", "r"))
        )
        worker.start()
        server = start_redis_server(persist, port=server.port)
        worker.join(timeout=30)
        assert outcome["failures"] >= 1
        assert team.get_task("t1").status == "completed"
        memory.close()
    finally:
        server.stop()


# 4. A claim whose reply was lost is not a second claim ------------------------------


def test_a_claim_whose_reply_was_dropped_comes_back_when_asked_again(team, proxy):
    proxy.drop_replies(1)
    with pytest.raises(MemoryConnectionError):
        team.claim_task("w", "x", request_id="req-1")
    task = team.claim_task("w", "x", request_id="req-1")
    assert (task.task_id, task.attempts) == ("t1", 1)
    stored = team.get_task("t1")
    assert (stored.claimed_by, stored.fencing_token) == ("w", task.fencing_token)
    assert team.counts()["pending"] == 1  # t2 was not claimed by the second call


def test_a_claim_sent_again_after_a_reset_is_the_same_claim(team, proxy):
    proxy.reset_replies(1)
    task = team.claim_task("w", "x")  # a request id is made up, and kept for the retry
    assert proxy.replies_dropped == 1
    assert (task.task_id, task.attempts) == ("t1", 1)
    assert team.get_task("t1").fencing_token == task.fencing_token
    assert team.counts()["pending"] == 1


# 5. Failures are seen in seconds ----------------------------------------------------


@pytest.mark.parametrize("call", ["claim_task", "get_task", "counts", "stash"])
def test_a_call_on_a_silent_connection_raises_within_its_timeout(team, memory, proxy, call):
    from memory import EmpathyOS

    calls = {
        "claim_task": lambda: team.claim_task("w", "x"),
        "get_task": lambda: team.get_task("t1"),
        "counts": team.counts,
        "stash": lambda: EmpathyOS("a", short_term_memory=memory).stash("k", 1),
    }
    proxy.blackhole()
    started = time.monotonic()
    with pytest.raises(MemoryConnectionError):
        calls[call]()
    assert time.monotonic() - started < TIMEOUT + SLACK


def test_a_blocking_read_raises_within_its_block_and_timeout(memory, proxy):
    memory.read_events("0-0", block_ms=10)  # the reader's connection is open
    proxy.blackhole()
    started = time.monotonic()
    with pytest.raises(MemoryConnectionError):
        memory.read_events("0-0", block_ms=1500)
    elapsed = time.monotonic() - started
    assert 1.5 + TIMEOUT - 0.1 < elapsed < 1.5 + TIMEOUT + SLACK
