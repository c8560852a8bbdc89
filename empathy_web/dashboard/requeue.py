"""A steward's requeue of a team's dead-lettered tasks: all of them, or those of one type
or failure reason. GET asks to confirm, saying how many match; POST requeues them, each
on its own and audited under one batch id."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods

from empathy_web.accounts.teams import caller_for, tier_required
from empathy_web.library.audit import record
from memory.codec import check_id
from memory.tiers import ADMIN, READ

from . import dead_letters
from .agents_memory import coordinator_for


@require_http_methods(["GET", "POST"])
@tier_required(READ)
def requeue_dead(request: HttpRequest, team_id: str) -> HttpResponse:
    person = caller_for(request).acting_in(
        check_id(team_id, "team"), ADMIN, "Requeueing dead-lettered tasks"
    )
    coordinator = coordinator_for(person, team_id)
    source = request.POST if request.method == "POST" else request.GET
    task_type, reason = dead_letters.filters(source)
    if request.method == "GET":
        found = dead_letters.matching(coordinator, task_type, reason, dead_letters.REQUEUE_AT_MOST)
        context = {
            "team_id": team_id,
            "task_type": task_type,
            "reason": reason,
            "found": found,
            "at_most": dead_letters.REQUEUE_AT_MOST,
        }
        return render(request, "dashboard/requeue_dead.html", context)
    done, failed, more = dead_letters.requeue_matching(coordinator, task_type, reason)
    batch = uuid.uuid4().hex[:12]
    for task_id in done:
        record(request, "task.requeue", f"{team_id}/{task_id}", team=team_id, batch=batch)
    _report(request, team_id, done, failed, more)
    query = {"team": team_id, "status": "dead", "dead_type": task_type, "dead_reason": reason}
    return HttpResponseRedirect(f"{reverse('tasks')}?{urlencode(query)}")


def _report(
    request: HttpRequest, team_id: str, done: list[str], failed: dict[str, str], more: bool
) -> None:
    if done:
        messages.success(request, f"Requeued {len(done)} dead-lettered tasks of {team_id}.")
    else:
        messages.warning(request, "No dead-lettered task matched; nothing was requeued.")
    for task_id, why in failed.items():
        messages.error(request, f"Not requeued: {task_id}: {why}")
    if more:
        messages.info(request, "More dead-lettered tasks may match: requeue again for the rest.")
