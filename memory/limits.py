"""An agent's own limits, shared by every process that acts for it: how many runs it may
start per window (``count_run``), and how many of something it may hold at once
(``take_slot``). Both live in Redis, in the agent's working-memory hash slot, and any
tier may use its own. A steward may also suspend an agent's runs for a while
(``suspend``).
"""

from __future__ import annotations

from . import scripts
from .codec import check_id, ttl_ms
from .connection import RedisConnection, redis_errors
from .exceptions import InvalidValue, RateLimited, Suspended
from .tiers import ADMIN, READ, Caller


def _positive(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidValue(f"{name} must be a positive integer, not {value!r}")
    return value


def count_run(memory: RedisConnection, caller: Caller, limit: int, window: float = 60.0) -> None:
    """Count one run of the caller's against ``limit`` runs per ``window`` seconds (a
    fixed window that the first run starts). Raises ``RateLimited``, with the seconds
    until the window ends, for a run over the limit, and ``Suspended`` (counting
    nothing) while the caller is suspended."""
    caller.require(READ, "count_run")
    keys = memory.keys
    wait_ms = memory.run_script(
        scripts.COUNT_RUN,
        caller,
        {"runs": keys.runs(caller.user_id), "suspended": keys.suspended(caller.user_id)},
        {"limit": _positive(limit, "limit"), "window_ms": ttl_ms(window)},
    )
    if wait_ms == -1:
        raise Suspended(f"{caller.user_id} is suspended")
    if wait_ms:
        raise RateLimited(
            f"{caller.user_id} has made {limit} runs in the last {window:g} s, its limit; "
            f"try again in {wait_ms / 1000:.0f} s",
            retry_after=wait_ms / 1000,
        )


@redis_errors
def suspend(memory: RedisConnection, caller: Caller, user_id: str, seconds: float) -> None:
    """Refuse ``user_id``'s runs (``count_run`` raises ``Suspended``) for ``seconds``:
    for whoever grants runs to ``user_id`` and must stop at once everywhere, such as a
    server revoking an agent's credential while its processes still hold it."""
    caller.require(ADMIN, "suspend")
    memory.client.set(memory.keys.suspended(check_id(user_id, "user_id")), 1, px=ttl_ms(seconds))


def take_slot(
    memory: RedisConnection, caller: Caller, pool: str, slot: str, cap: int, ttl: float
) -> bool:
    """Hold ``slot`` in the caller's ``pool`` for ``ttl`` seconds: True if it is held
    (taken, or renewed if the caller held it already), False if the caller already
    holds ``cap`` other live slots there. Take it again before ``ttl`` runs out to keep
    it; ``release_slot`` frees it at once."""
    caller.require(READ, "take_slot")
    taken = memory.run_script(
        scripts.TAKE_SLOT,
        caller,
        {"slots": memory.keys.slots(caller.user_id, check_id(pool, "pool"))},
        {"slot": check_id(slot, "slot"), "cap": _positive(cap, "cap"), "ttl_ms": ttl_ms(ttl)},
    )
    return bool(taken)


@redis_errors
def release_slot(memory: RedisConnection, caller: Caller, pool: str, slot: str) -> None:
    """Free ``slot`` in the caller's ``pool`` (nothing happens if it is not held)."""
    caller.require(READ, "release_slot")
    memory.client.zrem(
        memory.keys.slots(caller.user_id, check_id(pool, "pool")), check_id(slot, "slot")
    )
