"""``memory.remote``: the reference's examples run against a live server, each with one
line changed (the memory comes from ``remote.connect`` instead of
``get_redis_memory()``), with one credential per agent id they use; and what differs
from a credential is refused."""

from __future__ import annotations

import ast
import io
from collections.abc import Iterator
from contextlib import redirect_stdout
from typing import Any

import pytest

from memory import AccessDenied, AccessTier, EmpathyOS, LeaseLost, StagedPattern, remote
from memory.remote_client import RemoteMemory
from tests.live_server import LiveServer
from tests.memory.test_reference_examples import EXAMPLES

# The agent ids the examples act as, with their tiers: one credential each.
AGENTS = {
    "code_reviewer": "contributor",
    "lead_reviewer": "validator",
    "coordinator:code_review_team": "contributor",
    "security_agent": "contributor",
    "performance_agent": "contributor",
    "style_agent": "contributor",
    "session:pr_review_42": "contributor",
    "security_analysis_wizard": "contributor",
    "coordinator:pr_review": "contributor",
    "security": "contributor",
    "performance": "contributor",
}
ONE_LINE = ("get_redis_memory()", "remote.connect(SERVER, TOKENS)")


@pytest.fixture(scope="module")
def tokens(live: LiveServer) -> dict[str, str]:
    return {agent: live.credential(agent, tier) for agent, tier in AGENTS.items()}


@pytest.fixture
def run(live: LiveServer, tokens: dict[str, str]) -> Iterator[Any]:
    namespace: dict[str, Any] = {"remote": remote, "SERVER": live.url, "TOKENS": tokens}

    def run(section: str, source: str | None = None) -> str:
        code = EXAMPLES[section] if source is None else source
        assert code.count(ONE_LINE[0]) <= 1 or section.startswith("Example")
        code = code.replace(*ONE_LINE)
        out = io.StringIO()
        flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        compiled = compile(code, f"<{section}, remote>", "exec", flags=flags)
        with redirect_stdout(out):
            result = eval(compiled, namespace)  # noqa: S307 - the reference's own examples
        return out.getvalue(), result

    run.namespace = namespace  # type: ignore[attr-defined]
    yield run
    for value in namespace.values():
        if isinstance(value, RemoteMemory):
            value.close()


def test_the_quick_start_runs_on_the_server(run, live):
    out, _ = run("Quick Start")

    assert out == "{'files': 10, 'issues': 3}\n"
    assert EmpathyOS("code_reviewer", live.memory).retrieve("analysis_results") == {
        "files": 10,
        "issues": 3,
    }


def test_working_memory_staging_signals_and_state(run, live):
    run("Quick Start")
    run("Working Memory")
    run("Pattern Staging")
    EmpathyOS("lead_reviewer", live.memory).send_signal(
        "analysis_complete", {"x": 1}, "code_reviewer"
    )
    out, _ = run("Coordination Signals")
    assert "From lead_reviewer: {'x': 1}" in out
    out, _ = run("State Persistence")
    assert out == "0.8\n"
    staged = [
        p.pattern_id for p in EmpathyOS("r", live.memory, AccessTier.OBSERVER).get_staged_patterns()
    ]
    assert "pat_auth_001" in staged


def test_the_coordinator_and_session_examples(run, live):
    out, _ = run("AgentCoordinator")
    assert out.startswith("Completed: ")
    run("TeamSession")
    assert run.namespace["scope"] == {"files_changed": 15, "lines_changed": 500}


async def test_the_wizard_example(run):
    out, result = run("Wizards with Redis Memory")
    await result
    assert run.namespace["result"]["parsed"] is True


def test_the_multi_agent_code_review(run):
    out, _ = run("Example: Multi-Agent Code Review")
    assert out == "Received 2 reviews\n"


def test_what_differs_from_a_credential_is_refused(live, tokens):
    EmpathyOS("style_agent", live.memory).stage_pattern(
        StagedPattern("pat_other", "style_agent", "style", "Other", "d")
    )
    memory = remote.connect(live.url, tokens["code_reviewer"])
    try:
        with pytest.raises(AccessDenied, match="not validator"):
            EmpathyOS("code_reviewer", memory, AccessTier.VALIDATOR)
        with pytest.raises(AccessDenied, match="no credential for agent someone_else"):
            EmpathyOS("someone_else", memory)
        agent = EmpathyOS("code_reviewer", memory)
        with pytest.raises(AccessDenied, match="needs the validator tier"):
            agent.reject_pattern("pat_other", "no")
        with pytest.raises(AccessDenied, match="only as itself"):
            agent.stage_pattern(StagedPattern("pat_x", "style_agent", "x", "X", "d"))
    finally:
        memory.close()


def test_server_errors_come_back_as_the_librarys_exceptions(live, tokens):
    memory = remote.connect(live.url, {"security": tokens["security"]})
    try:
        from memory import AgentCoordinator, AgentTask

        team = AgentCoordinator(memory, "errors", actor="security")
        team.add_task(AgentTask("t-1", "x"))
        task = team.claim_task("security", "x")
        with pytest.raises(LeaseLost):
            team.complete_task("t-1", None, fencing_token=task.fencing_token + 1)
        assert team.get_task("nope") is None
    finally:
        memory.close()


def test_a_validator_decides_through_the_server(live, tokens):
    EmpathyOS("style_agent", live.memory).stage_pattern(
        StagedPattern("pat_decide", "style_agent", "style", "Decide me", "d")
    )
    memory = remote.connect(live.url, tokens["lead_reviewer"])
    try:
        lead = EmpathyOS("lead_reviewer", memory, AccessTier.VALIDATOR)
        promoted = lead.promote_pattern("pat_decide")
    finally:
        memory.close()

    assert (promoted.pattern_id, promoted.name, promoted.agent_id) == (
        "pat_decide", "Decide me", "style_agent",
    )  # fmt: skip
    assert promoted.staged_at is not None


def test_a_team_session_made_through_the_server_is_of_its_team(live, tokens):
    from memory import TeamSession
    from memory.sessions import get_session
    from memory.tiers import Caller

    memory = remote.connect(live.url, {"security": tokens["security"]})
    try:
        TeamSession(memory, "ops-1", "Handle the incident", team="ops", actor="security")
    finally:
        memory.close()

    info = get_session(live.memory, Caller("reader", AccessTier.OBSERVER), "ops-1")
    assert (info.purpose, info.team) == ("Handle the incident", "ops")
