"""Deciding staged patterns from the web.

The library's atomic script picks the one winner when validators race on a pattern.
Only the winner writes the library row and the audit entry, in one database transaction
right after; if that write fails, the pattern goes back to staging (the same undo a
person gets) and the validator is told. The agent that staged the pattern then gets a
``pattern_decided`` signal. Every result comes back as an ``Outcome``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import DatabaseError, transaction
from django.http import HttpRequest

from empathy_web.accounts.teams import Viewer, caller_for
from empathy_web.dashboard.agents_memory import UNAVAILABLE, get_memory
from empathy_web.library.audit import write
from empathy_web.library.models import PromotedPattern
from memory import AlreadyDecided, NotFound, ShortTermMemoryError, StagedPattern
from memory import patterns as staged
from memory.signals import send
from memory.tiers import VALIDATE, Caller

logger = logging.getLogger("empathy_web.decisions")

PROMOTED, REJECTED = "promoted", "rejected"
VERBS = {PROMOTED: "approve", REJECTED: "reject"}
ACTIONS = {verb: decision for decision, verb in VERBS.items()}  # as URLs and forms say them
PAST = {PROMOTED: "approved", REJECTED: "rejected"}
# A pattern the database could not take goes back to staging; that undo may come a
# while after the decision when the database was slow to fail.
PUT_BACK_WINDOW_MS = 5 * 60_000


@dataclass(frozen=True)
class Decider:
    """Who decides: a validator person (``user``) or a validator agent's credential
    (``user`` None), as the library, the library row and the audit log see them."""

    caller: Caller
    user: AbstractBaseUser | None
    name: str
    viewer: Viewer | None = None  # their teams, and their tier in each

    @classmethod
    def of_request(cls, request: HttpRequest) -> Decider:
        viewer = caller_for(request)
        return cls(viewer, request.user, request.user.get_username(), viewer)

    def on(self, pattern_id: str, team: str | None) -> Caller | Outcome:
        """Who decides a pattern of ``team``: a person with their tier there; or why
        they may not (a team they are not in: as if it were not staged)."""
        if self.viewer is None:
            return self.caller
        if not self.viewer.sees(team):
            return _not_staged(pattern_id)
        if not self.viewer.may(VALIDATE, team):
            where = f"team {team}" if team else "org-wide patterns"
            return Outcome(pattern_id, False, f"Deciding needs the validator tier in {where}.", 403)
        return Caller(self.name, self.viewer.tier_for(team))

    @classmethod
    def of_agent(cls, caller: Viewer) -> Decider:
        """A validator agent, by its credential: its tier in its teams."""
        return cls(caller, None, caller.user_id, caller)

    def approver(self) -> dict[str, Any]:
        """The library row's fields that say who approved it."""
        if self.user is None:
            return {"promoted_by": None, "promoted_by_agent": self.name}
        return {"promoted_by": self.user}


@dataclass
class Outcome:
    pattern_id: str
    ok: bool
    message: str
    status: int = 200  # for a failure: 404 gone, 409 conflict, 500 not saved
    decision: str | None = None
    agent_told: bool = True
    pattern: StagedPattern | None = None  # the pattern decided, when it was


def past(decision: str) -> str:
    """``decision`` as a verb in the past tense ("approved")."""
    return PAST.get(decision, decision)


def _ago(at_ms: int, now_ms: int) -> str:
    seconds = max(0, (now_ms - at_ms) // 1000)
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def describe_decision(viewer: Caller, pattern_id: str) -> str:
    """Who decided ``pattern_id``, what, and when, as a sentence (for the loser of a race)."""
    memory = get_memory()
    found = staged.decision(memory, viewer, pattern_id)
    if found is None:
        return f"Pattern {pattern_id} was already decided by someone else."
    text = (
        f"Pattern {pattern_id} was already {past(found['decision'])} by {found['by']} "
        f"{_ago(found['at'], memory.server_time_ms())}"
    )
    if found["reason"]:
        text += f" ({'note' if found['decision'] == PROMOTED else 'reason'}: {found['reason']})"
    return text + "."


def staged_state(pattern: StagedPattern, ttl_ms: int) -> dict[str, Any]:
    """A staged pattern as the audit trail keeps it, before a decision or after an undo;
    a negative ``ttl_ms`` (Redis's "no TTL" or "no key") is kept as None."""
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
    return {"state": "staged", "ttl_ms": ttl_ms if ttl_ms >= 0 else None, "pattern": fields}


def tell_agent(caller: Caller, pattern_id: str, agent_id: str, outcome: str, reason: str) -> bool:
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


def _in_library(pattern_id: str) -> Outcome | None:
    """The refusal to approve a pattern the library holds already, if it does."""
    existing = (
        PromotedPattern.objects.select_related("promoted_by").filter(pattern_id=pattern_id).first()
    )
    if existing is None:
        return None
    message = (
        f"Pattern {pattern_id} is in the library already (approved by {existing.approver} on "
        f"{existing.promoted_at:%Y-%m-%d %H:%M}); reject this one as a duplicate."
    )
    return Outcome(pattern_id, False, message, 409)


def _take(
    caller: Caller, pattern_id: str, decision: str, reason: str, team: str | None
) -> StagedPattern | Outcome:
    """Decide in Redis, if it is still a pattern of ``team``: the pattern that left
    staging, or why it could not."""
    try:
        return staged.decide(get_memory(), caller, pattern_id, decision, reason, team=team)
    except AlreadyDecided:
        return Outcome(pattern_id, False, describe_decision(caller, pattern_id), 409)
    except NotFound:
        return _not_staged(pattern_id)


def _gone(decider: Decider, pattern_id: str) -> Outcome:
    """Why a pattern that is not staged cannot be decided: someone decided it (when it
    was a pattern of the decider's teams), else it is not there."""
    done = staged.decision(get_memory(), decider.caller, pattern_id)
    if done is None or (decider.viewer and not decider.viewer.sees(done["pattern"].get("team"))):
        return _not_staged(pattern_id)
    return Outcome(pattern_id, False, describe_decision(decider.caller, pattern_id), 409)


def _not_staged(pattern_id: str) -> Outcome:
    message = f"Pattern {pattern_id} is not staged: it expired, or never existed."
    return Outcome(pattern_id, False, message, 404)


def _write_down(
    decider: Decider, caller: Caller, pattern: StagedPattern, decision: str, details: dict[str, Any]
) -> None:
    """The library row (for an approval) and the audit entry, in one transaction."""
    batch, reason = details.get("batch"), details["reason"]
    action = f"pattern.{'bulk_' if batch else ''}{VERBS[decision]}"
    with transaction.atomic():
        if decision == PROMOTED:
            row = PromotedPattern.from_staged(pattern, note=reason, **decider.approver())
            row.save(force_insert=True)
            details["after"] = {"state": PROMOTED, "library_id": row.pk, "note": reason}
        else:
            details["after"] = {"state": REJECTED, "reason": reason}
        tier = caller.tier_name  # the tier they decided with: theirs in its team
        target = pattern.pattern_id
        write(decider.user, decider.name, tier, action, target, details, team=pattern.team)


def decide(
    decider: Decider,
    pattern_id: str,
    decision: str,
    reason: str = "",
    *,
    batch: str | None = None,
) -> Outcome:
    """Approve (``promoted``) or reject one staged pattern as the deciding validator."""
    assert decision in (PROMOTED, REJECTED)
    found = staged.get_staged(get_memory(), decider.caller, pattern_id)
    if found is None:
        return _gone(decider, pattern_id)
    caller = decider.on(pattern_id, found.team)
    if isinstance(caller, Outcome):
        return caller
    refused = _in_library(pattern_id) if decision == PROMOTED else None
    if refused is not None:
        return refused
    [ttl_ms] = staged.staged_ttl_ms(get_memory(), caller, [pattern_id])
    pattern = _take(caller, pattern_id, decision, reason, found.team)
    if isinstance(pattern, Outcome):
        return pattern
    details: dict[str, Any] = {"reason": reason, "before": staged_state(pattern, ttl_ms)}
    if batch:
        details["batch"] = batch
    try:
        _write_down(decider, caller, pattern, decision, details)
    except DatabaseError as exc:
        logger.error("pattern %s decided in Redis but not saved: %s", pattern_id, exc)
        message = (
            f"Pattern {pattern_id} could not be {PAST[decision]}: the database refused it "
            f"({exc}). {_put_back(caller, pattern_id)}"
        )
        return Outcome(pattern_id, False, message, 500)
    told = tell_agent(caller, pattern_id, pattern.agent_id, decision, reason)
    message = f"{PAST[decision].capitalize()} {pattern.name} ({pattern_id})."
    return Outcome(pattern_id, True, message, decision=decision, agent_told=told, pattern=pattern)
