"""Pattern triage pages: the staged-pattern queue, a pattern's detail, and the
validators' decisions (approve, reject, undo, bulk). Decisions are POST only, need the
validator tier (checked here and again by the library), and are written to the audit
trail."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from empathy_web.accounts.teams import Viewer, caller_for, tier_required
from empathy_web.dashboard.agents_memory import get_memory
from empathy_web.dashboard.views import render_panel_page
from memory import RedisShortTermMemory, StagedPattern
from memory import patterns as staged
from memory.codec import check_id
from memory.patterns import MAX_REASON_LENGTH
from memory.tiers import READ, VALIDATE

from . import bulk, decisions, undo
from .decisions import ACTIONS, Outcome
from .queue import PATTERN_QUERY
from .similarity import DUPLICATE_THRESHOLD, highlighted, nearest

# A queue URL's query is far shorter; the rest of a longer ``next`` is not the queue's.
MAX_NEXT = 2000


def queue_query(request: HttpRequest) -> dict[str, str]:
    """The queue's sort and filters the form came from (its ``next`` field), so a
    decision returns to the same view of the queue. Only known keys pass."""
    given = QueryDict(request.POST.get("next", "")[:MAX_NEXT])
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


def _reason(request: HttpRequest, name: str) -> str:
    return request.POST.get(name, "").strip()


@require_GET
@tier_required(READ)
def patterns(request: HttpRequest) -> HttpResponse:
    return render_panel_page(request, "pattern-queue")


def _told(request: HttpRequest, outcome: Outcome) -> HttpResponse:
    """Back to the queue saying what happened, or the queue again with what went wrong."""
    if not outcome.ok:
        return queue_with_error(request, outcome.message, outcome.status)
    messages.success(request, outcome.message)
    if not outcome.agent_told:
        messages.warning(request, "The agent that staged it could not be signalled.")
    return back_to_queue(request)


@require_POST
@tier_required(READ)
def pattern_action(request: HttpRequest, pattern_id: str, action: str) -> HttpResponse:
    _may_decide(caller_for(request), check_id(pattern_id, "pattern_id"))
    if action not in (*ACTIONS, "undo"):
        raise Http404(f"No pattern action {action!r}.")
    if action == "undo":
        outcome = undo.undo(request, pattern_id)
        if outcome.ok:
            undo.forget(request)
        return _told(request, outcome)
    reason = _reason(request, "reason" if action == "reject" else "note")
    if action == "reject" and not reason:
        return queue_with_error(request, f"Rejecting {pattern_id} needs a reason.", 400)
    if len(reason) > MAX_REASON_LENGTH:
        message = f"A reason or note may be {MAX_REASON_LENGTH} characters at most."
        return queue_with_error(request, message, 400)
    outcome = decisions.decide(
        decisions.Decider.of_request(request), pattern_id, ACTIONS[action], reason
    )
    if outcome.ok:
        undo.remember(request, outcome)
    return _told(request, outcome)


def _may_decide(viewer: Viewer, pattern_id: str) -> None:
    """Before anything else: 404 for a pattern (staged or decided) of a team they are
    not in, 403 below the validator tier there (or anywhere, for no such pattern)."""
    memory = get_memory()
    pattern = staged.get_staged(memory, viewer, pattern_id)
    if pattern is None:
        done = staged.decision(memory, viewer, pattern_id)
        if done is None:
            if viewer.highest < VALIDATE:
                raise PermissionDenied("Deciding patterns needs the validator tier.")
            return
        team = done["pattern"].get("team")
    else:
        team = pattern.team
    viewer.acting_in(team, VALIDATE, "Deciding a pattern")


@require_POST
@tier_required(VALIDATE)
def pattern_bulk(request: HttpRequest) -> HttpResponse:
    """Approve or reject the selected patterns with one reason."""
    action = request.POST.get("action", "")
    ids = list(dict.fromkeys(request.POST.getlist("pattern_id")))
    reason = _reason(request, "reason")
    problem = bulk.problem(action, ids, reason)
    if problem is not None:
        return queue_with_error(request, problem, 400)
    outcomes = bulk.decide_all(request, ids, ACTIONS[action], reason)
    bulk.report(request, ACTIONS[action], outcomes)
    undo.forget(request)
    return back_to_queue(request)


def _decided(memory: RedisShortTermMemory, viewer: Viewer, pattern_id: str) -> dict[str, Any]:
    """How a pattern that left staging was decided; 404 when it was not (it expired), or
    when it was a team's they are not in."""
    found = staged.decision(memory, viewer, pattern_id)
    if found is None or not viewer.sees(found["pattern"].get("team")):
        raise Http404(f"No staged pattern {pattern_id}: it expired, or never existed.")
    return {
        **found,
        "past": decisions.past(found["decision"]),
        "ago": decisions.describe_decision(viewer, pattern_id),
    }


def _staged(memory: RedisShortTermMemory, viewer: Viewer, pattern: StagedPattern) -> dict[str, Any]:
    """What a validator needs to decide on a staged pattern: its provenance, its code
    coloured, and the library's nearest patterns."""
    [ttl_ms] = staged.staged_ttl_ms(memory, viewer, [pattern.pattern_id])
    language = pattern.context.get("language")
    language = language if isinstance(language, str) else None
    session = pattern.session_id or pattern.context.get("session_id")
    matches = nearest(pattern)
    return {
        "ttl_ms": ttl_ms,
        "teams": [pattern.team] if pattern.team else [],
        "pattern_tier": viewer.tier_for(pattern.team),
        "session": session if isinstance(session, str) else None,
        "code_html": highlighted(pattern.code, language=language) if pattern.code else None,
        "matches": matches,
        "likely_duplicate": bool(matches) and matches[0].likely_duplicate,
        "threshold": DUPLICATE_THRESHOLD,
        "max_reason_length": MAX_REASON_LENGTH,
    }


@require_GET
@tier_required(READ)
def pattern_detail(request: HttpRequest, pattern_id: str) -> HttpResponse:
    memory = get_memory()
    check_id(pattern_id, "pattern_id")
    viewer = caller_for(request)
    pattern = staged.get_staged(memory, viewer, pattern_id)
    if pattern is not None and not viewer.sees(pattern.team):
        raise Http404(f"No staged pattern {pattern_id}: it expired, or never existed.")
    context: dict[str, Any] = {"pattern_id": pattern_id, "pattern": pattern}
    if pattern is None:
        context["decided"] = _decided(memory, viewer, pattern_id)
    else:
        context.update(_staged(memory, viewer, pattern))
    return render(request, "triage/pattern_detail.html", context)
