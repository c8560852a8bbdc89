"""The dashboard's panels: what each shows, built from Redis a page at a time.

A panel is one template fragment (a ``partialdef`` whose root element has the panel's
id) and the function that builds its context from the page's query parameters. Pages
render their panels inline; the live consumer renders the same fragments alone and swaps
them in by id, so there is one copy of each panel's HTML.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from django.http import Http404
from django.utils.http import urlencode

from empathy_web.accounts.teams import Viewer
from empathy_web.accounts.tiers import may_read_memory_of
from memory import AgentCoordinator, RedisShortTermMemory, TTLStrategy
from memory import patterns as staged
from memory.metrics import queue_depth, signal_rate
from memory.page import Page
from memory.registry import agent_teams_of, team_page
from memory.sessions import get_session, list_sessions
from memory.signals import list_signals
from memory.stats import used_memory
from memory.summaries import team_summaries
from memory.timings import task_timings
from memory.working import list_agents, list_entries

from . import dead_letters, operating
from .agents_memory import coordinator_for, get_memory, session_for

# The channel-layer group of the web processes (one member each, relay.py): the
# bridge's hints name panels from PANELS and go to this group.
GROUP = "dashboard"
PAGE = 25
SIGNAL_FILTERS = ("signal_type", "sender", "target", "team")

Params = Mapping[str, str]


def _cursor(params: Params, name: str = "cursor") -> str | None:
    return params.get(name) or None


def overview(params: Params, viewer: Viewer) -> dict[str, Any]:
    memory = get_memory()
    # One page of the viewer's teams, most recently active first: every figure about
    # teams (agents' liveness, the queue's history) is that page's, so the cost does not
    # grow with the number of teams.
    teams = team_page(memory, viewer, PAGE, _cursor(params), among=viewer.teams)
    summaries = team_summaries(memory, viewer, list(teams))
    liveness = {"alive": 0, "late": 0, "dead": 0}
    for summary in summaries.values():
        for state in liveness:
            liveness[state] += summary["agents"][state]
    range_name = operating.chart_range(params)
    return {
        "teams": teams,
        "team_rows": [
            {
                "team_id": team_id,
                **summaries[team_id],
                "oldest": operating.oldest(summaries[team_id]["waiting_ms"]),
            }
            for team_id in teams
        ],
        "throughput": operating.throughput(memory, viewer, list(teams), range_name),
        "liveness": liveness,
        "stats": _stats(memory, viewer),
        "expiring_soon": staged.count_staged(
            memory, viewer, expiring_within_ms=3_600_000, teams=viewer.teams
        ),
        "signal_rate": signal_rate(memory, viewer, teams=viewer.teams),
        "queue_depth": queue_depth(memory, viewer, list(teams)),
    }


SESSIONS_COUNTED = 100  # a viewer of some teams sees "100+" sessions past this


def _stats(memory: RedisShortTermMemory, viewer: Viewer) -> dict[str, Any]:
    """The overview's counts: of everything for a viewer of every team, else of their
    teams' records and the org-wide ones."""
    if viewer.teams is None:
        return memory.get_stats(teams=False)
    sessions = list_sessions(memory, viewer, SESSIONS_COUNTED, teams=viewer.teams)
    minutes = memory.ttl_ms(TTLStrategy.COORDINATION) // 60_000  # what the feed holds
    recent = signal_rate(memory, viewer, minutes, teams=viewer.teams)
    return {
        "mode": memory.mode,
        "address": memory.address,
        "staged_patterns": staged.count_staged(memory, viewer, teams=viewer.teams),
        "sessions": f"{len(sessions)}+" if sessions.next_cursor else len(sessions),
        "signals": sum(recent),
        "used_memory": used_memory(memory),
    }


def signal_feed(params: Params, viewer: Viewer) -> dict[str, Any]:
    filters = {name: params.get(name) or None for name in SIGNAL_FILTERS}
    page = list_signals(get_memory(), viewer, PAGE, _cursor(params), teams=viewer.teams, **filters)
    return {"page": page, "filters": {k: v or "" for k, v in filters.items()}}


def task_board(params: Params, viewer: Viewer) -> dict[str, Any]:
    memory = get_memory()
    # The tabs: the most recently active of the viewer's teams.
    recent = team_page(memory, viewer, PAGE, among=viewer.teams)
    team_id = params.get("team") or (recent[0] if recent else None)
    viewer.seeing(team_id)
    teams = list(recent) + ([team_id] if team_id and team_id not in recent else [])
    sections: list[dict[str, Any]] = []
    counts: dict[str, Any] = {}
    task_types: list[str] = []
    if team_id:
        coordinator = coordinator_for(viewer, team_id)
        counts = coordinator.counts()
        wanted, cursor = params.get("status"), _cursor(params)

        def page(state: str, key: str, task_type: str | None = None) -> Any:
            return coordinator.list_tasks(state, task_type, PAGE, cursor if wanted == key else None)

        task_types = coordinator.task_types()
        waits = {row["task_type"]: row for row in operating.latency_rows(counts["waiting_ms"])}
        paged = (wanted or "").removeprefix("pending:") if cursor else None
        queued = coordinator.pending_pages(task_types, PAGE, {paged: cursor} if paged else None)
        for task_type in task_types:
            sections.append(
                {
                    "key": f"pending:{task_type}",
                    "title": f"Queued: {task_type}",
                    "page": queued[task_type],
                    "latency": waits.get(task_type),
                }
            )
        for state, title in (("claimed", "Claimed"), ("completed", "Completed")):
            sections.append({"key": state, "title": title, "page": page(state, state)})
        sections.append(_dead_section(coordinator, params, page))
    return {
        "teams": teams,
        "more_teams": (recent.total or 0) - len(teams),
        "team_id": team_id,
        "team_tier": viewer.tier_for(team_id),
        "counts": counts,
        "task_types": task_types,
        "sections": sections,
        "throughput": team_id
        and operating.throughput(memory, viewer, [team_id], operating.chart_range(params)),
        "chart_query": urlencode({"team": team_id}) + "&" if team_id else "",
        "now_ms": memory.server_time_ms(),
    }


def _dead_section(
    coordinator: AgentCoordinator, params: Params, page: Callable[[str, str], Any]
) -> dict[str, Any]:
    """The dead-lettered tasks: a page of them, or of those of one type or failure
    reason (``dead_type``, ``dead_reason``), newest first."""
    task_type, reason = dead_letters.filters(params)
    section = {"key": "dead", "title": "Dead-lettered", "dead_type": task_type}
    if not (task_type or reason):
        return {**section, "page": page("dead", "dead"), "dead_reason": ""}
    found = dead_letters.matching(coordinator, task_type, reason, PAGE)
    return {**section, "page": Page(found.tasks, None), "dead_reason": reason, "more": found.more}


AGENT_TEAMS_PAGE = 10  # teams per page of the agents list, each with its own agent pages
AGENT_WINDOW = "24h"  # the agents list's figures of work done


def agent_list(params: Params, viewer: Viewer) -> dict[str, Any]:
    memory = get_memory()
    team_ids = team_page(
        memory, viewer, AGENT_TEAMS_PAGE, _cursor(params, "teams"), among=viewer.teams
    )
    teams = []
    now = memory.server_time_ms() if team_ids else 0  # for heartbeat ages
    for team_id in team_ids:
        coordinator = coordinator_for(viewer, team_id)
        claims: dict[str, list[Any]] = {}
        for task in coordinator.list_tasks("claimed", limit=500):
            claims.setdefault(task.claimed_by, []).append(task)
        cursor = _cursor(params) if params.get("team") == team_id else None
        page = coordinator.get_agents(PAGE, cursor)
        # What each agent did in the last day: completed, failed, median time.
        done = task_timings(memory, viewer, team_id, window=AGENT_WINDOW, by="agent")
        rows = [
            (agent, claims.get(agent.agent_id, []), now - agent.last_heartbeat_ms,
             done.get(agent.agent_id))
            for agent in page
        ]  # fmt: skip
        teams.append({"team_id": team_id, "page": page, "rows": rows})
    return {
        "teams": teams,
        "team_ids": team_ids,
        "teams_cursor": params.get("teams", ""),
        "window": AGENT_WINDOW,
    }


def session_list(params: Params, viewer: Viewer) -> dict[str, Any]:
    page = list_sessions(get_memory(), viewer, PAGE, _cursor(params), teams=viewer.teams)
    return {"page": page, "rows": [(info, viewer.tier_for(info.team)) for info in page]}


def session_detail(params: Params, viewer: Viewer) -> dict[str, Any]:
    memory = get_memory()
    session_id = params.get("session_id", "")
    info = get_session(memory, viewer, session_id) if session_id else None
    if info is None:
        raise Http404("No such session: it never existed, expired or was deleted.")
    viewer.seeing(info.team)
    session = session_for(viewer, session_id)
    return {
        "info": info,
        "session_tier": viewer.tier_for(info.team),
        "context_items": sorted(session.get_context().items()),
        "signals": session.signals(limit=PAGE, cursor=_cursor(params)),
    }


def working_memory(params: Params, viewer: Viewer) -> dict[str, Any]:
    memory = get_memory()
    agent_id = params.get("agent") or None
    agents_page = list_agents(
        memory, viewer, 100, _cursor(params, "agents_cursor"), teams=viewer.teams
    )
    if agent_id is None and agents_page:
        agent_id = agents_page[0]
    agent_teams = agent_teams_of(memory, viewer, [agent_id])[agent_id] if agent_id else []
    viewer.seeing(agent_teams)
    entries = list_entries(memory, viewer, agent_id, PAGE, _cursor(params)) if agent_id else None
    private = agent_id is not None and not may_read_memory_of(viewer, agent_id)
    if private and entries is not None:  # keys and expiries, not values
        entries = Page(
            [replace(entry, value=None) for entry in entries], entries.next_cursor, entries.total
        )
    return {
        "agents_page": agents_page,
        "agent_id": agent_id,
        "entries": entries,
        "private": private,
        "agent_tier": viewer.tier_for(agent_teams),
    }


@dataclass(frozen=True)
class Panel:
    """One live panel: its element id, fragment, context builder, and the event types
    (by prefix) that can change it."""

    name: str
    template: str
    build: Callable[[Params, Viewer], dict[str, Any]]
    topics: tuple[str, ...]


_EVERYTHING = ("",)
PANELS = {
    panel.name: panel
    for panel in (
        Panel("overview-panel", "dashboard/overview.html", overview, _EVERYTHING),
        Panel("signal-feed", "dashboard/signals.html", signal_feed, ("signal.",)),
        Panel("task-board", "dashboard/tasks.html", task_board, ("task.",)),
        Panel("agent-list", "dashboard/agents.html", agent_list, ("agent.", "task.")),
        Panel("session-list", "dashboard/sessions.html", session_list, ("session.",)),
        Panel(
            "session-detail",
            "dashboard/session_detail.html",
            session_detail,
            ("session.", "signal."),
        ),
        Panel("working-memory", "dashboard/memory.html", working_memory, ("working.",)),
    )
}


def register(panel: Panel) -> None:
    """Add a panel that another app builds; it is live like the dashboard's own."""
    PANELS[panel.name] = panel


def panels_for(event_types: set[str]) -> set[str]:
    """The panels that events of these types may have changed."""
    return {
        name
        for name, panel in PANELS.items()
        if any(kind.startswith(topic) for kind in event_types for topic in panel.topics)
    }
