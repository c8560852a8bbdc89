"""What people can do from the dashboard. POST only; each action goes through the
library as the person (their username, and their tier in the record's team) and is
written to the audit trail. Anyone with a tier may ask: the record's team then answers,
404 for a team they are not in (as if it were not there), 403 below the tier it needs."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from empathy_web.accounts.teams import caller_for, tier_required
from empathy_web.library.audit import record
from memory import AgentCoordinator, AgentTask, NotFound, StateConflict, TeamSession
from memory.codec import check_id
from memory.registry import agent_teams_of
from memory.sessions import get_session
from memory.signals import send
from memory.tiers import ADMIN, READ, WRITE, AccessTier, Caller

from . import views
from .agents_memory import coordinator_for, empathy_for, get_memory, session_for
from .forms import AddTaskForm, SendSignalForm, ShareForm


def _invalid(form, exc: Exception, render: Callable[..., HttpResponse], *args) -> HttpResponse:
    form.add_error(None, str(exc))
    return render(*args, form=form, status=400)


@require_POST
@tier_required(READ)
def add_task(request: HttpRequest) -> HttpResponse:
    person = _acting(request, request.POST.get("team_id", ""), WRITE, "Queueing a task")
    form = AddTaskForm(request.POST)
    if not form.is_valid():
        return views.render_tasks(request, form=form, status=400)
    data = form.cleaned_data
    task = AgentTask(data["task_id"], data["task_type"], data["description"], data["priority"])
    try:
        added = coordinator_for(person, data["team_id"]).add_task(task)
    except (ValueError, TypeError) as exc:
        return _invalid(form, exc, views.render_tasks, request)
    if added:
        target = f"{data['team_id']}/{data['task_id']}"
        record(request, "task.add", target, team=data["team_id"], **data)
        messages.success(request, f"Task {data['task_id']} queued in {data['team_id']}.")
    else:
        messages.warning(request, f"Task {data['task_id']} already exists; nothing changed.")
    return _to_team(data["team_id"])


@require_POST
@tier_required(READ)
def send_signal(request: HttpRequest) -> HttpResponse:
    person = _acting(request, request.POST.get("team", ""), WRITE, "Sending a signal")
    form = SendSignalForm(request.POST)
    if not form.is_valid():
        return views.render_signals(request, form=form, status=400)
    data = form.cleaned_data
    team = data["team"] or None
    try:
        sent = send(
            get_memory(), person, data["signal_type"], data["data"], data["target_agent"] or None,
            team=team,
        )  # fmt: skip
    except (ValueError, TypeError) as exc:
        return _invalid(form, exc, views.render_signals, request)
    record(request, "signal.send", data["target_agent"] or "*", signal_id=sent["id"], **data)
    messages.success(request, f"Signal {data['signal_type']} sent.")
    return HttpResponseRedirect(reverse("signals"))


@require_POST
@tier_required(READ)
def share(request: HttpRequest, session_id: str) -> HttpResponse:
    session, team = _session(request, session_id, WRITE, "Sharing with a session")
    form = ShareForm(request.POST)
    if not form.is_valid():
        return views.render_session(request, session_id, form=form, status=400)
    try:
        if session is None:
            raise NotFound(f"no session {session_id} (never created, expired or deleted)")
        session.share(form.cleaned_data["key"], form.cleaned_data["value"])
    except NotFound as exc:
        messages.error(request, str(exc))
        return HttpResponseRedirect(reverse("sessions"))
    except (ValueError, TypeError) as exc:
        return _invalid(form, exc, views.render_session, request, session_id)
    record(request, "session.share", session_id, team=team, key=form.cleaned_data["key"])
    messages.success(request, f"Shared {form.cleaned_data['key']} with the session.")
    return HttpResponseRedirect(reverse("session_detail", args=[session_id]))


@require_POST
@tier_required(READ)
def task_action(request: HttpRequest, team_id: str, task_id: str, action: str) -> HttpResponse:
    coordinator = _coordinator(request, team_id, ADMIN, "Requeueing or cancelling a task")
    if action not in ("requeue", "cancel"):
        raise Http404(f"No task action {action!r}.")
    try:
        if action == "requeue":
            coordinator.requeue_task(task_id)
        else:
            coordinator.cancel_task(task_id)
    except (NotFound, StateConflict) as exc:
        messages.error(request, str(exc))
    else:
        record(request, f"task.{action}", f"{team_id}/{task_id}", team=team_id)
        messages.success(request, f"Task {task_id}: {action} done.")
    return _to_team(team_id)


@require_POST
@tier_required(READ)
def delete_session(request: HttpRequest, session_id: str) -> HttpResponse:
    session, team = _session(request, session_id, ADMIN, "Deleting a session")
    if session is not None and session.delete():
        record(request, "session.delete", session_id, team=team)
        messages.success(request, f"Session {session_id} deleted.")
    else:
        messages.warning(request, f"Session {session_id} was already gone.")
    return HttpResponseRedirect(reverse("sessions"))


@require_POST
@tier_required(READ)
def clear_memory(request: HttpRequest, agent_id: str) -> HttpResponse:
    teams = agent_teams_of(get_memory(), caller_for(request), [agent_id])[agent_id]
    person = caller_for(request).acting_in(teams, ADMIN, "Clearing working memory")
    count = empathy_for(person).clear_memory(agent_id)
    # (an agent in several teams: audited as org-wide, with its teams)
    team = teams[0] if len(teams) == 1 else None
    several = {"teams": teams} if len(teams) > 1 else {}
    record(request, "memory.clear", agent_id, team=team, keys=count, **several)
    messages.success(request, f"Cleared {count} keys of {agent_id}'s working memory.")
    return HttpResponseRedirect(reverse("working_memory"))


def _acting(request: HttpRequest, team: str, needed: AccessTier, action: str) -> Caller:
    """Who the person acts as in the team a form names (empty: org-wide), before the
    form is read: 404 for a team they are not in, 403 below ``needed``."""
    return caller_for(request).acting_in(team or None, needed, action)


def _to_team(team_id: str) -> HttpResponse:
    return HttpResponseRedirect(f"{reverse('tasks')}?{urlencode({'team': team_id})}")


def _coordinator(
    request: HttpRequest, team_id: str, needed: AccessTier, action: str
) -> AgentCoordinator:
    return coordinator_for(caller_for(request).acting_in(team_id, needed, action), team_id)


def _session(
    request: HttpRequest, session_id: str, needed: AccessTier, action: str
) -> tuple[TeamSession | None, str | None]:
    """The session as the person acts on it, with their tier in its team (404 for a
    team they are not in), and its team; None when it is gone."""
    viewer = caller_for(request)
    info = get_session(get_memory(), viewer, check_id(session_id, "session_id"))
    if info is None:
        return None, None
    return session_for(viewer.acting_in(info.team, needed, action), session_id), info.team
