"""Signals belong to the team they were sent with (none: org-wide); the feed's listings
and the signal rate can be restricted to some teams: theirs plus the org-wide ones."""

from __future__ import annotations

from typing import Any

import pytest

from memory import AccessTier, InvalidValue, RedisShortTermMemory, TeamSession
from memory.formats import MINUTE_MS, SERIES_MINUTES, series_bucket, team_minute
from memory.metrics import signal_rate
from memory.signals import list_signals, newest_signals, send, signals_after
from memory.tiers import Caller

READER = Caller("reader", AccessTier.OBSERVER)
SENDER = Caller("sender", AccessTier.CONTRIBUTOR)


def sent(memory: RedisShortTermMemory, data: Any, team: str | None, target: str | None = None):
    return send(memory, SENDER, "t", data, target, team=team)


def every_page(memory: RedisShortTermMemory, limit: int, **options: Any) -> list[dict[str, Any]]:
    """Every page of ``list_signals``, checking that each is a full page but the last."""
    items, cursor = [], None
    while True:
        page = list_signals(memory, READER, limit, cursor, **options)
        items += page
        if page.next_cursor is None:
            return items
        assert len(page) == limit
        cursor = page.next_cursor


def test_a_restricted_feed_lists_its_teams_and_the_org_wide_signals(memory):
    sent(memory, "alpha", "alpha")
    sent(memory, "beta", "beta", target="bob")
    sent(memory, "org", None)
    sent(memory, "gamma", "gamma", target="carol")
    sent(memory, "org to bob", None, target="bob")

    def data(**options: Any) -> list[str]:
        return [s["data"] for s in list_signals(memory, READER, **options)]

    assert data() == ["org to bob", "gamma", "org", "beta", "alpha"]
    assert data(teams=["alpha", "gamma"]) == ["org to bob", "gamma", "org", "alpha"]
    assert data(teams=[]) == ["org to bob", "org"]
    assert data(teams={"beta"}, target="bob") == ["org to bob", "beta"]
    assert data(teams=["alpha"], team="beta") == []


def test_a_feed_of_rare_matches_pages_without_duplicates_or_gaps(memory):
    expected = []
    for i in range(900):
        team = "alpha" if i % 300 == 7 else "beta"
        org_wide = i % 300 == 150
        signal = sent(memory, i, None if org_wide else team, target=f"a{i % 3}" if i % 2 else None)
        if team == "alpha" or org_wide:
            expected.append(signal["id"])
    expected.reverse()  # newest first
    for limit in (1, 2, 5):
        ids = [s["id"] for s in every_page(memory, limit, teams=["alpha"])]
        assert ids == expected
    assert [s["id"] for s in every_page(memory, 2, teams=[])] == expected[::2]


def test_a_live_feed_of_some_teams_moves_on_past_other_teams_signals(memory):
    ids, wanted = [], []
    for i in range(650):
        team = "alpha" if i in (5, 400) else "beta"
        ids.append(sent(memory, i, team)["id"])
        if team == "alpha":
            wanted.append(ids[-1])
    newest = newest_signals(memory, READER, 100, teams=["alpha"])
    assert list(newest) == [] and newest.next_cursor == ids[-1]  # the newest read
    got, cursor = [], None
    while True:
        page = signals_after(memory, READER, cursor, 100, teams=["alpha"])
        got += [s["id"] for s in page]
        if page.next_cursor == cursor:
            break
        cursor = page.next_cursor
        assert cursor in ids  # the last id read, matching or not
    assert got == wanted
    assert cursor == ids[-1]


def test_newest_signals_of_some_teams(memory):
    for i, team in enumerate(["alpha", "beta", None, "alpha", "beta"]):
        sent(memory, i, team)
    newest = newest_signals(memory, READER, 4, teams=["alpha"])
    assert [s["data"] for s in newest] == [2, 3]
    assert newest.next_cursor == list_signals(memory, READER, 1)[0]["id"]
    assert [s["data"] for s in newest_signals(memory, READER, 10, teams=[])] == [2]


def test_a_team_sessions_signals_are_its_teams(memory):
    session = TeamSession(memory, "review", "p", team="alpha")
    session.add_agent("bob")
    assert session.signal("t", 1)["team"] == "alpha"
    TeamSession(memory, "chat", "p").signal("t", 2)
    assert [s["data"] for s in list_signals(memory, READER, teams=["beta"])] == [2]
    assert [s["data"] for s in list_signals(memory, READER, teams=["alpha"])] == [2, 1]


def test_the_signal_rate_of_some_teams(memory):
    for team, count in (("alpha", 3), ("beta", 2), (None, 1)):
        for i in range(count):
            sent(memory, i, team, target="bob" if i % 2 else None)
    TeamSession(memory, "review", "p", team="gamma").signal("t", 0)

    def recent(**options: Any) -> int:
        rate = signal_rate(memory, READER, **options)
        assert len(rate) == 60
        return sum(rate[-2:])

    assert recent() == 7
    assert recent(teams=["alpha"]) == 4
    assert recent(teams=["alpha", "beta", "gamma"]) == 7
    assert recent(teams=["gamma", "delta"]) == 2
    assert recent(teams=[]) == 1
    assert sum(signal_rate(memory, READER, 5, teams=["beta"])) == 3


def test_team_counts_older_than_the_retention_leave(memory):
    keys = memory.keys
    minute = memory.server_time_ms() // MINUTE_MS
    at = [minute - SERIES_MINUTES - 80, minute - SERIES_MINUTES - 1, minute - SERIES_MINUTES + 20]
    old = [team_minute("alpha", at[0]), team_minute(None, at[1])]
    kept = team_minute("beta", at[2])
    for field, when in zip([*old, kept], at, strict=True):
        memory.client.hset(keys.signals_team_rate, field, 5)
        memory.client.zadd(keys.signals_team_minutes, {field: when})
    sent(memory, 1, "alpha")
    counts = {f.decode() for f in memory.client.hkeys(keys.signals_team_rate)}
    minutes = {f for f in counts if not series_bucket(f)[0]}
    assert minutes == {kept, team_minute("alpha", minute)} or minutes == {
        kept,
        team_minute("alpha", minute + 1),  # the minute turned meanwhile
    }
    assert len(counts) == 3  # and this hour's
    assert memory.client.zcard(keys.signals_team_minutes) == 3


def test_teams_must_be_a_collection_of_team_ids(memory):
    with pytest.raises(InvalidValue):
        list_signals(memory, READER, teams="alpha")
    with pytest.raises(InvalidValue):
        signals_after(memory, READER, None, teams=["a{b}"])
    with pytest.raises(InvalidValue):
        signal_rate(memory, READER, teams=[""])
