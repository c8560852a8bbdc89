"""A team session belongs to the team it was created with (none: org-wide), for good;
the listing of sessions can be restricted to some teams: theirs plus the org-wide ones."""

from __future__ import annotations

from typing import Any

import pytest

from memory import AccessTier, InvalidValue, RedisShortTermMemory, TeamSession
from memory.sessions import SessionInfo, get_session, list_sessions
from memory.tiers import Caller

READER = Caller("reader", AccessTier.OBSERVER)


def every_page(memory: RedisShortTermMemory, limit: int, **options: Any) -> list[SessionInfo]:
    """Every page of ``list_sessions``, checking that each is a full page but the last."""
    items, cursor = [], None
    while True:
        page = list_sessions(memory, READER, limit, cursor, **options)
        items += page
        if page.next_cursor is None:
            return items
        assert len(page) == limit
        cursor = page.next_cursor


def test_a_session_keeps_the_team_it_was_created_with(memory):
    session = TeamSession(memory, "review", "Review PR #42", team="alpha")
    session.add_agent("bob")
    assert session.info().team == "alpha"
    again = TeamSession(memory, "review", "other purpose", team="beta")
    assert again.info().team == "alpha"
    assert again.info().purpose == "Review PR #42"
    TeamSession(memory, "review", "third")  # no team given: it keeps its own
    assert get_session(memory, READER, "review").team == "alpha"
    assert TeamSession(memory, "chat", "p").info().team is None


def test_a_sessions_team_is_a_team_id(memory):
    for bad in ("", "a{b}", "a/b", 7):
        with pytest.raises(InvalidValue):
            TeamSession(memory, "s", "p", team=bad)
    assert get_session(memory, READER, "s") is None


def test_session_info_without_a_team_is_org_wide():
    info = SessionInfo("s", "p", "me", 0, [], 1000)
    assert info.team is None


def test_a_restricted_listing_shows_its_teams_and_the_org_wide_sessions(memory):
    for session_id, team in (("a1", "alpha"), ("b1", "beta"), ("o1", None), ("g1", "gamma")):
        TeamSession(memory, session_id, "p", team=team).add_agent("bob")

    def listed(**options: Any) -> list[tuple[str, str | None]]:
        page = list_sessions(memory, READER, **options)
        return sorted((s.session_id, s.team) for s in page)

    assert listed(teams=["alpha", "gamma"]) == [("a1", "alpha"), ("g1", "gamma"), ("o1", None)]
    assert listed(teams=[]) == [("o1", None)]
    assert len(listed()) == 4
    page = list_sessions(memory, READER, teams=["beta"])
    assert page.total is None
    assert all(s.participants == ["bob"] and s.ttl_ms > 0 for s in page)
    assert list_sessions(memory, READER).total == 4


def test_rare_matches_page_without_duplicates_or_gaps(memory):
    for i in range(620):
        team = "alpha" if i % 300 == 11 else ("beta" if i % 300 != 150 else None)
        TeamSession(memory, f"s{i:03d}", "p", team=team)
    everything = every_page(memory, 500)
    assert len(everything) == 620
    expected = [s.session_id for s in everything if s.team in ("alpha", None)]
    assert len(expected) == 5
    for limit in (1, 2, 5):
        got = [s.session_id for s in every_page(memory, limit, teams=["alpha"])]
        assert got == expected
    org_wide = [s.session_id for s in every_page(memory, 1, teams=[])]
    assert org_wide == [s.session_id for s in everything if s.team is None]


def test_the_cursor_resumes_right_after_the_last_session_examined(memory):
    for i in range(10):
        TeamSession(memory, f"s{i}", "p", team="alpha" if i in (2, 6) else "beta")
    order = [s.session_id for s in list_sessions(memory, READER, 10)]
    first = list_sessions(memory, READER, 1, teams=["alpha"])
    assert int(first.next_cursor) == order.index(first[0].session_id) + 1
    second = list_sessions(memory, READER, 1, first.next_cursor, teams=["alpha"])
    assert int(second.next_cursor) == order.index(second[0].session_id) + 1
    last = list_sessions(memory, READER, 1, second.next_cursor, teams=["alpha"])
    assert list(last) == [] and last.next_cursor is None
