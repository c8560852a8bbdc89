"""The staged-pattern queue as the dashboard shows it: sorted, filtered, a page at a
time, each row with its remaining TTL; plus what expired before anyone decided.

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
from typing import Any

from django.utils.http import urlencode

from memory import RedisShortTermMemory, StagedPattern
from memory import patterns as staged
from memory.coordination import list_teams
from memory.page import Page, offset_cursor
from memory.tiers import Caller

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


def agent_teams(memory: RedisShortTermMemory) -> dict[str, list[str]]:
    """The teams each agent is registered in."""
    team_ids = list_teams(memory)
    with memory.client.pipeline(transaction=False) as pipe:
        for team_id in team_ids:
            pipe.zrange(memory.keys.team(team_id, "heartbeats"), 0, -1)  # its registered agents
        registered = pipe.execute()
    teams: dict[str, list[str]] = {}
    for team_id, agents in zip(team_ids, registered, strict=True):
        for agent_id in agents:
            teams.setdefault(agent_id.decode(), []).append(team_id)
    return teams


def teams_of(pattern: StagedPattern, registered: Mapping[str, list[str]]) -> list[str]:
    """Where a pattern was found: the team it names (or its context does), else the
    teams its agent is registered in."""
    named = pattern.team or (pattern.context or {}).get("team")
    if isinstance(named, str) and named:
        return [named]
    return list(registered.get(pattern.agent_id, []))


def pattern_teams(memory: RedisShortTermMemory, pattern: StagedPattern) -> list[str]:
    return teams_of(pattern, agent_teams(memory))


def _matches(pattern: StagedPattern, teams: list[str], filters: Mapping[str, str]) -> bool:
    if filters["type"] and pattern.pattern_type != filters["type"]:
        return False
    if filters["agent"] and pattern.agent_id != filters["agent"]:
        return False
    if filters["team"] and filters["team"] not in teams:
        return False
    text = filters["q"].casefold()
    if text:
        haystack = (pattern.pattern_id, pattern.name, pattern.description, pattern.code or "")
        return any(text in part.casefold() for part in haystack)
    return True


def _staged_ms(pattern: StagedPattern) -> int:
    return int(pattern.staged_at.timestamp() * 1000) if pattern.staged_at else 0


SCAN_ORDER = {"ttl": "expiry", "confidence": "confidence", "age": "staged_at"}


def _unfiltered(
    memory: RedisShortTermMemory, viewer: Caller, sort: str, cursor: str | None
) -> Page[tuple[StagedPattern, int]]:
    """A page straight from the index of ``sort`` (not ``type``)."""
    if sort == "ttl":
        return staged.list_by_expiry(memory, viewer, PAGE, cursor)
    return staged.list_sorted(memory, viewer, SCAN_ORDER[sort], PAGE, cursor)


def _filtered(
    memory: RedisShortTermMemory,
    viewer: Caller,
    sort: str,
    cursor: str | None,
    accept: Callable[[StagedPattern], bool],
) -> tuple[list[tuple[StagedPattern, int]], str | None, int | None]:
    """The next page of matches in ``sort`` from ``cursor``, the cursor after it, and
    how many patterns were searched when the budget ran out before the page filled."""
    found: list[tuple[StagedPattern, int]] = []
    resume: str | None = None  # right after the last match on the page
    scan = staged.scan_staged(memory, viewer, SCAN_ORDER[sort], cursor)
    for scanned, (pattern, expires, after) in enumerate(scan, 1):
        if accept(pattern):
            if len(found) == PAGE:
                return found, resume, None  # a match for the next page exists
            found.append((pattern, expires))
            resume = after
        if scanned >= SCAN_BUDGET:
            if len(found) == PAGE:
                return found, resume, None
            return found, after, scanned
    return found, None, None


def build_queue(
    memory: RedisShortTermMemory, params: Mapping[str, str], viewer: Caller
) -> dict[str, Any]:
    # Patterns that expired undecided leave the index here, counted (pattern.expired).
    staged.prune_expired(memory, viewer)
    sort = params.get("sort") or "ttl"
    if sort not in SORTS:
        sort = "ttl"
    filters = {name: (params.get(name) or "").strip() for name in FILTERS}
    registered = agent_teams(memory)
    cursor = params.get("cursor") or None
    truncated = False
    searched: int | None = None  # set when a filtered page stopped at its budget
    if sort == "type":
        start = offset_cursor(cursor)
        everything = []
        for item in staged.scan_staged(memory, viewer, "expiry", batch=500):
            everything.append(item)
            if len(everything) > SCAN_LIMIT:
                break
        truncated = len(everything) > SCAN_LIMIT  # staged patterns were left unread
        matching = [
            (p, expires)
            for p, expires, _ in everything[:SCAN_LIMIT]
            if _matches(p, teams_of(p, registered), filters)
        ]
        matching.sort(key=lambda item: item[0].pattern_type)  # stable: by expiry within
        found = matching[start : start + PAGE]
        next_cursor = str(start + PAGE) if start + PAGE < len(matching) else None
    elif any(filters.values()):
        found, next_cursor, searched = _filtered(
            memory,
            viewer,
            sort,
            cursor,
            lambda p: _matches(p, teams_of(p, registered), filters),
        )
    else:
        page = _unfiltered(memory, viewer, sort, cursor)
        found, next_cursor = list(page), page.next_cursor
    now = memory.server_time_ms()
    rows = []
    for pattern, expires in found:
        ttl = expires - now
        rows.append(
            {
                "pattern": pattern,
                "ttl": ttl,
                "urgent": ttl < URGENT_MS,
                "age": now - _staged_ms(pattern) if pattern.staged_at else None,
                "teams": teams_of(pattern, registered),
            }
        )
    query = {name: value for name, value in (("sort", sort), *filters.items()) if value}
    if query.get("sort") == "ttl":
        del query["sort"]
    return {
        "page": Page([row["pattern"] for row in rows], next_cursor),
        "rows": rows,
        "sort": sort,
        "sorts": SORTS,
        "filters": filters,
        "query": query,
        "return_query": urlencode(query),
        "filtered": any(filters.values()),
        "truncated": truncated,
        "scan_limit": SCAN_LIMIT,
        "searched": searched,
        "continued": cursor is not None,
        "staged_total": staged.count_staged(memory),
        "expired_24h": staged.expired_count(memory),
        "recently_expired": staged.recent_expired(memory, 5),
    }
