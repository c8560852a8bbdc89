"""The agent API's working memory, and what every endpoint shares: the credential is
who acts, errors are JSON with a stable code, bad input writes nothing, and the schema
is generated. Runs on a real redis-server."""

from __future__ import annotations

import pytest
from django.test import override_settings

from empathy_web.accounts.tiers import WIZARD_ID_PREFIX
from empathy_web.dashboard.agents_memory import use_memory
from memory import EmpathyOS, RedisShortTermMemory
from tests.redis_server import start_redis_server
from tests.web.api import BASE, agent, data_keys

pytestmark = pytest.mark.django_db


def test_an_agent_stashes_retrieves_lists_and_deletes_its_own_values(memory):
    bot = agent("bot")

    assert bot.post("/memory/stash", {"key": "plan", "value": {"step": 1}}).json() == {
        "key": "plan"
    }
    assert bot.get("/memory/retrieve", key="plan").json() == {
        "key": "plan",
        "agent_id": "bot",
        "value": {"step": 1},
    }
    listed = bot.get("/memory/keys").json()
    assert [e["key"] for e in listed["items"]] == ["plan"] and listed["total"] == 1
    assert bot.post("/memory/delete", {"key": "plan"}).json() == {"deleted": True}
    assert bot.get("/memory/retrieve", key="plan").json()["value"] is None
    # The library wrote it as the credential's agent.
    assert EmpathyOS("bot", memory).retrieve("plan") is None


def test_the_credential_is_who_acts_whatever_the_body_says(memory):
    bot = agent("bot")

    bot.post("/memory/stash", {"key": "k", "value": 1, "agent_id": "alice"})

    assert EmpathyOS("bot", memory).retrieve("k") == 1
    assert EmpathyOS("alice", memory).retrieve("k") is None


def test_another_agents_values_are_read_with_agent_id(memory):
    EmpathyOS("alice", memory).stash("notes", "hello")

    body = agent("bot", "observer").get("/memory/retrieve", key="notes", agent_id="alice").json()

    assert body == {"key": "notes", "agent_id": "alice", "value": "hello"}


def test_a_persons_wizard_memory_is_not_for_agents(memory):
    EmpathyOS(WIZARD_ID_PREFIX + "stella", memory).stash("run:1", "secret code")

    refused = agent("bot").get(
        "/memory/retrieve", key="run:1", agent_id=WIZARD_ID_PREFIX + "stella"
    )

    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"


def test_an_observer_cannot_write(memory):
    refused = agent("watcher", "observer").post("/memory/stash", {"key": "k", "value": 1})

    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"
    assert "stash" in refused.json()["message"]
    assert data_keys(memory) == set()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"key": "   ", "value": 1}, 400, "bad_input"),
        ({"key": "k", "value": 1, "ttl": -1}, 422, "bad_input"),
        ({"value": 1}, 422, "bad_input"),
        ({"key": "k", "value": "x" * (1024 * 1024 + 1)}, 413, "too_large"),
    ],
)
def test_bad_input_is_a_json_error_and_writes_nothing(memory, body, status, code):
    response = agent("bot").post("/memory/stash", body)

    assert response.status_code == status
    assert response.json()["code"] == code and response.json()["message"]
    assert EmpathyOS("bot", memory).retrieve("k") is None
    assert not memory.client.keys("*wm:bot*")


@pytest.mark.parametrize(
    ("headers", "reason"),
    [({}, "needed"), ({"HTTP_AUTHORIZATION": "Bearer ewt_unknown"}, "not known")],
)
def test_without_a_valid_credential_it_is_401(client, memory, headers, reason):
    response = client.get(f"{BASE}/memory/keys", **headers)

    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated" and reason in response.json()["message"]
    assert response["WWW-Authenticate"].startswith("Bearer")


@override_settings(API_REQUESTS_PER_MINUTE=3)
def test_requests_past_the_credentials_limit_are_429(memory):
    bot, other = agent("bot"), agent("other")
    for _ in range(3):
        assert bot.get("/memory/keys").status_code == 200

    limited = bot.get("/memory/keys")

    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert other.get("/memory/keys").status_code == 200  # its own allowance


def test_redis_down_is_503(memory):
    bot = agent("bot")
    server = start_redis_server([])
    use_memory(RedisShortTermMemory(url=server.url, socket_timeout=1))
    server.kill()

    response = bot.get("/memory/keys")

    assert response.status_code == 503 and response.json()["code"] == "unavailable"


def test_the_schema_is_generated_and_the_docs_are_served_locally(client):
    schema = client.get(f"{BASE}/openapi.json").json()

    assert schema["openapi"].startswith("3.1")
    assert "/api/v1/memory/stash" in schema["paths"]
    assert schema["components"]["securitySchemes"]["CredentialAuth"]["scheme"] == "bearer"
    docs = client.get(f"{BASE}/docs").content.decode()
    assert "swagger-ui" in docs and "cdn" not in docs.lower()
