"""Undoing a decision, counting patterns that expired undecided, listing by expiry, and
where a pattern was found (team, session)."""

from __future__ import annotations

import time

import pytest

from memory import (
    AccessDenied,
    AccessTier,
    AlreadyDecided,
    EmpathyOS,
    InvalidValue,
    NotFound,
    StagedPattern,
    StateConflict,
    TTLStrategy,
)
from memory import patterns as staged
from memory.tiers import Caller

READER = Caller("reader", AccessTier.OBSERVER)  # the reads below read as an observer

VERA = Caller("vera", AccessTier.VALIDATOR)
BOB = Caller("bob", AccessTier.VALIDATOR)


def pattern(pattern_id: str, **fields) -> StagedPattern:
    defaults = {
        "agent_id": "finder",
        "pattern_type": "security",
        "name": "JWT Token Refresh",
        "description": "Refresh tokens 5 minutes before expiry",
    }
    return StagedPattern(pattern_id=pattern_id, **{**defaults, **fields})


@pytest.fixture
def finder(memory):
    return EmpathyOS("finder", short_term_memory=memory)


def is_staged(memory, pattern_id: str) -> bool:
    return staged.get_staged(memory, VERA, pattern_id) is not None


@pytest.mark.parametrize("decision", ["promoted", "rejected"])
def test_undo_restages_the_pattern_as_it_was_with_its_remaining_ttl(memory, finder, decision):
    original = finder.stage_pattern(pattern("p1", code="x = 1", team="red", session_id="s-1"))
    [ttl_before] = staged.staged_ttl_ms(memory, READER, ["p1"])
    staged.decide(memory, VERA, "p1", decision, "because")
    assert not is_staged(memory, "p1")

    back, ttl = staged.restore(memory, VERA, "p1")

    assert back == original
    assert staged.get_staged(memory, VERA, "p1") == original
    assert 0 < ttl <= ttl_before
    assert 0 < staged.staged_ttl_ms(memory, READER, ["p1"])[0] <= ttl_before
    assert staged.decision(memory, READER, "p1") is None
    assert [p.pattern_id for p, _ in staged.list_by_expiry(memory, VERA)] == ["p1"]
    staged.decide(memory, BOB, "p1", "rejected", "second look")  # decidable again
    assert staged.decision(memory, READER, "p1")["by"] == "bob"


def test_only_the_validator_who_decided_can_undo(memory, finder):
    finder.stage_pattern(pattern("p1"))
    staged.decide(memory, VERA, "p1", "promoted")
    with pytest.raises(AlreadyDecided, match="only vera can undo"):
        staged.restore(memory, BOB, "p1")
    assert not is_staged(memory, "p1")


def test_undo_is_refused_after_the_window(memory, finder):
    finder.stage_pattern(pattern("p1"))
    staged.decide(memory, VERA, "p1", "promoted")
    time.sleep(0.08)
    with pytest.raises(StateConflict, match="too late"):
        staged.restore(memory, VERA, "p1", window_ms=50)
    assert not is_staged(memory, "p1")
    assert staged.UNDO_WINDOW_MS == 10_000


def test_a_pattern_that_would_have_expired_cannot_come_back(make_memory):
    memory = make_memory()  # its decision record outlives the pattern's TTL
    short = make_memory(ttls={TTLStrategy.STAGED_PATTERNS: 2})
    EmpathyOS("finder", short_term_memory=short).stage_pattern(pattern("p1"))
    staged.decide(memory, VERA, "p1", "rejected", "no")  # at once, on a busy machine too
    expires = staged.decision(memory, VERA, "p1")["expires"]
    deadline = time.monotonic() + 30
    while memory.server_time_ms() <= expires:  # until it would have expired
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with pytest.raises(StateConflict, match="would have expired"):
        staged.restore(memory, VERA, "p1", window_ms=60_000)


def test_nothing_to_undo(memory):
    with pytest.raises(NotFound):
        staged.restore(memory, VERA, "never")


@pytest.mark.parametrize("tier", [AccessTier.OBSERVER, AccessTier.CONTRIBUTOR])
def test_undo_needs_the_validator_tier(memory, finder, tier):
    finder.stage_pattern(pattern("p1"))
    staged.decide(memory, VERA, "p1", "promoted")
    with pytest.raises(AccessDenied):
        staged.restore(memory, Caller("vera", tier), "p1")
    assert staged.decision(memory, READER, "p1")["decision"] == "promoted"


def test_a_decision_remembers_when_the_pattern_would_expire_and_who_staged_it(memory, finder):
    finder.stage_pattern(pattern("p1"))
    [(_, expires)] = staged.list_by_expiry(memory, VERA)
    staged.decide(memory, VERA, "p1", "promoted", "fine")
    found = staged.decision(memory, READER, "p1")
    assert (found["expires"], found["agent"], found["by"], found["reason"]) == (
        expires,
        "finder",
        "vera",
        "fine",
    )


def test_patterns_that_expire_undecided_are_counted_and_noted(make_memory):
    short = make_memory(ttls={TTLStrategy.STAGED_PATTERNS: 0.2})
    memory = make_memory()
    finder = EmpathyOS("finder", short_term_memory=short)
    for pattern_id in ("gone-1", "gone-2"):
        finder.stage_pattern(pattern(pattern_id))
    EmpathyOS("finder", short_term_memory=memory).stage_pattern(pattern("kept"))
    staged.decide(memory, VERA, "gone-2", "rejected", "decided in time")
    time.sleep(0.3)

    assert staged.prune_expired(memory, VERA) == 1
    assert staged.prune_expired(memory, VERA) == 0  # counted once
    assert staged.expired_count(memory, READER) == 1
    assert [e["pattern_id"] for e in staged.recent_expired(memory, READER)] == ["gone-1"]
    assert staged.count_staged(memory, READER) == 1
    assert staged.expired_count(memory, READER, within_ms=0) <= 1


def test_staging_sweeps_and_counts_expired_patterns_too(make_memory):
    short = make_memory(ttls={TTLStrategy.STAGED_PATTERNS: 0.2})
    EmpathyOS("finder", short_term_memory=short).stage_pattern(pattern("gone"))
    time.sleep(0.3)
    memory = make_memory()
    EmpathyOS("finder", short_term_memory=memory).stage_pattern(pattern("new"))
    assert staged.expired_count(memory, READER) == 1
    assert staged.prune_expired(memory, VERA) == 0


def test_pruning_needs_read_access(memory):
    assert staged.prune_expired(memory, Caller("olga", AccessTier.OBSERVER)) == 0


def test_listing_by_expiry_pages_soonest_first(make_memory):
    for i, ttl in enumerate([300, 100, 200, 400, 50]):
        mem = make_memory(ttls={TTLStrategy.STAGED_PATTERNS: ttl})
        EmpathyOS("finder", short_term_memory=mem).stage_pattern(pattern(f"p{i}"))
    memory = make_memory()
    first = staged.list_by_expiry(memory, VERA, limit=2)
    second = staged.list_by_expiry(memory, VERA, limit=2, cursor=first.next_cursor)
    third = staged.list_by_expiry(memory, VERA, limit=2, cursor=second.next_cursor)
    listed = list(first) + list(second) + list(third)
    assert [p.pattern_id for p, _ in listed] == ["p4", "p1", "p2", "p0", "p3"]
    expiries = [expires for _, expires in listed]
    assert expiries == sorted(expiries)
    assert third.next_cursor is None
    with pytest.raises(InvalidValue):
        staged.list_by_expiry(memory, VERA, cursor="not-a-cursor")


def test_team_and_session_round_trip_and_are_checked(memory, finder):
    finder.stage_pattern(pattern("p1", team="red", session_id="s-9"))
    got = staged.get_staged(memory, VERA, "p1")
    assert (got.team, got.session_id) == ("red", "s-9")
    finder.stage_pattern(pattern("p2"))
    assert staged.get_staged(memory, VERA, "p2").team is None
    with pytest.raises(InvalidValue):
        finder.stage_pattern(pattern("p3", team=""))


def sorted_ids(memory, order: str, limit: int = 50, cursor: str | None = None) -> list[str]:
    return [p.pattern_id for p, _ in staged.list_sorted(memory, VERA, order, limit, cursor)]


def index_sizes(memory) -> tuple[int, int, int]:
    """The sizes of the three indexes, over every pattern shard."""
    return tuple(
        sum(memory.client.zcard(getattr(shard, index)) for shard in memory.keys.pattern_shards)
        for index in ("patterns_staged", "patterns_by_confidence", "patterns_by_staged_at")
    )


def test_listing_by_confidence_and_by_age_pages_through_every_pattern(memory, finder):
    for i, confidence in enumerate((0.3, 0.9, 0.6, 0.1, 0.75)):
        finder.stage_pattern(pattern(f"p{i}", confidence=confidence))
        time.sleep(0.002)  # staging time is kept in ms
    first = staged.list_sorted(memory, VERA, "confidence", limit=2)
    assert [p.pattern_id for p, _ in first] == ["p1", "p4"]
    assert first.total == 5
    assert sorted_ids(memory, "confidence", 5, first.next_cursor) == ["p2", "p0", "p3"]
    assert sorted_ids(memory, "staged_at") == ["p0", "p1", "p2", "p3", "p4"]
    (_, expires), *_ = first
    assert expires > memory.server_time_ms()
    with pytest.raises(InvalidValue):
        staged.list_sorted(memory, VERA, "name")


@pytest.mark.parametrize("order", ["expiry", "confidence", "staged_at"])
def test_a_scan_resumes_right_after_any_pattern_it_yielded(memory, finder, order):
    for i, confidence in enumerate((0.3, 0.9, 0.6, 0.1, 0.75, 0.5, 0.2)):
        finder.stage_pattern(pattern(f"p{i}", confidence=confidence))
        time.sleep(0.002)  # staging time is kept in ms
    whole = list(staged.scan_staged(memory, VERA, order, batch=3))  # batches of 3, 3, 1
    ids = [p.pattern_id for p, _, _ in whole]
    assert sorted(ids) == [f"p{i}" for i in range(7)]
    if order != "expiry":
        assert ids == sorted_ids(memory, "confidence" if order == "confidence" else "staged_at")
    for k, (_, _, after) in enumerate(whole):
        rest = [p.pattern_id for p, _, _ in staged.scan_staged(memory, VERA, order, after, 2)]
        assert rest == ids[k + 1 :]
    with pytest.raises(InvalidValue):
        next(staged.scan_staged(memory, VERA, "name"))


@pytest.mark.parametrize("order", ["expiry", "confidence"])
def test_a_scan_keeps_what_its_predicate_accepts_and_stops_at_its_budget(memory, finder, order):
    for i in range(7):
        finder.stage_pattern(pattern(f"p{i}", confidence=0.1 + i / 10))
    every = [p.pattern_id for p, _, _ in staged.scan_staged(memory, VERA, order)]
    even = {f"p{i}" for i in range(0, 7, 2)}

    scan = staged.scan_staged(
        memory, VERA, order, batch=2, predicate=lambda p: p.pattern_id in even, budget=5
    )
    found = [p.pattern_id for p, _, _ in scan]

    assert found == [i for i in every[:5] if i in even]
    assert (scan.read, scan.out_of_budget) == (5, True)
    rest = [p.pattern_id for p, _, _ in staged.scan_staged(memory, VERA, order, scan.cursor)]
    assert rest == every[5:]
    whole = staged.scan_staged(memory, VERA, order, predicate=lambda p: p.pattern_id in even)
    assert len(list(whole)) == 4
    assert (whole.read, whole.out_of_budget) == (7, False)
    with pytest.raises(InvalidValue):
        staged.scan_staged(memory, VERA, order, budget=0)


def test_the_sorted_listings_follow_every_change_to_the_index(make_memory):
    memory = make_memory()
    finder = EmpathyOS("finder", short_term_memory=memory)
    for i in range(3):
        finder.stage_pattern(pattern(f"p{i}", confidence=0.5 + i / 10))
        time.sleep(0.002)  # staging time is kept in ms
    finder.stage_pattern(pattern("p0", confidence=0.95))  # restaged: its new confidence
    assert sorted_ids(memory, "confidence") == ["p0", "p2", "p1"]
    assert index_sizes(memory) == (3, 3, 3)  # the restaged one replaced, not added
    staged.decide(memory, VERA, "p2", "promoted")
    assert sorted_ids(memory, "confidence") == ["p0", "p1"]
    assert index_sizes(memory) == (2, 2, 2)
    staged.restore(memory, VERA, "p2")  # undo: back in its place
    assert sorted_ids(memory, "confidence") == ["p0", "p2", "p1"]
    assert sorted_ids(memory, "staged_at") == ["p1", "p2", "p0"]
    short = make_memory(ttls={TTLStrategy.STAGED_PATTERNS: 0.2})
    EmpathyOS("finder", short_term_memory=short).stage_pattern(pattern("brief", confidence=1.0))
    assert sorted_ids(memory, "confidence")[0] == "brief"
    time.sleep(0.3)
    assert sorted_ids(memory, "confidence") == ["p0", "p2", "p1"]  # expired: left out
    finder.stage_pattern(pattern("p3", confidence=0.2))  # staging sweeps the expired one
    assert index_sizes(memory) == (4, 4, 4)
