"""Coordination signals between agents.

Delivery: a signal sent to one agent lands in that agent's inbox; a broadcast lands in
the broadcast index, which every agent reads. ``receive_signals`` *consumes*: each
signal is returned to a recipient once (a targeted one leaves the inbox, a broadcast is
marked seen for that agent). A type filter leaves signals of other types waiting.
Agents do not receive their own broadcasts. Everything expires after the COORDINATION
TTL, read or not. ``list_signals`` reads the recent feed without consuming anything.

Signal ids sort in the order signals were sent, and index members carry each signal's
type (``memory.formats``). The id ends with the sender's token, which makes a retried
send idempotent.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from . import scripts
from .codec import check_id, decode, encode
from .connection import RedisConnection, redis_errors
from .exceptions import InvalidValue
from .formats import is_signal_id, signal_bound, signal_member_id, signal_token
from .page import Page, check_limit
from .tiers import READ, WRITE, Caller
from .ttl import TTLStrategy


def send(
    memory: RedisConnection,
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
        scripts.SEND_SIGNAL,
        caller,
        {
            "signal": keys.signal(token),
            "signals_recent": keys.signals_recent,
            "signals_seq": keys.signals_seq,
            "signals_rate": keys.signals_rate,
            "delivery": delivery,
        },
        {
            "token": token,
            "record_json": encode(record, memory.max_value_bytes, "signal data"),
            "signal_type": signal_type,
            "ttl_ms": memory.ttl_ms(TTLStrategy.COORDINATION),
            "target": target_agent or (f"session:{session_id}" if session_id else "*"),
            "team": team or "",
        },
    )
    return decode(body)


def receive(
    memory: RedisConnection, caller: Caller, signal_type: str | None = None
) -> list[dict[str, Any]]:
    """Consume the signals waiting for the caller (oldest first); see the module doc."""
    caller.require(READ, "receive_signals")
    if signal_type is not None:
        check_id(signal_type, "signal_type")
    keys = memory.keys
    members = memory.run_script(
        scripts.RECEIVE_SIGNALS,
        caller,
        {
            "signal_inbox": keys.signal_inbox(caller.user_id),
            "signals_broadcast": keys.signals_broadcast,
            "signal_seen": keys.signal_seen(caller.user_id),
            "signal_cursor": keys.signal_cursor(caller.user_id),
        },
        {
            "agent": caller.user_id,
            "type_filter": signal_type or "",
            "ttl_ms": memory.ttl_ms(TTLStrategy.COORDINATION),
        },
    )
    ids = sorted({signal_member_id(m) for m in members})
    signals = _load(memory, ids)
    return [s for s in signals if not (s["target"] is None and s["sender"] == caller.user_id)]


@redis_errors
def list_signals(
    memory: RedisConnection,
    caller: Caller,
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
    caller.require(READ, "list_signals")
    limit = check_limit(limit)
    if cursor is not None and not (isinstance(cursor, str) and "-" in cursor):
        raise InvalidValue(f"cursor {cursor!r} is not one this listing handed out")
    keys = memory.keys
    index = keys.signals_recent if session_id is None else keys.session_signals(session_id)
    cutoff = memory.server_time_ms() - memory.ttl_ms(TTLStrategy.COORDINATION)
    low = signal_bound(cutoff)
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
        ids = [signal_member_id(m) for m in members]
        for signal in _load(memory, ids):
            if all(signal.get(k) == v for k, v in wanted.items()):
                items.append(signal)
                if len(items) == limit:
                    more = signal["id"] != ids[-1] or len(members) == batch
                    return Page(items, signal["id"] if more else None)
        if len(members) < batch:
            return Page(items, None)
        high = "(" + members[-1].decode()


@redis_errors
def signals_after(
    memory: RedisConnection,
    caller: Caller,
    after: str | None,
    limit: int = 100,
    **filters: str | None,
) -> Page[dict[str, Any]]:
    """Signals sent after the signal ``after`` (all recent ones when None), oldest
    first, reading at most ``limit``, filtered like ``list_signals``. ``next_cursor`` is
    the last id read (matching or not), to pass as ``after`` next time: a live feed
    catches up exactly once, in order."""
    caller.require(READ, "list_signals")
    limit = check_limit(limit)
    cutoff = memory.server_time_ms() - memory.ttl_ms(TTLStrategy.COORDINATION)
    low = signal_bound(cutoff)
    if after:
        low = max(low, "(" + after)
    members = memory.client.execute_command(
        "ZRANGE", memory.keys.signals_recent, low, "+", "BYLEX", "LIMIT", 0, limit
    )
    ids = [m.decode() for m in members]
    return Page(_matching(memory, ids, filters), ids[-1] if ids else after)


def _matching(
    memory: RedisConnection, ids: list[str], filters: dict[str, str | None]
) -> list[dict[str, Any]]:
    """The signals ``ids`` that pass ``filters`` (``target="*"``: broadcasts)."""
    wanted = {k: v for k, v in filters.items() if v is not None}
    if wanted.get("target") == "*":
        wanted["target"] = None
    return [s for s in _load(memory, ids) if all(s.get(k) == v for k, v in wanted.items())]


@redis_errors
def newest_signals(
    memory: RedisConnection, caller: Caller, limit: int = 100, **filters: str | None
) -> Page[dict[str, Any]]:
    """The ``limit`` most recent signals, read in one go and filtered like
    ``list_signals``, oldest first; ``next_cursor`` is the newest id read, to pass to
    ``signals_after`` next: a live feed that starts with the newest signals goes on from
    exactly there."""
    caller.require(READ, "list_signals")
    limit = check_limit(limit)
    cutoff = memory.server_time_ms() - memory.ttl_ms(TTLStrategy.COORDINATION)
    members = memory.client.execute_command(
        "ZRANGE", memory.keys.signals_recent, "+", signal_bound(cutoff), "BYLEX", "REV",
        "LIMIT", 0, limit,
    )  # fmt: skip
    ids = [m.decode() for m in reversed(members)]
    return Page(_matching(memory, ids, filters), ids[-1] if ids else None)


@redis_errors
def get_signal(memory: RedisConnection, caller: Caller, signal_id: str) -> dict[str, Any] | None:
    """One signal, as ``list_signals`` shows it, or None once it has expired. An id
    that no signal could have raises ``InvalidValue``."""
    caller.require(READ, "list_signals")
    if not is_signal_id(signal_id):
        raise InvalidValue(f"{signal_id!r} is not a signal id")
    record = decode(memory.client.get(memory.keys.signal(signal_token(signal_id))))
    return record if record is not None and record.get("id") == signal_id else None


@redis_errors
def _load(memory: RedisConnection, ids: list[str]) -> list[dict[str, Any]]:
    if not ids:
        return []
    bodies = memory.client.mget([memory.keys.signal(signal_token(i)) for i in ids])
    return [decode(b) for b in bodies if b is not None]
