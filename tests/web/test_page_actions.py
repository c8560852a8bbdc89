"""The pages' forms: bad input, CSRF, who may use each action and who is offered it,
and ids and cursors from the URL that the library refuses."""

from __future__ import annotations

import pytest
from django.http import HttpResponse
from django.test import Client

from empathy_web.library.models import AuditEntry
from memory import AgentCoordinator, EmpathyOS, TeamSession
from tests.web.pages import page_text, redis_snapshot

pytestmark = pytest.mark.django_db


TASK = {"team_id": "reviewers", "task_id": "t-1", "task_type": "review", "priority": "5"}
SHARE = {"key": "decision", "value": '"ship"'}

BAD_INPUT = [
    pytest.param("/tasks/add/", {**TASK, "priority": "11"}, "less than or equal to 10", id="priority-11"),
    pytest.param("/tasks/add/", {**TASK, "priority": "0"}, "greater than or equal to 1", id="priority-0"),
    pytest.param("/tasks/add/", {**TASK, "task_id": "a\tb"}, "contains a control character", id="task-id-tab"),
    pytest.param("/tasks/add/", {**TASK, "task_id": ""}, "This field is required.", id="task-id-empty"),
    pytest.param("/tasks/add/", {**TASK, "team_id": "  "}, "This field is required.", id="team-id-blank"),
    pytest.param("/tasks/add/", {**TASK, "team_id": "a{b}"}, "must not contain", id="team-id-braces"),
    pytest.param("/tasks/add/", {**TASK, "task_type": "x\ny"}, "contains a control character", id="type-newline"),
    pytest.param("/signals/send/", {"signal_type": "ping", "data": "{bad"}, "Not valid JSON", id="signal-json"),
    pytest.param("/signals/send/", {"signal_type": "ping", "data": "NaN"}, "cannot be stored as JSON", id="signal-nan"),
    pytest.param("/signals/send/", {"signal_type": "ping", "target_agent": "a\tb"}, "contains a control character", id="target-tab"),
    pytest.param("/signals/send/", {"signal_type": ""}, "This field is required.", id="signal-type-empty"),
    pytest.param("/sessions/incident-42/share/", {**SHARE, "value": "{"}, "Not valid JSON", id="share-json"),
    pytest.param("/sessions/incident-42/share/", {**SHARE, "value": ""}, "This field is required.", id="share-empty"),
    pytest.param("/sessions/incident-42/share/", {**SHARE, "key": "a\tb"}, "contains a control character", id="share-key-tab"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "data", "message"), BAD_INPUT)
def test_bad_input_is_refused_and_nothing_is_written(
    incident, redis_client, contributor, path, data, message
):
    before = redis_snapshot(redis_client)

    response = contributor.post(path, data)

    assert response.status_code == 400
    assert message in page_text(response)
    assert redis_snapshot(redis_client) == before
    assert not AuditEntry.objects.exists()


def test_observers_cannot_act(incident, redis_client, observer):
    before = redis_snapshot(redis_client)

    responses = [
        observer.post("/tasks/add/", TASK),
        observer.post("/signals/send/", {"signal_type": "ping"}),
        observer.post("/sessions/incident-42/share/", SHARE),
    ]

    assert [r.status_code for r in responses] == [403, 403, 403]
    assert redis_snapshot(redis_client) == before
    assert not AuditEntry.objects.exists()


def test_actions_need_a_post_with_a_csrf_token(memory, client_for):
    client = client_for("contributor", username="carol", enforce_csrf_checks=True)

    assert client.get("/tasks/add/").status_code == 405
    assert client.post("/tasks/add/", TASK).status_code == 403
    assert AgentCoordinator(memory, "reviewers").get_task("t-1") is None


def test_only_stewards_use_steward_actions(incident, dead_task, redis_client, contributor):
    EmpathyOS("security-agent", incident.memory).stash("findings", 1)
    before = redis_snapshot(redis_client)

    responses = [
        contributor.post("/tasks/reviewers/flaky/requeue/"),
        contributor.post("/tasks/reviewers/flaky/cancel/"),
        contributor.post("/sessions/incident-42/delete/"),
        contributor.post("/memory/security-agent/clear/"),
    ]

    assert [r.status_code for r in responses] == [403, 403, 403, 403]
    assert redis_snapshot(redis_client) == before
    assert not AuditEntry.objects.exists()


# what each tier is offered -------------------------------------------------------------


def offered(response: HttpResponse) -> dict[str, bool]:
    body = response.content.decode()
    return {
        "add task": "Queue task</button>" in body,
        "send signal": "Send</button>" in body,
        "share": "Share</button>" in body,
        "requeue": "Requeue</button>" in body,
        "cancel": "Cancel</button>" in body,
        "delete session": "Delete</button>" in body,
        "clear memory": "memory</button>" in body,
        "admin link": 'href="/admin/"' in body,
    }


def controls(client: Client) -> set[str]:
    shown: set[str] = set()
    for path in (
        "/tasks/?team=reviewers",
        "/signals/",
        "/sessions/",
        "/sessions/incident-42/",
        "/memory/",
    ):
        response = client.get(path)
        assert response.status_code == 200
        shown |= {name for name, present in offered(response).items() if present}
    return shown


@pytest.fixture
def everything(incident: TeamSession, dead_task: AgentCoordinator) -> None:
    EmpathyOS("security-agent", incident.memory).stash("findings", 1)


def test_observers_are_offered_no_action(everything, observer):
    assert controls(observer) == set()


def test_contributors_are_offered_the_forms_they_may_use(everything, contributor):
    assert controls(contributor) == {"add task", "send signal", "share"}


def test_stewards_are_offered_every_action_and_the_admin(everything, steward):
    assert controls(steward) == {
        "add task",
        "send signal",
        "share",
        "requeue",
        "cancel",
        "delete session",
        "clear memory",
        "admin link",
    }


# malformed ids and cursors -------------------------------------------------------------

MALFORMED_QUERY_BUG = (
    "an id or cursor from the URL that the library refuses (InvalidValue, a ValueError) is "
    "handled nowhere: empathy_web/dashboard/panels.py passes ?cursor=, ?agents_cursor=, "
    "?team= and ?agent= straight to the library, and actions.py share(), delete_session(), "
    "task_action() and clear_memory() build TeamSession / AgentCoordinator / check the "
    "agent id outside any try, so the request fails with a 500"
)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/signals/?cursor=garbage"),
        ("get", "/patterns/?cursor=garbage"),
        ("get", "/patterns/?q=x&cursor=garbage"),
        ("get", "/patterns/?sort=confidence&type=x&cursor=garbage"),
        ("get", "/patterns/?sort=type&cursor=garbage"),
        ("get", "/sessions/?cursor=x"),
        ("get", "/sessions/incident-42/?cursor=x"),
        ("get", "/tasks/?team=a%09b"),
        ("get", "/tasks/?team=reviewers&status=completed&cursor=x"),
        ("get", "/memory/?agent=a%09b"),
        ("get", "/memory/?agents_cursor=x"),
        ("post", "/sessions/a%09b/share/"),
        ("post", "/sessions/a%09b/delete/"),
        ("post", "/tasks/a%09b/flaky/requeue/"),
        ("post", "/memory/a%09b/clear/"),
    ],
)
def test_malformed_ids_and_cursors_are_refused_not_crashed_on(
    everything, steward, method: str, path: str
):
    as_steward = Client(raise_request_exception=False)  # see the 500 a person would see
    as_steward.cookies = steward.cookies

    response = getattr(as_steward, method)(path, SHARE if method == "post" else None)

    assert response.status_code in (400, 404)
    assert not AuditEntry.objects.exists()
