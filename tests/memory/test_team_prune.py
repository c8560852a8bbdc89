"""Teams with nothing left in them leave the teams index, with their counters; a team
that is still used in any way stays."""

from __future__ import annotations

import pytest

from memory import AccessTier, AgentCoordinator, AgentTask, RedisShortTermMemory, TTLStrategy
from memory.registry import list_teams, prune_teams
from memory.tiers import Caller
from tests.memory.conftest import MakeMemory

READER = Caller("reader", AccessTier.OBSERVER)


def team_keys(memory: RedisShortTermMemory, team: str) -> set[str]:
    return {k.decode() for k in memory.client.keys(f"*{{team:{team}}}*")}


def steward(memory: RedisShortTermMemory, team: str) -> AgentCoordinator:
    return AgentCoordinator(memory, team, access_tier=AccessTier.STEWARD, actor="boss")


def test_a_team_whose_tasks_were_all_cancelled_leaves_with_its_keys(memory):
    team = steward(memory, "alpha")
    team.add_task(AgentTask("t-1", "review"))
    team.add_task(AgentTask("t-2", "review"))
    claimed = team.claim_task("agent-1", "review")
    team.cancel_task("t-1")
    team.cancel_task("t-2")
    assert claimed is not None

    assert prune_teams(memory, READER) == 1

    assert list_teams(memory, READER) == []
    # Left: only the claim request's record, which expires with the lease it granted.
    assert [k for k in team_keys(memory, "alpha") if ":claim:" not in k] == []
    events = memory.read_events(count=1000)
    assert any(e.type == "team.removed" and e.ids["team"] == "alpha" for e in events)


@pytest.mark.parametrize("left", ["pending", "claimed", "dead", "completed", "agent"])
def test_a_team_with_anything_left_stays(memory, left):
    team = steward(memory, "alpha")
    if left == "agent":
        team.register_agent("agent-1")
    else:
        team.add_task(AgentTask("t-1", "review"))
    if left in ("claimed", "dead", "completed"):
        task = team.claim_task("agent-1", "review")
        if left == "dead":
            team.fail_task(task.task_id, "broken", retry=False, fencing_token=task.fencing_token)
            assert team.get_task("t-1").status == "dead"
        if left == "completed":
            team.complete_task(task.task_id, {"ok": True}, fencing_token=task.fencing_token)

    assert prune_teams(memory, READER) == 0
    assert list_teams(memory, READER) == ["alpha"]


def test_a_team_leaves_once_its_completed_results_expire(make_memory: MakeMemory):
    memory = make_memory(ttls={TTLStrategy.WORKING_RESULTS: 0.05})
    team = steward(memory, "alpha")
    team.add_task(AgentTask("t-1", "review"))
    task = team.claim_task("agent-1", "review")
    team.complete_task(task.task_id, {"ok": True}, fencing_token=task.fencing_token)
    while memory.client.exists(memory.keys.result("alpha", "t-1")):
        pass  # the result's own TTL, on the server's clock

    assert prune_teams(memory, READER) == 1
    assert list_teams(memory, READER) == []


def test_a_team_whose_agents_unregistered_leaves(memory):
    team = steward(memory, "alpha")
    team.register_agent("agent-1")
    team.unregister_agent("agent-1")

    assert prune_teams(memory, READER) == 1


def test_a_removed_team_comes_back_new_and_its_tokens_still_grow(memory):
    team = steward(memory, "alpha")
    team.add_task(AgentTask("t-1", "review"))
    first = team.claim_task("agent-1", "review")
    team.complete_task(first.task_id, None, fencing_token=first.fencing_token)
    team.add_task(AgentTask("t-2", "review"))
    team.cancel_task("t-2")
    memory.client.delete(memory.keys.team("alpha", "completed"))  # as if expired
    memory.client.hdel(memory.keys.team("alpha", "state"), "t-1")
    assert prune_teams(memory, READER) == 1

    team.add_task(AgentTask("t-3", "review"))
    again = team.claim_task("agent-1", "review")

    assert list_teams(memory, READER) == ["alpha"]
    assert again.fencing_token > first.fencing_token


def test_a_sweep_checks_at_most_its_sample(memory):
    for n in range(30):
        team = steward(memory, f"team-{n}")
        team.register_agent("agent-1")
        team.unregister_agent("agent-1")

    assert prune_teams(memory, READER, sample=10) == 10
    assert len(list_teams(memory, READER)) == 20
    assert prune_teams(memory, READER, sample=100) == 20
    assert list_teams(memory, READER) == []
