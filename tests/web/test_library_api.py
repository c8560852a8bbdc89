"""The library's read-only JSON API: agents read promoted patterns with a bearer agent
credential that stewards issue and revoke in the admin."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import Client

from empathy_web.library.credentials import issue
from empathy_web.library.models import AgentCredential, PromotedPattern
from memory.tiers import AccessTier

pytestmark = pytest.mark.django_db


@pytest.fixture
def steward(make_user: Callable[..., User]) -> User:
    return make_user("steward", username="stella")


@pytest.fixture
def library(steward: User) -> None:
    for i, (name, kind) in enumerate(
        [
            ("JWT refresh", "security"),
            ("Guard clauses", "refactor"),
            ("Rate limits", "security"),
            ("Early return", "refactor"),
            ("CSRF tokens", "security"),
        ]
    ):
        PromotedPattern.objects.create(
            pattern_id=f"lib-{i}",
            name=name,
            pattern_type=kind,
            description=f"About {name.lower()}",
            code=f"# {name}",
            confidence=0.9,
            agent_id="security_agent",
            promoted_by=steward,
            note="checked",
        )


@pytest.fixture
def token(steward: User) -> str:
    return issue("security_agent", AccessTier.OBSERVER, all_teams=True, created_by=steward)[1]


ADD = "/admin/library/agentcredential/add/"
NEW = {"agent_id": "review_agent", "tier": "OBSERVER", "all_teams": "on"}


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_AUTHORIZATION": "Bearer"},
        {"HTTP_AUTHORIZATION": "Bearer ewt_not-a-real-token"},
        {"HTTP_AUTHORIZATION": "Basic c3RlbGxhOnB3"},
    ],
    ids=["missing", "empty", "unknown", "not bearer"],
)
@pytest.mark.parametrize("path", ["/api/library/", "/api/library/lib-0/"])
def test_without_a_valid_token_it_is_401(library, client, headers, path):
    response = client.get(path, **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "error" in response.json()


def test_a_logged_in_person_without_a_token_gets_401(library, steward, client_for):
    client = client_for(steward)
    assert client.get("/api/library/").status_code == 401


def test_a_revoked_token_gets_401(library, client, token):
    assert client.get("/api/library/", **bearer(token)).status_code == 200
    AgentCredential.objects.update(revoked_at="2030-01-01T00:00Z")
    assert client.get("/api/library/", **bearer(token)).status_code == 401


def test_it_lists_promoted_patterns_with_who_approved_them(library, client, token):
    body = client.get("/api/library/", **bearer(token)).json()
    assert body["count"] == 5 and body["pages"] == 1
    first = body["results"][0]
    assert first["pattern_id"] == "lib-4"  # newest first
    assert (first["name"], first["promoted_by"], first["note"]) == (
        "CSRF tokens",
        "stella",
        "checked",
    )
    assert first["url"] == "/api/library/lib-4/"


def test_it_searches_and_filters(library, client, token):
    found = client.get("/api/library/?q=guard", **bearer(token)).json()
    assert [p["pattern_id"] for p in found["results"]] == ["lib-1"]
    typed = client.get("/api/library/?type=refactor", **bearer(token)).json()
    assert sorted(p["pattern_id"] for p in typed["results"]) == ["lib-1", "lib-3"]


def test_it_pages(library, client, token):
    seen = []
    url = "/api/library/?type=security&page_size=2"
    while url:
        body = client.get(url, **bearer(token)).json()
        seen += [p["pattern_id"] for p in body["results"]]
        url = body["next"]
    assert seen == ["lib-4", "lib-2", "lib-0"]
    assert client.get("/api/library/?page=9", **bearer(token)).status_code == 404
    assert client.get("/api/library/?page_size=0", **bearer(token)).status_code == 400
    assert client.get("/api/library/?page=x", **bearer(token)).status_code == 400


def test_it_shows_one_pattern(library, client, token):
    body = client.get("/api/library/lib-1/", **bearer(token)).json()
    assert (body["name"], body["code"], body["agent_id"]) == (
        "Guard clauses",
        "# Guard clauses",
        "security_agent",
    )
    assert client.get("/api/library/nope/", **bearer(token)).status_code == 404


def test_it_is_read_only(library, client, token):
    assert client.post("/api/library/", **bearer(token)).status_code == 405


def test_stewards_issue_and_revoke_tokens_in_the_admin(library, steward, client_for):
    admin = client_for(steward)
    created = admin.post(ADD, NEW)
    assert created.status_code == 200
    [shown] = re.findall(r"(ewt_[A-Za-z0-9_-]+)", created.content.decode())
    record = AgentCredential.objects.get(agent_id="review_agent")
    assert shown not in record.secret_hash  # only its hash is kept

    agent = Client()
    assert agent.get("/api/library/", **bearer(shown)).status_code == 200

    admin.post(
        "/admin/library/agentcredential/",
        {"action": "revoke", "_selected_action": [record.pk]},
    )
    assert agent.get("/api/library/", **bearer(shown)).status_code == 401


def test_a_new_token_is_shown_once_on_the_page_and_never_in_a_cookie(library, steward, client_for):
    admin = client_for(steward)
    created = admin.post(ADD, NEW)
    assert created.status_code == 200
    [shown] = re.findall(r"(ewt_[A-Za-z0-9_-]+)", created.content.decode())
    assert "no-store" in created["Cache-Control"]
    assert all(shown not in morsel.value for morsel in created.cookies.values())
    assert shown not in admin.get("/admin/library/agentcredential/").content.decode()


@pytest.mark.parametrize("tier", ["observer", "contributor", "validator"])
def test_only_stewards_manage_tokens(library, client_for, tier):
    client = client_for(tier)
    response = client.get(ADD)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
