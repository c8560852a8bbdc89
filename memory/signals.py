"""Coordination signals between agents.

Delivery: a signal sent to one agent lands in that agent's inbox; a broadcast lands in
the broadcast index, which every agent reads. ``receive_signals`` *consumes*: each
signal is returned to a recipient once (a targeted one leaves the inbox, a broadcast is
marked seen for that agent). A type filter leaves signals of other types waiting.
Agents do not receive their own broadcasts. Everything expires after the COORDINATION
TTL, read or not. ``list_signals`` reads the recent feed without consuming anything.

Signal ids are ``<server ms, 13 digits>-<sequence, 12 digits>-<token>``, so they sort
in the order they were sent. The token is the sender's, which makes a retried send
idempotent. Index members are ``<id>|<type>``; ids never contain ``|``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import redis

from .codec import check_id, decode, encode
from .exceptions import InvalidValue
from .page import Page, check_limit
from .redis_memory import RedisShortTermMemory
from .tiers import READ, WRITE, Caller
from .ttl import TTLStrategy

# KEYS[2] record, KEYS[3] the recent feed, KEYS[4] the sequence, KEYS[5] signals per
# minute (for the dashboard's rate sparkline), KEYS[6..] the indexes that deliver it
# (one inbox, the broadcast index, or a session's participants' inboxes plus its log).
# ARGV[4] token, ARGV[5] the record as a JSON object, ARGV[6] type, ARGV[7] ttl.
# A retried call (same token) finds the record and returns it without a second copy.
_SEND = """
local existing = redis.call('GET', KEYS[2])
if existing then return existing end
local ttl = tonumber(ARGV[7])
local cutoff = '(' .. string.format('%013d', now - ttl)
local seq = redis.call('INCR', KEYS[4])
local id = string.format('%013d-%012d-', now, seq % 1000000000000) .. ARGV[4]
local body = '{"id":"' .. id .. '","timestamp":' .. string.format('%.3f', now / 1000)
             .. ',' .. string.sub(ARGV[5], 2)
redis.call('SET', KEYS[2], body, 'PX', ttl)
redis.call('ZREMRANGEBYLEX', KEYS[3], '-', cutoff)
redis.call('ZADD', KEYS[3], 0, id)
local minute = math.floor(now / 60000)
redis.call('HINCRBY', KEYS[5], minute, 1)
if redis.call('HLEN', KEYS[5]) > 150 then
  for _, field in ipairs(redis.call('HKEYS', KEYS[5])) do
    if tonumber(field) < minute - 120 then redis.call('HDEL', KEYS[5], field) end
  end
end
for i = 6, #KEYS do
  redis.call('ZREMRANGEBYLEX', KEYS[i], '-', cutoff)
  redis.call('ZADD', KEYS[i], 0, id .. '|' .. ARGV[6])
  redis.call('PEXPIRE', KEYS[i], ttl)
end
emit('signal.sent', 'signal_id', id, 'signal_type', ARGV[6], 'target', ARGV[8], 'team', ARGV[9])
return body
"""

# KEYS[2] the agent's inbox, KEYS[3] the broadcast index, KEYS[4] the broadcasts the
# agent consumed through a type filter, KEYS[5] the agent's broadcast cursor.
# ARGV[4] agent, ARGV[5] type filter ('' for all), ARGV[6] ttl.
# An unfiltered receive takes every broadcast after the cursor and moves the cursor, so
# its cost follows what is new; a filtered one cannot move it, and marks what it took.
_RECEIVE = """
local ttl = tonumber(ARGV[6])
local oldest = string.format('%013d', now - ttl)
local want = ARGV[5]
local out = {}
local function matches(member)
  if want == '' then return true end
  local bar = string.find(member, '|', 1, true)
  return string.sub(member, bar + 1) == want
end
for i = 2, 4 do redis.call('ZREMRANGEBYLEX', KEYS[i], '-', '(' .. oldest) end
for _, member in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if matches(member) then
    table.insert(out, member)
    redis.call('ZREM', KEYS[2], member)
  end
end
local cursor = redis.call('GET', KEYS[5])
if not cursor or cursor < oldest then cursor = oldest end
local last = nil
for _, member in ipairs(redis.call('ZRANGE', KEYS[3], '(' .. cursor, '+', 'BYLEX')) do
  if not redis.call('ZSCORE', KEYS[4], member) and matches(member) then
    table.insert(out, member)
    if want ~= '' then redis.call('ZADD', KEYS[4], 0, member) end
  end
  last = member
end
if want == '' and last then
  redis.call('SET', KEYS[5], last, 'PX', ttl)
  redis.call('ZREMRANGEBYLEX', KEYS[4], '-', '[' .. last)
end
if #out > 0 then
  redis.call('PEXPIRE', KEYS[4], ttl)
  emit('signal.received', 'agent', ARGV[4], 'count', #out)
end
return out
"""


def send(
    memory: RedisShortTermMemory,
    caller: Caller,
    signal_type: str,
    data: Any,
    target_agent: str | None = None,
    *,
    team: str | None = None,
    deliver_to: Sequence[str] | None = None,
    session_id: str | None = None,
) -> dict[str, Any]:
    """Send a signal to ``target_agent``, or to every agent when it is ``None``.

    ``deliver_to`` (with ``session_id``) is how a team session reaches its participants.
    Returns the stored signal.
    """
    caller.require(WRITE, "send_signal")
    check_id(signal_type, "signal_type")
    if target_agent is not None:
        check_id(target_agent, "target_agent")
    if team is not None:
        check_id(team, "team")
    keys = memory.keys
    token = uuid.uuid4().hex[:16]
    record = {
        "sender": caller.user_id,
        "target": target_agent,
        "signal_type": signal_type,
        "data": data,
        "team": team,
    }
    if session_id is not None:
        record["session_id"] = session_id
        delivery = [keys.signal_inbox(a) for a in deliver_to or ()]
        delivery.append(keys.session_signals(session_id))
    elif target_agent is not None:
        delivery = [keys.signal_inbox(target_agent)]
    else:
        delivery = [keys.signals_broadcast]
    body = memory.run_script(
        _SEND,
        caller,
        [keys.signal(token), keys.signals_recent, keys.signals_seq, keys.signals_rate, *delivery],
        [
            token,
            encode(record, memory.max_value_bytes, "signal data"),
            signal_type,
            memory.ttl_ms(TTLStrategy.COORDINATION),
            target_agent or (f"session:{session_id}" if session_id else "*"),
            team or "",
        ],
    )
    return decode(body)


def receive(
    memory: RedisShortTermMemory, caller: Caller, signal_type: str | None = None
) -> list[dict[str, Any]]:
    """Consume the signals waiting for the caller (oldest first); see the module doc."""
    caller.require(READ, "receive_signals")
    if signal_type is not None:
        check_id(signal_type, "signal_type")
    keys = memory.keys
    members = memory.run_script(
        _RECEIVE,
        caller,
        [
            keys.signal_inbox(caller.user_id),
            keys.signals_broadcast,
            keys.signal_seen(caller.user_id),
            keys.signal_cursor(caller.user_id),
        ],
        [caller.user_id, signal_type or "", memory.ttl_ms(TTLStrategy.COORDINATION)],
    )
    ids = sorted({m.decode().split("|", 1)[0] for m in members})
    signals = _load(memory, ids)
    return [s for s in signals if not (s["target"] is None and s["sender"] == caller.user_id)]


def list_signals(
    memory: RedisShortTermMemory,
    limit: int = 50,
    cursor: str | None = None,
    *,
    signal_type: str | None = None,
    sender: str | None = None,
    target: str | None = None,
    team: str | None = None,
    session_id: str | None = None,
) -> Page[dict[str, Any]]:
    """Recent signals, newest first, without consuming them (the dashboard's feed).

    Filters compare exactly; ``target="*"`` selects broadcasts.
    """
    limit = check_limit(limit)
    if cursor is not None and not (isinstance(cursor, str) and "-" in cursor):
        raise InvalidValue(f"cursor {cursor!r} is not one this listing handed out")
    keys = memory.keys
    index = keys.signals_recent if session_id is None else keys.session_signals(session_id)
    cutoff = memory.server_time_ms() - memory.ttl_ms(TTLStrategy.COORDINATION)
    low = "(" + f"{cutoff:013d}"
    high = "+" if cursor is None else "(" + cursor
    wanted = {"signal_type": signal_type, "sender": sender, "target": target, "team": team}
    wanted = {k: v for k, v in wanted.items() if v is not None}
    if wanted.get("target") == "*":
        wanted["target"] = None
    items: list[dict[str, Any]] = []
    # Filters apply after reading, so read in batches until a page is full; the feed
    # only holds the last COORDINATION TTL's worth of signals.
    batch = limit if not wanted else max(limit, 200)
    while True:
        members = memory.client.execute_command(
            "ZRANGE", index, high, low, "BYLEX", "REV", "LIMIT", 0, batch
        )
        ids = [m.decode().split("|", 1)[0] for m in members]
        for signal in _load(memory, ids):
            if all(signal.get(k) == v for k, v in wanted.items()):
                items.append(signal)
                if len(items) == limit:
                    more = signal["id"] != ids[-1] or len(members) == batch
                    return Page(items, signal["id"] if more else None)
        if len(members) < batch:
            return Page(items, None)
        high = "(" + members[-1].decode()


def signals_after(
    memory: RedisShortTermMemory,
    after: str | None,
    limit: int = 100,
    **filters: str | None,
) -> Page[dict[str, Any]]:
    """Signals sent after the signal ``after`` (all recent ones when None), oldest
    first, reading at most ``limit``, filtered like ``list_signals``. ``next_cursor`` is
    the last id read (matching or not), to pass as ``after`` next time: a live feed
    catches up exactly once, in order."""
    limit = check_limit(limit)
    cutoff = memory.server_time_ms() - memory.ttl_ms(TTLStrategy.COORDINATION)
    low = f"({cutoff:013d}"
    if after:
        low = max(low, "(" + after)
    wanted = {k: v for k, v in filters.items() if v is not None}
    if wanted.get("target") == "*":
        wanted["target"] = None
    members = memory.client.execute_command(
        "ZRANGE", memory.keys.signals_recent, low, "+", "BYLEX", "LIMIT", 0, limit
    )
    ids = [m.decode() for m in members]
    signals = [s for s in _load(memory, ids) if all(s.get(k) == v for k, v in wanted.items())]
    return Page(signals, ids[-1] if ids else after)


def _load(memory: RedisShortTermMemory, ids: list[str]) -> list[dict[str, Any]]:
    if not ids:
        return []
    try:
        bodies = memory.client.mget([memory.keys.signal(i.rsplit("-", 1)[1]) for i in ids])
    except redis.RedisError as exc:
        raise memory.connection_error(exc) from exc
    return [decode(b) for b in bodies if b is not None]
