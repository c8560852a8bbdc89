"""Credentials the API keeps: read from the database once, then reused until they grow
old, or until a revocation anywhere suspends their rate count in Redis."""

from __future__ import annotations

import httpx
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from empathy_web.api import admission
from empathy_web.api.admission import SERVER, Kept, limiter_id
from empathy_web.library.credentials import revoke
from empathy_web.library.models import AgentCredential
from memory.limits import suspend
from tests.web.api import agent

pytestmark = pytest.mark.django_db(transaction=True)


def credential_reads(queries: CaptureQueriesContext) -> int:
    return sum('FROM "library_agentcredential"' in q["sql"] for q in queries.captured_queries)


def test_a_credential_is_read_from_the_database_once_while_nothing_changes(memory):
    bot = agent("kept-bot")
    bot.get("/whoami")  # read and kept

    with CaptureQueriesContext(connection) as queries:
        answers = [bot.get("/whoami").status_code for _ in range(3)]

    assert answers == [200, 200, 200]
    assert credential_reads(queries) == 0


def test_a_revocation_is_seen_on_the_next_request(memory):
    bot = agent("revoked-bot")
    assert bot.get("/whoami").status_code == 200
    credential = AgentCredential.objects.get(agent_id="revoked-bot")

    revoke([credential])

    assert memory.client.exists(memory.keys.suspended(limiter_id(credential.pk)))
    answer = bot.get("/whoami")
    assert answer.status_code == 401 and "revoked" in answer.json()["message"]


def test_a_suspension_from_another_process_makes_this_one_read_again(memory):
    bot = agent("suspended-bot")
    bot.get("/whoami")
    # Revoked in the database by another process, which suspends the rate count.
    credentials = AgentCredential.objects.filter(agent_id="suspended-bot")
    credentials.update(revoked_at="2026-01-01T00:00Z")
    assert bot.get("/whoami").status_code == 200  # still kept: nothing said it changed

    suspend(memory, SERVER, limiter_id(credentials.get().pk), 60)

    assert bot.get("/whoami").status_code == 401


def test_kept_credentials_grow_old_and_the_least_recent_go_first(monkeypatch):
    kept = Kept(size=2, seconds=10)
    clock = [1000.0]
    monkeypatch.setattr(admission.time, "monotonic", lambda: clock[0])
    one, two, three = (AgentCredential(agent_id=f"a{n}") for n in range(3))
    kept.put("1", one)
    kept.put("2", two)
    assert kept.get("1") is one  # now the most recent
    kept.put("3", three)

    assert (kept.get("2"), kept.get("1"), kept.get("3")) == (None, one, three)
    clock[0] += 9.9
    assert kept.get("3") is three
    clock[0] += 0.1
    assert kept.get("3") is None


def test_a_revocation_from_the_shell_stops_a_live_server_at_once(live):
    secret = live.credential("shell-revoked", "contributor")
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    mcp_headers = {"Accept": "application/json, text/event-stream"}
    with httpx.Client(base_url=live.url, timeout=30,
                      headers={"Authorization": f"Bearer {secret}"}) as http:  # fmt: skip
        assert http.get("/api/v1/whoami").status_code == 200  # the server keeps it now
        assert http.post("/mcp", json=listing, headers=mcp_headers).status_code == 200

        live.manage("agent_credential", "revoke", "shell-revoked")

        answer = http.get("/api/v1/whoami")
        over_mcp = http.post("/mcp", json=listing, headers=mcp_headers)
    assert answer.status_code == 401 and answer.json()["code"] == "unauthenticated"
    assert over_mcp.status_code == 401
