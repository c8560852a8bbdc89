"""The dashboard's pages and actions, on data the agents wrote to a real redis-server.

Agents write through the ``memory`` library; the tests then read the pages a person
would open, and act through the forms a person would post.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.contrib.auth.models import Group, User
from django.http import HttpResponse
from django.test import Client

from empathy_web.dashboard.agents_memory import use_memory
from empathy_web.library.models import AuditEntry, PromotedPattern
from memory import (
    AccessTier,
    AgentCoordinator,
    AgentTask,
    Caller,
    EmpathyOS,
    RedisShortTermMemory,
    StagedPattern,
    TeamSession,
    TTLStrategy,
)
from memory.sessions import get_session
from memory.signals import list_signals
from memory.signals import send as send_signal
from memory.working import list_entries
from tests.redis_server import RedisServer, start_redis_server

pytestmark = pytest.mark.django_db

# The pages that read the agents' short-term memory.
MEMORY_PAGES = ["/", "/signals/", "/patterns/", "/tasks/", "/agents/", "/sessions/", "/memory/"]

# fixtures and helpers -------------------------------------------------------------------


@pytest.fixture
def short_patterns(redis_server: RedisServer, memory: RedisShortTermMemory) -> Iterator[Any]:
    """A memory on the same server whose staged patterns live 30 minutes."""
    short = RedisShortTermMemory(url=redis_server.url, ttls={TTLStrategy.STAGED_PATTERNS: 1800})
    try:
        yield short
    finally:
        short.close()


@pytest.fixture
def redis_down() -> Iterator[RedisShortTermMemory]:
    """The web's memory on a private server that is then stopped."""
    server = start_redis_server([])
    try:
        unreachable = RedisShortTermMemory(url=server.url)
        use_memory(unreachable)
    finally:
        server.stop()
    try:
        yield unreachable
    finally:
        use_memory(None)
        unreachable.close()


def make_user(username: str, tier: str | None = None) -> User:
    user = User.objects.create_user(username)  # no password: the tests force_login
    if tier is not None:
        user.groups.add(Group.objects.get(name=tier))
    return user


def client_for(tier: str) -> Client:
    client = Client()
    client.force_login(make_user(f"{tier}-person", tier))
    return client


@pytest.fixture
def observer() -> Client:
    return client_for("observer")


@pytest.fixture
def contributor() -> Client:
    return client_for("contributor")


@pytest.fixture
def steward() -> Client:
    return client_for("steward")


def words(markup: str) -> str:
    """Markup as a reader sees it: tags dropped, entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def page_text(response: HttpResponse) -> str:
    body = response.content.decode()
    return words(body[body.find("<body") :])


def element(response: HttpResponse, element_id: str) -> str:
    """The words of the element with ``element_id`` (an element that does not nest)."""
    body = response.content.decode()
    at = body.find(f'id="{element_id}"')
    assert at != -1, f"no element #{element_id} on the page"
    start = body.rfind("<", 0, at)
    tag = re.match(r"<(\w+)", body[start:]).group(1)
    end = body.find(f"</{tag}>", at)
    return words(body[start:end])


def next_page(response: HttpResponse, label: str = "Next page") -> str | None:
    """The query of the page's "next page" link, or None when it is the last page."""
    found = re.search(r'<a class="more" href="([^"]*)">' + label, response.content.decode())
    return html.unescape(found.group(1)) if found else None


def signal_ids(response: HttpResponse) -> list[str]:
    return re.findall(r'<article class="signal" id="signal-([^"]+)"', response.content.decode())


def task_sections(response: HttpResponse) -> dict[str, tuple[int, list[str], str]]:
    """Per section title of the task board: its total, the task ids in order, its words."""
    found = re.findall(
        r"<h2>([^<]+) <small>\((\d+)\)</small></h2>\s*<table class=\"tasks\">(.*?)</table>",
        response.content.decode(),
        re.S,
    )
    return {
        title: (int(total), re.findall(r'<tr id="task-([^"]+)"', body), words(body))
        for title, total, body in found
    }


def backdate_heartbeat(memory: RedisShortTermMemory, team_id: str, agent_id: str, seconds: int):
    """Make ``agent_id``'s last heartbeat ``seconds`` old, as if it had gone quiet since."""
    now = memory.server_time_ms()
    key = memory.keys.team(team_id, "heartbeats")
    memory.client.zadd(key, {agent_id: now - seconds * 1000})


def redis_snapshot(client: redis.Redis) -> dict[bytes, bytes]:
    return {key: client.dump(key) for key in client.keys("*")}


def audit_actions() -> list[tuple[str, str, str, str]]:
    return list(
        AuditEntry.objects.order_by("id").values_list("actor_name", "tier", "action", "target")
    )


def pattern(pattern_id: str, agent_id: str, **fields: Any) -> StagedPattern:
    fields.setdefault("pattern_type", "security")
    fields.setdefault("name", f"Pattern {pattern_id}")
    fields.setdefault("description", f"What {pattern_id} is about")
    return StagedPattern(pattern_id, agent_id, **fields)


# overview ------------------------------------------------------------------------------


def test_it_summarises_agents_tasks_patterns_sessions_and_signals(memory, observer):
    reviewers = AgentCoordinator(memory, "reviewers")
    for agent_id in ("lead", "security", "perf"):
        reviewers.register_agent(agent_id, ["review"])
    backdate_heartbeat(memory, "reviewers", "security", 45)
    backdate_heartbeat(memory, "reviewers", "perf", 600)
    for task_id, priority in (("done", 9), ("broken", 8), ("held", 7), ("waiting", 1)):
        reviewers.add_task(AgentTask(task_id, "review", priority=priority))
    reviewers.claim_task("lead", "review")
    reviewers.complete_task("done", {"ok": True})
    reviewers.claim_task("lead", "review")
    reviewers.fail_task("broken", "crashed", retry=False)
    reviewers.claim_task("security", "review")
    builders = AgentCoordinator(memory, "builders")
    builders.add_task(AgentTask("compile", "build"))
    builders.add_task(AgentTask("link", "build"))
    lead = EmpathyOS("lead", memory)
    lead.stage_pattern(pattern("p-1", "lead"))
    lead.stage_pattern(pattern("p-2", "lead"))
    lead.send_signal("review.start", {"pr": 1})
    lead.send_signal("review.assign", {"pr": 1}, "security")
    session = TeamSession(memory, "triage", "Triage the outage", actor="lead")
    session.signal("status", {"phase": "started"})

    response = observer.get("/")

    assert response.status_code == 200
    text = page_text(response)
    assert "1 alive · 1 late · 1 dead" in text
    assert "2 awaiting validation · 0 expire within the hour" in text
    assert "1 active" in text
    assert "3 in the last 5 minutes" in text
    table = words(response.content.decode().split("Tasks per team")[1])
    assert "reviewers 1 1 1 1" in table  # queued, claimed, completed, dead-lettered
    assert "builders 2 0 0 0" in table
    sparklines = re.findall(r'<svg role="img" aria-label="([^"]+)"', response.content.decode())
    assert len(sparklines) == 2
    assert sparklines[0].startswith("signals per minute: latest ")
    assert sparklines[1].startswith("queued tasks: latest 3,")
    for points in re.findall(r'<polyline [^>]*points="([^"]+)"', response.content.decode()):
        assert len(points.split()) == 60  # one point per minute of the last hour


def test_it_says_what_is_missing_on_an_empty_memory(memory, observer):
    text = page_text(observer.get("/"))

    assert "0 alive · 0 late · 0 dead" in text
    assert "0 awaiting validation · 0 expire within the hour" in text
    assert "No team has queued a task yet." in text


def test_it_counts_staged_patterns_that_expire_within_the_hour(memory, short_patterns, observer):
    use_memory(short_patterns)  # the web and the agents agree on a 30-minute TTL
    EmpathyOS("security", short_patterns).stage_pattern(pattern("p-soon", "security"))

    text = page_text(observer.get("/"))

    assert "1 awaiting validation · 1 expire within the hour" in text


def test_it_counts_a_pattern_expiring_soon_whatever_ttl_its_agent_used(
    memory, short_patterns, observer
):
    EmpathyOS("security", memory).stage_pattern(pattern("p-day", "security"))
    EmpathyOS("perf", short_patterns).stage_pattern(pattern("p-soon", "perf"))

    text = page_text(observer.get("/"))

    assert "2 awaiting validation · 1 expire within the hour" in text


# signals -------------------------------------------------------------------------------


@pytest.fixture
def team_signals(memory: RedisShortTermMemory) -> dict[str, str]:
    """Four signals, oldest first, named by what is special about each."""

    def sent(sender: str, *args: Any, **kwargs: Any) -> str:
        caller = Caller(sender, AccessTier.CONTRIBUTOR)
        return send_signal(memory, caller, *args, **kwargs)["id"]

    return {
        "team-broadcast": sent("lead", "review.start", {"pr": 7}, None, team="reviewers"),
        "lead-to-security": sent("lead", "review.assign", {"file": "auth.py"}, "security"),
        "security-broadcast": sent("security", "finding", {"severity": "high"}, None),
        "team-perf-to-lead": sent("perf", "finding", {"p95_ms": 900}, "lead", team="reviewers"),
    }


def test_it_lists_signals_newest_first_with_their_data(team_signals, observer):
    response = observer.get("/signals/")

    assert response.status_code == 200
    assert signal_ids(response) == list(reversed(team_signals.values()))
    broadcast = element(response, f"signal-{team_signals['team-broadcast']}")
    assert "review.start from lead to everyone · team reviewers" in broadcast
    assert '{ "pr": 7 }' in broadcast
    targeted = element(response, f"signal-{team_signals['lead-to-security']}")
    assert "review.assign from lead to security" in targeted
    assert '{ "file": "auth.py" }' in targeted


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("signal_type=finding", ["team-perf-to-lead", "security-broadcast"]),
        ("sender=lead", ["lead-to-security", "team-broadcast"]),
        ("target=lead", ["team-perf-to-lead"]),
        ("target=*", ["security-broadcast", "team-broadcast"]),
        ("team=reviewers", ["team-perf-to-lead", "team-broadcast"]),
        ("signal_type=finding&team=reviewers", ["team-perf-to-lead"]),
        ("sender=nobody", []),
    ],
)
def test_it_filters_signals(team_signals, observer, query, expected):
    response = observer.get(f"/signals/?{query}")

    assert response.status_code == 200
    assert signal_ids(response) == [team_signals[name] for name in expected]
    if not expected:
        assert "No signals in the last 5 minutes match these filters." in page_text(response)


def test_it_pages_back_through_older_signals(memory, observer):
    agent = EmpathyOS("chatty", memory)
    sent = [agent.send_signal("tick" if n % 2 else "tock", {"n": n})["id"] for n in range(60)]

    seen: list[str] = []
    query: str | None = "?"
    while query is not None:
        response = observer.get(f"/signals/{query}")
        assert response.status_code == 200
        seen.extend(signal_ids(response))
        query = next_page(response)

    assert seen == list(reversed(sent))  # 25 + 25 + 10, newest first, none twice


def test_it_keeps_the_filter_on_the_next_page(memory, observer):
    agent = EmpathyOS("chatty", memory)
    sent = [agent.send_signal("tick" if n % 2 else "tock", {"n": n})["id"] for n in range(60)]
    ticks = list(reversed(sent[1::2]))

    first = observer.get("/signals/?signal_type=tick")
    query = next_page(first)
    assert query is not None and "signal_type=tick" in query
    second = observer.get(f"/signals/{query}")

    assert signal_ids(first) == ticks[:25]
    assert signal_ids(second) == ticks[25:]
    assert next_page(second) is None


# staged patterns -----------------------------------------------------------------------


def test_it_lists_staged_patterns_with_their_ttl(memory, short_patterns, observer):
    EmpathyOS("security-agent", memory).stage_pattern(
        pattern(
            "sql-raw",
            "security-agent",
            name="SQL built by string formatting",
            description="Queries assembled with f-strings",
            code='cursor.execute(f"SELECT {col}")',
            confidence=0.92,
        )
    )
    EmpathyOS("perf-agent", short_patterns).stage_pattern(
        pattern("n-plus-one", "perf-agent", pattern_type="performance", confidence=0.4)
    )

    response = observer.get("/patterns/")

    assert response.status_code == 200
    sql = element(response, "pattern-sql-raw")
    assert "SQL built by string formatting sql-raw security security-agent 0.92" in sql
    assert re.search(r"0\.92 (23h 59m|24h 00m) Queries assembled with f-strings", sql)
    assert 'cursor.execute(f"SELECT {col}")' in sql
    n_plus_one = element(response, "pattern-n-plus-one")
    assert "performance perf-agent 0.40" in n_plus_one
    assert re.search(r"0\.40 (29m \d\ds|30m 00s)", n_plus_one)


def test_it_pages_through_staged_patterns(memory, observer):
    agent = EmpathyOS("miner", memory)
    for n in range(27):
        agent.stage_pattern(pattern(f"p-{n:02d}", "miner"))

    first = observer.get("/patterns/")
    query = next_page(first)
    assert query is not None
    second = observer.get(f"/patterns/{query}")

    first_ids = re.findall(r'<tr id="pattern-([^"]+)"', first.content.decode())
    second_ids = re.findall(r'<tr id="pattern-([^"]+)"', second.content.decode())
    assert len(first_ids) == 25 and len(second_ids) == 2
    assert sorted(first_ids + second_ids) == [f"p-{n:02d}" for n in range(27)]
    assert next_page(second) is None


def test_it_says_when_no_pattern_awaits_validation(memory, observer):
    assert "No patterns are awaiting validation." in page_text(observer.get("/patterns/"))


# pattern library -----------------------------------------------------------------------


@pytest.fixture
def library() -> None:
    validator = make_user("vera", "validator")
    for pattern_id, name, pattern_type, description, code in (
        (
            "sql-params",
            "Parameterised SQL",
            "security",
            "Bind values instead of formatting them in",
            "cursor.execute(sql, params)",
        ),
        (
            "n-plus-one",
            "Batch related rows",
            "performance",
            "Fetch the authors in one query",
            "Book.objects.select_related('author')",
        ),
        (
            "jitter",
            "Retry with jitter",
            "reliability",
            "Back off exponentially",
            "sleep(random.uniform(0, cap))",
        ),
    ):
        PromotedPattern.objects.create(
            pattern_id=pattern_id,
            name=name,
            pattern_type=pattern_type,
            description=description,
            code=code,
            confidence=0.875,
            agent_id=f"{pattern_type}-agent",
            promoted_by=validator,
        )


def library_names(response: HttpResponse) -> list[str]:
    names = re.findall(
        r'<article class="pattern">\s*<h2>([^<]+?) <small>', response.content.decode()
    )
    return sorted(html.unescape(name) for name in names)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["Batch related rows", "Parameterised SQL", "Retry with jitter"]),
        ("q=parameterised", ["Parameterised SQL"]),  # name
        ("q=EXPONENTIALLY", ["Retry with jitter"]),  # description, any case
        ("q=select_related", ["Batch related rows"]),  # code
        ("type=performance", ["Batch related rows"]),
        ("q=rows&type=performance", ["Batch related rows"]),
        ("q=rows&type=security", []),
    ],
)
def test_it_searches_the_pattern_library(library, observer, query, expected):
    response = observer.get(f"/library/?{query}")

    assert response.status_code == 200
    assert library_names(response) == expected
    if not expected:
        assert "No promoted pattern matches." in page_text(response)


def test_it_shows_who_found_and_promoted_a_library_pattern(library, observer):
    text = page_text(observer.get("/library/?q=jitter"))

    assert "Retry with jitter reliability · confidence 0.88" in text
    assert "sleep(random.uniform(0, cap))" in text
    assert "Found by reliability-agent · promoted by vera on" in text


def test_it_pages_through_the_library(observer):
    for n in range(30):
        PromotedPattern.objects.create(
            pattern_id=f"p-{n}", name=f"Pattern {n:02d}", pattern_type="style", confidence=0.5
        )

    first = observer.get("/library/")
    second = observer.get("/library/?q=&type=&page=2")

    assert "Page 1 of 2" in page_text(first)
    assert len(library_names(first)) == 25 and len(library_names(second)) == 5
    assert set(library_names(first)).isdisjoint(library_names(second))


def test_it_says_when_the_library_is_empty(observer):
    assert "No pattern has been promoted yet." in page_text(observer.get("/library/"))


# tasks ---------------------------------------------------------------------------------


@pytest.fixture
def task_board(memory: RedisShortTermMemory) -> dict[str, Any]:
    reviewers = AgentCoordinator(memory, "reviewers")
    for task_id, priority in (("r-claimed", 10), ("r-low", 2), ("r-high", 9), ("r-mid", 5)):
        reviewers.add_task(AgentTask(task_id, "review", f"check {task_id}", priority))
    reviewers.add_task(AgentTask("r-mid-later", "review", priority=5))
    claimed = reviewers.claim_task("security", "review", lease_seconds=600)
    for task_id, priority in (("tr-done", 10), ("tr-dead", 9), ("tr-waiting", 1)):
        reviewers.add_task(AgentTask(task_id, "triage", priority=priority))
    reviewers.claim_task("lead", "triage")
    reviewers.complete_task("tr-done", {"verdict": "ship it", "issues": 0})
    reviewers.claim_task("lead", "triage")
    reviewers.fail_task("tr-dead", "timed out", retry=False)
    AgentCoordinator(memory, "builders").add_task(AgentTask("b-compile", "build"))
    return {"claimed": claimed}


def test_it_shows_a_team_s_task_board(task_board, observer):
    response = observer.get("/tasks/?team=reviewers")

    assert response.status_code == 200
    text = page_text(response)
    assert "5 queued · 1 claimed · 1 completed · 1 dead-lettered" in text
    sections = task_sections(response)
    assert list(sections) == [
        "Queued: review",
        "Queued: triage",
        "Claimed",
        "Completed",
        "Dead-lettered",
    ]
    # Highest priority first, first come first served within a priority.
    assert sections["Queued: review"][:2] == (4, ["r-high", "r-mid", "r-mid-later", "r-low"])
    assert sections["Queued: triage"][:2] == (1, ["tr-waiting"])
    assert sections["Completed"][:2] == (1, ["tr-done"])
    assert sections["Dead-lettered"][:2] == (1, ["tr-dead"])
    assert "b-compile" not in text


def test_it_shows_who_holds_a_claim_and_for_how_long(task_board, observer):
    response = observer.get("/tasks/?team=reviewers")

    row = element(response, "task-r-claimed")
    assert "r-claimed check r-claimed review 10 1 security" in row
    assert re.search(r"security (9|10) minutes", row)
    deadline = task_board["claimed"].lease_expires_ms
    assert f'data-deadline="{deadline}"' in response.content.decode()


def test_it_shows_results_of_completed_and_dead_lettered_tasks(task_board, observer):
    response = observer.get("/tasks/?team=reviewers")

    assert '"verdict": "ship it"' in element(response, "task-tr-done")
    assert '{ "error": "timed out" }' in element(response, "task-tr-dead")


def test_it_switches_between_teams(task_board, observer):
    response = observer.get("/tasks/?team=builders")

    assert "builders" in re.findall(r'class="current">([^<]+)</a>', response.content.decode())
    sections = task_sections(response)
    assert sections["Queued: build"][:2] == (1, ["b-compile"])
    assert "r-high" not in page_text(response)


def many_teams(memory: RedisShortTermMemory, count: int) -> list[str]:
    """``count`` teams, each with one queued task and one agent, oldest activity first;
    returns their ids newest first, as the pages list them."""
    ids = [f"team-{n:03d}" for n in range(count)]
    for team_id in ids:
        coordinator = AgentCoordinator(memory, team_id)
        coordinator.register_agent(f"{team_id}-agent", ["work"])
        coordinator.add_task(AgentTask(f"{team_id}-task", "work"))
        memory.client.zadd(memory.keys.teams, {team_id: ids.index(team_id)})  # activity order
    return ids[::-1]


def test_the_overview_pages_through_teams(memory, observer):
    newest_first = many_teams(memory, 30)

    first = observer.get("/")
    rows = re.findall(r'\?team=(team-\d+)">', first.content.decode())
    assert rows == newest_first[:25]
    assert "25 of 30 teams, most recently active first." in page_text(first)
    assert "30 alive · 0 late · 0 dead" in page_text(first)  # every team, not only this page
    second = observer.get("/" + next_page(first))
    assert re.findall(r'\?team=(team-\d+)">', second.content.decode()) == newest_first[25:]
    assert next_page(second) is None


def test_the_task_board_tabs_the_most_recent_teams(memory, observer):
    newest_first = many_teams(memory, 27)

    response = observer.get(f"/tasks/?team={newest_first[-1]}")

    tabs = re.findall(r'<a href="\?team=(team-\d+)"', response.content.decode())
    assert tabs == newest_first[:25] + [newest_first[-1]]  # and the one asked for
    assert "and 1 less recently active team: see the overview" in page_text(response)
    assert task_sections(response)["Queued: work"][1] == [f"{newest_first[-1]}-task"]


def test_the_agents_page_pages_through_teams(memory, observer):
    newest_first = many_teams(memory, 12)

    first = observer.get("/agents/")
    assert re.findall(r"<h2>(team-\d+)</h2>", first.content.decode()) == newest_first[:10]
    assert "12 teams, most recently active first." in page_text(first)
    second = observer.get("/agents/" + next_page(first, "More teams"))
    assert re.findall(r"<h2>(team-\d+)</h2>", second.content.decode()) == newest_first[10:]


# agents --------------------------------------------------------------------------------


def test_it_shows_agents_with_liveness_capabilities_and_claims(memory, observer):
    reviewers = AgentCoordinator(memory, "reviewers")
    reviewers.register_agent("lead", ["planning", "review"])
    reviewers.register_agent("security", ["security"])
    reviewers.register_agent("perf", ["performance"])
    reviewers.add_task(AgentTask("audit-auth", "review"))
    reviewers.claim_task("security", "review")
    backdate_heartbeat(memory, "reviewers", "security", 45)
    backdate_heartbeat(memory, "reviewers", "perf", 600)
    AgentCoordinator(memory, "builders").register_agent("compiler", ["build"])

    response = observer.get("/agents/")

    assert response.status_code == 200
    # Heartbeat ages to the second (a slow run may add one).
    assert re.fullmatch(
        r"lead alive [01]s ago planning, review -", element(response, "agent-reviewers-lead")
    )
    assert re.fullmatch(
        r"security late 4[56]s ago security audit-auth",
        element(response, "agent-reviewers-security"),
    )
    assert re.fullmatch(
        r"perf dead 10m 0[01]s ago performance -", element(response, "agent-reviewers-perf")
    )
    assert "compiler alive" in element(response, "agent-builders-compiler")


def test_it_says_when_no_agent_has_registered(memory, observer):
    assert "No agent has registered yet." in page_text(observer.get("/agents/"))


# sessions ------------------------------------------------------------------------------


@pytest.fixture
def incident(memory: RedisShortTermMemory) -> TeamSession:
    session = TeamSession(memory, "incident-42", "Find why checkout is slow", actor="lead")
    session.add_agent("lead")
    session.add_agent("perf")
    session.share("hypothesis", {"cause": "cache stampede", "confidence": 0.6})
    session.signal("status", {"phase": "mitigating"})
    TeamSession(memory, "retro", "Write the retrospective", actor="lead")
    return session


def test_it_lists_active_sessions(incident, observer):
    response = observer.get("/sessions/")

    assert response.status_code == 200
    row = element(response, "session-incident-42")
    assert re.fullmatch(
        r"incident-42 Find why checkout is slow lead, perf (29m \d\ds|30m 00s)", row
    )
    assert "Write the retrospective" in element(response, "session-retro")


def test_it_shows_a_session_in_detail(incident, observer):
    response = observer.get("/sessions/incident-42/")

    assert response.status_code == 200
    text = element(response, "session-detail")
    assert "Find why checkout is slow" in text
    assert re.search(r"Created by lead · expires in (29m \d\ds|30m 00s)", text)
    assert "Participants lead perf" in text
    assert 'hypothesis { "cause": "cache stampede", "confidence": 0.6 }' in text
    assert re.search(r'status from lead \d\d:\d\d:\d\d \{ "phase": "mitigating" \}', text)


def test_it_answers_404_for_a_session_that_is_gone(memory, observer):
    response = observer.get("/sessions/never-was/")

    assert response.status_code == 404


# working memory ------------------------------------------------------------------------


def test_it_shows_an_agent_s_working_memory(memory, observer):
    security = EmpathyOS("security-agent", memory)
    security.stash("findings", {"sql_injection": 2, "files": ["auth.py"]}, ttl=600)
    security.stash("scratch", [1, 2, 3], ttl=120)
    security.stash("lock", "held", ttl=30)
    EmpathyOS("perf-agent", memory).stash("profile", {"p95_ms": 180})

    first = observer.get("/memory/")
    response = observer.get("/memory/?agent=security-agent")

    assert "perf-agent (1 keys)" in page_text(first)  # the first agent, by id
    assert response.status_code == 200
    text = page_text(response)
    assert "perf-agent security-agent" in text
    assert "security-agent (3 keys)" in text
    # Soonest to expire first.
    assert re.search(r'lock (29|30)s "held" scratch (1m 59s|2m 00s) \[ 1, 2, 3 \] findings', text)
    assert re.search(
        r'findings (9m \d\ds|10m 00s) \{ "files": \[ "auth.py" \], "sql_injection": 2 \}', text
    )


def test_it_says_when_no_agent_has_working_memory(memory, observer):
    assert "No agent has working memory." in page_text(observer.get("/memory/"))


# when Redis is down --------------------------------------------------------------------


@pytest.mark.parametrize("path", [*MEMORY_PAGES, "/sessions/incident-42/"])
def test_it_shows_a_banner_when_redis_is_unreachable(redis_down, observer, path):
    response = observer.get(path)

    assert response.status_code == 503
    assert "Redis is unreachable." in page_text(response)
    assert "Connection refused" in page_text(response)
    assert "Traceback" not in response.content.decode()


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/tasks/add/", {"team_id": "t", "task_id": "a", "task_type": "b", "priority": 5}),
        ("/signals/send/", {"signal_type": "ping"}),
        ("/sessions/incident-42/share/", {"key": "k", "value": "1"}),
        ("/tasks/t/a/requeue/", {}),
        ("/tasks/t/a/cancel/", {}),
        ("/sessions/incident-42/delete/", {}),
        ("/memory/security-agent/clear/", {}),
    ],
)
def test_it_shows_a_banner_for_actions_when_redis_is_unreachable(redis_down, steward, path, data):
    response = steward.post(path, data)

    assert response.status_code == 503
    assert "Redis is unreachable." in page_text(response)
    assert not AuditEntry.objects.exists()


@pytest.fixture
def redis_never_answered(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The web starts with REDIS_URL naming a server that is not running."""
    server = start_redis_server([])
    server.stop()
    monkeypatch.setenv("REDIS_URL", server.url)
    use_memory(None)
    try:
        yield server.url
    finally:
        use_memory(None)


@pytest.mark.parametrize("path", MEMORY_PAGES)
def test_it_shows_a_banner_when_redis_was_never_reachable(redis_never_answered, observer, path):
    response = observer.get(path)

    assert response.status_code == 503
    assert "Redis is unreachable." in page_text(response)
    assert "cannot reach Redis at 127.0.0.1:" in page_text(response)


def test_readyz_says_redis_was_never_reachable(redis_never_answered, client):
    response = client.get("/readyz")

    assert response.status_code == 503
    assert "cannot reach Redis at 127.0.0.1:" in response.json()["problems"]["redis"]


def test_the_library_still_answers_when_redis_is_unreachable(redis_down, observer):
    assert observer.get("/library/").status_code == 200


def test_readyz_says_redis_is_unreachable(redis_down, client):
    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert "redis" in response.json()["problems"]
    assert "no answer from 127.0.0.1:" in response.json()["problems"]["redis"]
    assert client.get("/healthz").status_code == 200


def test_readyz_and_healthz_answer_ok_when_all_is_up(memory, client):
    assert client.get("/readyz").json() == {"status": "ok"}
    assert client.get("/healthz").json() == {"status": "ok"}


# contributor actions -------------------------------------------------------------------


def test_a_contributor_adds_a_task(memory, contributor):
    response = contributor.post(
        "/tasks/add/",
        {
            "team_id": "reviewers",
            "task_id": "audit-login",
            "task_type": "review",
            "description": "Look at the login view",
            "priority": 7,
        },
        follow=True,
    )

    assert response.redirect_chain == [("/tasks/?team=reviewers", 302)]
    assert "Task audit-login queued in reviewers." in page_text(response)
    assert task_sections(response)["Queued: review"][:2] == (1, ["audit-login"])
    assert "audit-login Look at the login view review 7 0" in element(response, "task-audit-login")
    task = AgentCoordinator(memory, "reviewers").get_task("audit-login")
    assert (task.status, task.priority, task.description) == (
        "pending",
        7,
        "Look at the login view",
    )
    assert audit_actions() == [
        ("contributor-person", "CONTRIBUTOR", "task.add", "reviewers/audit-login")
    ]


def test_adding_a_task_twice_changes_nothing(memory, contributor):
    data = {"team_id": "reviewers", "task_id": "t-1", "task_type": "review", "priority": 5}
    contributor.post("/tasks/add/", data)

    response = contributor.post("/tasks/add/", {**data, "priority": 9}, follow=True)

    assert "Task t-1 already exists; nothing changed." in page_text(response)
    assert AgentCoordinator(memory, "reviewers").get_task("t-1").priority == 5
    assert AuditEntry.objects.count() == 1


def test_a_contributor_sends_a_signal(memory, contributor):
    response = contributor.post(
        "/signals/send/",
        {"signal_type": "review.request", "target_agent": "security", "data": '{"pr": 42}'},
        follow=True,
    )

    assert response.redirect_chain == [("/signals/", 302)]
    assert "Signal review.request sent." in page_text(response)
    (signal,) = list_signals(memory)
    assert (signal["sender"], signal["target"], signal["data"]) == (
        "contributor-person",
        "security",
        {"pr": 42},
    )
    feed = element(response, f"signal-{signal['id']}")
    assert "review.request from contributor-person to security" in feed
    assert '{ "pr": 42 }' in feed
    assert audit_actions() == [("contributor-person", "CONTRIBUTOR", "signal.send", "security")]


def test_a_contributor_broadcasts_a_signal(memory, contributor):
    response = contributor.post("/signals/send/", {"signal_type": "standup"}, follow=True)

    (signal,) = list_signals(memory, target="*")
    assert "standup from contributor-person to everyone" in element(
        response, f"signal-{signal['id']}"
    )
    assert audit_actions() == [("contributor-person", "CONTRIBUTOR", "signal.send", "*")]


def test_a_contributor_shares_into_a_session(incident, memory, contributor):
    response = contributor.post(
        "/sessions/incident-42/share/",
        {"key": "decision", "value": '{"rollback": true}'},
        follow=True,
    )

    assert response.redirect_chain == [("/sessions/incident-42/", 302)]
    assert "Shared decision with the session." in page_text(response)
    assert 'decision { "rollback": true }' in element(response, "session-detail")
    assert incident.get("decision") == {"rollback": True}
    assert audit_actions() == [
        ("contributor-person", "CONTRIBUTOR", "session.share", "incident-42")
    ]


def test_sharing_into_a_session_that_is_gone_creates_nothing(memory, contributor):
    response = contributor.post("/sessions/gone/share/", {"key": "k", "value": "1"}, follow=True)

    assert response.redirect_chain == [("/sessions/", 302)]
    assert "no session gone" in page_text(response)
    assert get_session(memory, "gone") is None
    assert not AuditEntry.objects.exists()


TASK = {"team_id": "reviewers", "task_id": "t-1", "task_type": "review", "priority": "5"}
SHARE = {"key": "decision", "value": '"ship"'}

BAD_INPUT = [
    pytest.param("/tasks/add/", {**TASK, "priority": "11"}, "less than or equal to 10", id="priority-11"),
    pytest.param("/tasks/add/", {**TASK, "priority": "0"}, "greater than or equal to 1", id="priority-0"),
    pytest.param("/tasks/add/", {**TASK, "task_id": "a\tb"}, "contains a control character", id="task-id-tab"),
    pytest.param("/tasks/add/", {**TASK, "task_id": ""}, "This field is required.", id="task-id-empty"),
    pytest.param("/tasks/add/", {**TASK, "team_id": "  "}, "This field is required.", id="team-id-blank"),
    pytest.param("/tasks/add/", {**TASK, "team_id": "a{b}"}, "must not contain", id="team-id-braces"),
    pytest.param("/tasks/add/", {**TASK, "task_type": "x\ny"}, "contains a control character", id="type-newline"),
    pytest.param("/signals/send/", {"signal_type": "ping", "data": "{bad"}, "Not valid JSON", id="signal-json"),
    pytest.param("/signals/send/", {"signal_type": "ping", "data": "NaN"}, "cannot be stored as JSON", id="signal-nan"),
    pytest.param("/signals/send/", {"signal_type": "ping", "target_agent": "a\tb"}, "contains a control character", id="target-tab"),
    pytest.param("/signals/send/", {"signal_type": ""}, "This field is required.", id="signal-type-empty"),
    pytest.param("/sessions/incident-42/share/", {**SHARE, "value": "{"}, "Not valid JSON", id="share-json"),
    pytest.param("/sessions/incident-42/share/", {**SHARE, "value": ""}, "This field is required.", id="share-empty"),
    pytest.param("/sessions/incident-42/share/", {**SHARE, "key": "a\tb"}, "contains a control character", id="share-key-tab"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "data", "message"), BAD_INPUT)
def test_bad_input_is_refused_and_nothing_is_written(
    incident, redis_client, contributor, path, data, message
):
    before = redis_snapshot(redis_client)

    response = contributor.post(path, data)

    assert response.status_code == 400
    assert message in page_text(response)
    assert redis_snapshot(redis_client) == before
    assert not AuditEntry.objects.exists()


def test_observers_cannot_act(incident, redis_client, observer):
    before = redis_snapshot(redis_client)

    responses = [
        observer.post("/tasks/add/", TASK),
        observer.post("/signals/send/", {"signal_type": "ping"}),
        observer.post("/sessions/incident-42/share/", SHARE),
    ]

    assert [r.status_code for r in responses] == [403, 403, 403]
    assert redis_snapshot(redis_client) == before
    assert not AuditEntry.objects.exists()


def test_actions_need_a_post_with_a_csrf_token(memory):
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("carol", "contributor"))

    assert client.get("/tasks/add/").status_code == 405
    assert client.post("/tasks/add/", TASK).status_code == 403
    assert AgentCoordinator(memory, "reviewers").get_task("t-1") is None


# steward actions -----------------------------------------------------------------------


@pytest.fixture
def dead_task(memory: RedisShortTermMemory) -> AgentCoordinator:
    reviewers = AgentCoordinator(memory, "reviewers")
    reviewers.add_task(AgentTask("flaky", "review", priority=6))
    reviewers.claim_task("security", "review")
    reviewers.fail_task("flaky", "crashed", retry=False)
    return reviewers


def test_a_steward_requeues_a_dead_lettered_task(dead_task, steward):
    response = steward.post("/tasks/reviewers/flaky/requeue/", follow=True)

    assert response.redirect_chain == [("/tasks/?team=reviewers", 302)]
    assert "Task flaky: requeue done." in page_text(response)
    sections = task_sections(response)
    assert sections["Queued: review"][:2] == (1, ["flaky"])
    assert sections["Dead-lettered"][:2] == (0, [])
    task = dead_task.get_task("flaky")
    assert (task.status, task.attempts) == ("pending", 0)
    assert audit_actions() == [("steward-person", "STEWARD", "task.requeue", "reviewers/flaky")]


def test_a_steward_cancels_a_task(memory, steward):
    reviewers = AgentCoordinator(memory, "reviewers")
    reviewers.add_task(AgentTask("obsolete", "review"))
    reviewers.add_task(AgentTask("keep", "review"))

    response = steward.post("/tasks/reviewers/obsolete/cancel/", follow=True)

    assert "Task obsolete: cancel done." in page_text(response)
    assert task_sections(response)["Queued: review"][:2] == (1, ["keep"])
    assert reviewers.get_task("obsolete") is None
    assert audit_actions() == [("steward-person", "STEWARD", "task.cancel", "reviewers/obsolete")]


def test_a_steward_cannot_cancel_a_completed_task(memory, steward):
    reviewers = AgentCoordinator(memory, "reviewers")
    reviewers.add_task(AgentTask("finished", "review"))
    reviewers.claim_task("lead", "review")
    reviewers.complete_task("finished", "done")

    response = steward.post("/tasks/reviewers/finished/cancel/", follow=True)

    assert "task finished is already completed" in page_text(response)
    assert reviewers.get_task("finished").status == "completed"
    assert not AuditEntry.objects.exists()


def test_a_steward_deletes_a_session(incident, memory, steward):
    response = steward.post("/sessions/incident-42/delete/", follow=True)

    assert response.redirect_chain == [("/sessions/", 302)]
    assert "Session incident-42 deleted." in page_text(response)
    assert 'id="session-incident-42"' not in response.content.decode()
    assert get_session(memory, "incident-42") is None
    assert audit_actions() == [("steward-person", "STEWARD", "session.delete", "incident-42")]

    again = steward.post("/sessions/incident-42/delete/", follow=True)

    assert "Session incident-42 was already gone." in page_text(again)
    assert AuditEntry.objects.count() == 1


def test_a_steward_clears_an_agent_s_memory(memory, steward):
    security = EmpathyOS("security-agent", memory)
    security.stash("findings", {"sql_injection": 2})
    security.stash("scratch", [1])
    EmpathyOS("perf-agent", memory).stash("profile", {"p95_ms": 180})

    response = steward.post("/memory/security-agent/clear/", follow=True)

    assert response.redirect_chain == [("/memory/", 302)]
    assert "Cleared 2 keys of security-agent's working memory." in page_text(response)
    assert "security-agent" not in words(response.content.decode().split('class="agents"')[1])
    assert list_entries(memory, "security-agent") == []
    assert [e.key for e in list_entries(memory, "perf-agent")] == ["profile"]
    entry = AuditEntry.objects.get()
    assert (entry.actor_name, entry.tier, entry.action, entry.target, entry.details) == (
        "steward-person",
        "STEWARD",
        "memory.clear",
        "security-agent",
        {"keys": 2},
    )


def test_only_stewards_use_steward_actions(incident, dead_task, redis_client, contributor):
    EmpathyOS("security-agent", incident.memory).stash("findings", 1)
    before = redis_snapshot(redis_client)

    responses = [
        contributor.post("/tasks/reviewers/flaky/requeue/"),
        contributor.post("/tasks/reviewers/flaky/cancel/"),
        contributor.post("/sessions/incident-42/delete/"),
        contributor.post("/memory/security-agent/clear/"),
    ]

    assert [r.status_code for r in responses] == [403, 403, 403, 403]
    assert redis_snapshot(redis_client) == before
    assert not AuditEntry.objects.exists()


def test_an_unknown_task_action_is_not_found(dead_task, steward):
    assert steward.post("/tasks/reviewers/flaky/explode/").status_code == 404
    assert dead_task.get_task("flaky").status == "dead"


# what each tier is offered -------------------------------------------------------------


def offered(response: HttpResponse) -> dict[str, bool]:
    body = response.content.decode()
    return {
        "add task": "Queue task</button>" in body,
        "send signal": "Send</button>" in body,
        "share": "Share</button>" in body,
        "requeue": "Requeue</button>" in body,
        "cancel": "Cancel</button>" in body,
        "delete session": "Delete</button>" in body,
        "clear memory": "memory</button>" in body,
        "admin link": 'href="/admin/"' in body,
    }


def controls(client: Client) -> set[str]:
    shown: set[str] = set()
    for path in (
        "/tasks/?team=reviewers",
        "/signals/",
        "/sessions/",
        "/sessions/incident-42/",
        "/memory/",
    ):
        response = client.get(path)
        assert response.status_code == 200
        shown |= {name for name, present in offered(response).items() if present}
    return shown


@pytest.fixture
def everything(incident: TeamSession, dead_task: AgentCoordinator) -> None:
    EmpathyOS("security-agent", incident.memory).stash("findings", 1)


def test_observers_are_offered_no_action(everything, observer):
    assert controls(observer) == set()


def test_contributors_are_offered_the_forms_they_may_use(everything, contributor):
    assert controls(contributor) == {"add task", "send signal", "share"}


def test_stewards_are_offered_every_action_and_the_admin(everything, steward):
    assert controls(steward) == {
        "add task",
        "send signal",
        "share",
        "requeue",
        "cancel",
        "delete session",
        "clear memory",
        "admin link",
    }


# malformed ids and cursors -------------------------------------------------------------

MALFORMED_QUERY_BUG = (
    "an id or cursor from the URL that the library refuses (InvalidValue, a ValueError) is "
    "handled nowhere: empathy_web/dashboard/panels.py passes ?cursor=, ?agents_cursor=, "
    "?team= and ?agent= straight to the library, and actions.py share(), delete_session(), "
    "task_action() and clear_memory() build TeamSession / AgentCoordinator / check the "
    "agent id outside any try, so the request fails with a 500"
)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/signals/?cursor=garbage"),
        ("get", "/patterns/?cursor=garbage"),
        ("get", "/patterns/?q=x&cursor=garbage"),
        ("get", "/patterns/?sort=confidence&type=x&cursor=garbage"),
        ("get", "/patterns/?sort=type&cursor=garbage"),
        ("get", "/sessions/?cursor=x"),
        ("get", "/sessions/incident-42/?cursor=x"),
        ("get", "/tasks/?team=a%09b"),
        ("get", "/tasks/?team=reviewers&status=completed&cursor=x"),
        ("get", "/memory/?agent=a%09b"),
        ("get", "/memory/?agents_cursor=x"),
        ("post", "/sessions/a%09b/share/"),
        ("post", "/sessions/a%09b/delete/"),
        ("post", "/tasks/a%09b/flaky/requeue/"),
        ("post", "/memory/a%09b/clear/"),
    ],
)
def test_malformed_ids_and_cursors_are_refused_not_crashed_on(
    everything, steward, method: str, path: str
):
    as_steward = Client(raise_request_exception=False)  # see the 500 a person would see
    as_steward.cookies = steward.cookies

    response = getattr(as_steward, method)(path, SHARE if method == "post" else None)

    assert response.status_code in (400, 404)
    assert not AuditEntry.objects.exists()
