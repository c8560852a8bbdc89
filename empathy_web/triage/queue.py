"""The staged-pattern queue: sorted, filtered, a page at a time, each row with its
remaining TTL; plus what expired before anyone decided.

Without a filter, the expiry, confidence and age orders page straight through the
library's indexes (``list_by_expiry`` with a keyset cursor, ``list_sorted`` by offset).
With a filter they walk the same index from the cursor (``scan_staged``) until a page
matches, reading at most ``SCAN_BUDGET`` patterns per request; a page that ran out of
budget says how far it searched and its "next" link searches on from there. So every
match is reachable, and a rare one costs more clicks, never a slow page. The order by
type has no index: it reads up to ``SCAN_LIMIT`` staged patterns by expiry, sorts them,
and says when that limit cut the reading short.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.utils.http import urlencode

from empathy_web.accounts.teams import Viewer
from memory import RedisShortTermMemory, StagedPattern
from memory import patterns as staged
from memory.page import Page, offset_cursor
from memory.patterns import MAX_REASON_LENGTH

PAGE = 25
SCAN_LIMIT = 1000
SCAN_BUDGET = 2000
URGENT_MS = 3_600_000
SORTS = {
    "ttl": "expiring soonest",
    "confidence": "confidence",
    "age": "waiting longest",
    "type": "type",
}
FILTERS = ("type", "agent", "team", "q")
# What the queue's URL may carry besides the cursor; decisions return to it.
PATTERN_QUERY = ("sort", *FILTERS)

Matcher = Callable[[StagedPattern], bool]


def matcher(filters: Mapping[str, str]) -> Matcher | None:
    """The queue's filters as one predicate, or None when none is set."""
    if not any(filters.values()):
        return None
    kind, agent, team, text = (filters[name] for name in FILTERS)
    text = text.casefold()

    def matches(pattern: StagedPattern) -> bool:
        if kind and pattern.pattern_type != kind:
            return False
        if agent and pattern.agent_id != agent:
            return False
        if team and pattern.team != team:
            return False
        haystack = (pattern.pattern_id, pattern.name, pattern.description, pattern.code or "")
        return not text or any(text in part.casefold() for part in haystack)

    return matches


@dataclass
class _Found:
    """One page of the queue, whichever way it was read."""

    patterns: list[tuple[StagedPattern, int]]
    next_cursor: str | None
    truncated: bool = False  # the order by type left staged patterns unread
    searched: int | None = None  # a filtered page stopped at its budget, after this many


def _filtered(
    memory: RedisShortTermMemory, viewer: Viewer, order: str, cursor: str | None, matches: Matcher
) -> _Found:
    """The next page of matches in ``order`` from ``cursor``."""
    search = staged.scan_staged(
        memory, viewer, order, cursor, predicate=matches, budget=SCAN_BUDGET, teams=viewer.teams
    )
    found: list[tuple[StagedPattern, int]] = []
    resume: str | None = None  # right after the last match on the page
    for pattern, expires, after in search:
        if len(found) == PAGE:
            return _Found(found, resume)  # a match for the next page exists
        found.append((pattern, expires))
        resume = after
    if search.out_of_budget and len(found) < PAGE:
        return _Found(found, search.cursor, searched=search.read)
    return _Found(found, resume if search.out_of_budget else None)


def _sorted(memory: RedisShortTermMemory, viewer: Viewer, order: str, cursor: str | None) -> _Found:
    page = staged.list_sorted(memory, viewer, order, PAGE, cursor, teams=viewer.teams)
    return _Found(list(page), page.next_cursor)


def _by_ttl(
    memory: RedisShortTermMemory, viewer: Viewer, cursor: str | None, matches: Matcher | None
) -> _Found:
    if matches is not None:
        return _filtered(memory, viewer, "expiry", cursor, matches)
    page = staged.list_by_expiry(memory, viewer, PAGE, cursor, teams=viewer.teams)
    return _Found(list(page), page.next_cursor)


def _by_confidence(
    memory: RedisShortTermMemory, viewer: Viewer, cursor: str | None, matches: Matcher | None
) -> _Found:
    if matches is not None:
        return _filtered(memory, viewer, "confidence", cursor, matches)
    return _sorted(memory, viewer, "confidence", cursor)


def _by_age(
    memory: RedisShortTermMemory, viewer: Viewer, cursor: str | None, matches: Matcher | None
) -> _Found:
    if matches is not None:
        return _filtered(memory, viewer, "staged_at", cursor, matches)
    return _sorted(memory, viewer, "staged_at", cursor)


def _by_type(
    memory: RedisShortTermMemory, viewer: Viewer, cursor: str | None, matches: Matcher | None
) -> _Found:
    """No index orders by type: sort what the first ``SCAN_LIMIT`` by expiry hold."""
    start = offset_cursor(cursor)
    search = staged.scan_staged(
        memory, viewer, "expiry", batch=500, predicate=matches, budget=SCAN_LIMIT,
        teams=viewer.teams,
    )  # fmt: skip
    matching = [(pattern, expires) for pattern, expires, _ in search]
    matching.sort(key=lambda item: item[0].pattern_type)  # stable: by expiry within
    truncated = search.out_of_budget and _any_after(memory, viewer, search.cursor)
    more = start + PAGE < len(matching)
    return _Found(matching[start : start + PAGE], str(start + PAGE) if more else None, truncated)


def _any_after(memory: RedisShortTermMemory, viewer: Viewer, cursor: str | None) -> bool:
    """Whether a pattern is staged after ``cursor`` in expiry order."""
    after = staged.scan_staged(memory, viewer, "expiry", cursor, batch=1, teams=viewer.teams)
    return next(after, None) is not None


MODES = {"ttl": _by_ttl, "confidence": _by_confidence, "age": _by_age, "type": _by_type}


def _rows(memory: RedisShortTermMemory, found: _Found, viewer: Viewer) -> list[dict[str, Any]]:
    now = memory.server_time_ms()
    return [
        {
            "pattern": pattern,
            "ttl": expires - now,
            "urgent": expires - now < URGENT_MS,
            "age": now - int(pattern.staged_at.timestamp() * 1000) if pattern.staged_at else None,
            "tier": viewer.tier_for(pattern.team),  # what they may do with it
        }
        for pattern, expires in found.patterns
    ]


def build_queue(
    memory: RedisShortTermMemory, params: Mapping[str, str], viewer: Viewer
) -> dict[str, Any]:
    """The queue panel's context for the page's query (``sort``, filters, ``cursor``)."""
    # Patterns that expired undecided leave the index here, counted (pattern.expired).
    staged.prune_expired(memory, viewer)
    sort = params.get("sort") or "ttl"
    if sort not in SORTS:
        sort = "ttl"
    filters = {name: (params.get(name) or "").strip() for name in FILTERS}
    # A team's filter reads that team's patterns only (none of a team they are not in).
    listing = viewer.within(filters["team"]) if filters["team"] else viewer
    cursor = params.get("cursor") or None
    found = MODES[sort](memory, listing, cursor, matcher(filters))
    rows = _rows(memory, found, viewer)
    query = {name: value for name, value in (("sort", sort), *filters.items()) if value}
    if query.get("sort") == "ttl":
        del query["sort"]
    return {
        "page": Page([row["pattern"] for row in rows], found.next_cursor),
        "rows": rows,
        "sort": sort,
        "sorts": SORTS,
        "filters": filters,
        "query": query,
        "return_query": urlencode(query),
        "filtered": any(filters.values()),
        "truncated": found.truncated,
        "scan_limit": SCAN_LIMIT,
        "searched": found.searched,
        "continued": cursor is not None,
        "staged_total": staged.count_staged(memory, viewer, teams=viewer.teams),
        "expired_24h": staged.expired_count(memory, viewer, teams=viewer.teams),
        "recently_expired": staged.recent_expired(memory, viewer, 5, teams=viewer.teams),
        "max_reason_length": MAX_REASON_LENGTH,
    }
