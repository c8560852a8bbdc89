from __future__ import annotations

import threading
import time

import pytest

from memory import AccessDenied, AccessTier, EmpathyOS, NotFound, TeamSession, TTLStrategy
from memory.sessions import get_session, list_sessions
from memory.tiers import Caller

READER = Caller("reader", AccessTier.OBSERVER)  # the reads below read as an observer


def test_session_lifecycle(memory):
    session = TeamSession(memory, session_id="pr_review_42", purpose="Review PR #42")
    for name in ("security_agent", "performance_agent", "style_agent"):
        session.add_agent(name)
    session.share("scope", {"files_changed": 15, "lines_changed": 500})
    assert session.get("scope") == {"files_changed": 15, "lines_changed": 500}
    assert session.get("missing") is None
    assert session.participants == ["performance_agent", "security_agent", "style_agent"]
    session.remove_agent("style_agent")
    info = session.info()
    assert info.purpose == "Review PR #42"
    assert info.participants == ["performance_agent", "security_agent"]
    assert 0 < info.ttl_ms <= 30 * 60 * 1000
    assert [s.session_id for s in list_sessions(memory, READER)] == ["pr_review_42"]


def test_reopening_keeps_the_purpose_and_context(memory):
    TeamSession(memory, "s1", "first purpose").share("k", 1)
    again = TeamSession(memory, "s1", "other purpose")
    assert again.info().purpose == "first purpose"
    assert again.get("k") == 1


def test_session_signal_reaches_participants(memory):
    session = TeamSession(memory, "s1", "p")
    session.add_agent("security_agent")
    session.add_agent("lead")
    session.signal("review_complete", {"agent": "security_agent", "passed": True})
    lead = EmpathyOS("lead", short_term_memory=memory)
    [signal] = lead.receive_signals("review_complete")
    assert signal["data"] == {"agent": "security_agent", "passed": True}
    assert signal["session_id"] == "s1"
    assert EmpathyOS("outsider", short_term_memory=memory).receive_signals() == []
    assert [s["signal_type"] for s in session.signals()] == ["review_complete"]


def test_concurrent_joins_lose_nobody(memory):
    TeamSession(memory, "crowd", "many agents")
    names = [f"agent{i}" for i in range(40)]

    def join(batch: list[str]) -> None:
        session = TeamSession(memory, "crowd")
        for name in batch:
            session.add_agent(name)

    threads = [threading.Thread(target=join, args=(names[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert TeamSession(memory, "crowd").participants == sorted(names)


def test_activity_refreshes_the_ttl_and_silence_ends_it(make_memory):
    memory = make_memory(ttls={TTLStrategy.SESSION: 0.4})
    session = TeamSession(memory, "s1", "p")
    for _ in range(3):
        time.sleep(0.2)
        session.share("tick", time.time())
    assert session.info() is not None
    time.sleep(0.5)
    assert session.info() is None
    assert list(list_sessions(memory, READER)) == []
    with pytest.raises(NotFound):
        session.add_agent("late")


def test_only_stewards_delete_sessions(memory):
    TeamSession(memory, "s1", "p").add_agent("a")
    with pytest.raises(AccessDenied, match="STEWARD"):
        TeamSession(memory, "s1", access_tier=AccessTier.VALIDATOR).delete()
    assert TeamSession(memory, "s1", access_tier=AccessTier.STEWARD).delete() is True
    assert get_session(memory, READER, "s1") is None


def test_observers_attach_without_writing(memory):
    observer = TeamSession(memory, "never_created", access_tier=AccessTier.OBSERVER)
    assert observer.info() is None
    assert memory.client.dbsize() == 0
    with pytest.raises(AccessDenied):
        observer.share("k", 1)
