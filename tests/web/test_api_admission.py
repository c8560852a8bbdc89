"""Credentials the API keeps: read from the database once, then reused until a
revocation anywhere renews the credentials stamp in Redis, or they grow old."""

from __future__ import annotations

import httpx
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from empathy_web.api import admission
from empathy_web.api.admission import Kept
from empathy_web.library.credentials import revoke
from empathy_web.library.models import AgentCredential
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
    stamp = memory.credentials_stamp()

    revoke(AgentCredential.objects.filter(agent_id="revoked-bot"))

    assert memory.credentials_stamp() != stamp
    answer = bot.get("/whoami")
    assert answer.status_code == 401 and "revoked" in answer.json()["message"]


def test_another_process_renewing_the_stamp_makes_this_one_read_again(memory):
    bot = agent("stamped-bot")
    bot.get("/whoami")
    # Revoked in the database by other means; another process renews the stamp.
    AgentCredential.objects.filter(agent_id="stamped-bot").update(revoked_at="2026-01-01T00:00Z")
    assert bot.get("/whoami").status_code == 200  # still kept: nothing said it changed

    memory.renew_credentials_stamp()

    assert bot.get("/whoami").status_code == 401


def test_kept_credentials_grow_old_and_the_least_recent_go_first(monkeypatch):
    kept = Kept(size=2, seconds=10)
    clock = [1000.0]
    monkeypatch.setattr(admission.time, "monotonic", lambda: clock[0])
    one, two, three = (AgentCredential(agent_id=f"a{n}") for n in range(3))
    kept.put("1", "s", one)
    kept.put("2", "s", two)
    assert kept.get("1", "s") is one  # now the most recent
    kept.put("3", "s", three)

    assert (kept.get("2", "s"), kept.get("1", "s"), kept.get("3", "s")) == (None, one, three)
    assert kept.get("1", "other stamp") is None and kept.get("3", "s") is three
    clock[0] += 10
    assert kept.get("3", "s") is None


def test_a_revocation_from_the_shell_stops_a_live_server_at_once(live):
    secret = live.credential("shell-revoked", "contributor")
    with httpx.Client(base_url=f"{live.url}/api/v1", timeout=30,
                      headers={"Authorization": f"Bearer {secret}"}) as http:  # fmt: skip
        assert http.get("/whoami").status_code == 200  # the server keeps it now

        live.manage("agent_credential", "revoke", "shell-revoked")

        answer = http.get("/whoami")
    assert answer.status_code == 401 and answer.json()["code"] == "unauthenticated"
