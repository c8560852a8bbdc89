"""Redis Sentinel on loopback (a master, a replica and three sentinels): the library
finds the master through the sentinels, and when the master is killed an agent carries
on with the new one within seconds, with no restart. Prints what the failover cost:
how long writes failed, and how many acknowledged writes were lost (replication is
asynchronous), with and without waiting for a replica on each write (``WAIT 1``)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from memory import EmpathyOS, InvalidValue, MemoryConnectionError, RedisShortTermMemory
from memory.redis_memory import get_redis_memory, sentinel_settings
from tests.redis_server import HOST, MASTER, Replicated, until

pytestmark = pytest.mark.slow


@pytest.fixture
def replicated() -> Iterator[Replicated]:
    setup = Replicated()
    yield setup
    setup.stop()


def stash_then_kill(setup: Replicated, memory: RedisShortTermMemory) -> tuple[EmpathyOS, float]:
    """Stash 300 values, then kill the master: the agent, and ms per stash."""
    agent = EmpathyOS("worker", memory)
    started = time.perf_counter()
    for i in range(300):
        agent.stash(f"k{i}", i)
    per_stash = (time.perf_counter() - started) / 300 * 1000
    setup.master.kill()
    return agent, per_stash


def lost(agent: EmpathyOS) -> int:
    return sum(agent.retrieve(f"k{i}") != i for i in range(300))


def test_an_agent_carries_on_with_the_new_master_within_10_s(replicated):
    memory = RedisShortTermMemory(sentinels=replicated.addresses, sentinel_master=MASTER)
    assert memory.address == f"sentinel master {MASTER}"
    agent, per_stash = stash_then_kill(replicated, memory)
    killed = time.monotonic()
    while True:
        try:
            agent.stash("after", True)
            break
        except MemoryConnectionError:
            assert time.monotonic() - killed < 10, "no write landed within 10 s"
            time.sleep(0.05)
    back_in = time.monotonic() - killed

    promoted = redis.Redis(host=HOST, port=replicated.replica.port).info("replication")
    assert promoted["role"] == "master"
    print(f"\nfailover: writes back after {back_in:.2f} s; {lost(agent)} of 300 acknowledged "
          f"stashes lost; {per_stash:.3f} ms per stash")  # fmt: skip
    memory.close()


def test_waiting_for_a_replica_keeps_every_acknowledged_write(replicated):
    memory = RedisShortTermMemory(
        sentinels=replicated.addresses, sentinel_master=MASTER, wait_replicas=1
    )
    agent, per_stash = stash_then_kill(replicated, memory)
    sentinels = [s.client() for s in replicated.sentinels]
    until(
        lambda: all(
            int(c.sentinel_get_master_addr_by_name(MASTER)[1]) == replicated.replica.port
            for c in sentinels
        ),
        "the sentinels did not name the replica master",
        10,
    )

    # The new master has no replica left: a write that must reach one is refused.
    with pytest.raises(MemoryConnectionError, match="reached 0 of 1 replicas"):
        agent.stash("after", True)
    print(f"\nwith WAIT 1: {lost(agent)} of 300 acknowledged stashes lost; "
          f"{per_stash:.3f} ms per stash")  # fmt: skip
    assert lost(agent) == 0
    memory.close()


def test_sentinels_come_from_the_environment():
    found = sentinel_settings({"REDIS_SENTINELS": "10.0.0.1:26379, [::1]:26380",
                               "REDIS_SENTINEL_MASTER": "main"})  # fmt: skip

    assert found.sentinels == [("10.0.0.1", 26379), ("::1", 26380)] and found.master == "main"
    assert sentinel_settings({}) is None
    for bad in ({"REDIS_SENTINELS": "h:1"}, {"REDIS_SENTINELS": "h", "REDIS_SENTINEL_MASTER": "m"}):
        with pytest.raises(ValueError, match="REDIS_SENTINEL"):
            sentinel_settings(bad)


def test_the_environment_picks_sentinel_waits_or_says_what_is_wrong(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "")
    monkeypatch.setenv("REDIS_WAIT_REPLICAS", "2")
    assert get_redis_memory().wait_replicas == 2  # on the mock here
    monkeypatch.setenv("REDIS_WAIT_REPLICAS", "some")
    with pytest.raises(InvalidValue, match="REDIS_WAIT_REPLICAS"):
        get_redis_memory()
    monkeypatch.delenv("REDIS_WAIT_REPLICAS")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("REDIS_SENTINELS", "127.0.0.1:26379")
    monkeypatch.setenv("REDIS_SENTINEL_MASTER", "main")
    with pytest.raises(InvalidValue, match="not both"):
        get_redis_memory()
