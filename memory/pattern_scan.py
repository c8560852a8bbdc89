"""Reading staged patterns in any order, from any cursor on, a batch at a time, keeping
those a predicate accepts, up to a budget (``scan_staged``)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator

from .connection import RedisConnection
from .exceptions import InvalidValue
from .formats import parse_pattern_member
from .page import check_limit, offset_cursor
from .pattern_index import SORTED_ORDERS, bodies, check_cursor, expiry_members, sorted_members
from .pattern_teams import Teams, check_team_cursor, check_teams, team_page
from .staged_pattern import StagedPattern
from .tiers import READ, Caller


def with_bodies(
    memory: RedisConnection, members: list[str], now: int = 0
) -> list[tuple[StagedPattern, int]]:
    """The patterns behind index members, each with its expiry (ms); those gone, or
    expired by ``now``, are left out."""
    return [(pattern, expires) for pattern, expires, _ in _scanned(memory, members, members, now)]


SCAN_ORDERS = ("expiry", *SORTED_ORDERS)


Scanned = tuple[StagedPattern, int, str]


class StagedScan:
    """Staged patterns as ``scan_staged`` reads them. While and after it is iterated,
    ``read`` says how many patterns it has read (matching or not), ``cursor`` resumes
    right after the last of them, and ``out_of_budget`` says it stopped at its budget."""

    def __init__(
        self,
        rows: Iterator[Scanned],
        predicate: Callable[[StagedPattern], bool] | None,
        budget: int | None,
    ) -> None:
        self._rows, self._predicate, self._budget = rows, predicate, budget
        self.read = 0
        self.cursor: str | None = None
        self.out_of_budget = False
        self._walk = self._matches()

    def __iter__(self) -> StagedScan:
        return self

    def __next__(self) -> Scanned:
        return next(self._walk)

    def _matches(self) -> Iterator[Scanned]:
        for pattern, expires, after in self._rows:
            self.read += 1
            self.cursor = after
            if self._predicate is None or self._predicate(pattern):
                yield pattern, expires, after
            if self._budget is not None and self.read >= self._budget:
                self.out_of_budget = True
                return


def scan_staged(
    memory: RedisConnection,
    caller: Caller,
    order: str = "expiry",
    cursor: str | None = None,
    batch: int = 200,
    *,
    predicate: Callable[[StagedPattern], bool] | None = None,
    budget: int | None = None,
    teams: Collection[str] | None = None,
) -> StagedScan:
    """Staged patterns in ``order`` (``"expiry"`` or one of ``SORTED_ORDERS``) from
    ``cursor`` on, read ``batch`` at a time as the caller iterates, keeping those that
    ``predicate`` accepts and reading at most ``budget``. Each comes with its expiry
    (ms) and the cursor that resumes right after it (the kind ``list_by_expiry`` or
    ``list_sorted`` hands out, with the same ``teams``), so a filtered listing can stop
    anywhere. With ``teams``, only theirs and the org-wide ones.
    """
    caller.require(READ, "get_staged_patterns")
    if order not in SCAN_ORDERS:
        raise InvalidValue(f"order must be one of {', '.join(SCAN_ORDERS)}, not {order!r}")
    batch = check_limit(batch)
    if budget is not None and (
        isinstance(budget, bool) or not isinstance(budget, int) or budget < 1
    ):
        raise InvalidValue(f"budget must be a positive integer, got {budget!r}")
    if teams is not None:
        chosen = check_teams(teams)
        rows = _scan_teams(
            memory, order, chosen, cursor and check_team_cursor(order, cursor), batch
        )
    elif order == "expiry":
        if cursor is not None:
            check_cursor(cursor)
        rows = _scan_by_expiry(memory, cursor, batch)
    else:
        rows = _scan_sorted(memory, order, offset_cursor(cursor), batch)
    return StagedScan(rows, predicate, budget)


def _scan_by_expiry(memory: RedisConnection, cursor: str | None, batch: int) -> Iterator[Scanned]:
    now = memory.server_time_ms()  # one clock for the whole scan: one round trip less
    while True:  # a batch at a time; each index member is its own resume cursor
        members, cursor = expiry_members(memory, cursor, now, batch)
        yield from _scanned(memory, members, members, now)
        if cursor is None:
            return


def _scan_sorted(memory: RedisConnection, order: str, start: int, batch: int) -> Iterator[Scanned]:
    while True:
        now, total, members = sorted_members(memory, order, start, batch)
        after = [str(position) for position in range(start + 1, start + len(members) + 1)]
        yield from _scanned(memory, members, after, now)
        start += len(members)
        if len(members) < batch or start >= total:
            return


def _scan_teams(
    memory: RedisConnection, order: str, teams: Teams, cursor: str | None, batch: int
) -> Iterator[Scanned]:
    now = memory.server_time_ms()
    while True:  # a batch at a time; each sort part is its own resume cursor
        members, parts, more = team_page(memory, order, teams, cursor, batch, now)
        yield from _scanned(memory, members, parts, now)
        if more is None:
            return
        cursor = more


def _scanned(
    memory: RedisConnection, members: list[str], cursors: list[str], now: int
) -> Iterator[Scanned]:
    """The patterns behind ``members`` that still exist and expire after ``now``, each
    with its expiry and its entry of ``cursors``."""
    for member, body, after in zip(members, bodies(memory, members), cursors, strict=True):
        expires = parse_pattern_member(member)[0]
        if body is not None and expires > now:
            yield StagedPattern.from_json(body), expires, after
