"""Working memory: each agent's JSON values with TTLs, indexed for listing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from .codec import check_id, check_key, decode, encode, ttl_ms
from .page import Page, check_limit, offset_cursor
from .redis_memory import RedisShortTermMemory
from .tiers import ADMIN, READ, WRITE, Caller
from .ttl import TTLStrategy

# The index is a sorted set of the agent's keys scored by expiry time, so listing skips
# expired keys by score, and a stash that adds a key trims what has already expired.
_STASH = """
-- The event goes first: its id starts with the server's time in ms, which saves a TIME
-- call on the busiest write.
local clock = tonumber(string.match(emit('working.stashed', 'key', ARGV[6]), '^%d+'))
local ttl = tonumber(ARGV[5])
redis.call('SET', KEYS[2], ARGV[4], 'PX', ttl)
if redis.call('ZADD', KEYS[3], clock + ttl, ARGV[6]) == 1 then
  -- Only a new key can grow the index, so that is when expired members are trimmed.
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', clock)
end
-- The index (and the agent's entry in the agents index) must outlive every key in it.
-- Extending them with a tenth to spare means a burst of stashes extends them once.
if redis.call('PTTL', KEYS[3]) < ttl then
  local spare = ttl + math.floor(ttl / 10)
  redis.call('PEXPIRE', KEYS[3], spare)
  redis.call('ZADD', KEYS[4], 'GT', clock + spare, ARGV[2])
end
return 1
"""

_DELETE = """
local n = redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[4])
if n > 0 then emit('working.deleted', 'agent', ARGV[5], 'key', ARGV[4]) end
return n
"""


@dataclass(frozen=True)
class WorkingEntry:
    """One key of an agent's working memory, as the dashboard lists it."""

    agent_id: str
    key: str
    value: Any
    ttl_ms: int


def stash(
    memory: RedisShortTermMemory, caller: Caller, key: str, data: Any, ttl: float | None = None
) -> None:
    caller.require(WRITE, "stash")
    check_key(key)
    millis = memory.ttl_ms(TTLStrategy.WORKING_RESULTS) if ttl is None else ttl_ms(ttl)
    value = encode(data, memory.max_value_bytes)
    keys = memory.keys
    memory.run_script(
        _STASH,
        caller,
        [
            keys.working(caller.user_id, key),
            keys.working_index(caller.user_id),
            keys.working_agents,
        ],
        [value, millis, key],
    )


def retrieve(
    memory: RedisShortTermMemory, caller: Caller, key: str, agent_id: str | None = None
) -> Any:
    caller.require(READ, "retrieve")
    owner = caller.user_id if agent_id is None else check_id(agent_id, "agent_id")
    try:
        raw = memory.client.get(memory.keys.working(owner, check_key(key)))
    except redis.RedisError as exc:
        raise memory.connection_error(exc) from exc
    return decode(raw)


def delete(memory: RedisShortTermMemory, caller: Caller, key: str) -> bool:
    caller.require(WRITE, "delete")
    keys = memory.keys
    n = memory.run_script(
        _DELETE,
        caller,
        [keys.working(caller.user_id, check_key(key)), keys.working_index(caller.user_id)],
        [key, caller.user_id],
    )
    return bool(n)


def clear(memory: RedisShortTermMemory, caller: Caller, agent_id: str | None = None) -> int:
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
    with memory.client.pipeline() as pipe:
        while True:
            try:
                pipe.watch(index)
                members = [m.decode() for m in pipe.zrange(index, 0, -1)]
                pipe.multi()
                for name in members:
                    pipe.delete(keys.working(owner, name))
                pipe.delete(index)
                pipe.zrem(keys.working_agents, owner)
                memory.append_event(
                    pipe, "working.cleared", caller, agent=owner, count=len(members)
                )
                pipe.execute()
                return len(members)
            except redis.WatchError:
                continue
            except redis.RedisError as exc:
                raise memory.connection_error(exc) from exc


def list_agents(
    memory: RedisShortTermMemory, limit: int = 50, cursor: str | None = None
) -> Page[str]:
    """Agents that have live working memory, in id order."""
    start = offset_cursor(cursor)
    limit = check_limit(limit)
    now = memory.server_time_ms()
    with memory.client.pipeline(transaction=False) as pipe:
        pipe.zremrangebyscore(memory.keys.working_agents, "-inf", now)
        pipe.zcard(memory.keys.working_agents)
        pipe.zrange(memory.keys.working_agents, 0, -1)
        _, total, members = pipe.execute()
    names = sorted(m.decode() for m in members)[start : start + limit]
    more = start + limit < total
    return Page(names, str(start + limit) if more else None, total)


def list_entries(
    memory: RedisShortTermMemory, agent_id: str, limit: int = 50, cursor: str | None = None
) -> Page[WorkingEntry]:
    """One agent's live keys with values and remaining TTLs, soonest to expire first."""
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
