"""The working memory page: each agent's entries, and a steward clearing them."""

from __future__ import annotations

import re

import pytest

from empathy_web.library.models import AuditEntry
from memory import EmpathyOS
from memory.tiers import AccessTier, Caller
from memory.working import list_entries
from tests.web.pages import page_text, words

READER = Caller("reader", AccessTier.OBSERVER)  # the reads below read as an observer

pytestmark = pytest.mark.django_db


def test_it_shows_an_agent_s_working_memory(memory, observer):
    security = EmpathyOS("security-agent", memory)
    security.stash("findings", {"sql_injection": 2, "files": ["auth.py"]}, ttl=600)
    security.stash("scratch", [1, 2, 3], ttl=120)
    security.stash("lock", "held", ttl=30)
    EmpathyOS("perf-agent", memory).stash("profile", {"p95_ms": 180})

    first = observer.get("/memory/")
    response = observer.get("/memory/?agent=security-agent")

    assert "perf-agent (1 keys)" in page_text(first)  # the first agent, by id
    assert response.status_code == 200
    text = page_text(response)
    assert "perf-agent security-agent" in text
    assert "security-agent (3 keys)" in text
    # Soonest to expire first.
    assert re.search(r'lock (29|30)s "held" scratch (1m 59s|2m 00s) \[ 1, 2, 3 \] findings', text)
    assert re.search(
        r'findings (9m \d\ds|10m 00s) \{ "files": \[ "auth.py" \], "sql_injection": 2 \}', text
    )


def test_it_says_when_no_agent_has_working_memory(memory, observer):
    assert "No agent has working memory." in page_text(observer.get("/memory/"))


def test_a_steward_clears_an_agent_s_memory(memory, steward):
    security = EmpathyOS("security-agent", memory)
    security.stash("findings", {"sql_injection": 2})
    security.stash("scratch", [1])
    EmpathyOS("perf-agent", memory).stash("profile", {"p95_ms": 180})

    response = steward.post("/memory/security-agent/clear/", follow=True)

    assert response.redirect_chain == [("/memory/", 302)]
    assert "Cleared 2 keys of security-agent's working memory." in page_text(response)
    assert "security-agent" not in words(response.content.decode().split('class="agents"')[1])
    assert list_entries(memory, READER, "security-agent") == []
    assert [e.key for e in list_entries(memory, READER, "perf-agent")] == ["profile"]
    entry = AuditEntry.objects.get()
    assert (entry.actor_name, entry.tier, entry.action, entry.target, entry.details) == (
        "steward-person",
        "STEWARD",
        "memory.clear",
        "security-agent",
        {"keys": 2},
    )


@pytest.mark.parametrize(
    ("viewer", "tier", "sees"),
    [("alice", "contributor", True), ("bob", "observer", False), ("stella", "steward", True)],
)
def test_a_wizard_runs_input_is_seen_by_its_author_and_stewards_only(
    memory, client_for, viewer, tier, sees
):
    author = client_for("contributor", username="alice")
    code = "password = 'hunter2'  # a secret pasted into the wizard"
    author.post("/wizards/security/", {"code": code, "language": "python"})
    reader = author if viewer == "alice" else client_for(tier, username=viewer)
    page = reader.get("/memory/", {"agent": "security_analysis_wizard:alice"})
    assert page.status_code == 200
    assert ("hunter2" in page.content.decode()) is sees
