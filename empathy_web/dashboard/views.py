"""The dashboard's pages. Each reads Redis through the library, a page at a time."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from empathy_web.accounts.teams import caller_for, tier_required
from memory.exceptions import EvictionUnknown
from memory.registry import prune_teams
from memory.tiers import READ

from .agents_memory import UNAVAILABLE, get_memory
from .forms import AddTaskForm, SendSignalForm, ShareForm
from .fragments import render_new_signals, render_panels
from .panels import PANELS

logger = logging.getLogger("empathy_web")


def render_panel_page(
    request: HttpRequest,
    panel_name: str,
    params: Mapping[str, str] | None = None,
    status: int = 200,
    **extra: Any,
) -> HttpResponse:
    """Render the page that holds ``panel_name``, its panel built from ``params``
    (default: the query string), wired to receive the panel's live updates."""
    panel = PANELS[panel_name]
    params = request.GET.dict() if params is None else dict(params)
    context = panel.build(params, caller_for(request))
    live_query = urlencode({**params, "panels": panel_name})
    context.update(extra, live_panels=panel_name, live_query=live_query)
    return render(request, panel.template, context, status=status)


@require_GET
@tier_required(READ)
def live_poll(request: HttpRequest) -> HttpResponse:
    """The live fragments, for pages whose websocket cannot connect (polled every 5 s)."""
    params = request.GET.dict()
    names = [n for n in params.pop("panels", "").split(",") if n in PANELS]
    after = params.pop("after", None) or None
    csrf_token = get_token(request)
    html = render_panels(
        [n for n in names if n != "signal-feed"], params, caller_for(request), csrf_token
    )
    if "signal-feed" in names:
        html += render_new_signals(caller_for(request), after, params)[0]
    return HttpResponse(html)


@require_GET
@tier_required(READ)
def overview(request: HttpRequest) -> HttpResponse:
    # Now and then, teams with nothing left leave the index (a few per view, not per
    # live render); the overview and the tasks page list only teams in it.
    prune_teams(get_memory(), caller_for(request))
    return render_panel_page(request, "overview-panel")


@require_GET
@tier_required(READ)
def signals(request: HttpRequest) -> HttpResponse:
    return render_signals(request)


def render_signals(
    request: HttpRequest, form: SendSignalForm | None = None, status: int = 200
) -> HttpResponse:
    return render_panel_page(request, "signal-feed", status=status, form=form or SendSignalForm())


@require_GET
@tier_required(READ)
def tasks(request: HttpRequest) -> HttpResponse:
    return render_tasks(request)


def render_tasks(
    request: HttpRequest, form: AddTaskForm | None = None, status: int = 200
) -> HttpResponse:
    form = form or AddTaskForm(initial={"team_id": request.GET.get("team", "")})
    return render_panel_page(request, "task-board", status=status, form=form)


@require_GET
@tier_required(READ)
def agents(request: HttpRequest) -> HttpResponse:
    return render_panel_page(request, "agent-list")


@require_GET
@tier_required(READ)
def sessions(request: HttpRequest) -> HttpResponse:
    return render_panel_page(request, "session-list")


@require_GET
@tier_required(READ)
def session_detail(request: HttpRequest, session_id: str) -> HttpResponse:
    return render_session(request, session_id)


def render_session(
    request: HttpRequest, session_id: str, form: ShareForm | None = None, status: int = 200
) -> HttpResponse:
    params = {**request.GET.dict(), "session_id": session_id}
    return render_panel_page(
        request, "session-detail", params, status=status, form=form or ShareForm()
    )


@require_GET
@tier_required(READ)
def working_memory(request: HttpRequest) -> HttpResponse:
    return render_panel_page(request, "working-memory")


def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers."""
    return JsonResponse({"status": "ok"})


def readiness_problems() -> dict[str, tuple[str, str]]:
    """What keeps this process from serving: dependency -> (what anyone may be told,
    the detail for the log)."""
    problems = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any database failure makes us not ready
        problems["database"] = ("unavailable", str(exc))
    try:
        memory = get_memory()
        if not memory.ping():
            problems["redis"] = ("unavailable", f"no answer from {memory.address}")
        elif problem := memory.eviction_problem():
            problems["redis"] = ("maxmemory-policy evicts the agents' keys", problem)
    except EvictionUnknown:  # a managed server: manage.py check has said it cannot tell
        pass
    except UNAVAILABLE as exc:
        problems["redis"] = ("unavailable", str(exc))
    return problems


def readyz(request: HttpRequest) -> HttpResponse:
    """Readiness: the database and Redis both answer, and Redis will not evict the
    agents' keys; 503 otherwise. Anyone may ask, so the answer names the dependency
    and not its address; the detail goes to the log."""
    problems = readiness_problems()
    for name, (_, detail) in problems.items():
        logger.warning("not ready: %s: %s", name, detail)
    if problems:
        told = {name: said for name, (said, _) in problems.items()}
        return JsonResponse({"status": "unavailable", "problems": told}, status=503)
    return JsonResponse({"status": "ok"})
