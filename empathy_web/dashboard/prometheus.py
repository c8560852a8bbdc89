"""``/metrics``: what operators alert on, in the Prometheus text format.

The figures about the agents' work come from Redis, read when Prometheus scrapes, so N
web workers report one truth: queues (depth, latency), tasks by outcome, signals,
staged patterns and decisions, agents by liveness, and the bridge's lag. Two figures
are each process's own and carry its ``worker`` label: its open websockets, and its
request timings. Scrape every worker for those; any one worker for the rest.

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
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from empathy_web.accounts.client_ip import client_ip
from memory.registry import team_page
from memory.series import PATTERN_KINDS, TASK_KINDS, counter_totals
from memory.summaries import team_summaries
from memory.tiers import AccessTier, Caller

from .agents_memory import get_memory

READER = Caller("metrics", AccessTier.OBSERVER)  # what /metrics reads as
WORKER = str(os.getpid())
REGISTRY = CollectorRegistry(auto_describe=True)
OPEN_WEBSOCKETS = Gauge(
    "empathy_open_websockets",
    "Dashboards open over a websocket in this worker.",
    ["worker"],
    registry=REGISTRY,
).labels(WORKER)
REQUEST_SECONDS = Histogram(
    "empathy_request_seconds",
    "Time to answer a request in this worker, by view and method.",
    ["worker", "view", "method"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


class RedisFigures:
    """A collector of the library's figures, read from Redis at each scrape."""

    def collect(self) -> Iterator[Metric]:
        memory = get_memory()
        page = team_page(memory, READER, settings.METRICS_MAX_TEAMS)
        teams = list(page)
        unreported = GaugeMetricFamily(
            "empathy_teams_unreported", "Teams past METRICS_MAX_TEAMS, not in the figures."
        )
        unreported.add_metric([], max(0, (page.total or 0) - len(teams)))
        yield unreported
        summaries = team_summaries(memory, READER, teams)
        yield from _team_figures(summaries)
        yield _latency({team: summary["waiting_ms"] for team, summary in summaries.items()})
        yield from _counters(counter_totals(memory, READER, teams))
        yield _bridge_lag(memory)


def _team_figures(summaries: dict[str, dict[str, Any]]) -> Iterator[Metric]:
    depth = GaugeMetricFamily(
        "empathy_queue_depth", "Tasks waiting to be claimed.", labels=["team", "task_type"]
    )
    states = GaugeMetricFamily(
        "empathy_tasks_in_state",
        "Tasks by state now (completed: within the retention).",
        labels=["team", "state"],
    )
    agents = GaugeMetricFamily(
        "empathy_agents", "Registered agents by liveness.", labels=["team", "liveness"]
    )
    for team, summary in summaries.items():
        for task_type, count in summary["pending_by_type"].items():
            depth.add_metric([team, task_type], count)
        for state in ("pending", "claimed", "completed", "dead"):
            states.add_metric([team, state], summary[state])
        for liveness, count in summary["agents"].items():
            agents.add_metric([team, liveness], count)
    yield from (depth, states, agents)


def _latency(latency: dict[str, dict[str, int]]) -> Metric:
    family = GaugeMetricFamily(
        "empathy_queue_latency_seconds",
        "How long the oldest task waiting in a queue has waited.",
        labels=["team", "task_type"],
    )
    for team, by_type in latency.items():
        for task_type, ms in by_type.items():
            family.add_metric([team, task_type], ms / 1000)
    return family


def _counters(totals: dict[str, dict[str, dict[str, int]]]) -> Iterator[Metric]:
    """The library's all-time counts (team ``""``: org-wide signals and patterns)."""
    tasks = CounterMetricFamily(
        "empathy_tasks",
        "Tasks by outcome: added, claimed, completed, failed (and retried), dead_lettered, "
        "lease_expired.",
        labels=["team", "task_type", "outcome"],
    )
    signals = CounterMetricFamily("empathy_signals_sent", "Signals sent.", labels=["team"])
    patterns = CounterMetricFamily(
        "empathy_patterns",
        "Staged patterns: staged, promoted, rejected, expired undecided.",
        labels=["team", "event"],
    )
    for team, kinds in totals.items():
        for kind, by_type in kinds.items():
            for task_type, count in by_type.items():
                if kind in TASK_KINDS:
                    outcome = kind.removeprefix("tasks_")
                    tasks.add_metric([team, task_type, outcome], count)
                elif kind == "signals_sent":
                    signals.add_metric([team], count)
                elif kind in PATTERN_KINDS:
                    patterns.add_metric([team, kind.removeprefix("patterns_")], count)
    yield from (tasks, signals, patterns)


def _bridge_lag(memory: Any) -> Metric:
    """How long the oldest event the bridge has not announced has waited (0: none)."""
    lag = GaugeMetricFamily(
        "empathy_bridge_lag_seconds",
        "Age of the oldest event the dashboards' bridge has not announced yet (0: none).",
    )
    cursor = memory.bridge_cursor()
    waiting = memory.read_events(cursor or "0-0", count=1) if cursor else []
    now = memory.server_time_ms()
    lag.add_metric([], max(0, now - waiting[0].ts) / 1000 if waiting else 0.0)
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
    REQUEST_SECONDS.labels(WORKER, view, method).observe(time.perf_counter() - start)


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
