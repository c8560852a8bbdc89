"""Deciding staged patterns from the web.

The library's atomic script picks the one winner when validators race on a pattern.
Only the winner writes the library row and the audit entry, in one database transaction
right after; if that write fails, the pattern goes back to staging (the same undo an
person gets) and the validator is told. The agent that staged the pattern then gets a
``pattern_decided`` signal. Every result comes back as an ``Outcome``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import DatabaseError, transaction
from django.http import HttpRequest

from empathy_web.dashboard.agents_memory import UNAVAILABLE, get_memory
from memory import AlreadyDecided, NotFound, ShortTermMemoryError, StagedPattern, StateConflict
from memory import patterns as staged
from memory.signals import send
from memory.tiers import Caller

from .audit import record
from .models import PromotedPattern

logger = logging.getLogger("empathy_web.decisions")

PROMOTED, REJECTED = "promoted", "rejected"
VERBS = {PROMOTED: "approve", REJECTED: "reject"}
PAST = {PROMOTED: "approved", REJECTED: "rejected"}
MAX_REASON = 2000
# A pattern the database could not take goes back to staging; that undo may come a
# while after the decision when the database was slow to fail.
PUT_BACK_WINDOW_MS = 5 * 60_000


@dataclass
class Outcome:
    pattern_id: str
    ok: bool
    message: str
    status: int = 200  # for a failure: 404 gone, 409 conflict, 500 not saved
    decision: str | None = None
    agent_told: bool = True


def caller_for(request: HttpRequest) -> Caller:
    return Caller(request.user.get_username(), request.tier)


def _ago(at_ms: int, now_ms: int) -> str:
    seconds = max(0, (now_ms - at_ms) // 1000)
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def describe_decision(pattern_id: str) -> str:
    """Who decided ``pattern_id``, what, and when, as a sentence (for the loser of a race)."""
    memory = get_memory()
    found = staged.decision(memory, pattern_id)
    if found is None:
        return f"Pattern {pattern_id} was already decided by someone else."
    what = PAST.get(found["decision"], found["decision"])
    text = (
        f"Pattern {pattern_id} was already {what} by {found['by']} "
        f"{_ago(found['at'], memory.server_time_ms())}"
    )
    if found.get("reason"):
        text += f" ({'note' if found['decision'] == PROMOTED else 'reason'}: {found['reason']})"
    return text + "."


def _state(pattern: StagedPattern, ttl_ms: int | None) -> dict[str, Any]:
    fields = {
        "pattern_id": pattern.pattern_id,
        "agent_id": pattern.agent_id,
        "pattern_type": pattern.pattern_type,
        "name": pattern.name,
        "description": pattern.description,
        "code": pattern.code,
        "context": pattern.context,
        "confidence": pattern.confidence,
        "interests": pattern.interests,
        "team": pattern.team,
        "session_id": pattern.session_id,
        "staged_at": pattern.staged_at.isoformat() if pattern.staged_at else None,
    }
    return {"state": "staged", "ttl_ms": ttl_ms, "pattern": fields}


def _tell_agent(caller: Caller, pattern_id: str, agent_id: str, outcome: str, reason: str) -> bool:
    """Signal the agent that staged the pattern; a failure here does not undo anything."""
    data = {"pattern_id": pattern_id, "outcome": outcome, "reason": reason, "by": caller.user_id}
    try:
        send(get_memory(), caller, "pattern_decided", data, target_agent=agent_id)
    except (ShortTermMemoryError, *UNAVAILABLE, ValueError) as exc:
        logger.warning("could not signal %s about %s: %s", agent_id, pattern_id, exc)
        return False
    return True


def _put_back(caller: Caller, pattern_id: str) -> str:
    try:
        staged.restore(get_memory(), caller, pattern_id, window_ms=PUT_BACK_WINDOW_MS)
    except (ShortTermMemoryError, *UNAVAILABLE) as exc:
        logger.error("pattern %s decided but not saved, and not restaged: %s", pattern_id, exc)
        return (
            f"It could not be put back in staging either ({exc}); its decision record in "
            "Redis still holds it for a day."
        )
    return "It is back in staging, unchanged: try again."


def decide(
    request: HttpRequest,
    pattern_id: str,
    decision: str,
    reason: str = "",
    *,
    batch: str | None = None,
) -> Outcome:
    """Approve (``promoted``) or reject one staged pattern as the requesting validator."""
    assert decision in (PROMOTED, REJECTED)
    memory = get_memory()
    caller = caller_for(request)
    if decision == PROMOTED:
        existing = (
            PromotedPattern.objects.select_related("promoted_by")
            .filter(pattern_id=pattern_id)
            .first()
        )
        if existing is not None:
            who = existing.promoted_by.get_username() if existing.promoted_by else "someone"
            return Outcome(
                pattern_id,
                False,
                f"Pattern {pattern_id} is in the library already (approved by {who} on "
                f"{existing.promoted_at:%Y-%m-%d %H:%M}); reject this one as a duplicate.",
                409,
            )
    ttl_ms = staged.staged_ttl_ms(memory, [pattern_id])[0]
    try:
        pattern = staged.decide(memory, caller, pattern_id, decision, reason)
    except AlreadyDecided:
        return Outcome(pattern_id, False, describe_decision(pattern_id), 409)
    except NotFound:
        return Outcome(
            pattern_id,
            False,
            f"Pattern {pattern_id} is not staged: it expired, or never existed.",
            404,
        )

    verb = VERBS[decision]
    action = f"pattern.{'bulk_' if batch else ''}{verb}"
    before = _state(pattern, ttl_ms if ttl_ms >= 0 else None)
    details: dict[str, Any] = {"reason": reason, "before": before}
    if batch:
        details["batch"] = batch
    try:
        with transaction.atomic():
            if decision == PROMOTED:
                row = PromotedPattern.objects.create(
                    pattern_id=pattern.pattern_id,
                    name=pattern.name,
                    pattern_type=pattern.pattern_type,
                    description=pattern.description,
                    code=pattern.code or "",
                    confidence=pattern.confidence,
                    agent_id=pattern.agent_id,
                    context=pattern.context,
                    interests=pattern.interests,
                    team=pattern.team or "",
                    session_id=pattern.session_id or "",
                    staged_at=pattern.staged_at,
                    promoted_by=request.user,
                    note=reason,
                )
                details["after"] = {"state": PROMOTED, "library_id": row.pk, "note": reason}
            else:
                details["after"] = {"state": REJECTED, "reason": reason}
            record(request, action, pattern_id, **details)
    except DatabaseError as exc:
        logger.error("pattern %s decided in Redis but not saved: %s", pattern_id, exc)
        return Outcome(
            pattern_id,
            False,
            f"Pattern {pattern_id} could not be {PAST[decision]}: the database refused it "
            f"({exc}). {_put_back(caller, pattern_id)}",
            500,
        )
    told = _tell_agent(caller, pattern_id, pattern.agent_id, decision, reason)
    message = f"{PAST[decision].capitalize()} {pattern.name} ({pattern_id})."
    return Outcome(pattern_id, True, message, decision=decision, agent_told=told)


def undo(request: HttpRequest, pattern_id: str) -> Outcome:
    """Undo the requesting validator's own decision on ``pattern_id``, within the window:
    the pattern is staged again with the TTL it had left; an approval leaves the library."""
    memory = get_memory()
    caller = caller_for(request)
    previous = staged.decision(memory, pattern_id)
    try:
        pattern, ttl_ms = staged.restore(memory, caller, pattern_id)
    except NotFound:
        return Outcome(
            pattern_id, False, f"There is no recent decision on {pattern_id} to undo.", 409
        )
    except StateConflict as exc:  # someone else's decision, or too late
        return Outcome(pattern_id, False, f"Cannot undo: {exc}.", 409)
    was = previous["decision"] if previous else "?"
    before = {
        "state": was,
        "by": previous["by"] if previous else None,
        "reason": previous["reason"] if previous else "",
        "decided_at": (
            datetime.fromtimestamp(previous["at"] / 1000, tz=UTC).isoformat() if previous else None
        ),
    }
    try:
        with transaction.atomic():
            if was == PROMOTED:
                row = PromotedPattern.objects.filter(pattern_id=pattern_id).first()
                before["library_id"] = row.pk if row else None
                if row is not None:
                    row.delete()
            record(
                request,
                "pattern.undo",
                pattern_id,
                reason="",
                before=before,
                after=_state(pattern, ttl_ms),
            )
    except DatabaseError as exc:
        logger.error("undo of %s restaged it but the database refused: %s", pattern_id, exc)
        try:  # the library row (if any) is still there: the decision stands again
            staged.decide(memory, caller, pattern_id, was, previous["reason"] if previous else "")
        except (ShortTermMemoryError, *UNAVAILABLE) as again:
            return Outcome(
                pattern_id,
                False,
                f"The undo of {pattern_id} went half-way: it is staged again, but the "
                f"database refused the rest ({exc}), and re-deciding failed ({again}).",
                500,
            )
        return Outcome(
            pattern_id,
            False,
            f"Could not undo {pattern_id}: the database refused it ({exc}). "
            f"It stays {PAST.get(was, was)}.",
            500,
        )
    told = _tell_agent(caller, pattern_id, pattern.agent_id, "undone", "")
    return Outcome(
        pattern_id,
        True,
        f"Undone: {pattern.name} ({pattern_id}) is back in staging.",
        decision="undone",
        agent_told=told,
    )
