"""Memberships: managed from a shell and in the admin, audited; a steward of some teams
gets those teams' rows of the admin only; and nothing of another team leaks into any
page, live panel, export or API listing (the leak test)."""

from __future__ import annotations

from collections.abc import Callable
from io import StringIO
from typing import Any
from urllib.parse import urlencode

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client

from empathy_web.accounts.models import Membership
from empathy_web.asgi import application
from empathy_web.dashboard.panels import PANELS
from empathy_web.library.models import AuditEntry
from memory import AgentCoordinator, AgentTask, RedisShortTermMemory
from tests.web.api import agent
from tests.web.sockets import HOST, ORIGIN
from tests.web.teams_data import MARKERS, ORG_MARKER, seed_all

pytestmark = pytest.mark.django_db

LEAK = MARKERS["beta"][3:-4]  # the core of beta's marker: escaped or not, it shows


def _run(*args: str) -> str:
    out = StringIO()
    call_command("membership", *args, stdout=out)
    return out.getvalue()


def test_the_membership_command_adds_changes_lists_and_removes_with_an_audit(make_user):
    make_user(None, "dana")

    assert "Now: alpha  dana  validator" in _run("add", "dana", "alpha", "--tier", "validator")
    assert "Already" in _run("add", "dana", "alpha", "--tier", "validator")
    _run("add", "dana", "alpha", "--tier", "observer")
    _run("add", "dana", "*", "--tier", "observer")
    assert _run("list", "dana").splitlines() == [
        "every team  dana  observer",
        "alpha  dana  observer",
    ]
    assert "Removed dana from alpha" in _run("remove", "dana", "alpha")

    entries = AuditEntry.objects.order_by("created", "pk")
    assert [(e.action, e.team, e.details["tier"]) for e in entries] == [
        ("membership.add", "alpha", "VALIDATOR"),
        ("membership.change", "alpha", "OBSERVER"),
        ("membership.add", "", "OBSERVER"),  # every team: an org-wide entry
        ("membership.remove", "alpha", "OBSERVER"),
    ]
    assert entries[1].details["before"] == "VALIDATOR"
    assert all(e.actor_name.startswith("shell") for e in entries)


@pytest.mark.parametrize(
    "args, said",
    [
        (("add", "nobody", "alpha", "--tier", "observer"), "No user 'nobody'"),
        (("add", "dana", "{slot}", "--tier", "observer"), "must not contain"),
        (("remove", "dana", "beta"), "dana is not a member of beta"),
    ],
)
def test_the_membership_command_refuses_bad_input_and_changes_nothing(make_user, args, said):
    make_user(None, "dana")
    before = Membership.objects.count(), AuditEntry.objects.count()
    with pytest.raises(CommandError, match=said):
        _run(*args)
    assert (Membership.objects.count(), AuditEntry.objects.count()) == before


@pytest.fixture
def two_teams(memory: RedisShortTermMemory) -> dict[str, Any]:
    return seed_all(memory)


@pytest.fixture
def alpha_steward(make_user: Callable[..., User]) -> Client:
    client = Client()
    client.force_login(make_user(None, "ada", {"alpha": "steward"}))
    return client


def _audit_both_teams(client_for: Callable[..., Client], two_teams: dict[str, Any]) -> None:
    """An org-wide steward acts in both teams: each action is audited with its team."""
    steward = client_for("steward", "sam")
    for team in ("alpha", "beta"):
        dead = two_teams[team].dead
        assert steward.post(f"/tasks/{team}/{dead}/requeue/").status_code == 302
    assert {e.team for e in AuditEntry.objects.all()} == {"alpha", "beta"}


def test_a_team_steward_gets_the_admin_with_their_teams_rows_only(
    memory, two_teams, client_for, make_user, alpha_steward
):
    _audit_both_teams(client_for, two_teams)
    beta_member = make_user(None, "bob", {"beta": "observer"})
    Membership.objects.create(user=beta_member, team="alpha", tier="OBSERVER")

    audit = alpha_steward.get("/admin/library/auditentry/")
    assert audit.status_code == 200
    assert "dead-alpha" in audit.content.decode() and "dead-beta" not in audit.content.decode()
    export = b"".join(alpha_steward.get("/admin/library/auditentry/export.jsonl").streaming_content)
    assert b"dead-alpha" in export and b"dead-beta" not in export
    beta_entry = AuditEntry.objects.get(team="beta")
    assert alpha_steward.get(f"/admin/library/auditentry/{beta_entry.pk}/change/").status_code in (
        302,
        404,
    )
    members = alpha_steward.get("/admin/accounts/membership/").content.decode()
    assert "alpha" in members and "beta" not in members
    for path in ("/admin/auth/user/", "/admin/library/agentcredential/"):
        assert alpha_steward.get(path).status_code == 403


def test_a_team_steward_manages_only_their_teams_memberships(make_user, alpha_steward):
    bob = make_user(None, "bob", {})
    form = {"user": str(bob.pk), "tier": "OBSERVER"}

    refused = alpha_steward.post("/admin/accounts/membership/add/", {**form, "team": "beta"})
    assert refused.status_code == 200 and "not a steward of beta" in refused.content.decode()
    everywhere = alpha_steward.post("/admin/accounts/membership/add/", {**form, "team": "*"})
    assert everywhere.status_code == 200
    assert not Membership.objects.filter(user=bob).exists()
    added = alpha_steward.post("/admin/accounts/membership/add/", {**form, "team": "alpha"})
    assert added.status_code == 302
    assert list(bob.memberships.values_list("team", "tier")) == [("alpha", "OBSERVER")]
    entry = AuditEntry.objects.get(action="membership.add")
    assert (entry.actor_name, entry.team, entry.details["user"]) == ("ada", "alpha", "bob")


def _pages(client: Client) -> str:
    seen = []
    for url in ["/", "/signals/", "/tasks/", "/agents/", "/sessions/", "/memory/", "/patterns/"]:
        seen.append(client.get(url).content.decode())
    for sort in ("confidence", "age", "type"):
        seen.append(client.get(f"/patterns/?sort={sort}").content.decode())
    for search in ({"q": "leak"}, {"team": "beta"}, {"agent": "agent-beta"}):
        seen.append(client.get("/patterns/?" + urlencode(search)).content.decode())
    every = ",".join(PANELS)
    for extra in ({}, {"team": "beta"}, {"agent": "agent-beta"}, {"signal_type": "sig-beta"}):
        seen.append(client.get("/live/?" + urlencode({"panels": every, **extra})).content.decode())
    seen.append(client.get("/library/?q=leak").content.decode())
    return "\n".join(seen)


def test_no_record_of_another_team_reaches_a_member_of_one_team(
    memory, two_teams, client_for, alpha_steward
):
    """Hostile, unique markers in every record of beta; a steward of alpha alone crawls
    every page, live panel, export and API listing."""
    _audit_both_teams(client_for, two_teams)
    seen = _pages(alpha_steward)
    for fmt in ("csv", "jsonl"):
        export = alpha_steward.get(f"/admin/library/auditentry/export.{fmt}")
        seen += b"".join(export.streaming_content).decode()
    api = agent("alpha-bot", "steward", teams=("alpha",))
    listings = {
        "/signals": {},
        "/patterns": {},
        "/teams/alpha/tasks": {"status": "dead"},
        "/library": {"q": "leak"},
    }
    for path, params in listings.items():
        response = api.get(path, **params)
        assert response.status_code == 200, path
        seen += response.content.decode()
    assert api.get(f"/sessions/{two_teams['beta'].session}").status_code == 404
    assert MARKERS["alpha"][3:-4] in seen and ORG_MARKER in seen  # the crawl saw things
    assert LEAK not in seen


@pytest.mark.django_db(transaction=True)
async def test_a_membership_change_reaches_open_dashboards_at_once(memory, make_user, client_for):
    for team in ("alpha", "beta"):
        await sync_to_async(AgentCoordinator(memory, team).add_task)(AgentTask(f"t-{team}", "x"))
    user = await sync_to_async(make_user)(None, "mo", {"alpha": "observer"})
    client = await sync_to_async(client_for)(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}; csrftoken={'x' * 32}".encode()
    socket = WebsocketCommunicator(
        application,
        "/ws/dashboard/?panels=overview-panel",
        headers=[(b"cookie", cookie), ORIGIN, HOST],
    )
    assert (await socket.connect())[0]
    first = await socket.receive_from(timeout=5)
    assert ">alpha<" in first and ">beta<" not in first

    await sync_to_async(Membership.objects.create)(user=user, team="beta", tier="OBSERVER")
    joined = await socket.receive_from(timeout=5)  # at once, not at the next check
    assert ">alpha<" in joined and ">beta<" in joined

    await sync_to_async(Membership.objects.filter(user=user, team="alpha").delete)()
    left = await socket.receive_from(timeout=5)
    assert ">alpha<" not in left and ">beta<" in left
    await socket.disconnect()
