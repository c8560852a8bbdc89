"""The staged patterns page: what awaits validation, with its TTL."""

from __future__ import annotations

import re

import pytest

from memory import EmpathyOS
from tests.web.pages import element, next_page, page_text, pattern

pytestmark = pytest.mark.django_db


def test_it_lists_staged_patterns_with_their_ttl(memory, short_patterns, observer):
    EmpathyOS("security-agent", memory).stage_pattern(
        pattern(
            "sql-raw",
            "security-agent",
            name="SQL built by string formatting",
            description="Queries assembled with f-strings",
            code='cursor.execute(f"SELECT {col}")',
            confidence=0.92,
        )
    )
    EmpathyOS("perf-agent", short_patterns).stage_pattern(
        pattern("n-plus-one", "perf-agent", pattern_type="performance", confidence=0.4)
    )

    response = observer.get("/patterns/")

    assert response.status_code == 200
    sql = element(response, "pattern-sql-raw")
    assert "SQL built by string formatting sql-raw security security-agent 0.92" in sql
    assert re.search(r"0\.92 (23h 59m|24h 00m) Queries assembled with f-strings", sql)
    assert 'cursor.execute(f"SELECT {col}")' in sql
    n_plus_one = element(response, "pattern-n-plus-one")
    assert "performance perf-agent 0.40" in n_plus_one
    assert re.search(r"0\.40 (29m \d\ds|30m 00s)", n_plus_one)


def test_it_pages_through_staged_patterns(memory, observer):
    agent = EmpathyOS("miner", memory)
    for n in range(27):
        agent.stage_pattern(pattern(f"p-{n:02d}", "miner"))

    first = observer.get("/patterns/")
    query = next_page(first)
    assert query is not None
    second = observer.get(f"/patterns/{query}")

    first_ids = re.findall(r'<tr id="pattern-([^"]+)"', first.content.decode())
    second_ids = re.findall(r'<tr id="pattern-([^"]+)"', second.content.decode())
    assert len(first_ids) == 25 and len(second_ids) == 2
    assert sorted(first_ids + second_ids) == [f"p-{n:02d}" for n in range(27)]
    assert next_page(second) is None


def test_it_says_when_no_pattern_awaits_validation(memory, observer):
    assert "No patterns are awaiting validation." in page_text(observer.get("/patterns/"))
