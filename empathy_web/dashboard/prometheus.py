"""``/metrics``: what operators alert on, in the Prometheus text format.

The figures about the agents' work come from Redis, read when Prometheus scrapes, so N
web workers report one truth: queues (depth, latency), tasks by outcome, signals,
staged patterns and decisions, agents by liveness, and the bridge's lag. Two figures
are the web processes' own: open websockets, and request timings. The workers that
``manage.py serve`` starts on one port keep those in files of one directory
(prometheus_client's multiprocess mode, which ``PROMETHEUS_MULTIPROC_DIR`` turns on), so
whichever worker a scrape reaches reports the whole set's; scrape each port, once.

Label cardinality is bounded: no task or agent ids, and at most ``METRICS_MAX_TEAMS``
teams (the most recently active) get their own series; ``empathy_teams_unreported``
says how many more there are.

Access: a bearer token (``METRICS_TOKEN``) or a client address in
``METRICS_ALLOWED_ADDRESSES``; with neither set, ``/metrics`` does not exist (404).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import time
from asyncio import iscoroutinefunction
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from django.utils.decorators import sync_and_async_middleware
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.core import Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from empathy_web.accounts.client_ip import client_ip
from memory.registry import team_page
from memory.series import PATTERN_KINDS, TASK_KINDS, counter_totals
from memory.summaries import team_summaries
from memory.tiers import AccessTier, Caller

from .agents_memory import get_memory
from .management.commands.serve import SHARED_DIR_VARIABLE

READER = Caller("metrics", AccessTier.OBSERVER)  # what /metrics reads as
REGISTRY = CollectorRegistry(auto_describe=True)  # what a scrape reads
# The web processes' own figures: in REGISTRY, or in the files of the set of workers
# (set by ``manage.py serve``), which REGISTRY then reads, every worker's.
SHARED_DIR = os.environ.get(SHARED_DIR_VARIABLE)
_OWN = CollectorRegistry() if SHARED_DIR else REGISTRY
if SHARED_DIR:
    MultiProcessCollector(REGISTRY, SHARED_DIR)
OPEN_WEBSOCKETS = Gauge(
    "empathy_open_websockets",
    "Dashboards open over a websocket, in every worker of the set.",
    registry=_OWN,
    multiprocess_mode="livesum",
)
REQUEST_SECONDS = Histogram(
    "empathy_request_seconds",
    "Time to answer a request, by view and method, in every worker of the set.",
    ["view", "method"],
    registry=_OWN,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


class RedisFigures:
    """A collector of the library's figures, read from Redis at each scrape."""

    def describe(self) -> list[Metric]:
        """Nothing: without it, registering would read Redis once to learn the names."""
        return []

    def collect(self) -> Iterator[Metric]:
        memory = get_memory()
        page = team_page(memory, READER, settings.METRICS_MAX_TEAMS)
        teams = list(page)
        unreported = _family(
            "empathy_teams_unreported", "Teams past METRICS_MAX_TEAMS, not in the figures."
        )
        unreported.add_sample(unreported.name, {}, max(0, (page.total or 0) - len(teams)))
        yield unreported
        summaries = team_summaries(memory, READER, teams)
        yield from _team_figures(summaries)
        yield from _counters(counter_totals(memory, READER, teams))
        yield _bridge_lag(memory)


def _family(name: str, documentation: str, kind: str = "gauge") -> Metric:
    """A family whose samples the figures below add with ``add_sample`` and their labels
    as they are (a scrape has thousands: no per-sample label checks)."""
    return Metric(name, documentation, kind)


def _team_figures(summaries: dict[str, dict[str, Any]]) -> Iterator[Metric]:
    depth = _family("empathy_queue_depth", "Tasks waiting to be claimed.")
    latency = _family(
        "empathy_queue_latency_seconds", "How long the oldest task waiting in a queue has waited."
    )
    states = _family(
        "empathy_tasks_in_state", "Tasks by state now (completed: within the retention)."
    )
    agents = _family("empathy_agents", "Registered agents by liveness.")
    for team, summary in summaries.items():
        for task_type, count in summary["pending_by_type"].items():
            depth.add_sample(depth.name, {"team": team, "task_type": task_type}, count)
        for task_type, ms in summary["waiting_ms"].items():
            latency.add_sample(latency.name, {"team": team, "task_type": task_type}, ms / 1000)
        for state in ("pending", "claimed", "completed", "dead"):
            states.add_sample(states.name, {"team": team, "state": state}, summary[state])
        for liveness, count in summary["agents"].items():
            agents.add_sample(agents.name, {"team": team, "liveness": liveness}, count)
    yield from (depth, latency, states, agents)


# Each kind the library counts is a counter of its own, ``empathy_<kind>_total``: by
# team and task type for tasks, by team for signals and patterns (team "": org-wide).
COUNTED = {
    **{kind: f"Tasks {kind.removeprefix('tasks_').replace('_', ' ')}." for kind in TASK_KINDS},
    "tasks_failed": "Task failures that retried (the last one is dead-lettered instead).",
    "tasks_lease_expired": "Leases that ran out, whatever became of their task.",
    "signals_sent": "Signals sent.",
    **{kind: f"Patterns {kind.removeprefix('patterns_')}." for kind in PATTERN_KINDS},
    "patterns_expired": "Staged patterns that expired undecided.",
}


def _counters(totals: dict[str, dict[str, dict[str, int]]]) -> Iterator[Metric]:
    """The library's all-time counts, which only go up."""
    families = {kind: _family(f"empathy_{kind}", doc, "counter") for kind, doc in COUNTED.items()}
    for team, kinds in totals.items():
        for kind, by_type in kinds.items():
            family = families[kind]
            name = f"{family.name}_total"
            for task_type, count in by_type.items():
                labels = (
                    {"team": team, "task_type": task_type} if kind in TASK_KINDS else {"team": team}
                )
                family.add_sample(name, labels, count)
    yield from families.values()


def _bridge_lag(memory: Any) -> Metric:
    """How long the oldest event the bridge has not announced has waited (0: none)."""
    lag = _family(
        "empathy_bridge_lag_seconds",
        "Age of the oldest event the dashboards' bridge has not announced yet (0: none).",
    )
    cursor = memory.bridge_cursor()
    waiting = memory.read_events(cursor or "0-0", count=1) if cursor else []
    now = memory.server_time_ms()
    lag.add_sample(lag.name, {}, max(0, now - waiting[0].ts) / 1000 if waiting else 0.0)
    return lag


REGISTRY.register(RedisFigures())


def _allowed(request: HttpRequest) -> bool | None:
    """Whether the scrape may read: a right token or an allowed address; None when
    ``/metrics`` is off (neither is configured)."""
    token, networks = settings.METRICS_TOKEN, settings.METRICS_ALLOWED_ADDRESSES
    if not token and not networks:
        return None
    given = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    try:
        address = ipaddress.ip_address(client_ip(request))
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in networks)


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    allowed = _allowed(request)
    if allowed is None:
        raise Http404("/metrics is off: set METRICS_TOKEN or METRICS_ALLOWED_ADDRESSES.")
    if not allowed:
        if not settings.METRICS_TOKEN:
            raise Http404("Not an allowed address.")
        response = HttpResponse("A bearer token is needed.\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)


def _observe(request: HttpRequest, start: float) -> None:
    try:
        view = resolve(request.path_info).url_name or "unnamed"
    except Resolver404:
        view = "not_found"
    method = request.method if request.method in ("GET", "POST", "HEAD") else "other"
    REQUEST_SECONDS.labels(view, method).observe(time.perf_counter() - start)


@sync_and_async_middleware
def request_timings(get_response: Callable[[HttpRequest], Any]) -> Callable[[HttpRequest], Any]:
    """Middleware: each request's time, by the name of the view that answered (sync or
    async, as the stack runs it, so it adds no thread hop)."""
    if iscoroutinefunction(get_response):

        async def timed_async(request: HttpRequest) -> HttpResponse:
            start = time.perf_counter()
            response = await get_response(request)
            _observe(request, start)
            return response

        return timed_async

    def timed(request: HttpRequest) -> HttpResponse:
        start = time.perf_counter()
        response = get_response(request)
        _observe(request, start)
        return response

    return timed
