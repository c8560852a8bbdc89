"""What Redis Cluster needs beyond one server: sending the writes a script made outside
its hash slot, and reading the event stream, which is split into shards over the
masters. The connection's own plumbing: ``connection.connection`` calls these with itself
when its client is a cluster's.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import redis

from .events import Event, join_cursor, split_cursor

if TYPE_CHECKING:
    from .connection import RedisConnection

logger = logging.getLogger("memory")

# The shards are on several masters, which no one blocking read can wait on: a blocked
# reader looks at them this often instead.
SHARD_POLL_S = 0.025


def deliver(connection: RedisConnection, outbox: Sequence[Sequence[Any]], near_key: str) -> None:
    """Send the writes a change made outside its hash slot (``near_key``'s): first its
    index entries, then its events, so that a reader woken by an event finds them. The
    change is made: if they are lost, the event (a hint to readers, who refresh anyway)
    or the index entry (which the group's next change writes again) is missing, and
    that is logged."""
    stream = connection.keys.event_shards[
        connection.client.keyslot(near_key) % len(connection.event_streams)
    ]
    commands = [complete(connection, command, stream) for command in outbox]
    writes = [c for c in commands if c[0] != "XADD"]
    events = [c for c in commands if c[0] == "XADD"]
    failed: list[Exception] = []
    lost = ""
    for batch in (writes, events):
        if not batch:
            continue
        try:
            with connection.client.pipeline(transaction=False) as pipe:
                for command in batch:
                    pipe.execute_command(*command)
                answers = pipe.execute(raise_on_error=False)
            failed += [answer for answer in answers if isinstance(answer, Exception)]
        except redis.RedisError as exc:
            failed.append(exc)
            lost = "some or all"
    if failed:
        logger.warning(
            "Redis at %s: a change was made, but %s of its %d writes elsewhere (events and "
            "index entries) failed: %s", connection.address, lost or len(failed), len(outbox),
            failed[0],
        )  # fmt: skip


def complete(connection: RedisConnection, command: Sequence[Any], stream: str) -> tuple[Any, ...]:
    """An outbox's command as sent: an event (``XADD`` and its fields) gets its stream
    and the stream's bound."""
    name = command[0].decode() if isinstance(command[0], bytes) else command[0]
    if name == "XADD":
        return (name, stream, "MAXLEN", "~", connection.events_maxlen, "*", *command[1:])
    return (name, *command[1:])


def read_shards(connection: RedisConnection, after: str, count: int, block_ms: int) -> list[Event]:
    """``read_events`` of a sharded stream: the oldest ``count`` of the shards' new
    entries, each with the cursor after it, looking again every ``SHARD_POLL_S`` for up
    to ``block_ms``."""
    positions = split_cursor(after, len(connection.event_streams))
    deadline = time.monotonic() + block_ms / 1000
    while True:
        try:
            with connection.client.pipeline(transaction=False) as pipe:
                for stream, position in zip(connection.event_streams, positions, strict=True):
                    pipe.xread({stream: position}, count=count)
                answers = pipe.execute()
        except redis.RedisError as exc:
            raise connection.connection_error(exc) from exc
        entries = [
            (_order(eid), shard, eid.decode(), fields)
            for shard, answer in enumerate(answers)
            for _, stream_entries in streams(answer)
            for eid, fields in stream_entries
        ]
        left = deadline - time.monotonic()
        if entries or left <= 0:
            break
        time.sleep(min(SHARD_POLL_S, left))
    events = []
    for _, shard, eid, fields in sorted(entries)[:count]:
        positions[shard] = eid
        event = Event.from_entry(eid, fields)
        events.append(dataclasses.replace(event, cursor=join_cursor(positions)))
    return events


def streams(answer: Any) -> list[tuple[Any, list[Any]]]:
    """An XREAD answer's (stream, entries) pairs: redis-py answers a list for RESP2 and
    a dict for RESP3."""
    if not answer:
        return []
    return list(answer.items()) if isinstance(answer, dict) else list(answer)


def _order(entry_id: bytes) -> tuple[int, int]:
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq)
