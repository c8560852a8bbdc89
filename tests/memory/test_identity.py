"""Identities cannot be borrowed: the staging agent is the caller, only the holder may
finish a task (a fencing token, which observers see, is not enough), and blank ids are
refused before anything is written."""

from __future__ import annotations

import pytest

from memory import (
    AccessDenied,
    AgentCoordinator,
    AgentTask,
    EmpathyOS,
    IdTaken,
    LeaseLost,
    StagedPattern,
)


def pattern(agent_id: str, code: str = "safe()") -> StagedPattern:
    return StagedPattern("p1", agent_id, "kind", "name", "description", code=code, confidence=0.9)


def test_nobody_stages_in_another_agents_name(memory):
    alice = EmpathyOS("alice", short_term_memory=memory)
    mallory = EmpathyOS("mallory", short_term_memory=memory)
    alice.stage_pattern(pattern("alice"))
    with pytest.raises(AccessDenied, match="mallory cannot stage a pattern as alice"):
        mallory.stage_pattern(pattern("alice", code="evil()"))
    with pytest.raises(IdTaken):
        mallory.stage_pattern(pattern("mallory", code="evil()"))
    [staged] = alice.get_staged_patterns()
    assert (staged.agent_id, staged.code) == ("alice", "safe()")


def test_a_visible_token_does_not_let_another_caller_finish_a_task(memory):
    team = AgentCoordinator(memory, "t")
    team.add_task(AgentTask("t1", "x"))
    task = team.claim_task("worker", "x")
    seen = team.get_task("t1").fencing_token  # what an observer sees
    assert seen == task.fencing_token
    other = AgentCoordinator(memory, "t", actor="mallory")
    for finish in (
        lambda: other.complete_task("t1", "forged", fencing_token=seen),
        lambda: other.fail_task("t1", "forged", fencing_token=seen),
        lambda: other.extend_lease("t1", fencing_token=seen),
    ):
        with pytest.raises(LeaseLost):
            finish()
    after = team.get_task("t1")
    assert (after.status, after.claimed_by, after.result) == ("claimed", "worker", None)
    assert after.lease_expires_ms == task.lease_expires_ms
    team.complete_task("t1", "real")
    assert team.get_task("t1").result == "real"


@pytest.mark.parametrize("blank", ["   ", "\u3000", " \u00a0 "])
def test_blank_ids_are_refused_before_anything_is_written(memory, blank):
    before = memory.client.dbsize()
    with pytest.raises(ValueError, match="empty or only spaces"):
        EmpathyOS(blank, short_term_memory=memory)
    agent = EmpathyOS("a", short_term_memory=memory)
    with pytest.raises(ValueError, match="empty or only spaces"):
        agent.stash(blank, 1)
    with pytest.raises(ValueError, match="empty or only spaces"):
        agent.stage_pattern(StagedPattern(blank, "a", "kind", "name", "d", confidence=0.5))
    with pytest.raises(ValueError, match="empty or only spaces"):
        AgentCoordinator(memory, blank)
    with pytest.raises(ValueError, match="empty or only spaces"):
        AgentCoordinator(memory, "t").add_task(AgentTask(blank, "x"))
    assert memory.client.dbsize() == before
