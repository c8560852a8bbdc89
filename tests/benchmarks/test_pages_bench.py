"""Server time of each dashboard page on a realistically full Redis.

One private redis-server on 127.0.0.1 (no persistence) holds what agents wrote through
the ``memory`` library: 10,000 staged patterns, a team with 10,000 tasks (some claimed,
completed and dead-lettered) and two small teams, 60 agents with heartbeats, five
team sessions, working memory of eight agents and 1,000 signals sent within the last
five minutes; beside them 300,000 unrelated keys. The web's database holds 1,000
promoted patterns.

Django's test ``Client``, logged in as a steward, GETs each page: a few warm-up requests,
then ``BENCH_PAGE_N`` (default 30) timed ones, the pages taking turns in blocks of 10.
The time is the whole request inside the process (middleware, session and user from the
database, the Redis reads, the template), without a network hop to the browser. Median
and p95 are compared with the target of 100 ms and printed as PASS or FAIL; the asserts
only check that each page answered 200 with its content.

A few more requests per page, outside the timing, show where the time goes (the median
of each): Redis round trips (socket writes of redis-py), commands the server ran
(``INFO commandstats``), the time spent in Redis calls, the CPU time of the process, and
SQL queries. A page whose CPU time is close to its server time is bound by Python work
(mostly templates), not by Redis; on a busy machine both grow. On Python 3.11 the same
template can take about twice the CPU when its render loop keeps crossing a boundary of
the interpreter's frame stack chunks at the call depth where it runs (CPython issue
gh-142183), so a page's time can shift with unrelated changes to that depth.

Run with ``make bench`` or ``python -m tests.benchmarks``; set ``BENCH_MARKDOWN`` to a
path to append the table as Markdown.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import django
import pytest
import redis
from django.contrib.auth.models import Group, User
from django.db import connection
from django.http import HttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext

from empathy_web.dashboard.agents_memory import use_memory
from empathy_web.library.models import PromotedPattern
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
from memory.signals import list_signals
from memory.signals import send as send_signal
from tests.benchmarks.report import Op, Stat, markdown_table, measure, text_table
from tests.redis_server import RedisServer

READER = Caller("reader", AccessTier.OBSERVER)  # the reads below read as an observer

pytestmark = [pytest.mark.benchmark, pytest.mark.django_db]

N = int(os.environ.get("BENCH_PAGE_N", "30"))
WARMUP = 3
BLOCK = 10
TARGET_MS = 100.0
COST_SAMPLES = 5  # untimed requests per page for the cost columns (the median is shown)

STAGED = 10_000
TASKS = 10_000
UNRELATED = 300_000
SIGNALS = 1_000
PROMOTED = 1_000

BIG_TEAM = "bench-team"
SMALL_TEAMS = ("builders", "reviewers")
BIG_TEAM_AGENTS = 40
SMALL_TEAM_AGENTS = 10
CLAIMED = 40
COMPLETED = 150
DEAD = 10
SESSIONS = 5
SESSION_SIGNALS = 20  # per session
WORKING_AGENTS = 8
WORKING_KEYS = 100  # per agent
PATTERN_AGENTS = 5
PATTERN_TYPES = ("refactoring", "security", "performance", "testing", "docs")
SEARCH = "cache"
LIVE_AFTER = 25  # the live signal poll asks for what came after the 25th newest signal

BIG = {"status": "ok", "files": ["a.py", "b.py", "c.py"], "score": 0.93, "notes": "x" * 120}


# filling --------------------------------------------------------------------------------


@dataclass
class Data:
    """What the pages are asked for: ids that exist in the filled database."""

    session_id: str
    working_agent: str
    live_after: str
    fill_seconds: dict[str, float]


def _timed(seconds: dict[str, float], name: str, fill: Callable[[], None]) -> None:
    start = time.perf_counter()
    fill()
    seconds[name] = time.perf_counter() - start


def _stage_patterns(memory: RedisShortTermMemory) -> None:
    agents = [EmpathyOS(f"finder-{i}", memory) for i in range(PATTERN_AGENTS)]
    for i in range(STAGED):
        agent = agents[i % PATTERN_AGENTS]
        agent.stage_pattern(
            StagedPattern(
                pattern_id=f"p-{i:05d}",
                agent_id=agent.user_id,
                pattern_type=PATTERN_TYPES[i % len(PATTERN_TYPES)],
                name=f"Extract helper {i}",
                description="Three handlers repeat the same validation; pull it into one helper.",
                code="def check(request):\n    return validate(request.body)" if i % 3 else None,
                context={"files": ["a.py", "b.py"], "lines": 40 + i % 60},
                confidence=0.5 + (i % 50) / 100,
            )
        )


def _team(memory: RedisShortTermMemory, team_id: str, agents: int, tasks: int) -> None:
    """``agents`` registered agents and ``tasks`` tasks of two types, a few of them
    claimed, completed and dead-lettered, the rest queued."""
    coordinator = AgentCoordinator(memory, team_id, lease_seconds=3600, max_attempts=1)
    names = [f"{team_id}-agent-{i:02d}" for i in range(agents)]
    for i, agent_id in enumerate(names):
        coordinator.register_agent(agent_id, ["analyse", "review"][: 1 + i % 2])
    for i in range(tasks):
        task_type = "analyse" if i % 5 < 3 else "review"
        coordinator.add_task(
            AgentTask(
                task_id=f"{team_id}-t-{i:05d}",
                task_type=task_type,
                description=f"{task_type.title()} module pkg/mod_{i % 100}.py",
                priority=1 + i % 10,
                context={"module": f"pkg/mod_{i % 100}.py", "depth": i % 4},
            )
        )
    scale = tasks / TASKS
    completed, dead, claimed = (max(1, int(n * scale)) for n in (COMPLETED, DEAD, CLAIMED))
    for i in range(completed + dead + claimed):
        task_type = "analyse" if i % 2 else "review"
        task = coordinator.claim_task(names[i % agents], task_type)
        assert task is not None
        if i < completed:
            coordinator.complete_task(task.task_id, {"findings": i % 7, "summary": "clean"})
        elif i < completed + dead:
            coordinator.fail_task(task.task_id, "worker crashed", retry=False)


def _working_memory(memory: RedisShortTermMemory) -> None:
    for a in range(WORKING_AGENTS):
        agent = EmpathyOS(f"worker-{a}", memory)
        for k in range(WORKING_KEYS):
            agent.stash(f"result:{k:03d}", {**BIG, "step": k})


def _sessions(memory: RedisShortTermMemory) -> list[TeamSession]:
    sessions = []
    for s in range(SESSIONS):
        session = TeamSession(memory, f"review-{s}", f"Review of release 1.{s}", actor="lead")
        for a in range(4):
            session.add_agent(f"{BIG_TEAM}-agent-{a:02d}")
        for k in range(10):
            session.share(f"finding-{k}", {**BIG, "finding": k})
        sessions.append(session)
    return sessions


def _unrelated(raw: redis.Redis) -> None:
    filler = b"x" * 32
    batch = 10_000
    for start in range(0, UNRELATED, batch):
        with raw.pipeline(transaction=False) as pipe:
            for i in range(start, min(start + batch, UNRELATED)):
                pipe.set(f"unrelated:{i}", filler)
            pipe.execute()


def _signals(memory: RedisShortTermMemory, sessions: list[TeamSession]) -> None:
    """1,000 signals: broadcasts and targeted ones within teams, and session signals."""
    teams = [BIG_TEAM, *SMALL_TEAMS]
    in_sessions = SESSIONS * SESSION_SIGNALS
    for i in range(SIGNALS - in_sessions):
        team = teams[i % len(teams)]
        sender = Caller(f"{team}-agent-{i % 10:02d}", AccessTier.CONTRIBUTOR)
        target = None if i % 3 else f"{team}-agent-{(i + 1) % 10:02d}"
        kind = ("task.progress", "review.done", "lint.warning")[i % 3]
        send_signal(
            memory, sender, kind, {"n": i, "file": f"pkg/mod_{i % 100}.py"}, target, team=team
        )
    for s, session in enumerate(sessions):
        for i in range(SESSION_SIGNALS):
            session.signal("session.note", {"n": i, "session": s})


def _heartbeats(memory: RedisShortTermMemory) -> None:
    for team_id, agents in (
        (BIG_TEAM, BIG_TEAM_AGENTS),
        *((t, SMALL_TEAM_AGENTS) for t in SMALL_TEAMS),
    ):
        coordinator = AgentCoordinator(memory, team_id)
        for i in range(agents):
            coordinator.heartbeat(f"{team_id}-agent-{i:02d}")


def _promoted(steward: User) -> None:
    rows = [
        PromotedPattern(
            pattern_id=f"promoted-{i:04d}",
            name=f"{'Cache' if i % 4 == 0 else 'Extract'} helper {i}",
            pattern_type=PATTERN_TYPES[i % len(PATTERN_TYPES)],
            description="Repeated lookups of the same settings; read them once.",
            code="@functools.cache\ndef settings():\n    return load()" if i % 4 == 0 else "",
            confidence=0.5 + (i % 50) / 100,
            agent_id=f"finder-{i % PATTERN_AGENTS}",
            context={"files": ["a.py"]},
            promoted_by=steward,
        )
        for i in range(PROMOTED)
    ]
    PromotedPattern.objects.bulk_create(rows)


def fill(memory: RedisShortTermMemory, raw: redis.Redis, steward: User) -> Data:
    seconds: dict[str, float] = {}
    _timed(seconds, f"{STAGED:,} staged patterns", lambda: _stage_patterns(memory))

    def teams() -> None:
        _team(memory, BIG_TEAM, BIG_TEAM_AGENTS, TASKS)
        for team_id in SMALL_TEAMS:
            _team(memory, team_id, SMALL_TEAM_AGENTS, 50)

    _timed(seconds, f"{TASKS:,} tasks and agents", teams)
    _timed(seconds, "working memory", lambda: _working_memory(memory))
    _timed(seconds, f"{UNRELATED:,} unrelated keys", lambda: _unrelated(raw))
    _timed(seconds, f"{PROMOTED:,} promoted patterns", lambda: _promoted(steward))
    sessions: list[TeamSession] = []
    _timed(seconds, "sessions", lambda: sessions.extend(_sessions(memory)))
    # Last, so the signals are fresh (they live five minutes) and every agent is alive.
    _timed(seconds, f"{SIGNALS:,} signals", lambda: _signals(memory, sessions))
    _heartbeats(memory)
    feed = list_signals(memory, READER, LIVE_AFTER)
    return Data(sessions[0].session_id, "worker-3", feed[-1]["id"], seconds)


# pages ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """One page to time: its name in the table, its URL, and what must be in it."""

    name: str
    url: str
    expect: tuple[str, ...]
    count: tuple[str, int] | None = None  # a marker that must appear this many times


def _live(panel: str, expect: str, **params: str) -> Page:
    query = urlencode({**params, "panels": panel})
    return Page(f"/live/ {panel}", f"/live/?{query}", (f'id="{panel}"', expect))


def pages(data: Data) -> list[Page]:
    return [
        Page("/", "/", ('id="overview-panel"', "awaiting validation", BIG_TEAM)),
        Page("/signals/", "/signals/", ('id="signal-feed"',), ('<article class="signal"', 25)),
        Page("/patterns/", "/patterns/", ('id="pattern-queue"',), ('<tr id="pattern-', 25)),
        # Sorted, the queue pages through an index; filtered, it walks that index until a
        # page matches, at most its search budget per request (the last one: no match).
        Page(
            "/patterns/?sort=confidence",
            "/patterns/?sort=confidence",
            ('id="pattern-queue"',),
            ('<tr id="pattern-', 25),
        ),
        Page(
            "/patterns/?type=security&q=helper",
            "/patterns/?type=security&q=helper",
            ('id="pattern-queue"',),
            ('<tr id="pattern-', 25),
        ),
        Page(
            "/patterns/?q=<no match>",
            "/patterns/?q=no-such-words",
            ('id="search-progress"', "searched 2000 staged patterns"),
        ),
        Page("/library/", "/library/", ('id="library"',), ('<article class="pattern"', 25)),
        Page(
            f"/library/?q={SEARCH}",
            f"/library/?q={SEARCH}",
            ("Cache helper",),
            ('<article class="pattern"', 25),
        ),
        Page(
            f"/tasks/?team={BIG_TEAM}", f"/tasks/?team={BIG_TEAM}", ('id="task-board"', "Claimed")
        ),
        Page("/agents/", "/agents/", ('id="agent-list"', f'id="agent-{BIG_TEAM}-')),
        Page("/sessions/", "/sessions/", ('id="session-list"',), ('<tr id="session-', SESSIONS)),
        Page(
            "/sessions/<id>/",
            f"/sessions/{data.session_id}/",
            ('id="session-detail"', "finding-9", "session.note"),
        ),
        Page(
            "/memory/?agent=<id>",
            f"/memory/?agent={data.working_agent}",
            ('id="working-memory"', f"({WORKING_KEYS} keys)"),
        ),
        _live("overview-panel", BIG_TEAM),
        Page(
            "/live/ signal-feed (new since a poll)",
            f"/live/?{urlencode({'after': data.live_after, 'panels': 'signal-feed'})}",
            ("afterbegin:#signal-items",),
            ('<article class="signal"', LIVE_AFTER - 1),
        ),
        _live("pattern-queue", '<tr id="pattern-'),
        _live("task-board", '<tr id="task-', team=BIG_TEAM),
        _live("agent-list", f'id="agent-{BIG_TEAM}-'),
        _live("session-list", '<tr id="session-'),
        _live("session-detail", "finding-9", session_id=data.session_id),
        _live("working-memory", "result:000", agent=data.working_agent),
        Page("/healthz", "/healthz", ('"ok"',)),
        Page("/readyz", "/readyz", ('"ok"',)),
    ]


def check(page: Page) -> Callable[[HttpResponse], None]:
    def checked(response: HttpResponse) -> None:
        assert response.status_code == 200, f"{page.url}: status {response.status_code}"
        body = response.content.decode()
        for text in page.expect:
            assert text in body, f"{page.url}: {text!r} not in the page"
        if page.count is not None:
            marker, times = page.count
            found = body.count(marker)
            assert found == times, f"{page.url}: {marker!r} {found} times, not {times}"

    return checked


# cost of one request --------------------------------------------------------------------


@dataclass(frozen=True)
class Cost:
    round_trips: int
    commands: int
    redis_ms: float
    cpu_ms: float
    queries: int


@contextlib.contextmanager
def redis_calls() -> Iterator[dict[str, float]]:
    """Count socket writes (round trips) and time spent sending to and reading from
    Redis, for every redis-py connection in the process."""
    cls = redis.connection.AbstractConnection
    send, read = cls.send_packed_command, cls.read_response
    seen = {"round_trips": 0, "seconds": 0.0}

    def counted_send(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen["round_trips"] += 1
        start = time.perf_counter()
        try:
            return send(self, *args, **kwargs)
        finally:
            seen["seconds"] += time.perf_counter() - start

    def timed_read(self: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return read(self, *args, **kwargs)
        finally:
            seen["seconds"] += time.perf_counter() - start

    cls.send_packed_command, cls.read_response = counted_send, timed_read
    try:
        yield seen
    finally:
        cls.send_packed_command, cls.read_response = send, read


def _commands(raw: redis.Redis) -> int:
    stats = raw.info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if k != "cmdstat_info")


def cost(client: Client, raw: redis.Redis, page: Page) -> Cost:
    """What one request of ``page`` costs, the median of a few requests."""
    samples = []
    for _ in range(COST_SAMPLES):
        before = _commands(raw)
        with redis_calls() as seen, CaptureQueriesContext(connection) as queries:
            cpu = time.process_time()
            response = client.get(page.url)
            cpu = time.process_time() - cpu
        commands = _commands(raw) - before
        check(page)(response)
        trips, redis_ms = int(seen["round_trips"]), seen["seconds"] * 1000
        samples.append(Cost(trips, commands, redis_ms, cpu * 1000, len(queries)))
    middle = COST_SAMPLES // 2
    return Cost(
        *(sorted(getattr(s, name) for s in samples)[middle] for name in Cost.__dataclass_fields__)
    )


# the table ------------------------------------------------------------------------------


def p95_ms(stat: Stat) -> float:
    ordered = sorted(stat.samples)
    return ordered[math.ceil(0.95 * len(ordered)) - 1] / 1e6


HEADER = [
    "page",
    "n",
    "median ms",
    "p95 ms",
    "Redis round trips",
    "Redis commands",
    "ms in Redis",
    "CPU ms",
    "SQL queries",
    "target",
    "verdict",
]
RIGHT = {1, 2, 3, 4, 5, 6, 7, 8}


def cells(page: Page, stat: Stat, spent: Cost) -> list[str]:
    median = stat.median_us / 1000
    p95 = p95_ms(stat)
    return [
        page.name,
        str(stat.n),
        f"{median:.1f}",
        f"{p95:.1f}",
        str(spent.round_trips),
        str(spent.commands),
        f"{spent.redis_ms:.1f}",
        f"{spent.cpu_ms:.1f}",
        str(spent.queries),
        f"median and p95 <= {TARGET_MS:g} ms",
        "PASS" if median <= TARGET_MS and p95 <= TARGET_MS else "FAIL",
    ]


def _header(raw: redis.Redis, data: Data, dbsize: int, load: tuple[float, float]) -> str:
    info = raw.info("server")
    filled = ", ".join(f"{name} {secs:.1f} s" for name, secs in data.fill_seconds.items())
    return (
        f"Dashboard pages, server time inside the process (Django {django.get_version()} "
        f"test Client, logged in as a steward), redis-server {info['redis_version']} on "
        f"127.0.0.1 (no persistence) holding {dbsize:,} keys: {STAGED:,} staged patterns, "
        f"{TASKS:,} tasks in {BIG_TEAM} (+2 small teams), {BIG_TEAM_AGENTS + 2 * SMALL_TEAM_AGENTS} "
        f"agents, {SESSIONS} sessions, {WORKING_AGENTS} agents' working memory, {SIGNALS:,} "
        f"signals in the last 5 minutes and {UNRELATED:,} unrelated keys; {PROMOTED:,} promoted "
        f"patterns in SQLite. redis-py {redis.__version__}, Python {platform.python_version()} "
        f"on {sys.platform}, {os.cpu_count()} CPUs, 1-minute load average {load[0]:.1f} "
        f"before the timing and {load[1]:.1f} after. n timed requests per page after {WARMUP} "
        f"warm-up, pages taking turns in blocks of {BLOCK}; p95 is nearest-rank. The cost "
        f"columns are the median of {COST_SAMPLES} more requests: socket writes to Redis "
        f"(a pipeline is one), commands the server ran (INFO commandstats, with those inside "
        f"scripts), wall time in redis-py send and read, CPU time of this process (all of "
        f"the request's Python work: Django, templates, redis-py), SQL queries. Filling took: {filled}."
    )


def time_pages(
    todo: list[Page], raw: redis.Redis, client_for: Callable[[Page], Client]
) -> list[list[str]]:
    """Each page timed (the pages taking turns), then its cost: the rows of the table."""
    stats = measure(
        [Op(p.name, lambda _, p=p: client_for(p).get(p.url), None, check(p)) for p in todo],
        n=N,
        warmup=WARMUP,
        block=BLOCK,
    )
    return [cells(p, stats[p.name], cost(client_for(p), raw, p)) for p in todo]


def print_pages(header: str, rows: list[list[str]]) -> None:
    print()
    print(textwrap.fill(header, 100))
    print()
    print(text_table(HEADER, rows, RIGHT))
    failed = [row[0] for row in rows if row[-1] == "FAIL"]
    print(
        f"\n{len(rows) - len(failed)} of {len(rows)} pages within {TARGET_MS:g} ms"
        + (f"; over it: {', '.join(failed)}" if failed else "")
    )


def test_page_times(server: RedisServer) -> None:
    raw = server.client()
    memory = RedisShortTermMemory(url=server.url)
    steward = User.objects.create_user("bench-steward")
    steward.groups.add(Group.objects.get(name="steward"))
    try:
        data = fill(memory, raw, steward)
        use_memory(memory)
        client = Client()
        client.force_login(steward)
        todo = pages(data)
        load_before = os.getloadavg()[0]
        rows = time_pages(todo, raw, lambda _: client)
        # The signals were still within their five minutes while the pages were timed.
        assert len(list_signals(memory, READER, 500)) == 500
        dbsize = raw.dbsize()
        header = _header(raw, data, dbsize, (load_before, os.getloadavg()[0]))
    finally:
        use_memory(None)
        memory.close()
        raw.close()

    print_pages(header, rows)
    path = os.environ.get("BENCH_MARKDOWN")
    if path:
        with open(Path(path), "a", encoding="utf-8") as out:
            out.write(f"\n{header}\n\n{markdown_table(HEADER, rows, RIGHT)}\n")
        print(f"Markdown table appended to {path}")
