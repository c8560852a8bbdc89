from __future__ import annotations

import time

import pytest

from memory import (
    AccessDenied,
    AccessTier,
    AlreadyDecided,
    EmpathyOS,
    IdTaken,
    InvalidValue,
    NotFound,
    StagedPattern,
    TTLStrategy,
)
from memory.patterns import decision
from memory.tiers import Caller

READER = Caller("reader", AccessTier.OBSERVER)  # the reads below read as an observer


def pattern(pattern_id: str, agent_id: str = "finder", **fields) -> StagedPattern:
    defaults = {
        "pattern_type": "security",
        "name": "JWT Token Refresh",
        "description": "Refresh tokens 5 minutes before expiry",
        "confidence": 0.85,
    }
    return StagedPattern(pattern_id=pattern_id, agent_id=agent_id, **{**defaults, **fields})


@pytest.fixture
def finder(memory):
    return EmpathyOS("finder", short_term_memory=memory)


@pytest.fixture
def validator(memory):
    return EmpathyOS("senior", short_term_memory=memory, access_tier=AccessTier.VALIDATOR)


def test_staging_records_staged_at_and_lists_it(finder):
    staged = finder.stage_pattern(pattern("pat_1", code="# code"))
    assert staged.staged_at is not None
    [listed] = finder.get_staged_patterns()
    assert listed == staged
    assert listed.code == "# code"


def test_staged_patterns_are_listed_newest_first_in_pages(finder):
    for i in range(7):
        finder.stage_pattern(pattern(f"p{i}"))
        time.sleep(0.002)
    first = finder.get_staged_patterns(limit=3)
    second = finder.get_staged_patterns(limit=3, cursor=first.next_cursor)
    third = finder.get_staged_patterns(limit=3, cursor=second.next_cursor)
    ids = [p.pattern_id for p in first + second + third]
    assert ids == [f"p{i}" for i in reversed(range(7))]
    assert third.next_cursor is None


def test_an_id_staged_by_another_agent_is_refused(memory, finder):
    finder.stage_pattern(pattern("pat_1", description="original"))
    rival = EmpathyOS("rival", short_term_memory=memory)
    with pytest.raises(IdTaken, match="finder"):
        rival.stage_pattern(pattern("pat_1", agent_id="rival", description="overwrite"))
    [kept] = finder.get_staged_patterns()
    assert kept.description == "original"


def test_restaging_your_own_pattern_replaces_it(finder):
    finder.stage_pattern(pattern("pat_1", confidence=0.5))
    finder.stage_pattern(pattern("pat_1", confidence=0.9))
    [only] = finder.get_staged_patterns()
    assert only.confidence == 0.9


def test_promote_removes_from_staging_and_records_decision(memory, finder, validator):
    finder.stage_pattern(pattern("pat_1"))
    promoted = validator.promote_pattern("pat_1")
    assert promoted.pattern_id == "pat_1"
    assert list(finder.get_staged_patterns()) == []
    record = decision(memory, READER, "pat_1")
    assert record["decision"] == "promoted"
    assert record["by"] == "senior"


def test_reject_needs_a_reason(memory, finder, validator):
    finder.stage_pattern(pattern("pat_1"))
    with pytest.raises(ValueError, match="reason"):
        validator.reject_pattern("pat_1", "  ")
    validator.reject_pattern("pat_1", "duplicates pat_0")
    assert decision(memory, READER, "pat_1")["reason"] == "duplicates pat_0"


def test_second_decision_gets_a_clear_error(finder, validator):
    finder.stage_pattern(pattern("pat_1"))
    validator.reject_pattern("pat_1", "too vague")
    with pytest.raises(AlreadyDecided, match="rejected by senior"):
        validator.promote_pattern("pat_1")


def test_deciding_unknown_pattern(validator):
    with pytest.raises(NotFound):
        validator.promote_pattern("never_staged")


def test_a_decided_id_cannot_be_restaged(finder, validator):
    finder.stage_pattern(pattern("pat_1"))
    validator.promote_pattern("pat_1")
    with pytest.raises(AlreadyDecided):
        finder.stage_pattern(pattern("pat_1"))


def test_contributors_cannot_decide(finder):
    finder.stage_pattern(pattern("pat_1"))
    with pytest.raises(AccessDenied, match="VALIDATOR"):
        finder.promote_pattern("pat_1")
    with pytest.raises(AccessDenied, match="VALIDATOR"):
        finder.reject_pattern("pat_1", "no")
    assert len(finder.get_staged_patterns()) == 1


def test_staged_patterns_expire(make_memory):
    memory = make_memory(ttls={TTLStrategy.STAGED_PATTERNS: 0.3})
    finder = EmpathyOS("finder", short_term_memory=memory)
    finder.stage_pattern(pattern("pat_1"))
    assert len(finder.get_staged_patterns()) == 1
    time.sleep(0.45)
    assert list(finder.get_staged_patterns()) == []
    validator = EmpathyOS("v", short_term_memory=memory, access_tier=AccessTier.VALIDATOR)
    with pytest.raises(NotFound):
        validator.promote_pattern("pat_1")


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"pattern_id": ""}, InvalidValue),
        ({"name": ""}, InvalidValue),
        ({"confidence": 1.5}, InvalidValue),
        ({"confidence": float("nan")}, InvalidValue),
        ({"context": {"x": float("nan")}}, TypeError),
        ({"context": {"x": object()}}, TypeError),
    ],
)
def test_bad_patterns_write_nothing(memory, finder, fields, error):
    values = {"pattern_id": "pat_1", **fields}
    with pytest.raises(error):
        finder.stage_pattern(pattern(values.pop("pattern_id"), **values))
    assert memory.client.dbsize() == 0
