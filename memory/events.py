"""The event format: one bounded Redis Stream records every mutation.

Each script that changes state appends its event in the same call (see
``lua_source``), so an event exists exactly when its change does. Every entry has
``type``, ``actor`` and ``tier`` fields, plus the ids the change touched (``task_id``,
``team``, ``pattern_id``...). Values are strings. The entry id is the time: Redis makes
it ``<server time in ms>-<sequence>``.

The stream is trimmed approximately (``MAXLEN ~``): a reader that falls further behind
than ``events_maxlen`` entries misses the oldest ones, so readers re-read state from
Redis after a gap rather than trusting the stream alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

# Every script gets these: KEYS[1] is the stream, ARGV[1..3] are its max length, the
# actor and the actor's tier. ``now`` is the server's clock in milliseconds, so leases
# and timestamps never depend on a client's clock.
LUA_PRELUDE = """
local _t = redis.call('TIME')
local now = tonumber(_t[1]) * 1000 + math.floor(tonumber(_t[2]) / 1000)
"""

# ``fail(code, message)`` returns an error reply; only scripts that use it define it.
LUA_FAIL = """
local function fail(code, message)
  return redis.error_reply(code .. ' ' .. message)
end
"""

# ``emit(kind, field, value, ...)`` in a script body appends the event. It is expanded
# in place rather than defined as a function: a Lua function is a new closure on every
# call of the script, which costs as much as a cheap Redis command.
_EMIT = (
    "redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', "
    "'actor', ARGV[2], 'tier', ARGV[3], 'type', "
)


def lua_source(body: str) -> str:
    """The full source of a script whose body uses ``now``, ``emit`` and ``fail``. A body
    that does not use ``now`` skips the TIME call."""
    return (
        (LUA_PRELUDE if re.search(r"\bnow\b", body) else "")
        + (LUA_FAIL if "fail(" in body else "")
        + body.replace("emit(", _EMIT)
    )


BASE_FIELDS = ("type", "actor", "tier")


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
        text.pop("ts", None)  # entries written before the id alone carried the time
        return cls(
            id=_s(entry_id),
            type=text.pop("type", ""),
            actor=text.pop("actor", ""),
            tier=text.pop("tier", ""),
            ts=int(_s(entry_id).partition("-")[0]),
            ids=text,
        )


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def event_fields(kind: str, actor: str, tier: str, **ids: object) -> dict[str, str]:
    """An event's fields, for the few writes that use MULTI/EXEC instead of a script."""
    fields = {"type": kind, "actor": actor, "tier": tier}
    fields.update({name: str(value) for name, value in ids.items()})
    return fields
