from __future__ import annotations

import pytest

from memory import AccessDenied, AccessTier, AlreadyDecided, EmpathyOS, IdTaken, NotFound


def test_conflict_created_and_resolved_once(memory):
    lead = EmpathyOS("lead", short_term_memory=memory)
    lead.create_conflict(
        "c1", {"security": "block the PR", "performance": "ship it"}, topic="PR #42"
    )
    conflict = lead.get_conflict("c1")
    assert (conflict.status, conflict.topic, conflict.created_by) == ("open", "PR #42", "lead")
    assert memory.client.pttl(memory.keys.conflict("c1")) > 6 * 24 * 3600 * 1000
    with pytest.raises(AccessDenied, match="VALIDATOR"):
        lead.resolve_conflict("c1", "ship")
    judge = EmpathyOS("judge", short_term_memory=memory, access_tier=AccessTier.VALIDATOR)
    judge.resolve_conflict("c1", {"winner": "security"})
    resolved = judge.get_conflict("c1")
    assert (resolved.status, resolved.resolution, resolved.resolved_by) == (
        "resolved",
        {"winner": "security"},
        "judge",
    )
    with pytest.raises(AlreadyDecided, match="judge"):
        judge.resolve_conflict("c1", "again")
    with pytest.raises(IdTaken):
        lead.create_conflict("c1", {"a": 1, "b": 2})
    with pytest.raises(NotFound):
        judge.resolve_conflict("nope", "x")


def test_a_conflict_needs_two_positions(memory):
    with pytest.raises(ValueError):
        EmpathyOS("lead", short_term_memory=memory).create_conflict("c1", {"only": "me"})
    assert memory.client.dbsize() == 0
