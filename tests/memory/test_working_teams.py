"""An agent's teams are those it is registered in, kept in its own index by registering
and unregistering (and rebuilt from the teams' registries on demand); the agents with
working memory can be listed for some teams: theirs plus those of no team."""

from __future__ import annotations

from typing import Any

import pytest

from memory import AccessDenied, AccessTier, AgentCoordinator, AgentTask, EmpathyOS, InvalidValue
from memory import RedisShortTermMemory as Memory
from memory.registry import agent_teams_of, list_teams, prune_teams, rebuild_agent_teams
from memory.tiers import Caller
from memory.working import list_agents

READER = Caller("reader", AccessTier.OBSERVER)
STEWARD = Caller("boss", AccessTier.STEWARD)


def register(memory: Memory, team: str, *agents: str) -> AgentCoordinator:
    coordinator = AgentCoordinator(memory, team)
    for agent in agents:
        coordinator.register_agent(agent, ["review"])
    return coordinator


def teams_of(memory: Memory, *agents: str) -> dict[str, list[str]]:
    return agent_teams_of(memory, READER, agents)


def every_page(memory: Memory, limit: int, **options: Any) -> list[str]:
    """Every page of ``list_agents``, checking that each is a full page but the last."""
    items, cursor = [], None
    while True:
        page = list_agents(memory, READER, limit, cursor, **options)
        items += page
        if page.next_cursor is None:
            return items
        assert len(page) == limit
        cursor = page.next_cursor


def test_registering_and_unregistering_keep_an_agents_teams(memory):
    alpha = register(memory, "alpha", "ann", "bob")
    beta = register(memory, "beta", "bob")
    assert teams_of(memory, "ann", "bob", "cid") == {
        "ann": ["alpha"],
        "bob": ["alpha", "beta"],
        "cid": [],
    }
    register(memory, "alpha", "bob")  # again: nothing changes
    assert alpha.unregister_agent("bob")
    assert teams_of(memory, "bob") == {"bob": ["beta"]}
    assert not alpha.unregister_agent("bob")
    beta.unregister_agent("bob")
    assert teams_of(memory, "bob", "ann") == {"bob": [], "ann": ["alpha"]}
    assert agent_teams_of(memory, READER, []) == {}


def test_agent_ids_are_checked(memory):
    with pytest.raises(InvalidValue):
        agent_teams_of(memory, READER, "ann")
    with pytest.raises(InvalidValue):
        agent_teams_of(memory, READER, ["a{b}"])


def test_pruning_leaves_every_agents_teams_right(memory):
    alpha = register(memory, "alpha", "ann")
    register(memory, "beta", "bob").unregister_agent("bob")
    AgentCoordinator(memory, "gamma").add_task(AgentTask("t1", "review"))
    assert prune_teams(memory, READER, sample=10) == 1  # beta only
    assert set(list_teams(memory, READER)) == {"alpha", "gamma"}
    assert teams_of(memory, "ann", "bob") == {"ann": ["alpha"], "bob": []}
    alpha.unregister_agent("ann")
    assert prune_teams(memory, READER, sample=10) == 1
    assert teams_of(memory, "ann") == {"ann": []}
    register(memory, "alpha", "ann")  # the team comes back, new
    assert teams_of(memory, "ann") == {"ann": ["alpha"]}


def test_the_index_is_rebuilt_from_the_teams_registries(memory):
    register(memory, "alpha", "ann", "bob")
    register(memory, "beta", "bob")
    EmpathyOS("cid", short_term_memory=memory).stash("k", 1)  # no team: org-wide
    keys = memory.keys
    # As before the index existed, plus a team left over for one agent.
    memory.client.delete(keys.agent_teams("ann"))
    memory.client.delete(keys.agent_teams("bob"))
    memory.client.sadd(keys.agent_teams("bob"), "gone")
    memory.client.sadd(keys.agent_teams("cid"), "gone")
    assert teams_of(memory, "ann", "bob") == {"ann": [], "bob": ["gone"]}
    assert rebuild_agent_teams(memory, STEWARD) == 3
    assert teams_of(memory, "ann", "bob", "cid") == {
        "ann": ["alpha"],
        "bob": ["alpha", "beta"],
        "cid": [],
    }
    assert rebuild_agent_teams(memory, STEWARD) == 0


def test_rebuilding_is_for_stewards(memory):
    with pytest.raises(AccessDenied):
        rebuild_agent_teams(memory, Caller("someone", AccessTier.VALIDATOR))


def test_a_restricted_listing_shows_its_teams_agents_and_those_of_no_team(memory):
    for agent in ("ann", "bob", "cid", "dan", "eve"):
        EmpathyOS(agent, short_term_memory=memory).stash("k", 1)
    register(memory, "alpha", "ann", "dan")
    register(memory, "beta", "bob", "dan")
    register(memory, "gamma", "zed")  # registered, but no working memory
    assert list(list_agents(memory, READER)) == ["ann", "bob", "cid", "dan", "eve"]
    assert list(list_agents(memory, READER, teams=["alpha"])) == ["ann", "cid", "dan", "eve"]
    assert list(list_agents(memory, READER, teams=["beta", "gamma"])) == [
        "bob",
        "cid",
        "dan",
        "eve",
    ]
    assert list(list_agents(memory, READER, teams=[])) == ["cid", "eve"]
    page = list_agents(memory, READER, teams={"alpha"})
    assert page.total is None and page.next_cursor is None


def test_rare_matches_page_without_duplicates_or_gaps(memory):
    agents = [f"agent{i:03d}" for i in range(620)]
    for agent in agents:
        EmpathyOS(agent, short_term_memory=memory).stash("k", 1)
    alpha, beta = AgentCoordinator(memory, "alpha"), AgentCoordinator(memory, "beta")
    in_alpha, org_wide = [], []
    for i, agent in enumerate(agents):
        if i % 300 == 17:
            alpha.register_agent(agent)
            in_alpha.append(agent)
        elif i % 300 == 250:
            org_wide.append(agent)  # registered nowhere
        else:
            beta.register_agent(agent)
    expected = sorted(in_alpha + org_wide)
    assert len(expected) == 5
    for limit in (1, 2, 5):
        assert every_page(memory, limit, teams=["alpha"]) == expected
    assert every_page(memory, 1, teams=[]) == org_wide
    assert every_page(memory, 100, teams=["beta"]) == [a for a in agents if a not in in_alpha]


def test_the_cursor_resumes_right_after_the_last_agent_examined(memory):
    agents = [f"a{i}" for i in range(8)]
    for agent in agents:
        EmpathyOS(agent, short_term_memory=memory).stash("k", 1)
    beta = AgentCoordinator(memory, "beta")
    for agent in agents:
        if agent not in ("a2", "a5"):
            beta.register_agent(agent)
    first = list_agents(memory, READER, 1, teams=["alpha"])
    assert list(first) == ["a2"] and first.next_cursor == "3"
    second = list_agents(memory, READER, 1, first.next_cursor, teams=["alpha"])
    assert list(second) == ["a5"] and second.next_cursor == "6"
    last = list_agents(memory, READER, 1, second.next_cursor, teams=["alpha"])
    assert list(last) == [] and last.next_cursor is None
