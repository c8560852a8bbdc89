"""Whole values: the pages that "show all" of a value that lists and live panels cut to
an excerpt (signal data, a task's description, context and result, a working-memory
value, a session's shared value). Each is a plain page, never a live frame, so a value
of up to the library's 1 MiB limit is shown whole.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from empathy_web.accounts.teams import Viewer, caller_for, tier_required
from empathy_web.accounts.tiers import may_read_memory_of
from memory import InvalidValue
from memory.codec import check_id, check_key
from memory.registry import agent_teams_of
from memory.sessions import get_session
from memory.signals import get_signal
from memory.tiers import READ
from memory.working import retrieve

from .agents_memory import coordinator_for, get_memory, session_for
from .templatetags.dashboard import as_json

TEMPLATE = "dashboard/value.html"


def _checked(check: Any, value: str, what: str) -> str:
    """``value`` if the library would accept it as ``what``, else a 404."""
    try:
        return check(value)
    except InvalidValue:
        raise Http404(f"No such {what}.") from None


def _keyed(request: HttpRequest, owner: str, what: str) -> tuple[Viewer, str, str]:
    """The viewer, the checked id of the value's ``owner`` and the ``?key=``."""
    owner = _checked(check_id, owner, what)
    return caller_for(request), owner, _checked(check_key, request.GET.get("key", ""), "key")


def _page(
    request: HttpRequest, title: str, facts: dict[str, Any], values: dict[str, Any]
) -> HttpResponse:
    """``facts`` are short (shown as they are); ``values`` are shown whole: text as it
    is, anything else as JSON."""
    whole = {name: v if isinstance(v, str) else as_json(v) for name, v in values.items()}
    return render(request, TEMPLATE, {"title": title, "facts": facts, "values": whole})


@require_GET
@tier_required(READ)
def signal_value(request: HttpRequest, signal_id: str) -> HttpResponse:
    try:
        signal = get_signal(get_memory(), caller_for(request), signal_id)
    except InvalidValue:
        signal = None
    if signal is None:
        raise Http404("No such signal: it never existed or has expired.")
    caller_for(request).seeing(signal.get("team"))
    facts = {
        "type": signal["signal_type"],
        "from": signal["sender"],
        "to": signal.get("target") or "everyone",
        "team": signal.get("team"),
        "session": signal.get("session_id"),
        "sent at": datetime.fromtimestamp(signal["timestamp"], tz=UTC),
    }
    return _page(request, f"Signal {signal_id}", facts, {"data": signal["data"]})


@require_GET
@tier_required(READ)
def task_value(request: HttpRequest, team_id: str, task_id: str) -> HttpResponse:
    team_id = _checked(check_id, team_id, "team")
    task_id = _checked(check_id, task_id, "task")
    task = coordinator_for(caller_for(request).seeing(team_id), team_id).get_task(task_id)
    if task is None:
        raise Http404("No such task: it never existed, or its result has expired.")
    facts = {
        "team": team_id,
        "type": task.task_type,
        "status": task.status,
        "priority": task.priority,
        "attempts": task.attempts,
        "holder": task.claimed_by,
    }
    values = {"description": task.description, "context": task.context, "result": task.result}
    return _page(request, f"Task {task_id}", facts, values)


@require_GET
@tier_required(READ)
def memory_value(request: HttpRequest, agent_id: str) -> HttpResponse:
    viewer, agent_id, key = _keyed(request, agent_id, "agent")
    viewer.seeing(agent_teams_of(get_memory(), viewer, [agent_id])[agent_id])
    if not may_read_memory_of(viewer, agent_id):
        raise Http404("No such value.")
    value = retrieve(get_memory(), viewer, key, agent_id)
    if value is None:
        raise Http404("No such key: it never existed or has expired.")
    return _page(request, f"{agent_id}: {key}", {"agent": agent_id, "key": key}, {"value": value})


@require_GET
@tier_required(READ)
def session_value(request: HttpRequest, session_id: str) -> HttpResponse:
    viewer, session_id, key = _keyed(request, session_id, "session")
    info = get_session(get_memory(), viewer, session_id)
    if info is None:
        raise Http404("No such session: it never existed, expired or was deleted.")
    viewer.seeing(info.team)
    value = session_for(viewer, session_id).get(key)
    if value is None:
        raise Http404("Nothing is shared under that key.")
    facts = {"session": session_id, "key": key}
    return _page(request, f"Session {session_id}: {key}", facts, {"value": value})
