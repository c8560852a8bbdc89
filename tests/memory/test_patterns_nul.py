"""Staged text must fit the pattern library's database: PostgreSQL stores no NUL."""

from __future__ import annotations

import pytest

from memory import AccessTier, EmpathyOS, InvalidValue, StagedPattern


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "a\x00b"},
        {"description": "\x00"},
        {"code": "x = 1\x00"},
        {"context": {"file": "a\x00"}},
        {"context": {"k\x00": 1}},
        {"interests": ["ok", "n\x00"]},
    ],
)
def test_a_pattern_whose_text_holds_nul_is_refused_and_nothing_is_staged(memory, fields):
    agent = EmpathyOS("finder", memory, AccessTier.CONTRIBUTOR)
    pattern = StagedPattern(**{"pattern_id": "p1", "agent_id": "finder",
                               "pattern_type": "fix", "name": "n", "description": "d",
                               **fields})  # fmt: skip

    with pytest.raises(InvalidValue, match="NUL"):
        agent.stage_pattern(pattern)
    assert memory.client.keys("*patterns*") == []
