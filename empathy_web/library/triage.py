"""Pattern triage pages: a staged pattern's detail, and the validators' decisions
(approve, reject, undo, bulk). Decisions are POST only, need the validator tier (checked
here and again by the library), and are written to the audit trail."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from empathy_web.accounts.tiers import tier_required
from empathy_web.dashboard.agents_memory import get_memory
from empathy_web.dashboard.views import render_panel_page, viewer
from memory import AccessTier
from memory import patterns as staged
from memory.codec import check_id

from . import decisions
from .decisions import MAX_REASON, PROMOTED, REJECTED
from .queue import PATTERN_QUERY, pattern_teams
from .similarity import DUPLICATE_THRESHOLD, highlighted, nearest

READ = AccessTier.OBSERVER
VALIDATE = AccessTier.VALIDATOR
ACTIONS = {"approve": PROMOTED, "reject": REJECTED}
MAX_BULK = 100


def queue_query(request: HttpRequest) -> dict[str, str]:
    """The queue's sort and filters the form came from (its ``next`` field), so a
    decision returns to the same view of the queue. Only known keys pass."""
    given = QueryDict(request.POST.get("next", "")[:2000])
    return {key: given[key] for key in PATTERN_QUERY if given.get(key)}


def back_to_queue(request: HttpRequest) -> HttpResponseRedirect:
    query = queue_query(request)
    url = reverse("patterns")
    return HttpResponseRedirect(f"{url}?{urlencode(query)}" if query else url)


def queue_with_error(request: HttpRequest, message: str, status: int) -> HttpResponse:
    """The queue again, saying what went wrong, with a status that says it too."""
    return render_panel_page(
        request, "pattern-queue", queue_query(request), status=status, error=message
    )


def remember(request: HttpRequest, outcome: decisions.Outcome) -> None:
    """Your last single decision, which the queue offers to undo while it can."""
    request.session["last_decision"] = {
        "pattern_id": outcome.pattern_id,
        "decision": outcome.decision,
    }


def _reason(request: HttpRequest, name: str) -> str:
    return request.POST.get(name, "").strip()


@require_POST
@tier_required(VALIDATE)
def pattern_action(request: HttpRequest, pattern_id: str, action: str) -> HttpResponse:
    if action not in (*ACTIONS, "undo"):
        raise Http404(f"No pattern action {action!r}.")
    check_id(pattern_id, "pattern_id")
    if action == "undo":
        outcome = decisions.undo(request, pattern_id)
        if outcome.ok:
            request.session.pop("last_decision", None)
    else:
        reason = _reason(request, "reason" if action == "reject" else "note")
        if action == "reject" and not reason:
            return queue_with_error(request, f"Rejecting {pattern_id} needs a reason.", 400)
        if len(reason) > MAX_REASON:
            return queue_with_error(
                request, f"A reason or note may be {MAX_REASON} characters at most.", 400
            )
        outcome = decisions.decide(request, pattern_id, ACTIONS[action], reason)
        if outcome.ok:
            remember(request, outcome)
    if not outcome.ok:
        return queue_with_error(request, outcome.message, outcome.status)
    messages.success(request, outcome.message)
    if not outcome.agent_told:
        messages.warning(request, "The agent that staged it could not be signalled.")
    return back_to_queue(request)


@require_POST
@tier_required(VALIDATE)
def pattern_bulk(request: HttpRequest) -> HttpResponse:
    """Approve or reject the selected patterns with one reason; each is decided on its
    own, atomically, and the result lists which ones were."""
    action = request.POST.get("action", "")
    ids = list(dict.fromkeys(request.POST.getlist("pattern_id")))
    reason = _reason(request, "reason")
    problem = None
    if action not in ACTIONS:
        problem = "Choose to approve or to reject the selected patterns."
    elif not ids:
        problem = "Select at least one pattern."
    elif len(ids) > MAX_BULK:
        problem = f"Select at most {MAX_BULK} patterns at a time."
    elif action == "reject" and not reason:
        problem = "Rejecting needs a reason."
    elif len(reason) > MAX_REASON:
        problem = f"A reason may be {MAX_REASON} characters at most."
    if problem is None:
        for pattern_id in ids:
            check_id(pattern_id, "pattern_id")  # all valid before any is decided
    if problem is not None:
        return queue_with_error(request, problem, 400)

    batch = uuid.uuid4().hex[:12]
    outcomes = [decisions.decide(request, i, ACTIONS[action], reason, batch=batch) for i in ids]
    done = [o for o in outcomes if o.ok]
    failed = [o for o in outcomes if not o.ok]
    past = decisions.PAST[ACTIONS[action]]
    if done:
        messages.success(
            request,
            f"{past.capitalize()} {len(done)} of {len(outcomes)}: "
            + ", ".join(o.pattern_id for o in done)
            + ".",
        )
    for outcome in failed:
        messages.error(request, f"Not {past}: {outcome.message}")
    if any(not o.agent_told for o in done):
        messages.warning(request, "Some agents could not be signalled about the decision.")
    request.session.pop("last_decision", None)
    return back_to_queue(request)


@require_GET
@tier_required(READ)
def pattern_detail(request: HttpRequest, pattern_id: str) -> HttpResponse:
    memory = get_memory()
    check_id(pattern_id, "pattern_id")
    pattern = staged.get_staged(memory, viewer(request), pattern_id)
    context: dict[str, Any] = {"pattern_id": pattern_id, "pattern": pattern}
    if pattern is None:
        found = staged.decision(memory, pattern_id)
        if found is None:
            raise Http404(f"No staged pattern {pattern_id}: it expired, or never existed.")
        context["decided"] = {
            **found,
            "past": decisions.PAST.get(found["decision"], found["decision"]),
            "ago": decisions.describe_decision(pattern_id),
        }
        return render(request, "dashboard/pattern_detail.html", context)
    [ttl_ms] = staged.staged_ttl_ms(memory, [pattern_id])
    language = pattern.context.get("language")
    session = pattern.session_id or pattern.context.get("session_id")
    matches = nearest(pattern)
    context.update(
        ttl_ms=ttl_ms,
        teams=pattern_teams(memory, pattern),
        session=session if isinstance(session, str) else None,
        code_html=(
            highlighted(pattern.code, language=language if isinstance(language, str) else None)
            if pattern.code
            else None
        ),
        matches=matches,
        likely_duplicate=bool(matches) and matches[0].likely_duplicate,
        threshold=DUPLICATE_THRESHOLD,
        reason_max=MAX_REASON,
    )
    return render(request, "dashboard/pattern_detail.html", context)
