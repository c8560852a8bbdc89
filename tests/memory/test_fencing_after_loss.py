"""Fencing tokens survive Redis losing its last writes: after an OS crash under
``appendfsync everysec`` (simulated by cutting the AOF back) and after a failover to a
replica that missed the claim, the task is claimed again with a larger token, and the
stale holder's late completion is refused."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from memory import AgentCoordinator, AgentTask, LeaseLost
from memory import RedisShortTermMemory as Memory
from tests.faultproxy import FaultProxy
from tests.redis_server import RedisServer, start_redis_server

WAIT_SECONDS = 10.0


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def assert_stale_holder_refused(stale: AgentCoordinator, stale_token: int, fresh: AgentCoordinator):
    task = fresh.claim_task("b", "x")
    assert task.task_id == "t1"
    assert task.fencing_token > stale_token
    with pytest.raises(LeaseLost):
        stale.complete_task("t1", "late", fencing_token=stale_token)
    fresh.complete_task("t1", "done")
    assert fresh.get_task("t1").claimed_by == "b"


@pytest.fixture
def servers() -> Iterator[list[RedisServer]]:
    started: list[RedisServer] = []
    yield started
    for server in started:
        server.stop()


def incr_file(directory: Path) -> Path:
    [path] = (directory / "appendonlydir").glob("*.incr.aof")
    return path


def test_a_claim_lost_with_the_last_second_of_the_aof_is_not_reissued(tmp_path, servers):
    persist = ["--dir", str(tmp_path), "--appendonly", "yes", "--appendfsync", "always"]
    servers.append(start_redis_server(persist))
    memory = Memory(url=servers[0].url)
    stale = AgentCoordinator(memory, "t")
    stale.add_task(AgentTask("t1", "x"))
    before_claim = incr_file(tmp_path).stat().st_size  # every write is on disk
    claim = stale.claim_task("a", "x")
    servers[0].kill()  # the OS crashed: the last second of the AOF never reached disk
    os.truncate(incr_file(tmp_path), before_claim)
    servers.append(start_redis_server(persist, port=servers[0].port))
    fresh_memory = Memory(url=servers[1].url)
    try:
        assert_stale_holder_refused(stale, claim.fencing_token, AgentCoordinator(fresh_memory, "t"))
    finally:
        memory.close()
        fresh_memory.close()


def test_a_claim_a_promoted_replica_missed_is_not_reissued(servers):
    servers.append(start_redis_server([]))
    primary = servers[0]
    with FaultProxy(primary.port) as link:
        servers.append(start_redis_server(["--replicaof", "127.0.0.1", str(link.port)]))
        replica = servers[1]
        memory = Memory(url=primary.url)
        stale = AgentCoordinator(memory, "t")
        stale.add_task(AgentTask("t1", "x"))
        replica_client = replica.client()
        wait_for(lambda: replica_client.hexists("empathy:{team:t}:spec", "t1"), "replication")
        link.blackhole()  # asynchronous replication: the claim never reaches the replica
        claim = stale.claim_task("a", "x")
        primary.kill()
        replica_client.replicaof("NO", "ONE")  # the failover
        fresh_memory = Memory(url=replica.url)
        try:
            promoted = AgentCoordinator(fresh_memory, "t")
            late = AgentCoordinator(fresh_memory, "t", actor="a")
            assert_stale_holder_refused(late, claim.fencing_token, promoted)
        finally:
            replica_client.close()
            memory.close()
            fresh_memory.close()
