"""The pattern library page: searching, paging and who promoted each pattern."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.http import HttpResponse

from empathy_web.library.models import PromotedPattern
from tests.web.pages import page_text

pytestmark = pytest.mark.django_db


@pytest.fixture
def library(make_user: Callable[..., User]) -> None:
    validator = make_user("validator", username="vera")
    for pattern_id, name, pattern_type, description, code in (
        (
            "sql-params",
            "Parameterised SQL",
            "security",
            "Bind values instead of formatting them in",
            "cursor.execute(sql, params)",
        ),
        (
            "n-plus-one",
            "Batch related rows",
            "performance",
            "Fetch the authors in one query",
            "Book.objects.select_related('author')",
        ),
        (
            "jitter",
            "Retry with jitter",
            "reliability",
            "Back off exponentially",
            "sleep(random.uniform(0, cap))",
        ),
    ):
        PromotedPattern.objects.create(
            pattern_id=pattern_id,
            name=name,
            pattern_type=pattern_type,
            description=description,
            code=code,
            confidence=0.875,
            agent_id=f"{pattern_type}-agent",
            promoted_by=validator,
        )


def library_names(response: HttpResponse) -> list[str]:
    names = re.findall(
        r'<article class="pattern">\s*<h2><a href="/library/[^"]+/">([^<]+?)</a> <small>',
        response.content.decode(),
    )
    return sorted(html.unescape(name) for name in names)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["Batch related rows", "Parameterised SQL", "Retry with jitter"]),
        ("q=parameterised", ["Parameterised SQL"]),  # name
        ("q=EXPONENTIALLY", ["Retry with jitter"]),  # description, any case
        ("q=select_related", ["Batch related rows"]),  # code
        ("type=performance", ["Batch related rows"]),
        ("q=rows&type=performance", ["Batch related rows"]),
        ("q=rows&type=security", []),
        ("q=%00", []),  # no stored text holds NUL (PostgreSQL refuses it in a query)
        ("type=a%00b", []),
    ],
)
def test_it_searches_the_pattern_library(library, observer, query, expected):
    response = observer.get(f"/library/?{query}")

    assert response.status_code == 200
    assert library_names(response) == expected
    if not expected:
        assert "No promoted pattern matches." in page_text(response)


def test_it_shows_who_found_and_promoted_a_library_pattern(library, observer):
    text = page_text(observer.get("/library/?q=jitter"))

    assert "Retry with jitter reliability · confidence 0.88" in text
    assert "sleep(random.uniform(0, cap))" in text
    assert "Found by reliability-agent · promoted by vera on" in text


def test_it_pages_through_the_library(observer):
    for n in range(30):
        PromotedPattern.objects.create(
            pattern_id=f"p-{n}", name=f"Pattern {n:02d}", pattern_type="style", confidence=0.5
        )

    first = observer.get("/library/")
    second = observer.get("/library/?q=&type=&page=2")

    assert "Page 1 of 2" in page_text(first)
    assert len(library_names(first)) == 25 and len(library_names(second)) == 5
    assert set(library_names(first)).isdisjoint(library_names(second))


def test_it_says_when_the_library_is_empty(observer):
    assert "No pattern has been promoted yet." in page_text(observer.get("/library/"))
