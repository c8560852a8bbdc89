"""Server time of each page for a member of 3 teams among 100.

One private redis-server on 127.0.0.1 (no persistence) holds what 100 teams' agents
wrote through the ``memory`` library: each team has an agent, 100 tasks (some claimed,
completed and dead-lettered), 100 staged patterns, a session, 10 signals sent within the
last five minutes and its agent's working memory: 10,000 tasks and 10,000 staged
patterns in all. The person is in no tier group and a validator of 3 of the teams, so
every listing is restricted to those 3 teams and the org-wide records.

Django's test ``Client`` GETs each page as ``test_pages_bench`` does (warm-up, then
``BENCH_PAGE_N`` timed requests, pages taking turns) and prints median, p95 and the
cost columns against the 100 ms target. A second table shows how the overview's Redis
work follows the number of teams the person is in (1, 3, 10, 30), not the 100 teams
there are.

Run with ``make bench`` or ``pytest -m benchmark -s tests/benchmarks/test_teams_bench.py``.
"""

from __future__ import annotations

import os
import time

import pytest
import redis
from django.contrib.auth.models import User
from django.test import Client

from empathy_web.accounts.models import Membership
from empathy_web.dashboard.agents_memory import use_memory
from memory import (
    AccessTier,
    AgentCoordinator,
    AgentTask,
    Caller,
    EmpathyOS,
    RedisShortTermMemory,
    StagedPattern,
    TeamSession,
)
from memory.signals import send
from tests.benchmarks.report import text_table
from tests.benchmarks.test_pages_bench import WARMUP, Page, cost, print_pages, time_pages
from tests.redis_server import RedisServer

pytestmark = [pytest.mark.benchmark, pytest.mark.django_db]

TEAMS = 100
TASKS_PER_TEAM = 100
PATTERNS_PER_TEAM = 100
SIGNALS_PER_TEAM = 10
MINE = ("team-007", "team-042", "team-093")  # the person's teams


def _team(memory: RedisShortTermMemory, n: int) -> None:
    team, agent_id = f"team-{n:03d}", f"agent-{n:03d}"
    coordinator = AgentCoordinator(memory, team, lease_seconds=3600, max_attempts=1)
    coordinator.register_agent(agent_id, ["review"])
    for i in range(TASKS_PER_TEAM):
        coordinator.add_task(AgentTask(f"{team}-t-{i:03d}", "review", f"Review module {i}"))
    for i in range(6):  # 2 completed, 2 dead-lettered, 2 claimed
        task = coordinator.claim_task(agent_id, "review")
        assert task is not None
        if i < 2:
            coordinator.complete_task(task.task_id, {"findings": i})
        elif i < 4:
            coordinator.fail_task(task.task_id, "worker crashed", retry=False)
    agent = EmpathyOS(agent_id, short_term_memory=memory)
    for i in range(PATTERNS_PER_TEAM):  # the team: the one its agent is registered in
        agent.stage_pattern(
            StagedPattern(
                f"{team}-p-{i:03d}", agent_id, "refactoring", f"Extract helper {i}",
                "Three handlers repeat the same validation.", confidence=0.5 + i / 250,
            )
        )  # fmt: skip
    for i in range(10):
        agent.stash(f"result-{i}", {"score": i})
    session = TeamSession(memory, f"{team}-review", "Review the release", team=team)
    session.add_agent(agent_id)
    caller = Caller(agent_id, AccessTier.CONTRIBUTOR)
    for i in range(SIGNALS_PER_TEAM):
        send(memory, caller, "progress", {"step": i}, team=team)


def _member_of(teams: tuple[str, ...], name: str) -> Client:
    user = User.objects.create_user(name)
    for team in teams:
        Membership.objects.create(user=user, team=team, tier="VALIDATOR")
    client = Client()
    client.force_login(user)
    return client


def pages() -> list[Page]:
    mine = MINE[0]
    row = '<tr id="pattern-'
    return [
        Page("/", "/", ('id="overview-panel"', mine)),
        Page("/signals/", "/signals/", ('id="signal-feed"',), ('<article class="signal"', 25)),
        Page("/tasks/", "/tasks/", ('id="task-board"',)),
        Page(f"/tasks/?team={mine}", f"/tasks/?team={mine}", ("Queued: review", f"{mine}-t-")),
        Page("/agents/", "/agents/", ('id="agent-list"', "agent-007")),
        Page("/sessions/", "/sessions/", ('id="session-list"', f"{mine}-review")),
        Page("/memory/", "/memory/", ('id="working-memory"',)),
        Page("/patterns/", "/patterns/", ('id="pattern-queue"',), (row, 25)),
        Page("/patterns/?sort=confidence", "/patterns/?sort=confidence", (), (row, 25)),
        Page("/patterns/?sort=age", "/patterns/?sort=age", (), (row, 25)),
        Page(f"/patterns/?team={mine}", f"/patterns/?team={mine}", (), (row, 25)),
        Page("/live/ overview", "/live/?panels=overview-panel", ('id="overview-panel"',)),
    ]


def _overview_cost(raw: redis.Redis, counts: tuple[int, ...]) -> list[list[str]]:
    rows = []
    overview = Page("/", "/", ('id="overview-panel"',))
    for count in counts:
        teams = tuple(f"team-{n:03d}" for n in range(count))
        spent = cost(_member_of(teams, f"member-of-{count}"), raw, overview)
        rows.append(
            [str(count), str(spent.round_trips), str(spent.commands), f"{spent.cpu_ms:.1f}"]
        )
    return rows


def test_pages_for_a_member_of_3_teams_of_100(server: RedisServer) -> None:
    raw = server.client()
    memory = RedisShortTermMemory(url=server.url)
    try:
        start = time.perf_counter()
        for n in range(TEAMS):
            _team(memory, n)
        filled = time.perf_counter() - start
        use_memory(memory)
        client = _member_of(MINE, "bench-member")
        todo = pages()
        rows = time_pages(todo, raw, lambda _: client)
        scaling = _overview_cost(raw, (1, 3, 10, 30))
        keys = raw.dbsize()
    finally:
        use_memory(None)
        memory.close()
        raw.close()
    header = (
        f"Pages for a validator of {len(MINE)} teams among {TEAMS} (no tier group), "
        f"server time inside the process; Redis holds {keys:,} keys: "
        f"{TEAMS * TASKS_PER_TEAM:,} tasks, {TEAMS * PATTERNS_PER_TEAM:,} staged patterns, "
        f"{TEAMS * SIGNALS_PER_TEAM:,} signals, {TEAMS} sessions and agents (filled in "
        f"{filled:.0f} s). n timed requests per page after {WARMUP} warm-up; cost columns "
        f"as in the pages benchmark; {os.cpu_count()} CPUs."
    )
    print_pages(header, rows)
    print("\nThe overview's cost by the number of teams the person is in (of 100):\n")
    print(
        text_table(
            ["teams", "Redis round trips", "Redis commands", "CPU ms"], scaling, {0, 1, 2, 3}
        )
    )
