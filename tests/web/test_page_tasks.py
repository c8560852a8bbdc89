"""The task board: each team's tasks by state, adding a task, and the steward's
requeue and cancel."""

from __future__ import annotations

import re
from typing import Any

import pytest

from empathy_web.library.models import AuditEntry
from memory import AgentCoordinator, AgentTask, RedisShortTermMemory
from tests.web.pages import audit_actions, element, many_teams, page_text, task_sections

pytestmark = pytest.mark.django_db


@pytest.fixture
def task_board(memory: RedisShortTermMemory) -> dict[str, Any]:
    reviewers = AgentCoordinator(memory, "reviewers")
    for task_id, priority in (("r-claimed", 10), ("r-low", 2), ("r-high", 9), ("r-mid", 5)):
        reviewers.add_task(AgentTask(task_id, "review", f"check {task_id}", priority))
    reviewers.add_task(AgentTask("r-mid-later", "review", priority=5))
    claimed = reviewers.claim_task("security", "review", lease_seconds=600)
    for task_id, priority in (("tr-done", 10), ("tr-dead", 9), ("tr-waiting", 1)):
        reviewers.add_task(AgentTask(task_id, "triage", priority=priority))
    reviewers.claim_task("lead", "triage")
    reviewers.complete_task("tr-done", {"verdict": "ship it", "issues": 0})
    reviewers.claim_task("lead", "triage")
    reviewers.fail_task("tr-dead", "timed out", retry=False)
    AgentCoordinator(memory, "builders").add_task(AgentTask("b-compile", "build"))
    return {"claimed": claimed}


def test_it_shows_a_team_s_task_board(task_board, observer):
    response = observer.get("/tasks/?team=reviewers")

    assert response.status_code == 200
    text = page_text(response)
    assert "5 queued · 1 claimed · 1 completed · 1 dead-lettered" in text
    sections = task_sections(response)
    assert list(sections) == [
        "Queued: review",
        "Queued: triage",
        "Claimed",
        "Completed",
        "Dead-lettered",
    ]
    # Highest priority first, first come first served within a priority.
    assert sections["Queued: review"][:2] == (4, ["r-high", "r-mid", "r-mid-later", "r-low"])
    assert sections["Queued: triage"][:2] == (1, ["tr-waiting"])
    assert sections["Completed"][:2] == (1, ["tr-done"])
    assert sections["Dead-lettered"][:2] == (1, ["tr-dead"])
    assert "b-compile" not in text


def test_it_shows_who_holds_a_claim_and_for_how_long(task_board, observer):
    response = observer.get("/tasks/?team=reviewers")

    row = element(response, "task-r-claimed")
    assert "r-claimed check r-claimed review 10 1 security" in row
    assert re.search(r"security (9|10) minutes", row)
    deadline = task_board["claimed"].lease_expires_ms
    assert f'data-deadline="{deadline}"' in response.content.decode()


def test_it_shows_results_of_completed_and_dead_lettered_tasks(task_board, observer):
    response = observer.get("/tasks/?team=reviewers")

    assert '"verdict": "ship it"' in element(response, "task-tr-done")
    assert '{ "error": "timed out" }' in element(response, "task-tr-dead")


def test_it_switches_between_teams(task_board, observer):
    response = observer.get("/tasks/?team=builders")

    assert "builders" in re.findall(r'class="current">([^<]+)</a>', response.content.decode())
    sections = task_sections(response)
    assert sections["Queued: build"][:2] == (1, ["b-compile"])
    assert "r-high" not in page_text(response)


def test_the_task_board_tabs_the_most_recent_teams(memory, observer):
    newest_first = many_teams(memory, 27)

    response = observer.get(f"/tasks/?team={newest_first[-1]}")

    tabs = re.findall(r'<a href="\?team=(team-\d+)"', response.content.decode())
    assert tabs == newest_first[:25] + [newest_first[-1]]  # and the one asked for
    assert "and 1 less recently active team: see the overview" in page_text(response)
    assert task_sections(response)["Queued: work"][1] == [f"{newest_first[-1]}-task"]


# adding a task -------------------------------------------------------------------------


def test_a_contributor_adds_a_task(memory, contributor):
    response = contributor.post(
        "/tasks/add/",
        {
            "team_id": "reviewers",
            "task_id": "audit-login",
            "task_type": "review",
            "description": "Look at the login view",
            "priority": 7,
        },
        follow=True,
    )

    assert response.redirect_chain == [("/tasks/?team=reviewers", 302)]
    assert "Task audit-login queued in reviewers." in page_text(response)
    assert task_sections(response)["Queued: review"][:2] == (1, ["audit-login"])
    assert "audit-login Look at the login view review 7 0" in element(response, "task-audit-login")
    task = AgentCoordinator(memory, "reviewers").get_task("audit-login")
    assert (task.status, task.priority, task.description) == (
        "pending",
        7,
        "Look at the login view",
    )
    assert audit_actions() == [
        ("contributor-person", "CONTRIBUTOR", "task.add", "reviewers/audit-login")
    ]


def test_adding_a_task_twice_changes_nothing(memory, contributor):
    data = {"team_id": "reviewers", "task_id": "t-1", "task_type": "review", "priority": 5}
    contributor.post("/tasks/add/", data)

    response = contributor.post("/tasks/add/", {**data, "priority": 9}, follow=True)

    assert "Task t-1 already exists; nothing changed." in page_text(response)
    assert AgentCoordinator(memory, "reviewers").get_task("t-1").priority == 5
    assert AuditEntry.objects.count() == 1


# requeue and cancel --------------------------------------------------------------------


def test_a_steward_requeues_a_dead_lettered_task(dead_task, steward):
    response = steward.post("/tasks/reviewers/flaky/requeue/", follow=True)

    assert response.redirect_chain == [("/tasks/?team=reviewers", 302)]
    assert "Task flaky: requeue done." in page_text(response)
    sections = task_sections(response)
    assert sections["Queued: review"][:2] == (1, ["flaky"])
    assert sections["Dead-lettered"][:2] == (0, [])
    task = dead_task.get_task("flaky")
    assert (task.status, task.attempts) == ("pending", 0)
    assert audit_actions() == [("steward-person", "STEWARD", "task.requeue", "reviewers/flaky")]


def test_a_steward_cancels_a_task(memory, steward):
    reviewers = AgentCoordinator(memory, "reviewers")
    reviewers.add_task(AgentTask("obsolete", "review"))
    reviewers.add_task(AgentTask("keep", "review"))

    response = steward.post("/tasks/reviewers/obsolete/cancel/", follow=True)

    assert "Task obsolete: cancel done." in page_text(response)
    assert task_sections(response)["Queued: review"][:2] == (1, ["keep"])
    assert reviewers.get_task("obsolete") is None
    assert audit_actions() == [("steward-person", "STEWARD", "task.cancel", "reviewers/obsolete")]


def test_a_steward_cannot_cancel_a_completed_task(memory, steward):
    reviewers = AgentCoordinator(memory, "reviewers")
    reviewers.add_task(AgentTask("finished", "review"))
    reviewers.claim_task("lead", "review")
    reviewers.complete_task("finished", "done")

    response = steward.post("/tasks/reviewers/finished/cancel/", follow=True)

    assert "task finished is already completed" in page_text(response)
    assert reviewers.get_task("finished").status == "completed"
    assert not AuditEntry.objects.exists()


def test_an_unknown_task_action_is_not_found(dead_task, steward):
    assert steward.post("/tasks/reviewers/flaky/explode/").status_code == 404
    assert dead_task.get_task("flaky").status == "dead"


def test_each_type_s_queue_pages_on_its_own(memory, observer):
    team = AgentCoordinator(memory, "pager")
    for i in range(30):
        team.add_task(AgentTask(f"review-{i:02d}", "review"))
    team.add_task(AgentTask("lint-only", "lint"))

    first = observer.get("/tasks/?team=pager").content.decode()
    assert "review-00" in first and "review-25" not in first and "lint-only" in first
    more = re.search(r'href="\?team=pager&amp;status=pending%3Areview&amp;cursor=(\d+)"', first)
    assert more, "a More link for the review queue"

    second = observer.get(f"/tasks/?team=pager&status=pending:review&cursor={more[1]}")
    html = second.content.decode()
    assert "review-25" in html and "review-00" not in html  # the review queue's next page
    assert "lint-only" in html  # the other queues on their first page
