"""The overview page: a summary of agents, tasks, patterns, sessions and signals, on
data the agents wrote to a real redis-server."""

from __future__ import annotations

import re

import pytest

from empathy_web.dashboard.agents_memory import use_memory
from memory import AccessTier, AgentCoordinator, AgentTask, Caller, EmpathyOS, TeamSession
from memory.registry import list_teams
from tests.web.pages import backdate_heartbeat, many_teams, next_page, page_text, pattern, words

pytestmark = pytest.mark.django_db

READER = Caller("reader", AccessTier.OBSERVER)


def test_it_summarises_agents_tasks_patterns_sessions_and_signals(memory, observer):
    reviewers = AgentCoordinator(memory, "reviewers")
    for agent_id in ("lead", "security", "perf"):
        reviewers.register_agent(agent_id, ["review"])
    backdate_heartbeat(memory, "reviewers", "security", 45)
    backdate_heartbeat(memory, "reviewers", "perf", 600)
    for task_id, priority in (("done", 9), ("broken", 8), ("held", 7), ("waiting", 1)):
        reviewers.add_task(AgentTask(task_id, "review", priority=priority))
    reviewers.claim_task("lead", "review")
    reviewers.complete_task("done", {"ok": True})
    reviewers.claim_task("lead", "review")
    reviewers.fail_task("broken", "crashed", retry=False)
    reviewers.claim_task("security", "review")
    builders = AgentCoordinator(memory, "builders")
    builders.add_task(AgentTask("compile", "build"))
    builders.add_task(AgentTask("link", "build"))
    lead = EmpathyOS("lead", memory)
    lead.stage_pattern(pattern("p-1", "lead"))
    lead.stage_pattern(pattern("p-2", "lead"))
    lead.send_signal("review.start", {"pr": 1})
    lead.send_signal("review.assign", {"pr": 1}, "security")
    session = TeamSession(memory, "triage", "Triage the outage", actor="lead")
    session.signal("status", {"phase": "started"})

    response = observer.get("/")

    assert response.status_code == 200
    text = page_text(response)
    assert "1 alive · 1 late · 1 dead" in text
    assert "2 awaiting validation · 0 expire within the hour" in text
    assert "1 active" in text
    assert "3 in the last 5 minutes" in text
    table = words(response.content.decode().split("Tasks per team")[1])
    # queued, the oldest's wait, claimed, completed, dead-lettered
    assert re.search(r"reviewers 1 [0-9]s 1 1 1", table)
    assert re.search(r"builders 2 [0-9]s 0 0 0", table)
    sparklines = re.findall(r'<svg role="img" aria-label="([^"]+)"', response.content.decode())
    assert len(sparklines) == 3  # and the chart of tasks completed and failed
    assert sparklines[2].startswith("Tasks of the teams below, last hour: completed 1, failed 1")
    assert sparklines[0].startswith("signals per minute: latest ")
    assert sparklines[1].startswith("queued tasks: latest 3,")
    for points in re.findall(r'<polyline [^>]*points="([^"]+)"', response.content.decode()):
        assert len(points.split()) == 60  # one point per minute of the last hour (each)


def test_it_says_what_is_missing_on_an_empty_memory(memory, observer):
    text = page_text(observer.get("/"))

    assert "0 alive · 0 late · 0 dead" in text
    assert "0 awaiting validation · 0 expire within the hour" in text
    assert "No team has queued a task yet." in text


def test_it_counts_staged_patterns_that_expire_within_the_hour(memory, short_patterns, observer):
    use_memory(short_patterns)  # the web and the agents agree on a 30-minute TTL
    EmpathyOS("security", short_patterns).stage_pattern(pattern("p-soon", "security"))

    text = page_text(observer.get("/"))

    assert "1 awaiting validation · 1 expire within the hour" in text


def test_it_counts_a_pattern_expiring_soon_whatever_ttl_its_agent_used(
    memory, short_patterns, observer
):
    EmpathyOS("security", memory).stage_pattern(pattern("p-day", "security"))
    EmpathyOS("perf", short_patterns).stage_pattern(pattern("p-soon", "perf"))

    text = page_text(observer.get("/"))

    assert "2 awaiting validation · 1 expire within the hour" in text


def test_the_overview_pages_through_teams(memory, observer):
    newest_first = many_teams(memory, 30)

    first = observer.get("/")
    rows = re.findall(r'\?team=(team-\d+)">', first.content.decode())
    assert rows == newest_first[:25]
    assert "25 of 30 teams, most recently active first." in page_text(first)
    # The figures are the page's: the overview's cost must not grow with the teams.
    assert "25 alive · 0 late · 0 dead In the 25 teams below, of 30." in page_text(first)
    second = observer.get("/" + next_page(first))
    assert re.findall(r'\?team=(team-\d+)">', second.content.decode()) == newest_first[25:]
    assert "5 alive · 0 late · 0 dead In the 5 teams below, of 30." in page_text(second)
    assert next_page(second) is None


@pytest.mark.parametrize(("tier", "shown"), [("observer", False), ("steward", True)])
def test_the_redis_address_is_shown_to_stewards_only(memory, client_for, tier, shown):
    html = client_for(tier).get("/").content.decode()
    assert (memory.address in html) is shown


def commands_for(memory, client, path: str) -> int:
    """How many commands Redis ran (scripts' inner calls included) for one page."""
    memory.client.config_resetstat()
    client.get(path)
    stats = memory.client.info("commandstats")
    return sum(entry["calls"] for name, entry in stats.items() if name != "cmdstat_info")


def test_the_overviews_cost_does_not_grow_with_the_number_of_teams(memory, observer):
    for n in range(30):
        AgentCoordinator(memory, f"small-{n}").add_task(AgentTask("t", "x"))
    small = commands_for(memory, observer, "/")
    for n in range(300):
        AgentCoordinator(memory, f"big-{n}").add_task(AgentTask("t", "x"))
    assert commands_for(memory, observer, "/") == small


def test_teams_with_nothing_left_leave_the_overview_as_it_is_viewed(memory, observer):
    for n in range(30):
        team = AgentCoordinator(memory, f"gone-{n}", actor="agent-1")
        team.register_agent("agent-1")
        team.unregister_agent("agent-1")
    AgentCoordinator(memory, "busy").add_task(AgentTask("t", "x"))

    observer.get("/")
    # A view checks 20 teams at random: those of them with nothing left are gone.
    left = list_teams(memory, READER)
    assert len(left) in (11, 12) and "busy" in left  # 12 if "busy" was one of the 20
    observer.get("/")
    assert re.findall(r'\?team=([\w-]+)">', observer.get("/").content.decode()) == ["busy"]
