"""The signals page: the feed with its filters and pages, and sending a signal."""

from __future__ import annotations

from typing import Any

import pytest

from memory import AccessTier, Caller, EmpathyOS, RedisShortTermMemory
from memory.signals import list_signals
from memory.signals import send as send_signal
from tests.web.pages import audit_actions, element, next_page, page_text, signal_ids

READER = Caller("reader", AccessTier.OBSERVER)  # the reads below read as an observer

pytestmark = pytest.mark.django_db


@pytest.fixture
def team_signals(memory: RedisShortTermMemory) -> dict[str, str]:
    """Four signals, oldest first, named by what is special about each."""

    def sent(sender: str, *args: Any, **kwargs: Any) -> str:
        caller = Caller(sender, AccessTier.CONTRIBUTOR)
        return send_signal(memory, caller, *args, **kwargs)["id"]

    return {
        "team-broadcast": sent("lead", "review.start", {"pr": 7}, None, team="reviewers"),
        "lead-to-security": sent("lead", "review.assign", {"file": "auth.py"}, "security"),
        "security-broadcast": sent("security", "finding", {"severity": "high"}, None),
        "team-perf-to-lead": sent("perf", "finding", {"p95_ms": 900}, "lead", team="reviewers"),
    }


def test_it_lists_signals_newest_first_with_their_data(team_signals, observer):
    response = observer.get("/signals/")

    assert response.status_code == 200
    assert signal_ids(response) == list(reversed(team_signals.values()))
    broadcast = element(response, f"signal-{team_signals['team-broadcast']}")
    assert "review.start from lead to everyone · team reviewers" in broadcast
    assert '{ "pr": 7 }' in broadcast
    targeted = element(response, f"signal-{team_signals['lead-to-security']}")
    assert "review.assign from lead to security" in targeted
    assert '{ "file": "auth.py" }' in targeted


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("signal_type=finding", ["team-perf-to-lead", "security-broadcast"]),
        ("sender=lead", ["lead-to-security", "team-broadcast"]),
        ("target=lead", ["team-perf-to-lead"]),
        ("target=*", ["security-broadcast", "team-broadcast"]),
        ("team=reviewers", ["team-perf-to-lead", "team-broadcast"]),
        ("signal_type=finding&team=reviewers", ["team-perf-to-lead"]),
        ("sender=nobody", []),
    ],
)
def test_it_filters_signals(team_signals, observer, query, expected):
    response = observer.get(f"/signals/?{query}")

    assert response.status_code == 200
    assert signal_ids(response) == [team_signals[name] for name in expected]
    if not expected:
        assert "No signals in the last 5 minutes match these filters." in page_text(response)


def test_it_pages_back_through_older_signals(memory, observer):
    agent = EmpathyOS("chatty", memory)
    sent = [agent.send_signal("tick" if n % 2 else "tock", {"n": n})["id"] for n in range(60)]

    seen: list[str] = []
    query: str | None = "?"
    while query is not None:
        response = observer.get(f"/signals/{query}")
        assert response.status_code == 200
        seen.extend(signal_ids(response))
        query = next_page(response)

    assert seen == list(reversed(sent))  # 25 + 25 + 10, newest first, none twice


def test_it_keeps_the_filter_on_the_next_page(memory, observer):
    agent = EmpathyOS("chatty", memory)
    sent = [agent.send_signal("tick" if n % 2 else "tock", {"n": n})["id"] for n in range(60)]
    ticks = list(reversed(sent[1::2]))

    first = observer.get("/signals/?signal_type=tick")
    query = next_page(first)
    assert query is not None and "signal_type=tick" in query
    second = observer.get(f"/signals/{query}")

    assert signal_ids(first) == ticks[:25]
    assert signal_ids(second) == ticks[25:]
    assert next_page(second) is None


# sending -------------------------------------------------------------------------------


def test_a_contributor_sends_a_signal(memory, contributor):
    response = contributor.post(
        "/signals/send/",
        {"signal_type": "review.request", "target_agent": "security", "data": '{"pr": 42}'},
        follow=True,
    )

    assert response.redirect_chain == [("/signals/", 302)]
    assert "Signal review.request sent." in page_text(response)
    (signal,) = list_signals(memory, READER)
    assert (signal["sender"], signal["target"], signal["data"]) == (
        "contributor-person",
        "security",
        {"pr": 42},
    )
    feed = element(response, f"signal-{signal['id']}")
    assert "review.request from contributor-person to security" in feed
    assert '{ "pr": 42 }' in feed
    assert audit_actions() == [("contributor-person", "CONTRIBUTOR", "signal.send", "security")]


def test_a_contributor_broadcasts_a_signal(memory, contributor):
    response = contributor.post("/signals/send/", {"signal_type": "standup"}, follow=True)

    (signal,) = list_signals(memory, READER, target="*")
    assert "standup from contributor-person to everyone" in element(
        response, f"signal-{signal['id']}"
    )
    assert audit_actions() == [("contributor-person", "CONTRIBUTOR", "signal.send", "*")]
