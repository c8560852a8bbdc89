"""Which of several dashboard bridges leads: one at a time announces the event stream,
the others stand by and take over when its lead runs out.

The lead is a lease in Redis: a holder and a fencing token, with a time to live that the
leader renews (``lead``). A new leader gets a larger token than any before it
(``lua/includes/fence.lua``), and the cursor saying how far the stream has been
announced is saved under the token (``save_cursor``): a leader that stalled past its
lease cannot move the cursor back from under the one that took over.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import scripts
from .codec import check_id, ttl_ms
from .connection import RedisConnection, redis_errors
from .tiers import AccessTier, Caller

BRIDGE = Caller("bridge", AccessTier.STEWARD)


@dataclass(frozen=True)
class Leader:
    holder: str
    token: str
    ttl_ms: int


def lead(memory: RedisConnection, holder: str, ttl: float) -> str | None:
    """Take the lead for ``holder``, or renew it, for ``ttl`` seconds: its fencing
    token, or None while another holder leads."""
    token = memory.run_script(
        scripts.LEAD_BRIDGE,
        BRIDGE,
        {"bridge_lead": memory.keys.bridge_lead, "bridge_fence": memory.keys.bridge_fence},
        {"holder": check_id(holder, "holder"), "ttl_ms": ttl_ms(ttl)},
    )
    return token.decode() if token else None


def save_cursor(memory: RedisConnection, token: str, event_id: str) -> bool:
    """Save that the stream is announced up to ``event_id``, if ``token`` still leads;
    False (nothing saved) if it does not."""
    keys = {"bridge_lead": memory.keys.bridge_lead, "bridge_cursor": memory.keys.bridge_cursor}
    args = {"token": token, "event_id": event_id}
    return bool(memory.run_script(scripts.SAVE_BRIDGE_CURSOR, BRIDGE, keys, args))


def release(memory: RedisConnection, token: str) -> None:
    """Give up the lead held under ``token`` (a stopping leader), so another takes it at
    once; nothing if ``token`` no longer leads."""
    lead_key = {"bridge_lead": memory.keys.bridge_lead}
    memory.run_script(scripts.RELEASE_BRIDGE, BRIDGE, lead_key, {"token": token})


@redis_errors
def leader(memory: RedisConnection) -> Leader | None:
    """Who leads now, if anyone."""
    with memory.client.pipeline(transaction=False) as pipe:
        pipe.hmget(memory.keys.bridge_lead, "holder", "token")
        pipe.pttl(memory.keys.bridge_lead)
        (holder, token), remaining = pipe.execute()
    if holder is None or token is None:
        return None
    return Leader(holder.decode(), token.decode(), max(remaining, 0))
