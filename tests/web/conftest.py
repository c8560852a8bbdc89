"""Fixtures shared by the web tests: the memory the web reads, the people who use it,
and the data the dashboard's pages are read on."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from django.contrib.auth.models import Group, User
from django.test import Client

from empathy_web.accounts.models import Membership
from empathy_web.accounts.teams import EVERY_TEAM
from empathy_web.dashboard.agents_memory import use_memory
from memory import AgentCoordinator, AgentTask, RedisShortTermMemory, TeamSession, TTLStrategy
from tests.live_server import LiveServer, start_live_server
from tests.redis_server import RedisServer
from tests.web.sockets import connect, session_cookie  # noqa: F401 (fixtures)

# The tier names the tests use besides the four groups: a user who is logged in but in
# no tier group, and a visitor who is not logged in at all.
TIERLESS = "tierless"
ANONYMOUS = "anonymous"


@contextlib.contextmanager
def web_memory(url: str) -> Iterator[RedisShortTermMemory]:
    """A memory on ``url`` that the web reads while the block runs."""
    shared = RedisShortTermMemory(url=url)
    use_memory(shared)
    try:
        yield shared
    finally:
        use_memory(None)
        shared.close()


@pytest.fixture
def memory(redis_server: RedisServer, redis_client: redis.Redis) -> Iterator[RedisShortTermMemory]:
    """The memory the web reads: on the session redis-server, flushed first."""
    with web_memory(redis_server.url) as shared:
        yield shared


# people --------------------------------------------------------------------------------


@pytest.fixture
def make_user() -> Callable[..., User]:
    """``make_user(tier, username=None, teams=None)``: a new user in the tier group
    ``tier`` (None or "tierless": in no group), named ``username``, else after the tier
    ("nobody" for None). ``teams`` maps team ids to the tier names of their memberships;
    by default someone in a tier group is a member of every team at that tier (the
    tests of one team), and ``teams={}`` makes them a member of none. No password: the
    tests log in with ``force_login``."""

    def make_user(
        tier: str | None, username: str | None = None, teams: dict[str, str] | None = None
    ) -> User:
        user = User.objects.create_user(username or tier or "nobody")
        if tier not in (None, TIERLESS):
            # get_or_create: a transactional test before this one flushed the groups
            # that the data migration made.
            user.groups.add(Group.objects.get_or_create(name=tier)[0])
            if teams is None and tier != "steward":
                teams = {EVERY_TEAM: tier}
        for team, name in (teams or {}).items():
            Membership.objects.create(user=user, team=team, tier=name.upper())
        return user

    return make_user


@pytest.fixture
def client_for(make_user: Callable[..., User]) -> Callable[..., Client]:
    """``client_for(who, username=None, **options)``: a test ``Client(**options)``
    logged in as ``who``, a user or a tier. A tier makes a new user as ``make_user``
    does; "anonymous" logs nobody in."""

    def client_for(who: User | str | None, username: str | None = None, **options: Any) -> Client:
        client = Client(**options)
        if who != ANONYMOUS:
            user = who if isinstance(who, User) else make_user(who, username)
            client.force_login(user)
        return client

    return client_for


# The people who read the pages and act through their forms; the audit trail and the
# signals they send name them.


@pytest.fixture
def observer(client_for: Callable[..., Client]) -> Client:
    return client_for("observer", username="observer-person")


@pytest.fixture
def contributor(client_for: Callable[..., Client]) -> Client:
    return client_for("contributor", username="contributor-person")


@pytest.fixture
def steward(client_for: Callable[..., Client]) -> Client:
    return client_for("steward", username="steward-person")


# what the agents wrote -----------------------------------------------------------------


@pytest.fixture
def short_patterns(redis_server: RedisServer, memory: RedisShortTermMemory) -> Iterator[Any]:
    """A memory on the same server whose staged patterns live 30 minutes."""
    short = RedisShortTermMemory(url=redis_server.url, ttls={TTLStrategy.STAGED_PATTERNS: 1800})
    try:
        yield short
    finally:
        short.close()


@pytest.fixture
def incident(memory: RedisShortTermMemory) -> TeamSession:
    session = TeamSession(memory, "incident-42", "Find why checkout is slow", actor="lead")
    session.add_agent("lead")
    session.add_agent("perf")
    session.share("hypothesis", {"cause": "cache stampede", "confidence": 0.6})
    session.signal("status", {"phase": "mitigating"})
    TeamSession(memory, "retro", "Write the retrospective", actor="lead")
    return session


@pytest.fixture
def dead_task(memory: RedisShortTermMemory) -> AgentCoordinator:
    reviewers = AgentCoordinator(memory, "reviewers")
    reviewers.add_task(AgentTask("flaky", "review", priority=6))
    reviewers.claim_task("security", "review")
    reviewers.fail_task("flaky", "crashed", retry=False)
    return reviewers


@pytest.fixture(scope="module")
def live() -> Iterator[LiveServer]:
    """A live daphne with its own redis-server and database (tests/live_server.py)."""
    server = start_live_server()
    try:
        yield server
    finally:
        server.stop()
