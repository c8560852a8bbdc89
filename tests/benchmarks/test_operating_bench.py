"""What operators read: ``/metrics`` with 100 teams of 20 task types each, and the chart
of tasks completed and failed in each range, on the task board (one team) and on the
overview (a page of 25 teams).

One private redis-server on 127.0.0.1 holds 100 teams, each with 20 task types, 5 tasks
of each queued, and in each type 2 completed, 1 failed and 1 dead-lettered: the series,
totals and timings are those of that work. Django's test ``Client`` GETs each URL (a
steward; ``/metrics`` with its bearer token and no session, as Prometheus scrapes) as ``test_pages_bench`` does and prints
median, p95 and the cost columns against the 100 ms target.

Run with ``make bench`` or ``pytest -m benchmark -s tests/benchmarks/test_operating_bench.py``.
"""

from __future__ import annotations

import os
import time

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from empathy_web.dashboard.agents_memory import use_memory
from memory import AgentCoordinator, AgentTask, RedisShortTermMemory
from tests.benchmarks.test_pages_bench import Page, print_pages, time_pages
from tests.redis_server import RedisServer

pytestmark = [pytest.mark.benchmark, pytest.mark.django_db]

TEAMS, TYPES, QUEUED = 100, 20, 5
TOKEN = "bench-token"


def _team(memory: RedisShortTermMemory, n: int) -> None:
    team = f"team-{n:03d}"
    coordinator = AgentCoordinator(memory, team, lease_seconds=3600, max_attempts=1)
    coordinator.register_agent(f"agent-{n:03d}")
    for t in range(TYPES):
        task_type = f"type-{t:02d}"
        for i in range(QUEUED + 4):
            coordinator.add_task(AgentTask(f"{team}-{task_type}-{i}", task_type))
        for i in range(4):
            task = coordinator.claim_task(f"agent-{n:03d}", task_type)
            if i < 2:
                coordinator.complete_task(task.task_id, {"ok": i})
            else:
                coordinator.fail_task(task.task_id, "boom", retry=i == 2)


def pages() -> list[Page]:
    chart = ('<figure class="chart" id="throughput">',)
    board = "/tasks/?team=team-000&range="
    return [
        Page(
            "/metrics", "/metrics", ("empathy_tasks_added_total", "empathy_queue_latency_seconds")
        ),
        *(Page(f"{board}{r}", f"{board}{r}", chart) for r in ("1h", "24h", "7d")),
        *(Page(f"/?range={r}", f"/?range={r}", chart) for r in ("1h", "24h", "7d")),
    ]


def test_metrics_and_charts(server: RedisServer, settings) -> None:
    settings.METRICS_TOKEN = TOKEN
    raw = server.client()
    memory = RedisShortTermMemory(url=server.url)
    try:
        start = time.perf_counter()
        for n in range(TEAMS):
            _team(memory, n)
        filled = time.perf_counter() - start
        use_memory(memory)
        steward = User.objects.create_user("bench-steward")
        steward.groups.add(Group.objects.get(name="steward"))
        client = Client()
        client.force_login(steward)
        scraper = Client(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")  # no session, as Prometheus
        todo = pages()
        rows = time_pages(todo, raw, lambda page: scraper if page.url == "/metrics" else client)
        series = len(scraper.get("/metrics").content.decode().splitlines())
    finally:
        use_memory(None)
        memory.close()
        raw.close()
    print_pages(
        f"/metrics and the charts: {TEAMS} teams x {TYPES} task types ({filled:.0f} s to "
        f"fill); /metrics answers {series:,} lines. A steward; the overview charts its "
        f"page of 25 teams. {os.cpu_count()} CPUs.",
        rows,
    )
