"""The agents page: each team's agents with their liveness, capabilities and claims."""

from __future__ import annotations

import re

import pytest

from memory import AgentCoordinator, AgentTask
from tests.web.pages import backdate_heartbeat, element, many_teams, next_page, page_text

pytestmark = pytest.mark.django_db


def test_the_agents_page_pages_through_teams(memory, observer):
    newest_first = many_teams(memory, 12)

    first = observer.get("/agents/")
    assert re.findall(r"<h2>(team-\d+)</h2>", first.content.decode()) == newest_first[:10]
    assert "12 teams, most recently active first." in page_text(first)
    second = observer.get("/agents/" + next_page(first, "More teams"))
    assert re.findall(r"<h2>(team-\d+)</h2>", second.content.decode()) == newest_first[10:]


def test_it_shows_agents_with_liveness_capabilities_and_claims(memory, observer):
    reviewers = AgentCoordinator(memory, "reviewers")
    reviewers.register_agent("lead", ["planning", "review"])
    reviewers.register_agent("security", ["security"])
    reviewers.register_agent("perf", ["performance"])
    reviewers.add_task(AgentTask("audit-auth", "review"))
    reviewers.claim_task("security", "review")
    backdate_heartbeat(memory, "reviewers", "security", 45)
    backdate_heartbeat(memory, "reviewers", "perf", 600)
    AgentCoordinator(memory, "builders").register_agent("compiler", ["build"])

    response = observer.get("/agents/")

    assert response.status_code == 200
    # Heartbeat ages to the second (a slow run may add one).
    assert re.fullmatch(
        r"lead alive [01]s ago planning, review - 0 0 -", element(response, "agent-reviewers-lead")
    )
    assert re.fullmatch(
        r"security late 4[56]s ago security audit-auth 0 0 -",
        element(response, "agent-reviewers-security"),
    )
    assert re.fullmatch(
        r"perf dead 10m 0[01]s ago performance - 0 0 -", element(response, "agent-reviewers-perf")
    )
    assert "compiler alive" in element(response, "agent-builders-compiler")


def test_it_says_when_no_agent_has_registered(memory, observer):
    assert "No agent has registered yet." in page_text(observer.get("/agents/"))


def test_each_agent_shows_what_it_completed_and_failed_in_the_last_day(memory, observer):
    team = AgentCoordinator(memory, "reviewers", max_attempts=3)
    team.register_agent("fast", ["review"])
    for i in range(3):
        team.add_task(AgentTask(f"ok-{i}", "review"))
        team.complete_task(team.claim_task("fast", "review").task_id, {"ok": True})
    team.add_task(AgentTask("bad", "review"))
    team.fail_task(team.claim_task("fast", "review").task_id, "boom")

    row = element(observer.get("/agents/"), "agent-reviewers-fast")

    assert re.fullmatch(r"fast alive [01]s ago review - 3 1 \d+ ms", row)
