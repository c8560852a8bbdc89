"""The event format: one bounded Redis Stream records every mutation.

Each script that changes state appends its event in the same call (see
``LUA_PRELUDE``), so an event exists exactly when its change does. Every entry has
``type``, ``actor``, ``tier`` and ``ts`` (server time, ms) fields, plus the ids the
change touched (``task_id``, ``team``, ``pattern_id``...). Values are strings.

The stream is trimmed approximately (``MAXLEN ~``): a reader that falls further behind
than ``events_maxlen`` entries misses the oldest ones, so readers re-read state from
Redis after a gap rather than trusting the stream alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

# Every script gets these: KEYS[1] is the stream, ARGV[1..3] are its max length, the
# actor and the actor's tier. ``now`` is the server's clock in milliseconds, so leases
# and timestamps never depend on a client's clock.
LUA_PRELUDE = """
local _t = redis.call('TIME')
local now = tonumber(_t[1]) * 1000 + math.floor(tonumber(_t[2]) / 1000)
local function emit(kind, ...)
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*',
             'type', kind, 'actor', ARGV[2], 'tier', ARGV[3], 'ts', now, ...)
end
local function fail(code, message)
  return redis.error_reply(code .. ' ' .. message)
end
"""

BASE_FIELDS = ("type", "actor", "tier", "ts")


@dataclass(frozen=True)
class Event:
    """One entry of the event stream."""

    id: str
    type: str
    actor: str
    tier: str
    ts: int
    ids: dict[str, str] = field(default_factory=dict)

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
            ts=int(text.pop("ts", "0")),
            ids=text,
        )


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def event_fields(kind: str, actor: str, tier: str, now_ms: int, **ids: object) -> dict[str, str]:
    """An event's fields, for the few writes that use MULTI/EXEC instead of a script."""
    fields = {"type": kind, "actor": actor, "tier": tier, "ts": str(now_ms)}
    fields.update({name: str(value) for name, value in ids.items()})
    return fields
