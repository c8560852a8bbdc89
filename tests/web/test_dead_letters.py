"""Dead-lettered tasks: filtered by type and failure reason, and requeued many at once by
a steward of their team, with a confirmation; each requeue is atomic and audited."""

from __future__ import annotations

import pytest

from empathy_web.dashboard import dead_letters
from empathy_web.library.models import AuditEntry
from memory import AgentCoordinator, AgentTask, RedisShortTermMemory
from tests.web.pages import page_text, task_sections

pytestmark = pytest.mark.django_db

TEAM = "ops"


@pytest.fixture
def dead(memory: RedisShortTermMemory) -> AgentCoordinator:
    """Five dead-lettered tasks: three reviews that timed out, two fixes that crashed."""
    ops = AgentCoordinator(memory, TEAM, max_attempts=1)
    for i, (kind, error) in enumerate(
        [("review", "Timeout after 30 s")] * 3 + [("fix", "worker crashed")] * 2
    ):
        ops.add_task(AgentTask(f"t-{i}", kind))
        claimed = ops.claim_task("bot", kind)
        ops.fail_task(claimed.task_id, error, retry=False)
    return ops


def _dead_ids(response) -> list[str]:
    return sorted(task_sections(response)["Dead-lettered"][1])


def test_the_board_filters_dead_letters_by_type_and_failure_reason(dead, observer):
    everything = observer.get(f"/tasks/?team={TEAM}")
    assert _dead_ids(everything) == ["t-0", "t-1", "t-2", "t-3", "t-4"]
    by_type = observer.get(f"/tasks/?team={TEAM}&dead_type=fix")
    assert _dead_ids(by_type) == ["t-3", "t-4"]
    by_reason = observer.get(f"/tasks/?team={TEAM}&dead_reason=TIMEOUT")
    assert _dead_ids(by_reason) == ["t-0", "t-1", "t-2"]
    assert "Requeue" not in by_reason.content.decode()  # not for an observer


def test_a_steward_confirms_then_requeues_one_type_each_audited(dead, steward):
    asked = steward.get(f"/dead-letters/{TEAM}/requeue/?dead_type=review")
    assert asked.status_code == 200
    assert "3 dead-lettered tasks of type review match" in page_text(asked)
    assert dead.counts()["dead"] == 5  # asking changed nothing

    done = steward.post(f"/dead-letters/{TEAM}/requeue/", {"dead_type": "review"})

    assert done.status_code == 302
    assert dead.counts()["dead"] == 2
    assert {dead.get_task(f"t-{i}").status for i in range(3)} == {"pending"}
    entries = AuditEntry.objects.filter(action="task.requeue")
    assert sorted(e.target for e in entries) == [f"{TEAM}/t-{i}" for i in range(3)]
    assert len({e.details["batch"] for e in entries}) == 1 and {e.team for e in entries} == {TEAM}


def test_a_request_requeues_a_bounded_number_and_says_more_match(dead, steward, monkeypatch):
    monkeypatch.setattr(dead_letters, "REQUEUE_AT_MOST", 2)

    done = steward.post(f"/dead-letters/{TEAM}/requeue/", {}, follow=True)

    assert dead.counts()["dead"] == 3
    assert "requeue again for the rest" in done.content.decode()


@pytest.mark.parametrize("who, status", [("observer", 403), ("validator", 403)])
def test_only_a_steward_of_the_team_may_requeue(dead, client_for, who, status):
    client = client_for(who)
    assert client.get(f"/dead-letters/{TEAM}/requeue/").status_code == status
    assert client.post(f"/dead-letters/{TEAM}/requeue/").status_code == status
    assert dead.counts()["dead"] == 5


def test_a_steward_of_another_team_gets_404(dead, client_for, make_user):
    other = client_for(make_user(None, "sam", {"elsewhere": "steward"}))
    assert other.get(f"/dead-letters/{TEAM}/requeue/").status_code == 404
    assert other.post(f"/dead-letters/{TEAM}/requeue/").status_code == 404
    assert dead.counts()["dead"] == 5


def test_a_requeue_without_the_csrf_token_is_refused(dead, client_for):
    browser = client_for("steward", enforce_csrf_checks=True)
    page = browser.get(f"/dead-letters/{TEAM}/requeue/")
    assert f'action="/dead-letters/{TEAM}/requeue/"' in page.content.decode()
    assert browser.post(f"/dead-letters/{TEAM}/requeue/", {}).status_code == 403
    assert dead.counts()["dead"] == 5
