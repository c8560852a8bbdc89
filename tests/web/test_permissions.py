"""Who may reach what: every named URL, for every tier, by GET and POST.

The matrix below is the rule book. A URL that appears in the resolver without a row
fails ``test_every_named_url_has_a_rule``, so a new view cannot ship without one.
Data is written through the library on a real redis-server, so URLs with ids point at
real sessions, tasks and agents.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import User
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from empathy_web.library.models import AuditEntry, PromotedPattern
from memory import (
    AccessTier,
    AgentCoordinator,
    AgentTask,
    EmpathyOS,
    RedisShortTermMemory,
    StagedPattern,
    TeamSession,
)
from memory.patterns import decision
from memory.sessions import get_session
from memory.signals import list_signals
from memory.tiers import Caller
from memory.working import list_entries

READER = Caller("reader", AccessTier.OBSERVER)  # the reads below read as an observer

pytestmark = pytest.mark.django_db

TIERS = ("anonymous", "tierless", "observer", "contributor", "validator", "steward")

TEAM = "alpha"
AGENT = "agent-1"
SESSION = "s-1"
PENDING = "t-pending"
CLAIMED = "t-claimed"
PATTERN = "p-1"

# Expectations other than a plain status code.
LOGIN = "302 to the login page"
ADMIN_LOGIN = "302 to the admin login page"
DONE = "302 to the page the action returns to"

PAGE = (LOGIN, 403, 200, 200, 200, 200)
MISSING = (LOGIN, 403, 404, 404, 404, 404)
ANYONE = (200,) * 6
NOT_ALLOWED = (405,) * 6


@dataclass(frozen=True)
class Rule:
    """What each tier (in ``TIERS`` order) gets from one URL.

    ``post`` is for a valid form (``data``), ``post_invalid`` for ``invalid``; a
    successful POST redirects to ``then``. ``audit`` is the (action, target) the audit
    trail records for it, and ``effect`` tells, from Redis, that it happened.
    """

    url: str
    args: tuple[str, ...] = ()
    get: tuple[object, ...] | None = None
    post: tuple[object, ...] | None = None
    post_invalid: tuple[object, ...] | None = None
    data: dict[str, str] = field(default_factory=dict)
    invalid: dict[str, str] = field(default_factory=dict)
    then: str = ""
    audit: tuple[str, str] | None = None
    effect: Callable[[RedisShortTermMemory], bool] | None = None

    @property
    def path(self) -> str:
        return reverse(self.url, args=self.args)

    @property
    def needed(self) -> str:
        """The lowest tier whose valid POST succeeds."""
        assert self.post is not None
        return next(tier for tier, want in zip(TIERS, self.post, strict=True) if want == DONE)


def _task(memory: RedisShortTermMemory, task_id: str) -> AgentTask | None:
    return AgentCoordinator(memory, TEAM).get_task(task_id)


def _shared(memory: RedisShortTermMemory, key: str) -> object:
    session = TeamSession(memory, SESSION, access_tier=AccessTier.OBSERVER, create=False)
    return session.get(key)


def _decided(memory: RedisShortTermMemory, outcome: str) -> bool:
    """The seeded pattern left staging with ``outcome``, and is in the library iff
    it was promoted."""
    found = decision(memory, READER, PATTERN)
    promoted = PromotedPattern.objects.filter(pattern_id=PATTERN).exists()
    return (
        found is not None and found["decision"] == outcome and promoted == (outcome == "promoted")
    )


# fmt: off
MATRIX: dict[str, Rule] = {
    #                                   anonymous  tierless observer contrib validator steward
    "login":           Rule("login", get=ANYONE),
    "logout":          Rule("logout", get=NOT_ALLOWED,
                            post=(DONE,      DONE,    DONE,    DONE,    DONE,    DONE),
                            then="/accounts/login/"),
    "admin:index":     Rule("admin:index",
                            get=(ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 200)),
    "healthz":         Rule("healthz", get=ANYONE),
    # Off unless METRICS_TOKEN or METRICS_ALLOWED_ADDRESSES (tests/web/test_metrics.py).
    "metrics":         Rule("metrics", get=(404,) * 6, post=NOT_ALLOWED),
    "readyz":          Rule("readyz", get=ANYONE),
    "overview":        Rule("overview", get=PAGE, post=NOT_ALLOWED),
    "signals":         Rule("signals", get=PAGE, post=NOT_ALLOWED),
    "patterns":        Rule("patterns", get=PAGE, post=NOT_ALLOWED),
    "library":         Rule("library", get=PAGE, post=NOT_ALLOWED),
    "tasks":           Rule("tasks", get=PAGE, post=NOT_ALLOWED),
    "agents":          Rule("agents", get=PAGE, post=NOT_ALLOWED),
    "sessions":        Rule("sessions", get=PAGE, post=NOT_ALLOWED),
    "session_detail":  Rule("session_detail", (SESSION,), get=PAGE, post=NOT_ALLOWED),
    "session_detail:missing": Rule("session_detail", ("no-such-session",),
                            get=(LOGIN,      403,     404,     404,     404,     404)),
    "working_memory":  Rule("working_memory", get=PAGE, post=NOT_ALLOWED),
    # The pages that show a value whole; their keys go in the query string, so these
    # rows reach the "no such key" answer (tests/web/test_whole_values.py has the rest).
    "memory_value":    Rule("memory_value", (AGENT,), get=MISSING, post=NOT_ALLOWED),
    "session_value":   Rule("session_value", (SESSION,), get=MISSING, post=NOT_ALLOWED),
    "signal_value:missing": Rule("signal_value", (f"{0:013d}-{0:012d}-{0:016x}",),
                            get=MISSING, post=NOT_ALLOWED),
    "task_value":      Rule("task_value", (TEAM, PENDING), get=PAGE, post=NOT_ALLOWED),
    "task_value:missing": Rule("task_value", (TEAM, "no-such-task"), get=MISSING),
    "library_pattern:missing": Rule("library_pattern", ("no-such-pattern",), get=MISSING),
    "live_poll":       Rule("live_poll", get=PAGE, post=NOT_ALLOWED),
    "send_signal":     Rule("send_signal", get=NOT_ALLOWED,
                            post=(LOGIN,     403,     403,     DONE,    DONE,    DONE),
                            post_invalid=(LOGIN, 403, 403,     400,     400,     400),
                            data={"signal_type": "deploy", "target_agent": AGENT,
                                  "data": '{"version": 2}'},
                            invalid={"signal_type": "deploy", "data": "{not json"},
                            then="/signals/", audit=("signal.send", AGENT),
                            effect=lambda m: any(s["signal_type"] == "deploy"
                                                 for s in list_signals(m, READER, 50))),
    "add_task":        Rule("add_task", get=NOT_ALLOWED,
                            post=(LOGIN,     403,     403,     DONE,    DONE,    DONE),
                            post_invalid=(LOGIN, 403, 403,     400,     400,     400),
                            data={"team_id": TEAM, "task_id": "t-new", "task_type": "review",
                                  "description": "Check the diff", "priority": "7"},
                            invalid={"team_id": TEAM, "task_id": "t-new",
                                     "task_type": "review", "priority": "11"},
                            then=f"/tasks/?team={TEAM}", audit=("task.add", f"{TEAM}/t-new"),
                            effect=lambda m: _task(m, "t-new") is not None),
    "share":           Rule("share", (SESSION,), get=NOT_ALLOWED,
                            post=(LOGIN,     403,     403,     DONE,    DONE,    DONE),
                            post_invalid=(LOGIN, 403, 403,     400,     400,     400),
                            data={"key": "note", "value": '"ship it"'},
                            invalid={"key": "note", "value": "{oops"},
                            then=f"/sessions/{SESSION}/", audit=("session.share", SESSION),
                            effect=lambda m: _shared(m, "note") == "ship it"),
    "task_action:requeue": Rule("task_action", (TEAM, CLAIMED, "requeue"), get=NOT_ALLOWED,
                            post=(LOGIN,     403,     403,     403,     403,     DONE),
                            then=f"/tasks/?team={TEAM}", audit=("task.requeue", f"{TEAM}/{CLAIMED}"),
                            effect=lambda m: _task(m, CLAIMED).status == "pending"),
    "task_action:cancel": Rule("task_action", (TEAM, PENDING, "cancel"), get=NOT_ALLOWED,
                            post=(LOGIN,     403,     403,     403,     403,     DONE),
                            then=f"/tasks/?team={TEAM}", audit=("task.cancel", f"{TEAM}/{PENDING}"),
                            effect=lambda m: _task(m, PENDING) is None),
    # Nothing is dead-lettered in the seed: the steward is asked, then told so (its
    # CSRF check: tests/web/test_dead_letters.py).
    "requeue_dead":    Rule("requeue_dead", (TEAM,),
                            get=(LOGIN,      403,     403,     403,     403,     200),
                            post=(LOGIN,     403,     403,     403,     403,     302)),
    "task_action:unknown": Rule("task_action", (TEAM, PENDING, "promote"),
                            post=(LOGIN,     403,     403,     403,     403,     404)),
    "delete_session":  Rule("delete_session", (SESSION,), get=NOT_ALLOWED,
                            post=(LOGIN,     403,     403,     403,     403,     DONE),
                            then="/sessions/", audit=("session.delete", SESSION),
                            effect=lambda m: get_session(m, READER, SESSION) is None),
    "clear_memory":    Rule("clear_memory", (AGENT,), get=NOT_ALLOWED,
                            post=(LOGIN,     403,     403,     403,     403,     DONE),
                            then="/memory/", audit=("memory.clear", AGENT),
                            effect=lambda m: list_entries(m, READER, AGENT).total == 0),
    "pattern_detail":  Rule("pattern_detail", (PATTERN,), get=PAGE, post=NOT_ALLOWED),
    "pattern_detail:missing": Rule("pattern_detail", ("no-such-pattern",),
                            get=(LOGIN,      403,     404,     404,     404,     404)),
    "pattern_action:approve": Rule("pattern_action", (PATTERN, "approve"), get=NOT_ALLOWED,
                            post=(LOGIN,     403,     403,     403,     DONE,    DONE),
                            data={"note": "looks right"},
                            then="/patterns/", audit=("pattern.approve", PATTERN),
                            effect=lambda m: _decided(m, "promoted")),
    "pattern_action:reject": Rule("pattern_action", (PATTERN, "reject"), get=NOT_ALLOWED,
                            post=(LOGIN,     403,     403,     403,     DONE,    DONE),
                            post_invalid=(LOGIN, 403, 403,     403,     400,     400),
                            data={"reason": "duplicate of p-0"}, invalid={"reason": "  "},
                            then="/patterns/", audit=("pattern.reject", PATTERN),
                            effect=lambda m: _decided(m, "rejected")),
    # Nothing was decided, so there is nothing to undo: 409, after the tier check.
    "pattern_action:undo": Rule("pattern_action", (PATTERN, "undo"), get=NOT_ALLOWED,
                            post=(LOGIN,     403,     403,     403,     409,     409)),
    "pattern_action:unknown": Rule("pattern_action", (PATTERN, "promote"),
                            post=(LOGIN,     403,     403,     403,     404,     404)),
    "pattern_bulk":    Rule("pattern_bulk", get=NOT_ALLOWED,
                            post=(LOGIN,     403,     403,     403,     DONE,    DONE),
                            post_invalid=(LOGIN, 403, 403,     403,     400,     400),
                            data={"action": "reject", "pattern_id": PATTERN, "reason": "stale"},
                            invalid={"action": "reject", "pattern_id": PATTERN},
                            then="/patterns/", audit=("pattern.bulk_reject", PATTERN),
                            effect=lambda m: _decided(m, "rejected")),
    # The library's API takes agent tokens, not sessions: every person gets 401.
    "api_library":     Rule("api_library", get=(401,) * 6, post=NOT_ALLOWED),
    "api_library_detail": Rule("api_library_detail", ("p-0",), get=(401,) * 6,
                            post=NOT_ALLOWED),
    # Running the wizard answers with its findings (200), not a redirect; staging posts
    # to a kept run's page, and the seeded memory holds no run, hence 404.
    "wizards:security": Rule("wizards:security",
                            get=(LOGIN,      403,     403,     200,     200,     200),
                            post=(LOGIN,     403,     403,     200,     200,     200),
                            post_invalid=(LOGIN, 403, 403,     400,     400,     400),
                            data={"code": "import pickle\npickle.loads(blob)\n",
                                  "language": "python"},
                            invalid={"code": "", "language": "python"}),
    "wizards:security_run": Rule("wizards:security_run", ("0" * 64,),
                            get=(LOGIN,      403,     403,     404,     404,     404),
                            post=(LOGIN,     403,     403,     404,     404,     404),
                            data={"finding": "0"}),
}
# fmt: on

ACTIONS = [case for case, rule in MATRIX.items() if rule.audit is not None]


def named_urls() -> dict[str, str]:
    """Every URL the project serves, by qualified name, with its route.

    The admin's own URLs are Django's business and are left out, except its index; so
    are static files, and the agent API (credentials, not people: test_api_matrix.py). A URL without a name cannot be given a rule, so it is an error.
    """
    found: dict[str, str] = {}
    unnamed: list[str] = []
    static = settings.STATIC_URL.lstrip("/")

    def walk(patterns: list, prefix: str, namespace: str) -> None:
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                inner = ":".join(n for n in (namespace, entry.namespace) if n)
                walk(entry.url_patterns, route, inner)
                continue
            assert isinstance(entry, URLPattern)
            if route.startswith(static):
                continue
            name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name
            if namespace == "admin" and name != "admin:index":
                continue
            if namespace == "api_v1":  # agents' credentials, not people: test_api_matrix
                continue
            if name is None:
                unnamed.append(route)
            else:
                found[name] = route

    walk(get_resolver().url_patterns, "", "")
    assert not unnamed, f"URLs without a name (give them one, and a rule): {unnamed}"
    return found


def seed(memory: RedisShortTermMemory) -> None:
    """One of everything the pages show, written the way agents write it."""
    agent = EmpathyOS(AGENT, memory)
    agent.stash("draft", {"step": 1})
    agent.stage_pattern(
        StagedPattern(PATTERN, AGENT, "refactor", "Extract method", "Split long functions")
    )
    agent.send_signal("hello", {"n": 1})
    coordinator = AgentCoordinator(memory, TEAM, actor=AGENT)
    coordinator.register_agent(AGENT, ["python"])
    coordinator.add_task(AgentTask(PENDING, "review", "Review the diff"))
    coordinator.add_task(AgentTask(CLAIMED, "build", "Build the wheel"))
    assert coordinator.claim_task(AGENT, "build") is not None
    session = TeamSession(memory, SESSION, "Plan the release", actor=AGENT)
    session.add_agent(AGENT)
    session.share("plan", {"steps": 3})
    session.signal("ready", {"ok": True})
    PromotedPattern.objects.create(
        pattern_id="p-0",
        name="Guard clauses",
        pattern_type="refactor",
        confidence=0.9,
        agent_id=AGENT,
    )


def redis_snapshot(client: redis.Redis) -> dict[bytes, tuple[bytes, int]]:
    """Every key with its serialised value and remaining TTL in ms (-1: none)."""
    return {key: (client.dump(key), client.pttl(key)) for key in client.scan_iter(count=1000)}


def assert_unchanged(before: dict, after: dict) -> None:
    """Same keys and values; no TTL was pushed out (an untouched one only counts down)."""
    assert after.keys() == before.keys()
    for key, (value, ttl) in before.items():
        assert after[key][0] == value, f"{key!r} changed"
        assert (after[key][1] == -1) == (ttl == -1), f"{key!r} changed expiry"
        assert after[key][1] <= ttl, f"{key!r} had its TTL refreshed"


def assert_response(response, expected: object, rule: Rule) -> None:
    where = response.get("Location")
    if expected in (LOGIN, ADMIN_LOGIN):
        login = reverse("login") if expected == LOGIN else reverse("admin:login")
        assert (response.status_code, urlsplit(where or "").path) == (302, login)
        assert parse_qs(urlsplit(where).query)["next"] == [rule.path]
    elif expected == DONE:
        assert (response.status_code, where) == (302, rule.then)
    else:
        assert response.status_code == expected, f"{response.status_code}, Location {where}"
        if expected == 405:
            assert response["Allow"]


@pytest.fixture
def memory(memory: RedisShortTermMemory) -> RedisShortTermMemory:
    """The web pointed at a fresh, seeded memory on the test redis-server."""
    seed(memory)
    return memory


def test_every_named_url_has_a_rule():
    served = named_urls()
    ruled = {rule.url for rule in MATRIX.values()}
    assert sorted(served.keys() - ruled) == [], "URLs with no rule in MATRIX"
    assert sorted(ruled - served.keys()) == [], "rules for URLs that no longer exist"


def test_every_row_gives_every_tier_an_expectation():
    for case, rule in MATRIX.items():
        for column in (rule.get, rule.post, rule.post_invalid):
            assert column is None or len(column) == len(TIERS), case
        assert (rule.post_invalid is None) == (not rule.invalid), case
        assert (rule.audit is None) == (rule.effect is None), case


def _matrix_cases() -> Iterator:
    for case, rule in MATRIX.items():
        for method, column in (
            ("GET", rule.get),
            ("POST", rule.post),
            ("POST-invalid", rule.post_invalid),
        ):
            if column is None:
                continue
            for tier, expected in zip(TIERS, column, strict=True):
                yield pytest.param(case, method, tier, expected, id=f"{case}-{method}-{tier}")


@pytest.mark.parametrize(("case", "method", "tier", "expected"), list(_matrix_cases()))
def test_matrix(memory, client_for, case, method, tier, expected):
    rule = MATRIX[case]
    client = client_for(tier)
    if method == "GET":
        response = client.get(rule.path)
    else:
        response = client.post(rule.path, rule.invalid if method == "POST-invalid" else rule.data)
    assert_response(response, expected, rule)


@pytest.mark.parametrize("case", ACTIONS)
def test_a_lower_tier_post_changes_nothing(memory, client_for, case):
    rule = MATRIX[case]
    below = TIERS[: TIERS.index(rule.needed)]
    before = redis_snapshot(memory.client)
    audited = AuditEntry.objects.count()
    for tier in below:
        response = client_for(tier).post(rule.path, rule.data)
        assert_response(response, rule.post[TIERS.index(tier)], rule)
        assert_unchanged(before, redis_snapshot(memory.client))
        assert AuditEntry.objects.count() == audited, tier
    assert not rule.effect(memory)

    response = client_for(rule.needed).post(rule.path, rule.data)

    assert_response(response, DONE, rule)
    assert rule.effect(memory)
    assert redis_snapshot(memory.client) != before
    entry = AuditEntry.objects.get()
    actor = User.objects.get(username=rule.needed)
    assert (entry.actor, entry.actor_name, entry.tier) == (
        actor,
        actor.username,
        rule.needed.upper(),
    )
    assert (entry.action, entry.target) == rule.audit


# Which page offers each action's form, and to whom. Offering a form to a tier that
# gets 403 for it is a broken page; hiding it from a tier that may use it is too.
FORMS = {
    "send_signal": "/signals/",
    "add_task": "/tasks/",
    "share": f"/sessions/{SESSION}/",
    "task_action:requeue": f"/tasks/?team={TEAM}",
    "task_action:cancel": f"/tasks/?team={TEAM}",
    "delete_session": "/sessions/",
    "clear_memory": f"/memory/?agent={AGENT}",
    "pattern_action:approve": "/patterns/",
    "pattern_action:reject": "/patterns/",
    "pattern_bulk": "/patterns/",
}


def test_every_action_has_a_form_on_some_page():
    assert sorted(FORMS) == sorted(ACTIONS)


@pytest.mark.parametrize("tier", ["observer", "contributor", "validator", "steward"])
@pytest.mark.parametrize("case", sorted(FORMS))
def test_pages_offer_an_action_only_to_tiers_that_may_use_it(memory, client_for, case, tier):
    rule = MATRIX[case]
    page = client_for(tier).get(FORMS[case])
    assert page.status_code == 200
    allowed = TIERS.index(tier) >= TIERS.index(rule.needed)
    assert (f'action="{rule.path}"' in page.content.decode()) == allowed


@pytest.mark.parametrize("tier", ["observer", "contributor", "validator", "steward"])
def test_only_stewards_see_the_admin_link(memory, client_for, tier):
    page = client_for(tier).get("/")
    assert (f'href="{reverse("admin:index")}"' in page.content.decode()) == (tier == "steward")


def test_a_superuser_is_a_steward(memory, client_for):
    client = client_for(User.objects.create_superuser("boss"))
    assert client.get(reverse("admin:index")).status_code == 200
    response = client.post(reverse("clear_memory", args=[AGENT]))
    assert (response.status_code, response["Location"]) == (302, "/memory/")
    assert AuditEntry.objects.get().tier == "STEWARD"
