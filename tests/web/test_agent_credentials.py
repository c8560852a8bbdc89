"""Agent credentials: stewards issue them (admin or shell) with an agent id, a tier,
teams and an expiry; the secret is shown once; revocation and expiry take effect at
once; every issue, revocation and refused use is audited."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.utils import timezone

from empathy_web.library.credentials import hash_secret, issue
from empathy_web.library.models import AgentCredential, AuditEntry
from memory.tiers import AccessTier

pytestmark = pytest.mark.django_db

ADD = "/admin/library/agentcredential/add/"
API = "/api/library/"


def bearer(secret: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def secret_on(page) -> str:
    [secret] = re.findall(r"(ewt_[A-Za-z0-9_-]+)", page.content.decode())
    return secret


def actions() -> list[str]:
    return list(AuditEntry.objects.order_by("created").values_list("action", flat=True))


@pytest.fixture
def admin(client_for):
    return client_for("steward", username="stella")


def test_a_steward_issues_a_credential_with_its_tier_teams_and_expiry(admin):
    page = admin.post(
        ADD,
        {
            "agent_id": "reviewer",
            "tier": "CONTRIBUTOR",
            "team_list": "alpha, beta, alpha",
            "expires_at_0": "2031-01-02",
            "expires_at_1": "03:04:05",
        },
    )

    assert page.status_code == 200 and "no-store" in page["Cache-Control"]
    secret = secret_on(page)
    credential = AgentCredential.objects.get(agent_id="reviewer")
    assert (credential.tier, credential.teams, credential.all_teams) == (
        "CONTRIBUTOR",
        ["alpha", "beta"],
        False,
    )
    assert credential.expires_at.year == 2031
    assert credential.secret_hash == hash_secret(secret)
    assert all(secret not in m.value for m in page.cookies.values())
    entry = AuditEntry.objects.get(action="credential.issue")
    assert (entry.actor_name, entry.target) == ("stella", "reviewer")
    assert entry.details["teams"] == ["alpha", "beta"]


def test_a_steward_credential_needs_an_explicit_confirmation(admin):
    refused = admin.post(ADD, {"agent_id": "boss", "tier": "STEWARD", "all_teams": "on"})

    assert (
        refused.status_code == 200 and "Confirm that this agent may act" in refused.content.decode()
    )
    assert not AgentCredential.objects.exists()
    issued = admin.post(
        ADD, {"agent_id": "boss", "tier": "STEWARD", "all_teams": "on", "confirm_steward": "on"}
    )
    assert secret_on(issued)


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"agent_id": "a/b", "tier": "OBSERVER"}, "must not contain"),
        ({"agent_id": "   ", "tier": "OBSERVER"}, "This field is required"),
        ({"agent_id": "ok", "tier": "OBSERVER", "team_list": "good, {bad}"}, "must not contain"),
        ({"agent_id": "ok", "tier": "ROOT"}, "Select a valid choice"),
    ],
)
def test_bad_input_issues_nothing(admin, form, message):
    page = admin.post(ADD, form)

    assert message in page.content.decode()
    assert not AgentCredential.objects.exists() and actions() == []


def test_revoking_takes_effect_at_once_and_is_audited(admin):
    credential, secret = issue("reader", AccessTier.OBSERVER, all_teams=True)
    agent = Client()
    assert agent.get(API, **bearer(secret)).status_code == 200

    admin.post(
        "/admin/library/agentcredential/",
        {"action": "revoke", "_selected_action": [credential.pk]},
    )

    refused = agent.get(API, **bearer(secret))
    assert refused.status_code == 401 and "(revoked)" in refused.json()["error"]
    assert actions()[-2:] == ["credential.revoke", "credential.refused"]
    entry = AuditEntry.objects.get(action="credential.refused")
    assert (entry.actor_name, entry.details["reason"], entry.target) == ("reader", "revoked", API)


def test_an_expired_credential_is_refused(client):
    _, secret = issue(
        "reader", AccessTier.OBSERVER, all_teams=True, expires_at=timezone.now() - timedelta(1)
    )

    response = client.get(API, **bearer(secret))

    assert response.status_code == 401 and "(expired)" in response.json()["error"]
    assert AuditEntry.objects.get(action="credential.refused").details["reason"] == "expired"


def test_an_unknown_secret_is_refused_and_audited(client):
    assert client.get(API, **bearer("ewt_made-up")).status_code == 401
    entry = AuditEntry.objects.get(action="credential.refused")
    assert (entry.actor_name, entry.details["reason"]) == ("(no credential)", "unknown")


def test_stewards_see_when_each_credential_was_last_used(admin, client):
    credential, secret = issue("reader", AccessTier.OBSERVER, all_teams=True)
    assert admin.get("/admin/library/agentcredential/").status_code == 200
    client.get(API, **bearer(secret))

    credential.refresh_from_db()
    assert credential.last_used_at is not None
    listing = admin.get("/admin/library/agentcredential/").content.decode()
    assert "reader" in listing and secret not in listing


def run(*args: str) -> list[str]:
    out = io.StringIO()
    call_command("agent_credential", *args, stdout=out)
    return out.getvalue().splitlines()


def test_the_shell_command_issues_a_working_credential_with_the_secret_last(client):
    lines = run("create", "bot-1", "--tier", "contributor", "--team", "alpha", "--expires-in", "7")

    secret = lines[-1]
    assert client.get(API, **bearer(secret)).status_code == 200
    credential = AgentCredential.objects.get(agent_id="bot-1")
    assert (credential.tier, credential.teams) == ("CONTRIBUTOR", ["alpha"])
    assert timedelta(days=6) < credential.expires_at - timezone.now() <= timedelta(days=7)
    assert AuditEntry.objects.get(action="credential.issue").actor_name.startswith("shell")


def test_the_shell_command_lists_and_revokes(client):
    secret = run("create", "bot-1", "--tier", "observer", "--all-teams")[-1]
    run("create", "bot-2", "--tier", "validator", "--team", "beta")

    listed = run("list")
    assert [line.split()[0] for line in listed] == ["bot-2", "bot-1"]
    assert "all teams" in listed[1] and "beta" in listed[0]
    assert run("revoke", "bot-1") == ["Revoked 1 credential of bot-1."]
    assert client.get(API, **bearer(secret)).status_code == 401
    assert [line.split()[0] for line in run("list")] == ["bot-2"]
    assert "revoked" in run("list", "--all")[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("create", "boss", "--tier", "steward", "--all-teams"), "--confirm-steward"),
        (("create", "a/b", "--tier", "observer"), "must not contain"),
        (("create", "bot", "--tier", "observer", "--team", "a", "--all-teams"), "not both"),
        (("revoke", "nobody"), "no active credential"),
    ],
)
def test_the_shell_command_refuses_bad_input_and_writes_nothing(args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert not AgentCredential.objects.exists() and actions() == []


@pytest.mark.django_db(transaction=True)
def test_old_api_tokens_become_observer_credentials_of_every_team(client):
    executor = MigrationExecutor(connection)
    executor.migrate([("library", "0002_promoted_pattern_fields_agent_token")])
    old = executor.loader.project_state(
        ("library", "0002_promoted_pattern_fields_agent_token")
    ).apps.get_model("library", "AgentToken")
    old.objects.create(name="ci/bot", token_hash=hash_secret("ewt_old-secret"))

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    credential = AgentCredential.objects.get()
    assert (credential.agent_id, credential.tier, credential.all_teams) == (
        "ci-bot",
        "OBSERVER",
        True,
    )
    assert client.get(API, **bearer("ewt_old-secret")).status_code == 200
