"""Listings read indexes, never the keyspace: their Redis work does not grow with
unrelated keys. Real Redis only, since it counts commands with INFO commandstats."""

from __future__ import annotations

import pytest

from memory import (
    AgentCoordinator,
    AgentTask,
    EmpathyOS,
    RedisShortTermMemory,
    StagedPattern,
    TeamSession,
)
from memory.signals import list_signals
from memory.tiers import AccessTier, Caller
from memory.working import list_agents, list_entries

READER = Caller("reader", AccessTier.OBSERVER)  # the reads below read as an observer


def fill(memory: RedisShortTermMemory) -> None:
    agent = EmpathyOS("agent", short_term_memory=memory)
    for i in range(30):
        agent.stash(f"k{i}", i)
        agent.send_signal("t", i)
        agent.stage_pattern(StagedPattern(f"p{i}", "agent", "type", "name", "desc"))
    coordinator = AgentCoordinator(memory, "team")
    for i in range(30):
        coordinator.add_task(AgentTask(f"t{i}", "review", "d", 5))
    TeamSession(memory, "s1", "p").add_agent("agent")


def list_everything(memory: RedisShortTermMemory) -> None:
    agent = EmpathyOS("viewer", short_term_memory=memory)
    agent.get_staged_patterns(limit=10)
    list_signals(memory, READER, limit=10)
    list_signals(memory, READER, limit=10, signal_type="t")
    list_entries(memory, READER, "agent", limit=10)
    list_agents(memory, READER)
    AgentCoordinator(memory, "team").list_tasks("pending", "review", limit=10)
    AgentCoordinator(memory, "team").get_agents()
    TeamSession(memory, "s1").info()
    memory.get_stats()


def command_calls(memory: RedisShortTermMemory) -> dict[str, int]:
    stats = memory.client.info("commandstats")
    return {name.removeprefix("cmdstat_"): v["calls"] for name, v in stats.items()}


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
def test_listing_work_does_not_grow_with_unrelated_keys(memory):
    fill(memory)
    counts = []
    for unrelated in (0, 50_000):
        with memory.client.pipeline(transaction=False) as pipe:
            for i in range(unrelated):
                pipe.set(f"unrelated:{i}", i)
            pipe.execute()
        memory.client.config_resetstat()
        list_everything(memory)
        calls = command_calls(memory)
        calls.pop("config|resetstat", None)
        calls.pop("info", None)
        counts.append(calls)
    assert counts[0] == counts[1]
    assert not {"keys", "scan"} & set(counts[1])
