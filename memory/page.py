"""Pages of listings: a list with the cursor of the next page."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, TypeVar

from .exceptions import InvalidValue

T = TypeVar("T")

MAX_PAGE = 500
# A listing that filters what it reads (by team, by a signal's fields) reads this many
# records at a time, or a page when that is more, until its page is full.
FILTER_BATCH = 200
# Offsets past this are no listing's: Redis refuses indexes beyond 64 bits.
MAX_OFFSET = 10**12


class Page(list[T], Generic[T]):
    """One page of a listing. It is a plain list, plus ``next_cursor`` (``None`` on the
    last page) to pass back for the following page, and ``total`` where it is cheap."""

    def __init__(
        self, items: Iterable[T] = (), next_cursor: str | None = None, total: int | None = None
    ) -> None:
        super().__init__(items)
        self.next_cursor = next_cursor
        self.total = total


def check_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidValue(f"limit must be an integer from 1 to {MAX_PAGE}, got {limit!r}")
    return limit


def filter_batch(limit: int) -> int:
    """How many records a filtering listing with pages of ``limit`` reads at a time."""
    return max(limit, FILTER_BATCH)


def offset_cursor(cursor: str | None) -> int:
    """Cursors of offset-paged listings are decimal offsets (ASCII digits only: "²" is
    a digit to ``str.isdigit`` but not to ``int``)."""
    if cursor is None:
        return 0
    if not (
        isinstance(cursor, str)
        and cursor.isascii()
        and cursor.isdigit()
        and int(cursor) <= MAX_OFFSET
    ):
        raise InvalidValue(f"cursor {cursor[:40]!r} is not one this listing handed out")
    return int(cursor)
