"""The agent API's signals and task queues: the credential's agent sends, receives,
claims and finishes; teams outside the credential are refused; receive and claim wait
for work without a thread each. Runs on a real redis-server."""

from __future__ import annotations

import threading
import time

import pytest

from empathy_web.library.models import AuditEntry
from memory import AgentCoordinator, AgentTask, EmpathyOS
from tests.web.api import agent, data_keys

pytestmark = pytest.mark.django_db(transaction=True)


def later(seconds: float, action) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


def test_signals_go_from_one_agent_to_another(memory):
    alice, bob = agent("alice"), agent("bob")

    sent = alice.post(
        "/signals/send", {"signal_type": "ping", "data": {"n": 1}, "target_agent": "bob"}
    )

    assert sent.status_code == 200 and sent.json()["sender"] == "alice"
    got = bob.post("/signals/receive").json()["items"]
    assert [(s["sender"], s["data"]) for s in got] == [("alice", {"n": 1})]
    assert bob.post("/signals/receive").json()["items"] == []  # consumed
    listed = alice.get("/signals", signal_type="ping").json()["items"]
    assert [s["id"] for s in listed] == [sent.json()["id"]]


def test_a_waiting_receive_returns_when_a_signal_arrives(memory):
    bob = agent("bob")
    started = time.monotonic()
    timer = later(0.5, lambda: EmpathyOS("alice", memory).send_signal("go", 1, "bob"))

    got = bob.post("/signals/receive", {"wait": 20}).json()["items"]

    timer.join()
    assert [s["signal_type"] for s in got] == ["go"]
    assert time.monotonic() - started < 10  # woken by the signal, not by the wait's end


def test_a_receive_with_nothing_to_wait_for_returns_empty_after_its_wait(memory):
    started = time.monotonic()

    got = agent("bob").post("/signals/receive", {"wait": 0.3}).json()["items"]

    assert got == [] and time.monotonic() - started >= 0.3


def test_an_agent_claims_and_completes_a_task_as_itself(memory):
    worker = agent("worker", teams=("alpha",))
    assert worker.post("/teams/alpha/tasks", {"task_id": "t-1", "task_type": "review"}).json() == {
        "added": True
    }

    task = worker.post("/teams/alpha/tasks/claim", {"task_type": "review"}).json()["task"]
    assert (task["task_id"], task["claimed_by"], task["status"]) == ("t-1", "worker", "claimed")
    token = task["fencing_token"]
    done = worker.post("/teams/alpha/tasks/t-1/complete", {"fencing_token": token, "result": 42})

    assert done.json() == {"ok": True, "next": None}
    finished = worker.get("/teams/alpha/tasks/t-1").json()
    assert (finished["status"], finished["result"]) == ("completed", 42)


def test_one_call_completes_a_task_and_claims_the_next_and_may_be_sent_again(memory):
    worker = agent("worker", teams=("alpha",))
    for n in (1, 2):
        worker.post("/teams/alpha/tasks", {"task_id": f"t-{n}", "task_type": "review"})
    first = worker.post("/teams/alpha/tasks/claim", {"task_type": "review"}).json()["task"]
    body = {"fencing_token": first["fencing_token"], "result": 1, "claim_next": "review"}

    done = worker.post("/teams/alpha/tasks/t-1/complete", body).json()
    again = worker.post("/teams/alpha/tasks/t-1/complete", body).json()  # a lost reply

    following = done["next"]
    assert (following["task_id"], following["claimed_by"]) == ("t-2", "worker")
    assert again == done  # the same next task, with the same token: no second claim
    assert AgentCoordinator(memory, "alpha").counts()["completed"] == 1
    last = {"fencing_token": following["fencing_token"], "claim_next": "review"}
    assert worker.post("/teams/alpha/tasks/t-2/complete", last).json() == {"ok": True, "next": None}
    assert worker.get("/teams/alpha/tasks/t-2").json()["status"] == "completed"


def test_another_agent_with_the_token_cannot_finish_the_task(memory):
    worker, thief = agent("worker"), agent("thief")
    worker.post("/teams/alpha/tasks", {"task_id": "t-1", "task_type": "review"})
    token = worker.post("/teams/alpha/tasks/claim", {"task_type": "review"}).json()["task"][
        "fencing_token"
    ]

    stolen = thief.post("/teams/alpha/tasks/t-1/complete", {"fencing_token": token, "result": 0})

    assert stolen.status_code == 409 and stolen.json()["code"] == "lease_lost"
    assert AgentCoordinator(memory, "alpha").get_task("t-1").status == "claimed"


def test_a_waiting_claim_gets_the_task_added_meanwhile(memory):
    worker = agent("worker")
    started = time.monotonic()
    timer = later(
        0.5, lambda: AgentCoordinator(memory, "alpha").add_task(AgentTask("t-9", "review"))
    )

    task = worker.post("/teams/alpha/tasks/claim", {"task_type": "review", "wait": 20}).json()[
        "task"
    ]

    timer.join()
    assert task["task_id"] == "t-9"
    assert time.monotonic() - started < 10


def test_fail_and_extend_go_to_the_holder_only(memory):
    worker = agent("worker")
    worker.post("/teams/alpha/tasks", {"task_id": "t-1", "task_type": "review"})
    token = worker.post("/teams/alpha/tasks/claim", {"task_type": "review"}).json()["task"][
        "fencing_token"
    ]

    extended = worker.post(
        "/teams/alpha/tasks/t-1/extend", {"fencing_token": token, "lease_seconds": 120}
    )
    failed = worker.post(
        "/teams/alpha/tasks/t-1/fail", {"fencing_token": token, "error": "x", "retry": False}
    )

    assert extended.json()["lease_expires_ms"] > 0
    assert failed.json() == {"status": "dead"}
    listed = worker.get("/teams/alpha/tasks", status="dead").json()
    assert [t["task_id"] for t in listed["items"]] == ["t-1"] and listed["total"] == 1


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/teams/beta/tasks", {"task_id": "t", "task_type": "x"}),
        ("post", "/teams/beta/tasks/claim", {"task_type": "x"}),
        ("post", "/teams/beta/tasks/t/complete", {"fencing_token": 1}),
        ("get", "/teams/beta/tasks", None),
        ("post", "/signals/send", {"signal_type": "s", "team": "beta"}),
    ],
)
def test_a_team_outside_the_credential_is_403_and_audited(memory, method, path, body):
    worker = agent("worker", teams=("alpha",))
    before = data_keys(memory)

    if method == "get":
        response = worker.get(path, status="pending", task_type="x")
    else:
        response = worker.post(path, body)

    assert response.status_code == 403
    assert "may act in teams: alpha; not in beta" in response.json()["message"]
    assert data_keys(memory) == before  # nothing written
    entry = AuditEntry.objects.get(action="credential.refused")
    assert (entry.actor_name, entry.details["reason"]) == ("worker", "forbidden")


def test_an_observer_may_read_tasks_but_not_claim(memory):
    AgentCoordinator(memory, "alpha").add_task(AgentTask("t-1", "review"))
    watcher = agent("watcher", "observer")

    assert (
        watcher.get("/teams/alpha/tasks", status="pending", task_type="review").status_code == 200
    )
    refused = watcher.post("/teams/alpha/tasks/claim", {"task_type": "review"})

    assert refused.status_code == 403 and "contributor" in refused.json()["message"]
    assert AgentCoordinator(memory, "alpha").get_task("t-1").status == "pending"


def test_an_agent_receives_no_broadcast_of_a_team_it_is_not_in(memory):
    from memory.signals import send
    from memory.tiers import AccessTier, Caller

    lead = Caller("lead", AccessTier.CONTRIBUTOR)
    for team in ("alpha", "beta", None):
        send(memory, lead, "news", {"of": team or "everyone"}, team=team)
    send(memory, lead, "direct", {"of": "beta, to bob"}, "bob", team="beta")

    got = agent("bob", teams=("alpha",)).post("/signals/receive").json()["items"]

    assert sorted(s["data"]["of"] for s in got) == ["alpha", "beta, to bob", "everyone"]
    everyone_else = agent("cy", teams=("beta",)).post("/signals/receive").json()["items"]
    assert sorted(s["data"]["of"] for s in everyone_else) == ["beta", "everyone"]
