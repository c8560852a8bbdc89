"""Redis Cluster: what differs from one server (the whole suite also runs on a cluster,
through the ``cluster`` backend of conftest.py)."""

from __future__ import annotations

import logging

import pytest

from memory import AgentCoordinator, AgentTask, RedisShortTermMemory, StagedPattern
from memory import patterns as staged
from memory.exceptions import InvalidValue
from memory.redis_memory import get_redis_memory
from memory.tiers import AccessTier, Caller
from tests.redis_server import ClusterOfServers, start_cluster


@pytest.fixture
def cluster(redis_cluster: ClusterOfServers) -> ClusterOfServers:
    with redis_cluster.client() as client:
        client.flushall()
    return redis_cluster


def test_a_url_of_any_node_finds_the_cluster(cluster, monkeypatch):
    monkeypatch.setenv("REDIS_URL", cluster.nodes[2].url)
    memory = get_redis_memory()
    try:
        assert memory.mode == "cluster"
        assert memory.address.startswith("cluster ")
        AgentCoordinator(memory, "team").add_task(AgentTask("t1", "review", "d", 5))
        # The task's keys are on the master that owns the team's slot, whichever node
        # the URL named.
        with cluster.client() as client:
            owner = client.get_node_from_key(memory.keys.team("team", "spec"))
            assert owner.redis_connection.hexists(memory.keys.team("team", "spec"), "t1")
    finally:
        memory.close()


def test_the_event_stream_is_split_over_every_master(cluster):
    memory = RedisShortTermMemory(url=cluster.url)
    try:
        for team in range(40):
            AgentCoordinator(memory, f"team-{team}").add_task(AgentTask("t", "review", "d", 5))
        with cluster.client() as client:
            used = {s for s in memory.event_streams if client.xlen(s)}
            masters = {client.get_node_from_key(s).name for s in used}
        assert len(masters) == len(cluster.nodes)
        assert sum(1 for e in memory.read_events(count=1000) if e.type == "task.added") == 40
    finally:
        memory.close()


def test_staged_patterns_are_spread_over_every_master_and_list_as_one(cluster):
    memory = RedisShortTermMemory(url=cluster.url)
    agent = Caller("agent", AccessTier.CONTRIBUTOR)
    reader = Caller("reader", AccessTier.OBSERVER)
    try:
        confidences = [round((i * 37 % 60) / 60, 3) for i in range(60)]  # ties included
        for i, confidence in enumerate(confidences):
            pattern = StagedPattern(f"p{i:02}", "agent", "fix", "n", "d", confidence=confidence)
            staged.stage(memory, agent, pattern)
        with cluster.client() as client:
            used = [s for s in memory.keys.pattern_shards if client.zcard(s.patterns_staged)]
            masters = {client.get_node_from_key(s.patterns_staged).name for s in used}
        assert len(masters) == len(cluster.nodes)
        assert staged.count_staged(memory, reader) == 60

        def every(list_page) -> list[str]:
            ids, cursor = [], None
            while True:
                page = list_page(cursor)
                ids += [item[0].pattern_id if isinstance(item, tuple) else item.pattern_id
                        for item in page]  # fmt: skip
                if page.next_cursor is None:
                    return ids
                cursor = page.next_cursor

        # Each order pages through all 60 once, in the order one sorted set would give.
        by_confidence = every(lambda c: staged.list_sorted(memory, reader, "confidence", 7, c))
        expected = sorted(range(60), key=lambda i: (confidences[i], f"p{i:02}"), reverse=True)
        assert [int(pid[1:]) for pid in by_confidence] == expected
        by_age = every(lambda c: staged.list_sorted(memory, reader, "staged_at", 7, c))
        assert by_age == [f"p{i:02}" for i in range(60)]
        newest_first = every(lambda c: staged.list_staged(memory, reader, 7, c))
        soonest_first = every(lambda c: staged.list_by_expiry(memory, reader, 7, c))
        assert sorted(newest_first) == sorted(soonest_first) == [f"p{i:02}" for i in range(60)]
        assert newest_first == list(reversed(soonest_first))
    finally:
        memory.close()


def test_reading_page_by_page_sees_each_event_once_and_a_groups_events_in_order(cluster):
    memory = RedisShortTermMemory(url=cluster.url)
    try:
        start = memory.latest_event_id()
        assert start == ",".join(["0-0"] * len(memory.event_streams))
        teams = [AgentCoordinator(memory, f"team-{n}") for n in range(5)]
        for i in range(20):
            for coordinator in teams:
                coordinator.add_task(AgentTask(f"t{i:02}", "review", "d", 5))
        seen, cursor = [], start
        while page := memory.read_events(cursor, count=7):
            assert len(page) <= 7
            seen.extend(page)
            cursor = page[-1].cursor
        assert len({e.id + e.ids["team"] for e in seen}) == len(seen) == 100
        for n in range(5):
            ids = [e.ids["task_id"] for e in seen if e.ids["team"] == f"team-{n}"]
            assert ids == [f"t{i:02}" for i in range(20)]
        # The cursor of the last event is where the stream ends now.
        assert memory.read_events(cursor) == []
        assert cursor == memory.latest_event_id()
    finally:
        memory.close()


def test_a_blocked_reader_wakes_for_an_event_on_any_shard(cluster):
    memory = RedisShortTermMemory(url=cluster.url)
    try:
        start = memory.latest_event_id()
        assert memory.read_events(start, block_ms=50) == []
        coordinator = AgentCoordinator(memory, "team")
        coordinator.add_task(AgentTask("t1", "review", "d", 5))
        [event] = memory.read_events(start, block_ms=5_000)
        assert event.type == "task.added"
    finally:
        memory.close()


def test_the_eviction_policy_of_every_master_is_checked(cluster):
    memory = RedisShortTermMemory(url=cluster.url)
    last = cluster.nodes[-1].client()
    try:
        assert memory.eviction_problem() is None
        last.config_set("maxmemory-policy", "allkeys-lru")
        assert "allkeys-lru" in memory.eviction_problem()
    finally:
        last.config_set("maxmemory-policy", "noeviction")
        last.close()
        memory.close()


def test_acknowledged_replica_writes_are_for_one_master_not_cluster(cluster):
    with pytest.raises(InvalidValue, match="not Cluster"):
        RedisShortTermMemory(url=cluster.url, wait_replicas=1)


def test_a_lost_second_call_keeps_the_change_and_says_what_was_lost(caplog):
    """The master holding a change's event shard is down: the change (on another master)
    is made and answered, and the lost event is logged."""
    cluster = start_cluster(3)
    memory = RedisShortTermMemory(url=cluster.url, socket_timeout=1, connect_timeout=0.5)
    try:
        client = memory.client
        by_port = {node.port: node for node in cluster.nodes}
        # A team whose keys are on one master and whose events go to another.
        for n in range(100):
            spec = memory.keys.team(f"team-{n}", "spec")
            shard = memory.event_streams[client.keyslot(spec) % len(memory.event_streams)]
            home, elsewhere = client.get_node_from_key(spec), client.get_node_from_key(shard)
            if home.port != elsewhere.port:
                break
        memory.load_library()  # on every master, as a running deployment has it
        by_port[elsewhere.port].kill()
        with caplog.at_level(logging.WARNING, logger="memory"):
            assert AgentCoordinator(memory, f"team-{n}").add_task(AgentTask("t1", "x", "d", 5))
        assert home.redis_connection.hexists(spec, "t1")
        [warning] = [r for r in caplog.records if "writes elsewhere" in r.getMessage()]
        assert "of its 2 writes elsewhere" in warning.getMessage()  # the event and the index
    finally:
        memory.close()
        cluster.stop()
