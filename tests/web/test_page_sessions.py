"""The sessions pages: the list, a session in detail, sharing into it and deleting
it."""

from __future__ import annotations

import re

import pytest

from empathy_web.library.models import AuditEntry
from memory.sessions import get_session
from memory.tiers import AccessTier, Caller
from tests.web.pages import audit_actions, element, page_text

READER = Caller("reader", AccessTier.OBSERVER)  # the reads below read as an observer

pytestmark = pytest.mark.django_db


def test_it_lists_active_sessions(incident, observer):
    response = observer.get("/sessions/")

    assert response.status_code == 200
    row = element(response, "session-incident-42")
    assert re.fullmatch(
        r"incident-42 Find why checkout is slow lead, perf - (29m \d\ds|30m 00s)", row
    )
    assert "Write the retrospective" in element(response, "session-retro")


def test_it_shows_a_session_in_detail(incident, observer):
    response = observer.get("/sessions/incident-42/")

    assert response.status_code == 200
    text = element(response, "session-detail")
    assert "Find why checkout is slow" in text
    assert re.search(r"Created by lead · expires in (29m \d\ds|30m 00s)", text)
    assert "Participants lead perf" in text
    assert 'hypothesis { "cause": "cache stampede", "confidence": 0.6 }' in text
    assert re.search(r'status from lead \d\d:\d\d:\d\d \{ "phase": "mitigating" \}', text)


def test_it_answers_404_for_a_session_that_is_gone(memory, observer):
    response = observer.get("/sessions/never-was/")

    assert response.status_code == 404


# sharing and deleting ------------------------------------------------------------------


def test_a_contributor_shares_into_a_session(incident, memory, contributor):
    response = contributor.post(
        "/sessions/incident-42/share/",
        {"key": "decision", "value": '{"rollback": true}'},
        follow=True,
    )

    assert response.redirect_chain == [("/sessions/incident-42/", 302)]
    assert "Shared decision with the session." in page_text(response)
    assert 'decision { "rollback": true }' in element(response, "session-detail")
    assert incident.get("decision") == {"rollback": True}
    assert audit_actions() == [
        ("contributor-person", "CONTRIBUTOR", "session.share", "incident-42")
    ]


def test_sharing_into_a_session_that_is_gone_creates_nothing(memory, contributor):
    response = contributor.post("/sessions/gone/share/", {"key": "k", "value": "1"}, follow=True)

    assert response.redirect_chain == [("/sessions/", 302)]
    assert "no session gone" in page_text(response)
    assert get_session(memory, READER, "gone") is None
    assert not AuditEntry.objects.exists()


def test_a_steward_deletes_a_session(incident, memory, steward):
    response = steward.post("/sessions/incident-42/delete/", follow=True)

    assert response.redirect_chain == [("/sessions/", 302)]
    assert "Session incident-42 deleted." in page_text(response)
    assert 'id="session-incident-42"' not in response.content.decode()
    assert get_session(memory, READER, "incident-42") is None
    assert audit_actions() == [("steward-person", "STEWARD", "session.delete", "incident-42")]

    again = steward.post("/sessions/incident-42/delete/", follow=True)

    assert "Session incident-42 was already gone." in page_text(again)
    assert AuditEntry.objects.count() == 1
