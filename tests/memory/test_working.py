from __future__ import annotations

import time

import pytest

from memory import AccessDenied, AccessTier, EmpathyOS, RedisShortTermMemory
from memory.tiers import Caller
from memory.working import list_agents, list_entries

READER = Caller("reader", AccessTier.OBSERVER)  # the reads below read as an observer


def agent(memory: RedisShortTermMemory, name: str, tier: AccessTier = AccessTier.CONTRIBUTOR):
    return EmpathyOS(name, short_term_memory=memory, access_tier=tier)


def test_stash_and_retrieve_round_trip_json(memory):
    me = agent(memory, "analyzer")
    value = {"files": 10, "issues": [1, 2], "empty": [], "nested": {"ok": True}, "none": None}
    me.stash("results", value)
    assert me.retrieve("results") == value


def test_retrieve_missing_is_none(memory):
    assert agent(memory, "analyzer").retrieve("nothing-here") is None


def test_another_agents_data_by_agent_id(memory):
    agent(memory, "other_agent").stash("analysis", {"score": 7})
    reader = agent(memory, "reader", AccessTier.OBSERVER)
    assert reader.retrieve("analysis", agent_id="other_agent") == {"score": 7}
    assert reader.retrieve("analysis") is None


def test_agents_keys_do_not_collide(memory):
    agent(memory, "a").stash("k", 1)
    agent(memory, "b").stash("k", 2)
    assert agent(memory, "a").retrieve("k") == 1
    assert agent(memory, "b").retrieve("k") == 2


def test_default_ttl_is_one_hour(memory):
    me = agent(memory, "analyzer")
    me.stash("k", 1)
    ttl = memory.client.pttl(memory.keys.working("analyzer", "k"))
    assert 3_590_000 < ttl <= 3_600_000


def test_delete(memory):
    me = agent(memory, "analyzer")
    me.stash("k", 1)
    assert me.delete("k") is True
    assert me.retrieve("k") is None
    assert me.delete("k") is False
    assert list_entries(memory, READER, "analyzer").total == 0


def test_listing_entries_with_ttls(memory):
    me = agent(memory, "analyzer")
    me.stash("long", {"v": 1}, ttl=600)
    me.stash("short", {"v": 2}, ttl=60)
    page = list_entries(memory, READER, "analyzer")
    assert [e.key for e in page] == ["short", "long"]
    assert page[0].value == {"v": 2}
    assert 0 < page[0].ttl_ms <= 60_000
    assert list(list_agents(memory, READER)) == ["analyzer"]


def test_listing_entries_pages(memory):
    me = agent(memory, "analyzer")
    for i in range(7):
        me.stash(f"k{i}", i, ttl=100 + i)
    first = list_entries(memory, READER, "analyzer", limit=3)
    second = list_entries(memory, READER, "analyzer", limit=3, cursor=first.next_cursor)
    third = list_entries(memory, READER, "analyzer", limit=3, cursor=second.next_cursor)
    assert [e.key for e in first + second + third] == [f"k{i}" for i in range(7)]
    assert third.next_cursor is None
    assert first.total == 7


def test_clearing_own_memory(memory):
    me = agent(memory, "analyzer")
    for i in range(5):
        me.stash(f"k{i}", i)
    assert me.clear_memory() == 5
    assert me.retrieve("k0") is None
    assert list(list_agents(memory, READER)) == []


def test_only_a_steward_clears_another_agents_memory(memory):
    agent(memory, "victim").stash("k", 1)
    with pytest.raises(AccessDenied, match="STEWARD"):
        agent(memory, "validator", AccessTier.VALIDATOR).clear_memory("victim")
    assert agent(memory, "victim").retrieve("k") == 1
    assert agent(memory, "admin", AccessTier.STEWARD).clear_memory("victim") == 1
    assert agent(memory, "victim").retrieve("k") is None


def test_observer_cannot_write(memory):
    observer = agent(memory, "monitor", AccessTier.OBSERVER)
    with pytest.raises(AccessDenied, match="CONTRIBUTOR") as info:
        observer.stash("k", 1)
    assert isinstance(info.value, PermissionError)
    assert memory.client.dbsize() == 0


def test_values_expire_on_real_redis(make_memory, backend):
    memory = make_memory()
    me = agent(memory, "analyzer")
    me.stash("brief", {"v": 1}, ttl=0.2)
    me.stash("kept", {"v": 2}, ttl=60)
    assert me.retrieve("brief") == {"v": 1}
    time.sleep(0.35)
    assert me.retrieve("brief") is None
    assert [e.key for e in list_entries(memory, READER, "analyzer")] == ["kept"]


def test_scripts_are_reloaded_after_the_server_forgets_them(memory):
    me = agent(memory, "analyzer")
    me.stash("before", 1)
    memory.client.function_flush()  # what a restart without persistence does
    me.stash("after", 2)
    assert me.retrieve("after") == 2


def test_values_written_by_other_tools_still_decode(memory):
    # Hand-written JSON with whitespace around it reads back; garbage is an error.
    agent = EmpathyOS("a", short_term_memory=memory)
    agent.stash("k", 1)
    key = memory.keys.working("a", "k")
    memory.client.set(key, b' { "x" : [1, 2] }\n')
    assert agent.retrieve("k") == {"x": [1, 2]}
    memory.client.set(key, b'{"x": 1} trailing')
    with pytest.raises(ValueError):
        agent.retrieve("k")
