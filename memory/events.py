"""The event format: one bounded Redis Stream records every mutation.

Each script that changes state appends its event in the same call (``emit``, in
``lua/includes/emit.lua``), so an event exists exactly when its change does. Every entry has
``type``, ``actor`` and ``tier`` fields, plus the ids the change touched (``task_id``,
``team``, ``pattern_id``...). Values are strings. The entry id is the time: Redis makes
it ``<server time in ms>-<sequence>``.

The stream is trimmed approximately (``MAXLEN ~``): a reader that falls further behind
than ``events_maxlen`` entries misses the oldest ones, so readers re-read state from
Redis after a gap rather than trusting the stream alone.

A reader's position is a cursor: the id of the last entry read. Under Redis Cluster the
stream is split into shards (``memory.keys``), and a cursor is the shards' ids, in
order, joined by commas; a single id stands for that id in every shard.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .exceptions import InvalidValue

BASE_FIELDS = ("type", "actor", "tier")


@dataclass(frozen=True)
class Event:
    """One entry of the event stream. ``cursor``: the position after it, to read on
    from (its id, but for a sharded stream)."""

    id: str
    type: str
    actor: str
    tier: str
    ts: int
    ids: dict[str, str] = field(default_factory=dict)
    cursor: str = ""

    @property
    def timestamp(self) -> datetime:
        return datetime.fromtimestamp(self.ts / 1000, tz=UTC)

    @classmethod
    def from_entry(cls, entry_id: bytes | str, fields: dict) -> Event:
        text = {_s(k): _s(v) for k, v in fields.items()}
        return cls(
            id=_s(entry_id),
            type=text.pop("type", ""),
            actor=text.pop("actor", ""),
            tier=text.pop("tier", ""),
            ts=int(_s(entry_id).partition("-")[0]),
            ids=text,
            cursor=_s(entry_id),
        )


def join_cursor(ids: Sequence[str]) -> str:
    """The cursor of a sharded stream whose shards are read up to ``ids``."""
    return ",".join(ids)


def split_cursor(cursor: str, shards: int) -> list[str]:
    """Each shard's id in ``cursor``."""
    parts = cursor.split(",")
    if len(parts) == 1:
        return parts * shards
    if len(parts) != shards:
        raise InvalidValue(f"an event cursor has 1 or {shards} ids, not {len(parts)}")
    return parts


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def event_fields(kind: str, actor: str, tier: str, **ids: object) -> dict[str, str]:
    """An event's fields, for the few writes that use MULTI/EXEC instead of a script."""
    fields = {"type": kind, "actor": actor, "tier": tier}
    fields.update({name: str(value) for name, value in ids.items()})
    return fields
