"""Undoing a decision: a validator may take back their own last decision for a few
seconds (``memory.patterns.UNDO_WINDOW_MS``, on the server's clock). The pattern is
staged again with the TTL it had left, an approval leaves the library, and the agent is
told. The queue offers the undo for the last single decision the session made."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from django.db import DatabaseError, transaction
from django.http import HttpRequest

from empathy_web.accounts.teams import caller_for
from empathy_web.dashboard.agents_memory import UNAVAILABLE, get_memory
from empathy_web.library.audit import record
from empathy_web.library.models import PromotedPattern
from memory import NotFound, ShortTermMemoryError, StagedPattern, StateConflict
from memory import patterns as staged
from memory.tiers import VALIDATE, Caller

from .decisions import PROMOTED, Outcome, past, staged_state, tell_agent

logger = logging.getLogger("empathy_web.decisions")

SESSION_KEY = "last_decision"


def remember(request: HttpRequest, outcome: Outcome) -> None:
    """Your last single decision, which the queue offers to undo while it can."""
    request.session[SESSION_KEY] = {"pattern_id": outcome.pattern_id, "decision": outcome.decision}


def forget(request: HttpRequest) -> None:
    request.session.pop(SESSION_KEY, None)


def offer(request: HttpRequest | None) -> dict[str, Any] | None:
    """The viewer's last single decision while it can still be undone (by the decision
    record in Redis, on the server's clock), or None."""
    session = getattr(request, "session", None)
    last = session.get(SESSION_KEY) if session is not None else None
    if not last:
        return None
    try:
        memory = get_memory()
        found = staged.decision(memory, caller_for(request), last["pattern_id"])
        now = memory.server_time_ms()
    except (*UNAVAILABLE, ValueError, KeyError):
        return None
    if found is None or found["by"] != request.user.get_username():
        return None
    left = staged.UNDO_WINDOW_MS - (now - found["at"])
    if left <= 0:
        return None
    return {
        "pattern_id": last["pattern_id"],
        "name": found["pattern"].get("name", ""),
        "past": past(found["decision"]),
        "left_ms": left,
        "left_s": (left + 999) // 1000,
    }


def _nothing_to_undo(pattern_id: str) -> Outcome:
    return Outcome(pattern_id, False, f"There is no recent decision on {pattern_id} to undo.", 409)


def _write_down(
    request: HttpRequest, pattern: StagedPattern, ttl_ms: int, previous: dict[str, Any]
) -> None:
    """The library row leaves (for an approval) and the audit entry is written, in one
    transaction."""
    before = {
        "state": previous["decision"],
        "by": previous["by"],
        "reason": previous["reason"],
        "decided_at": datetime.fromtimestamp(previous["at"] / 1000, tz=UTC).isoformat(),
    }
    with transaction.atomic():
        if previous["decision"] == PROMOTED:
            row = PromotedPattern.objects.filter(pattern_id=pattern.pattern_id).first()
            before["library_id"] = row.pk if row else None
            if row is not None:
                row.delete()
        after = staged_state(pattern, ttl_ms)
        record(
            request, "pattern.undo", pattern.pattern_id, team=pattern.team, reason="",
            before=before, after=after,
        )  # fmt: skip


def _decide_again(
    caller: Caller, pattern_id: str, previous: dict[str, Any], exc: DatabaseError
) -> Outcome:
    """The database refused the undo, so the library row (if any) is still there: the
    decision stands again in Redis too."""
    was = previous["decision"]
    try:
        staged.decide(get_memory(), caller, pattern_id, was, previous["reason"])
    except (ShortTermMemoryError, *UNAVAILABLE) as again:
        message = (
            f"The undo of {pattern_id} went half-way: it is staged again, but the "
            f"database refused the rest ({exc}), and re-deciding failed ({again})."
        )
        return Outcome(pattern_id, False, message, 500)
    message = f"Could not undo {pattern_id}: the database refused it ({exc}). It stays {past(was)}."
    return Outcome(pattern_id, False, message, 500)


def undo(request: HttpRequest, pattern_id: str) -> Outcome:
    """Undo the requesting validator's own decision on ``pattern_id``, within the window:
    the pattern is staged again with the TTL it had left; an approval leaves the library."""
    viewer = caller_for(request)
    previous = staged.decision(get_memory(), viewer, pattern_id)
    if previous is None or not viewer.sees(previous["pattern"].get("team")):
        return _nothing_to_undo(pattern_id)
    caller = viewer.acting_in(previous["pattern"].get("team"), VALIDATE, "Undoing a decision")
    try:
        pattern, ttl_ms = staged.restore(get_memory(), caller, pattern_id)
    except NotFound:
        return _nothing_to_undo(pattern_id)
    except StateConflict as exc:  # someone else's decision, or too late
        return Outcome(pattern_id, False, f"Cannot undo: {exc}.", 409)
    try:
        _write_down(request, pattern, ttl_ms, previous)
    except DatabaseError as exc:
        logger.error("undo of %s restaged it but the database refused: %s", pattern_id, exc)
        return _decide_again(caller, pattern_id, previous, exc)
    told = tell_agent(caller, pattern_id, pattern.agent_id, "undone", "")
    message = f"Undone: {pattern.name} ({pattern_id}) is back in staging."
    return Outcome(pattern_id, True, message, decision="undone", agent_told=told)
