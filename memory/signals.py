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

Where they are (``memory.keys``): a signal to one agent is in that agent's mailbox (its
record and inbox), so under Redis Cluster signals spread over the masters with their
recipients; broadcasts and sessions' signals are with the shared signals, and a
session's participants each get a copy in their mailboxes. The recent feed lists every
signal, and says which mailbox holds a signal's record.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import Any

from . import scripts
from .codec import check_id, decode, encode
from .connection import RedisConnection, redis_errors
from .exceptions import InvalidValue
from .formats import (
    feed_entry,
    is_signal_id,
    members_after,
    signal_bound,
    signal_member_id,
    signal_token,
)
from .keys import KeySchema
from .page import Page, check_limit, filter_batch
from .team_filter import check_teams, shows
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
    args = {
        "token": token,
        "record_json": encode(record, memory.max_value_bytes, "signal data"),
        "signal_type": signal_type,
        "ttl_ms": memory.ttl_ms(TTLStrategy.COORDINATION),
        "target": target_agent or (f"session:{session_id}" if session_id else "*"),
        "team": team or "",
    }
    script, where = _where_it_goes(keys, token, target_agent, session_id, deliver_to or ())
    if script is scripts.BROADCAST_SIGNAL:
        del args["target"]
    feed = {
        "signals_recent": keys.signals_recent,
        "signals_rate": keys.signals_rate,
        "signals_team_rate": keys.signals_team_rate,
        "signals_team_minutes": keys.signals_team_minutes,
        "signals_team_totals": keys.signals_team_totals,
    }
    return decode(memory.run_script(script, caller, {**where, **feed}, args))


def _where_it_goes(
    keys: KeySchema,
    token: str,
    target_agent: str | None,
    session_id: str | None,
    deliver_to: Sequence[str],
) -> tuple[scripts.LuaScript, dict[str, Any]]:
    """The script that sends a signal, and its keys besides the recent feed's."""
    if session_id is not None:
        mailboxes = [
            key
            for agent in deliver_to
            for key in (keys.signal(token, agent), keys.signal_inbox(agent))
        ]
        return scripts.SESSION_SIGNAL, {
            "signal": keys.signal(token),
            "session_signals": keys.session_signals(session_id),
            "mailboxes": mailboxes,
        }
    if target_agent is not None:
        return scripts.SEND_SIGNAL, {
            "signal": keys.signal(token, target_agent),
            "signal_inbox": keys.signal_inbox(target_agent),
        }
    return scripts.BROADCAST_SIGNAL, {
        "signal": keys.signal(token),
        "signals_broadcast": keys.signals_broadcast,
    }


def receive(
    memory: RedisConnection, caller: Caller, signal_type: str | None = None
) -> list[dict[str, Any]]:
    """Consume the signals waiting for the caller (oldest first); see the module doc."""
    caller.require(READ, "receive_signals")
    if signal_type is not None:
        check_id(signal_type, "signal_type")
    keys, agent = memory.keys, caller.user_id
    args = {
        "agent": agent,
        "type_filter": signal_type or "",
        "ttl_ms": memory.ttl_ms(TTLStrategy.COORDINATION),
    }
    # One round trip; on one server, one transaction.
    mine = {"agent": agent, "type_filter": args["type_filter"]}
    inbox, broadcasts = memory.run_scripts(
        [
            (scripts.RECEIVE_INBOX, caller, {"signal_inbox": keys.signal_inbox(agent)}, mine),
            (
                scripts.RECEIVE_BROADCASTS,
                caller,
                {
                    "signals_broadcast": keys.signals_broadcast,
                    "signal_seen": keys.signal_seen(agent),
                    "signal_cursor": keys.signal_cursor(agent),
                },
                args,
            ),
        ]
    )
    refs = {signal_member_id(m): agent for m in inbox}
    refs.update((signal_member_id(m), None) for m in broadcasts)
    signals = _load(memory, sorted(refs.items()))
    return [s for s in signals if not (s["target"] is None and s["sender"] == agent)]


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
    teams: Collection[str] | None = None,
) -> Page[dict[str, Any]]:
    """Recent signals, newest first, without consuming them (the dashboard's feed).

    Filters compare exactly; ``target="*"`` selects broadcasts. ``teams``: only signals
    of these teams and org-wide ones (``memory.team_filter``). ``next_cursor`` is the id
    of the page's last signal: the next page starts right after it.
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
    wanted = _wanted({"signal_type": signal_type, "sender": sender, "target": target, "team": team})
    allowed = check_teams(teams)
    items: list[dict[str, Any]] = []
    # Filters apply after reading, so read in batches until a page is full; the feed
    # only holds the last COORDINATION TTL's worth of signals.
    batch = limit if not wanted and allowed is None else filter_batch(limit)
    while True:
        members = memory.client.execute_command(
            "ZRANGE", index, high, low, "BYLEX", "REV", "LIMIT", 0, batch
        )
        # A session's log holds "<id>|<type>", of signals with the shared signals.
        refs = [(signal_member_id(m), None) if session_id else feed_entry(m) for m in members]
        ids = [signal_id for signal_id, _ in refs]
        for signal in _load(memory, refs):
            if _passes(signal, wanted, allowed):
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
    *,
    teams: Collection[str] | None = None,
    **filters: str | None,
) -> Page[dict[str, Any]]:
    """Signals sent after the signal ``after`` (all recent ones when None), oldest
    first, reading at most ``limit``, filtered like ``list_signals`` (``teams`` too).
    ``next_cursor`` is the last id read (matching or not), to pass as ``after`` next
    time: a live feed catches up exactly once, in order."""
    caller.require(READ, "list_signals")
    limit = check_limit(limit)
    allowed = check_teams(teams)
    cutoff = memory.server_time_ms() - memory.ttl_ms(TTLStrategy.COORDINATION)
    low = signal_bound(cutoff)
    if after and after > low[1:]:
        low = members_after(after)
    members = memory.client.execute_command(
        "ZRANGE", memory.keys.signals_recent, low, "+", "BYLEX", "LIMIT", 0, limit
    )
    refs = [feed_entry(m) for m in members]
    matching = _matching(memory, refs, filters, allowed)
    return Page(matching, refs[-1][0] if refs else after)


def _wanted(filters: dict[str, str | None]) -> dict[str, str | None]:
    """The filters that are set, as the fields they compare (``target="*"``:
    broadcasts, whose target is None)."""
    wanted = {k: v for k, v in filters.items() if v is not None}
    if wanted.get("target") == "*":
        wanted["target"] = None
    return wanted


def _passes(
    signal: dict[str, Any], wanted: dict[str, str | None], allowed: frozenset[str] | None
) -> bool:
    """Whether ``signal`` has every field in ``wanted`` and is of ``allowed``'s teams or
    org-wide."""
    return shows(allowed, signal.get("team")) and all(signal.get(k) == v for k, v in wanted.items())


def _matching(
    memory: RedisConnection,
    refs: list[tuple[str, str | None]],
    filters: dict[str, str | None],
    allowed: frozenset[str] | None,
) -> list[dict[str, Any]]:
    """The signals ``refs`` (see ``_load``) that pass ``filters`` and ``allowed``."""
    wanted = _wanted(filters)
    return [s for s in _load(memory, refs) if _passes(s, wanted, allowed)]


@redis_errors
def newest_signals(
    memory: RedisConnection,
    caller: Caller,
    limit: int = 100,
    *,
    teams: Collection[str] | None = None,
    **filters: str | None,
) -> Page[dict[str, Any]]:
    """The ``limit`` most recent signals, read in one go and filtered like
    ``list_signals`` (``teams`` too), oldest first; ``next_cursor`` is the newest id
    read, matching or not, to pass to ``signals_after`` next: a live feed that starts
    with the newest signals goes on from exactly there."""
    caller.require(READ, "list_signals")
    limit = check_limit(limit)
    allowed = check_teams(teams)
    cutoff = memory.server_time_ms() - memory.ttl_ms(TTLStrategy.COORDINATION)
    members = memory.client.execute_command(
        "ZRANGE", memory.keys.signals_recent, "+", signal_bound(cutoff), "BYLEX", "REV",
        "LIMIT", 0, limit,
    )  # fmt: skip
    refs = [feed_entry(m) for m in reversed(members)]
    return Page(_matching(memory, refs, filters, allowed), refs[-1][0] if refs else None)


@redis_errors
def get_signal(memory: RedisConnection, caller: Caller, signal_id: str) -> dict[str, Any] | None:
    """One signal, as ``list_signals`` shows it, or None once it has expired. An id
    that no signal could have raises ``InvalidValue``."""
    caller.require(READ, "list_signals")
    if not is_signal_id(signal_id):
        raise InvalidValue(f"{signal_id!r} is not a signal id")
    # The feed says which mailbox holds the record.
    members = memory.client.execute_command(
        "ZRANGE", memory.keys.signals_recent, f"[{signal_id}", members_after(signal_id),
        "BYLEX", "LIMIT", 0, 1,
    )  # fmt: skip
    records = _load(memory, [feed_entry(m) for m in members])
    return records[0] if records and records[0].get("id") == signal_id else None


@redis_errors
def _load(memory: RedisConnection, refs: list[tuple[str, str | None]]) -> list[dict[str, Any]]:
    """The records of signals, from their ids and the agents whose mailboxes hold them
    (None: with the shared signals), in that order; those that expired are left out."""
    if not refs:
        return []
    keys = [memory.keys.signal(signal_token(i), mailbox) for i, mailbox in refs]
    # Under Cluster, the records are in several slots: one MGET per slot.
    bodies = memory.client.mget_nonatomic(keys) if memory.cluster else memory.client.mget(keys)
    return [decode(b) for b in bodies if b is not None]
