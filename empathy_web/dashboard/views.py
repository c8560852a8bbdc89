"""The dashboard's pages. Each reads Redis through the library, a page at a time."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from empathy_web.accounts.tiers import tier_required
from memory import AccessTier, AgentCoordinator, TeamSession
from memory import patterns as staged
from memory.coordination import list_teams
from memory.metrics import queue_depth, signal_rate
from memory.sessions import get_session, list_sessions
from memory.signals import list_signals
from memory.ttl import TTLStrategy
from memory.working import list_agents, list_entries

from .agents_memory import UNAVAILABLE, empathy_for, get_memory
from .forms import AddTaskForm, SendSignalForm, ShareForm

PAGE = 25
READ = AccessTier.OBSERVER


def _cursor(request: HttpRequest, name: str = "cursor") -> str | None:
    return request.GET.get(name) or None


@require_GET
@tier_required(READ)
def overview(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/overview.html", overview_context())


def overview_context() -> dict[str, Any]:
    memory = get_memory()
    now = memory.server_time_ms()
    teams = []
    liveness = {"alive": 0, "late": 0, "dead": 0}
    for team_id in list_teams(memory):
        coordinator = AgentCoordinator(memory, team_id)
        counts = coordinator.counts()
        teams.append({"team_id": team_id, **counts})
        for agent in coordinator.get_agents(limit=500):
            liveness[agent.liveness] += 1
    stats = memory.get_stats()
    staged_ttl = memory.ttl_ms(TTLStrategy.STAGED_PATTERNS)
    # Patterns staged between TTL and TTL minus an hour ago expire within the hour.
    expiring = memory.client.zlexcount(
        memory.keys.patterns_staged,
        f"({now - staged_ttl:013d}",
        f"({now - staged_ttl + 3_600_000:013d}",
    )
    return {
        "teams": teams,
        "liveness": liveness,
        "stats": stats,
        "expiring_soon": expiring,
        "signal_rate": signal_rate(memory),
        "queue_depth": queue_depth(memory),
    }


@require_GET
@tier_required(READ)
def signals(request: HttpRequest) -> HttpResponse:
    return render_signals(request)


def render_signals(
    request: HttpRequest, form: SendSignalForm | None = None, status: int = 200
) -> HttpResponse:
    filters = {
        name: request.GET.get(name) or None for name in ("signal_type", "sender", "target", "team")
    }
    page = list_signals(get_memory(), PAGE, _cursor(request), **filters)
    context = {
        "page": page,
        "filters": {k: v or "" for k, v in filters.items()},
        "form": form or SendSignalForm(),
    }
    return render(request, "dashboard/signals.html", context, status=status)


@require_GET
@tier_required(READ)
def patterns(request: HttpRequest) -> HttpResponse:
    memory = get_memory()
    viewer = empathy_for(request.user.get_username(), request.tier)
    page = viewer.get_staged_patterns(limit=PAGE, cursor=_cursor(request))
    ttls = staged.staged_ttl_ms(memory, [p.pattern_id for p in page])
    rows = list(zip(page, ttls, strict=True))
    return render(request, "dashboard/patterns.html", {"page": page, "rows": rows})


@require_GET
@tier_required(READ)
def tasks(request: HttpRequest) -> HttpResponse:
    return render_tasks(request)


def render_tasks(
    request: HttpRequest, form: AddTaskForm | None = None, status: int = 200
) -> HttpResponse:
    memory = get_memory()
    teams = list_teams(memory)
    team_id = request.GET.get("team") or (teams[0] if teams else None)
    sections: list[dict[str, Any]] = []
    counts: dict[str, Any] = {}
    if team_id:
        coordinator = AgentCoordinator(memory, team_id)
        counts = coordinator.counts()
        wanted = request.GET.get("status")
        cursor = _cursor(request)
        for task_type in coordinator.task_types():
            page = coordinator.list_tasks(
                "pending", task_type, PAGE, cursor if wanted == f"pending:{task_type}" else None
            )
            sections.append(
                {"key": f"pending:{task_type}", "title": f"Queued: {task_type}", "page": page}
            )
        for state, title in (
            ("claimed", "Claimed"),
            ("completed", "Completed"),
            ("dead", "Dead-lettered"),
        ):
            page = coordinator.list_tasks(state, None, PAGE, cursor if wanted == state else None)
            sections.append({"key": state, "title": title, "page": page})
    context = {
        "teams": teams,
        "team_id": team_id,
        "counts": counts,
        "sections": sections,
        "now_ms": memory.server_time_ms(),
        "form": form or AddTaskForm(initial={"team_id": team_id or ""}),
    }
    return render(request, "dashboard/tasks.html", context, status=status)


@require_GET
@tier_required(READ)
def agents(request: HttpRequest) -> HttpResponse:
    memory = get_memory()
    teams = []
    for team_id in list_teams(memory):
        coordinator = AgentCoordinator(memory, team_id)
        claims: dict[str, list[Any]] = {}
        for task in coordinator.list_tasks("claimed", limit=500):
            claims.setdefault(task.claimed_by, []).append(task)
        page = coordinator.get_agents(
            PAGE, _cursor(request) if request.GET.get("team") == team_id else None
        )
        rows = [(agent, claims.get(agent.agent_id, [])) for agent in page]
        teams.append({"team_id": team_id, "page": page, "rows": rows})
    return render(
        request, "dashboard/agents.html", {"teams": teams, "now_ms": memory.server_time_ms()}
    )


@require_GET
@tier_required(READ)
def sessions(request: HttpRequest) -> HttpResponse:
    page = list_sessions(get_memory(), PAGE, _cursor(request))
    return render(request, "dashboard/sessions.html", {"page": page})


@require_GET
@tier_required(READ)
def session_detail(request: HttpRequest, session_id: str) -> HttpResponse:
    return render_session(request, session_id)


def render_session(
    request: HttpRequest, session_id: str, form: ShareForm | None = None, status: int = 200
) -> HttpResponse:
    memory = get_memory()
    info = get_session(memory, session_id)
    if info is None:
        raise Http404("No such session: it never existed, expired or was deleted.")
    session = TeamSession(memory, session_id, access_tier=AccessTier.OBSERVER, create=False)
    context = {
        "info": info,
        "context_items": sorted(session.get_context().items()),
        "signals": session.signals(limit=PAGE, cursor=_cursor(request)),
        "form": form or ShareForm(),
    }
    return render(request, "dashboard/session_detail.html", context, status=status)


@require_GET
@tier_required(READ)
def working_memory(request: HttpRequest) -> HttpResponse:
    memory = get_memory()
    agent_id = request.GET.get("agent") or None
    agents_page = list_agents(memory, 100, _cursor(request, "agents_cursor"))
    if agent_id is None and agents_page:
        agent_id = agents_page[0]
    entries = list_entries(memory, agent_id, PAGE, _cursor(request)) if agent_id else None
    context = {"agents_page": agents_page, "agent_id": agent_id, "entries": entries}
    return render(request, "dashboard/memory.html", context)


def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers."""
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> HttpResponse:
    """Readiness: the database and Redis both answer; 503 with the reason when not."""
    problems = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any database failure makes us not ready
        problems["database"] = str(exc)
    try:
        if not get_memory().ping():
            problems["redis"] = f"no answer from {get_memory().address}"
    except UNAVAILABLE as exc:
        problems["redis"] = str(exc)
    if problems:
        return JsonResponse({"status": "unavailable", "problems": problems}, status=503)
    return JsonResponse({"status": "ok"})
