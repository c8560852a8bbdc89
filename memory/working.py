"""Working memory: each agent's JSON values with TTLs, indexed for listing."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import redis

from . import scripts
from .codec import check_id, check_key, decode, encode, ttl_ms
from .connection import RedisConnection, redis_errors
from .page import Page, check_limit, filter_batch, offset_cursor
from .registry import agent_teams_of
from .team_filter import check_teams, shows_any
from .tiers import ADMIN, READ, WRITE, Caller
from .ttl import TTLStrategy

# The index is a sorted set of the agent's keys scored by expiry time, so listing skips
# expired keys by score (see lua/stash.lua).


@dataclass(frozen=True)
class WorkingEntry:
    """One key of an agent's working memory, as the dashboard lists it."""

    agent_id: str
    key: str
    value: Any
    ttl_ms: int


def stash(
    memory: RedisConnection, caller: Caller, key: str, data: Any, ttl: float | None = None
) -> None:
    """Keep ``data`` under ``key`` for ``ttl`` seconds (the WORKING_RESULTS TTL when
    None). Idempotent: sent again after a lost reply, it stores the same value."""
    caller.require(WRITE, "stash")
    check_key(key)
    millis = memory.ttl_ms(TTLStrategy.WORKING_RESULTS) if ttl is None else ttl_ms(ttl)
    value = encode(data, memory.max_value_bytes)
    keys = memory.keys
    memory.run_script(
        scripts.STASH,
        caller,
        {
            "working": keys.working(caller.user_id, key),
            "working_index": keys.working_index(caller.user_id),
            "working_agents": keys.working_agents,
        },
        {"value_json": value, "ttl_ms": millis, "key": key},
    )


@redis_errors
def retrieve(memory: RedisConnection, caller: Caller, key: str, agent_id: str | None = None) -> Any:
    caller.require(READ, "retrieve")
    owner = caller.user_id if agent_id is None else check_id(agent_id, "agent_id")
    return decode(memory.client.get(memory.keys.working(owner, check_key(key))))


def delete(memory: RedisConnection, caller: Caller, key: str) -> bool:
    caller.require(WRITE, "delete")
    keys = memory.keys
    n = memory.run_script(
        scripts.DELETE_WORKING,
        caller,
        {
            "working": keys.working(caller.user_id, check_key(key)),
            "working_index": keys.working_index(caller.user_id),
        },
        {"key": key, "agent": caller.user_id},
    )
    return bool(n)


def clear(memory: RedisConnection, caller: Caller, agent_id: str | None = None) -> int:
    """Delete every key of one agent's working memory; another agent's needs STEWARD."""
    owner = caller.user_id if agent_id is None else check_id(agent_id, "agent_id")
    if owner == caller.user_id:
        caller.require(WRITE, "clearing your own memory")
    else:
        caller.require(ADMIN, "clearing another agent's memory")
    keys = memory.keys
    index = keys.working_index(owner)
    # WATCH the index so a stash that lands between the read and the delete makes the
    # transaction retry instead of leaving an unindexed key behind.
    with memory.client.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(index)
                members = [m.decode() for m in pipe.zrange(index, 0, -1)]
                pipe.multi()
                for name in members:
                    pipe.delete(keys.working(owner, name))
                pipe.delete(index)
                cleared = memory.event("working.cleared", caller, agent=owner, count=len(members))
                then = memory.follow(pipe, index, [("ZREM", keys.working_agents, owner), cleared])
                pipe.execute()
                then()
                return len(members)
            except redis.WatchError:
                continue
            except redis.RedisError as exc:
                raise memory.connection_error(exc) from exc


@redis_errors
def list_agents(
    memory: RedisConnection,
    caller: Caller,
    limit: int = 50,
    cursor: str | None = None,
    *,
    teams: Collection[str] | None = None,
) -> Page[str]:
    """Agents that have live working memory, in id order. ``teams``: only agents
    registered in any of these teams, and those registered in none (org-wide;
    ``memory.registry.agent_teams_of``), and ``total`` is None. The cursor is the
    offset, in id order, after the last agent examined."""
    caller.require(READ, "listing agents' working memory")
    start = offset_cursor(cursor)
    limit = check_limit(limit)
    allowed = check_teams(teams)
    # A read only (an observer's Redis user may not write): agents whose memory has
    # expired are skipped by score here, and trimmed by stashes (lua/stash.lua).
    live = f"({memory.server_time_ms()}"
    members = memory.client.zrangebyscore(memory.keys.working_agents, live, "+inf")
    total = len(members)
    if allowed is not None:
        return _agents_of(
            memory, caller, allowed, sorted(m.decode() for m in members), start, limit
        )
    names = sorted(m.decode() for m in members)[start : start + limit]
    more = start + limit < total
    return Page(names, str(start + limit) if more else None, total)


def _agents_of(
    memory: RedisConnection,
    caller: Caller,
    allowed: frozenset[str],
    names: list[str],
    start: int,
    limit: int,
) -> Page[str]:
    """``list_agents`` restricted to ``allowed``: ``names`` from ``start`` in batches,
    each batch's teams in one round trip, until the page is full."""
    batch, kept = filter_batch(limit), []
    for offset in range(start, len(names), batch):
        chunk = names[offset : offset + batch]
        teams_of = agent_teams_of(memory, caller, chunk)
        for i, name in enumerate(chunk):
            if shows_any(allowed, teams_of[name]):
                kept.append(name)
                if len(kept) == limit:
                    after = offset + i + 1
                    return Page(kept, str(after) if after < len(names) else None)
    return Page(kept, None)


@redis_errors
def list_entries(
    memory: RedisConnection,
    caller: Caller,
    agent_id: str,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[WorkingEntry]:
    """One agent's live keys with values and remaining TTLs, soonest to expire first."""
    caller.require(READ, "listing working memory")
    check_id(agent_id, "agent_id")
    start = offset_cursor(cursor)
    limit = check_limit(limit)
    index = memory.keys.working_index(agent_id)
    now = memory.server_time_ms()
    with memory.client.pipeline(transaction=False) as pipe:
        pipe.zcount(index, f"({now}", "+inf")
        pipe.zrangebyscore(index, f"({now}", "+inf", start=start, num=limit)
        total, members = pipe.execute()
    names = [m.decode() for m in members]
    with memory.client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.get(memory.keys.working(agent_id, name))
            pipe.pttl(memory.keys.working(agent_id, name))
        answers = pipe.execute()
    entries = [
        WorkingEntry(agent_id, name, decode(raw), ttl)
        for name, raw, ttl in zip(names, answers[::2], answers[1::2], strict=True)
        if raw is not None
    ]
    more = start + limit < total
    return Page(entries, str(start + limit) if more else None, total)
