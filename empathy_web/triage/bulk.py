"""Bulk decisions: the selected patterns approved or rejected with one reason. Each is
decided on its own, atomically, so some may fail while the rest go through; the result
says which did. One batch id ties their audit entries together."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import HttpRequest

from memory.codec import check_id
from memory.patterns import MAX_REASON_LENGTH

from . import decisions
from .decisions import Outcome

MAX_BULK = 100


def problem(action: str, ids: list[str], reason: str) -> str | None:
    """What is wrong with the bulk form, or None; every id must be valid before any
    pattern is decided (``check_id`` raises for one that is not)."""
    if action not in decisions.ACTIONS:
        return "Choose to approve or to reject the selected patterns."
    if not ids:
        return "Select at least one pattern."
    if len(ids) > MAX_BULK:
        return f"Select at most {MAX_BULK} patterns at a time."
    if action == "reject" and not reason:
        return "Rejecting needs a reason."
    if len(reason) > MAX_REASON_LENGTH:
        return f"A reason may be {MAX_REASON_LENGTH} characters at most."
    for pattern_id in ids:
        check_id(pattern_id, "pattern_id")
    return None


def decide_all(request: HttpRequest, ids: list[str], decision: str, reason: str) -> list[Outcome]:
    batch = uuid.uuid4().hex[:12]
    decider = decisions.Decider.of_request(request)
    return [decisions.decide(decider, i, decision, reason, batch=batch) for i in ids]


def report(request: HttpRequest, decision: str, outcomes: list[Outcome]) -> None:
    """Say which patterns were decided and why the others were not."""
    done = [o for o in outcomes if o.ok]
    what = decisions.PAST[decision]
    if done:
        names = ", ".join(o.pattern_id for o in done)
        messages.success(request, f"{what.capitalize()} {len(done)} of {len(outcomes)}: {names}.")
    for outcome in outcomes:
        if not outcome.ok:
            messages.error(request, f"Not {what}: {outcome.message}")
    if any(not o.agent_told for o in done):
        messages.warning(request, "Some agents could not be signalled about the decision.")
