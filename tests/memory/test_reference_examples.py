"""Every Python example of the reference page runs, with only its imports changed.

The examples below are copied verbatim from ``short-term-memory.md`` (the section is the
key), with ``empathy_os`` / ``empathy_software_plugin`` replaced by ``memory`` in the
import lines and nothing else. ``test_examples_match_the_reference_page`` checks the
copies against the page whenever the page is available beside the repository.

Each example is executed in a fresh namespace. Examples that use a name an earlier
example defined (``empathy``, ``get_redis_memory``) run after the Quick Start, in the
same namespace, as a reader following the page would. ``REDIS_URL`` points at the test
redis-server (flushed first), or is ``""`` for the in-process mock.
"""

from __future__ import annotations

import ast
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import redis

from memory import (
    AccessDenied,
    AccessTier,
    EmpathyOS,
    RedisShortTermMemory,
)
from memory.connection import mock_server
from tests.redis_server import RedisServer, start_redis_server

REFERENCE_PAGE = Path(__file__).resolve().parents[3] / "shared/reference/short-term-memory.md"

# Section name -> example, in the order of the page.
EXAMPLES: dict[str, str] = {
    "Quick Start": """
from memory import EmpathyOS, get_redis_memory, AccessTier

# Get Redis memory (auto-detects Railway, fallback to localhost/mock)
memory = get_redis_memory()

# Create an agent with short-term memory
empathy = EmpathyOS(
    user_id="code_reviewer",
    short_term_memory=memory,
    access_tier=AccessTier.CONTRIBUTOR,
)

# Store working data (expires in 1 hour)
empathy.stash("analysis_results", {"files": 10, "issues": 3})

# Retrieve data
results = empathy.retrieve("analysis_results")
print(results)  # {'files': 10, 'issues': 3}
""",
    "Programmatic Configuration": """
from memory import get_redis_memory, get_railway_redis, check_redis_connection

# Auto-detect (checks REDIS_URL, falls back to localhost, then mock)
memory = get_redis_memory()

# Explicit Railway Redis
memory = get_railway_redis(
    host="centerbeam.proxy.rlwy.net",
    port=14516,
    password="your_password"
)

# Check connection
if check_redis_connection():
    print("Redis available!")
""",
    "Access Tiers": """
from memory import AccessTier

# Observer: Can only read (monitoring dashboards)
empathy = EmpathyOS(user_id="monitor", access_tier=AccessTier.OBSERVER)

# Contributor: Can read/write (most agents)
empathy = EmpathyOS(user_id="analyzer", access_tier=AccessTier.CONTRIBUTOR)

# Validator: Can promote patterns (senior agents)
empathy = EmpathyOS(user_id="senior_reviewer", access_tier=AccessTier.VALIDATOR)

# Steward: Full admin (system operators)
empathy = EmpathyOS(user_id="admin", access_tier=AccessTier.STEWARD)
""",
    "Working Memory": """
# Store data (default 1 hour TTL)
empathy.stash("key", {"any": "data"})

# Retrieve your own data
data = empathy.retrieve("key")

# Retrieve another agent's data
other_data = empathy.retrieve("analysis", agent_id="other_agent")
""",
    "Pattern Staging": """
from memory import StagedPattern

# Discover and stage a pattern
pattern = StagedPattern(
    pattern_id="pat_auth_001",
    agent_id=empathy.user_id,
    pattern_type="security",
    name="JWT Token Refresh",
    description="Refresh tokens 5 minutes before expiry",
    confidence=0.85,
    code="# Example code here"
)
empathy.stage_pattern(pattern)

# Validators can review and promote
staged = empathy.get_staged_patterns()
for p in staged:
    print(f"Review: {p.name} (confidence: {p.confidence})")
""",
    "Coordination Signals": """
# Send targeted signal
empathy.send_signal(
    signal_type="analysis_complete",
    data={"files_analyzed": 10, "issues_found": 3},
    target_agent="lead_reviewer"
)

# Broadcast to all
empathy.send_signal(
    signal_type="status_update",
    data={"phase": "testing"}
)

# Receive signals
signals = empathy.receive_signals("analysis_complete")
for sig in signals:
    print(f"From {sig['sender']}: {sig['data']}")
""",
    "State Persistence": """
# Update state through interactions
empathy.collaboration_state.trust_level = 0.8
empathy.collaboration_state.successful_interventions = 10

# Persist to Redis (survives restarts)
empathy.persist_collaboration_state()

# Later, restore state
empathy.restore_collaboration_state()
print(empathy.collaboration_state.trust_level)  # 0.8
""",
    "AgentCoordinator": """
from memory import AgentCoordinator, AgentTask, get_redis_memory

memory = get_redis_memory()
coordinator = AgentCoordinator(memory, team_id="code_review_team")

# Register agents
coordinator.register_agent("security_agent", ["security_review"])
coordinator.register_agent("performance_agent", ["performance_review"])

# Add tasks
task = AgentTask(
    task_id="review_001",
    task_type="security_review",
    description="Review authentication module",
    priority=8
)
coordinator.add_task(task)

# Agents claim and complete tasks
claimed = coordinator.claim_task("security_agent", "security_review")
if claimed:
    # Do work...
    coordinator.complete_task(claimed.task_id, {"vulnerabilities": 0})

# Aggregate results
results = coordinator.aggregate_results()
print(f"Completed: {results['total_completed']}")
""",
    "TeamSession": """
from memory import TeamSession, get_redis_memory

memory = get_redis_memory()

# Create session
session = TeamSession(
    memory,
    session_id="pr_review_42",
    purpose="Review PR #42"
)

# Add agents
session.add_agent("security_agent")
session.add_agent("performance_agent")
session.add_agent("style_agent")

# Share context
session.share("scope", {"files_changed": 15, "lines_changed": 500})

# Agents retrieve shared context
scope = session.get("scope")

# Signal completion
session.signal("review_complete", {"agent": "security_agent", "passed": True})
""",
    "Wizards with Redis Memory": """
from memory.wizards.security_analysis_wizard import SecurityAnalysisWizard
from memory import get_redis_memory

memory = get_redis_memory()

# Create wizard with memory
wizard = SecurityAnalysisWizard(short_term_memory=memory)

# Analysis with automatic caching
result = await wizard.analyze_with_cache({"code": "...", "language": "python"})

# Share context with other wizards
wizard.share_context("security_findings", result["vulnerabilities"])

# Stage discovered patterns
wizard.stage_discovered_pattern(
    pattern_id="sec_001",
    pattern_type="security",
    name="SQL Injection Prevention",
    description="Always use parameterized queries",
    confidence=0.9
)
""",
    "Mock Mode": """
from memory.redis_memory import RedisShortTermMemory

# Explicit mock mode
memory = RedisShortTermMemory(use_mock=True)

# Auto-mock when Redis unavailable
memory = get_redis_memory()  # Falls back to mock
print(memory.get_stats()["mode"])  # "mock" or "redis"
""",
    "Railway Deployment": """
# This just works on Railway
memory = get_redis_memory()
# Connects to centerbeam.proxy.rlwy.net:PORT
""",
    "Example: Multi-Agent Code Review": """
from memory import (
    EmpathyOS, get_redis_memory, AccessTier,
    AgentCoordinator, AgentTask, TeamSession
)

memory = get_redis_memory()

# 1. Create coordinator
coordinator = AgentCoordinator(memory, team_id="pr_review")

# 2. Create specialized agents
security = EmpathyOS("security", short_term_memory=memory, access_tier=AccessTier.CONTRIBUTOR)
perf = EmpathyOS("performance", short_term_memory=memory, access_tier=AccessTier.CONTRIBUTOR)
lead = EmpathyOS("lead_reviewer", short_term_memory=memory, access_tier=AccessTier.VALIDATOR)

# 3. Register with coordinator
coordinator.register_agent("security", ["security_review"])
coordinator.register_agent("performance", ["performance_review"])

# 4. Add tasks
coordinator.add_task(AgentTask(
    task_id="sec_001", task_type="security_review",
    description="Check for vulnerabilities", priority=9
))
coordinator.add_task(AgentTask(
    task_id="perf_001", task_type="performance_review",
    description="Profile database queries", priority=7
))

# 5. Agents work and signal completion
security.send_signal("review_complete", {"passed": True}, target_agent="lead_reviewer")
perf.send_signal("review_complete", {"issues": 2}, target_agent="lead_reviewer")

# 6. Lead aggregates
signals = lead.receive_signals("review_complete")
print(f"Received {len(signals)} reviews")
""",
}

# The Programmatic Configuration example names a public Railway host. The only change
# made to it besides the import is replacing these literals with a loopback,
# password-protected test server (host, port and password; the code is unchanged).
RAILWAY_HOST = '"centerbeam.proxy.rlwy.net"'
RAILWAY_PORT = "14516"
RAILWAY_PASSWORD = '"your_password"'
LOOPBACK_PASSWORD = "reference-example-pass"


def page_examples(text: str) -> list[str]:
    """The page's ```python blocks, with the import rename applied."""
    blocks = re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)
    return [
        block.replace("empathy_software_plugin", "memory").replace("empathy_os", "memory")
        for block in blocks
    ]


def test_examples_match_the_reference_page() -> None:
    if not REFERENCE_PAGE.is_file():
        pytest.skip(f"reference page not found at {REFERENCE_PAGE}")
    on_page = [block.strip() for block in page_examples(REFERENCE_PAGE.read_text())]
    assert on_page == [example.strip() for example in EXAMPLES.values()]


class ReferenceRunner:
    """Runs examples one after another in one namespace, returning what they print."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.namespace: dict[str, Any] = {"__name__": "reference_example"}

    def run(self, section: str, source: str | None = None) -> str:
        code = EXAMPLES[section] if source is None else source
        self.capsys.readouterr()
        exec(compile(code, f"<short-term-memory.md: {section}>", "exec"), self.namespace)
        return self.capsys.readouterr().out

    def __getitem__(self, name: str) -> Any:
        return self.namespace[name]

    def close(self) -> None:
        for value in self.namespace.values():
            if isinstance(value, RedisShortTermMemory):
                value.close()


def flush_mock() -> None:
    fakeredis.FakeRedis(server=mock_server()).flushall()


@pytest.fixture
def raw(backend: str, request: pytest.FixtureRequest) -> redis.Redis | fakeredis.FakeRedis:
    """A raw client on the backend the examples use, to check where their data went."""
    if backend == "redis":
        return request.getfixturevalue("redis_client")
    if backend == "cluster":
        return request.getfixturevalue("redis_cluster").client()
    return fakeredis.FakeRedis(server=mock_server())


@pytest.fixture
def doc(
    backend: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    raw: redis.Redis | fakeredis.FakeRedis,
) -> Iterator[ReferenceRunner]:
    """A runner whose ``get_redis_memory()`` finds the test server (or the mock)."""
    if backend in ("redis", "cluster"):
        server = request.getfixturevalue("redis_server" if backend == "redis" else "redis_cluster")
        monkeypatch.setenv("REDIS_URL", server.url)
    else:
        monkeypatch.setenv("REDIS_URL", "")
    raw.flushall()
    runner = ReferenceRunner(capsys)
    yield runner
    runner.close()


@pytest.fixture
def after_quick_start(doc: ReferenceRunner) -> ReferenceRunner:
    """The page's reader state after the Quick Start: ``memory``, ``empathy`` and imports."""
    assert doc.run("Quick Start") == "{'files': 10, 'issues': 3}\n"
    return doc


# Quick Start ---------------------------------------------------------------------------


def test_quick_start(doc: ReferenceRunner, backend: str, raw: Any) -> None:
    out = doc.run("Quick Start")

    assert out == "{'files': 10, 'issues': 3}\n"
    assert doc["results"] == {"files": 10, "issues": 3}
    memory = doc["memory"]
    assert memory.get_stats()["mode"] == backend
    # The data really went to the backend REDIS_URL chose, with the 1 hour TTL.
    key = memory.keys.working("code_reviewer", "analysis_results")
    assert raw.exists(key) == 1
    assert 3_500_000 < raw.pttl(key) <= 3_600_000


# Programmatic Configuration ----------------------------------------------------------


@pytest.fixture
def railway_server() -> Iterator[RedisServer]:
    server = start_redis_server(["--requirepass", LOOPBACK_PASSWORD])
    yield server
    server.stop()


@pytest.mark.parametrize("backend", ["redis"])
def test_programmatic_configuration(
    doc: ReferenceRunner, railway_server: RedisServer, redis_server: RedisServer
) -> None:
    source = EXAMPLES["Programmatic Configuration"]
    for literal in (RAILWAY_HOST, RAILWAY_PORT, RAILWAY_PASSWORD):
        assert source.count(literal) == 1
    source = (
        source.replace(RAILWAY_HOST, '"127.0.0.1"')
        .replace(RAILWAY_PORT, str(railway_server.port))
        .replace(RAILWAY_PASSWORD, repr(LOOPBACK_PASSWORD))
    )
    assert "rlwy" not in source

    out = doc.run("Programmatic Configuration", source)

    # REDIS_URL names the reachable test server, so the check succeeds.
    assert out == "Redis available!\n"
    memory = doc["memory"]
    assert memory.get_stats()["mode"] == "redis"
    assert memory.address == f"127.0.0.1:{railway_server.port}/0"
    # The explicit memory is the password-protected server, not the auto-detected one.
    EmpathyOS("railway_agent", short_term_memory=memory).stash("k", [1, 2])
    key = memory.keys.working("railway_agent", "k")
    with railway_server.client() as client:
        assert client.exists(key) == 1
    with redis_server.client() as client:
        assert client.exists(key) == 0


# Access Tiers --------------------------------------------------------------------------


def test_access_tiers(after_quick_start: ReferenceRunner) -> None:
    doc = after_quick_start
    assert doc.run("Access Tiers") == ""

    empathy = doc["empathy"]
    assert empathy.user_id == "admin"
    assert empathy.access_tier is AccessTier.STEWARD


@pytest.mark.parametrize(
    ("tier", "level", "read", "write", "validate", "admin"),
    [
        (AccessTier.OBSERVER, 1, True, False, False, False),
        (AccessTier.CONTRIBUTOR, 2, True, True, False, False),
        (AccessTier.VALIDATOR, 3, True, True, True, False),
        (AccessTier.STEWARD, 4, True, True, True, True),
    ],
)
def test_access_tier_table(
    tier: AccessTier, level: int, read: bool, write: bool, validate: bool, admin: bool
) -> None:
    assert int(tier) == level
    assert (tier.can_read, tier.can_write, tier.can_validate, tier.can_admin) == (
        read,
        write,
        validate,
        admin,
    )


def test_access_tiers_observer_can_only_read(after_quick_start: ReferenceRunner) -> None:
    doc = after_quick_start
    doc.run("Access Tiers")
    observer = EmpathyOS(
        "monitor", short_term_memory=doc["memory"], access_tier=AccessTier.OBSERVER
    )

    assert observer.retrieve("analysis_results", agent_id="code_reviewer") == {
        "files": 10,
        "issues": 3,
    }
    with pytest.raises(AccessDenied):
        observer.stash("key", "value")


# Working Memory ------------------------------------------------------------------------


def test_working_memory(after_quick_start: ReferenceRunner) -> None:
    doc = after_quick_start
    # Give "other_agent" something under "analysis" so the last line has data to find.
    other = EmpathyOS("other_agent", short_term_memory=doc["memory"])
    other.stash("analysis", {"from": "other_agent"})

    assert doc.run("Working Memory") == ""

    assert doc["data"] == {"any": "data"}
    assert doc["other_data"] == {"from": "other_agent"}


def test_working_memory_without_other_agents_data(after_quick_start: ReferenceRunner) -> None:
    doc = after_quick_start
    doc.run("Working Memory")

    assert doc["data"] == {"any": "data"}
    assert doc["other_data"] is None


# Pattern Staging -----------------------------------------------------------------------


def test_pattern_staging(after_quick_start: ReferenceRunner) -> None:
    doc = after_quick_start
    out = doc.run("Pattern Staging")

    assert out == "Review: JWT Token Refresh (confidence: 0.85)\n"
    [staged] = doc["staged"]
    assert staged.pattern_id == "pat_auth_001"
    assert staged.agent_id == "code_reviewer"
    assert staged.code == "# Example code here"
    assert staged.staged_at is not None


# Coordination Signals ------------------------------------------------------------------


def test_coordination_signals(after_quick_start: ReferenceRunner) -> None:
    doc = after_quick_start
    out = doc.run("Coordination Signals")

    # The sender has no "analysis_complete" signal waiting: it went to lead_reviewer,
    # and agents do not receive their own broadcasts.
    assert out == ""
    assert doc["signals"] == []

    lead = EmpathyOS("lead_reviewer", short_term_memory=doc["memory"])
    [targeted] = lead.receive_signals("analysis_complete")
    assert targeted["sender"] == "code_reviewer"
    assert targeted["data"] == {"files_analyzed": 10, "issues_found": 3}
    [broadcast] = lead.receive_signals("status_update")
    assert broadcast["data"] == {"phase": "testing"}
    assert broadcast["target"] is None

    bystander = EmpathyOS("bystander", short_term_memory=doc["memory"])
    assert bystander.receive_signals("analysis_complete") == []
    assert [s["data"] for s in bystander.receive_signals("status_update")] == [{"phase": "testing"}]


# State Persistence ---------------------------------------------------------------------


def test_state_persistence(after_quick_start: ReferenceRunner) -> None:
    doc = after_quick_start
    out = doc.run("State Persistence")

    assert out == "0.8\n"
    # "Survives restarts": a new agent object with the same id sees the persisted state.
    again = EmpathyOS("code_reviewer", short_term_memory=doc["memory"])
    assert again.collaboration_state.trust_level == 0.8
    assert again.collaboration_state.successful_interventions == 10


# Multi-Agent Coordination --------------------------------------------------------------


def test_agent_coordinator(doc: ReferenceRunner) -> None:
    out = doc.run("AgentCoordinator")

    assert out == "Completed: 1\n"
    results = doc["results"]
    assert results["total_completed"] == 1
    assert results["total_pending"] == 0
    assert results["results"] == [
        {
            "task_id": "review_001",
            "task_type": "security_review",
            "result": {"vulnerabilities": 0},
        }
    ]
    assert doc["claimed"].task_id == "review_001"
    assert doc["claimed"].claimed_by == "security_agent"


def test_team_session(doc: ReferenceRunner) -> None:
    assert doc.run("TeamSession") == ""

    assert doc["scope"] == {"files_changed": 15, "lines_changed": 500}
    session = doc["session"]
    assert session.participants == ["performance_agent", "security_agent", "style_agent"]
    assert session.info().purpose == "Review PR #42"
    # The completion signal reaches every participant.
    for agent_id in session.participants:
        agent = EmpathyOS(agent_id, short_term_memory=doc["memory"])
        [signal] = agent.receive_signals("review_complete")
        assert signal["data"] == {"agent": "security_agent", "passed": True}


# Wizards with Redis Memory -------------------------------------------------------------


async def test_wizards_with_redis_memory(doc: ReferenceRunner, backend: str) -> None:
    # The example awaits at top level, as in a notebook or ``python -m asyncio``:
    # compiled with that flag, the code object evaluates to a coroutine.
    code = compile(
        EXAMPLES["Wizards with Redis Memory"],
        "<short-term-memory.md: Wizards with Redis Memory>",
        "exec",
        flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
    )
    await eval(code, doc.namespace)

    from memory.wizards import BaseWizard

    wizard = doc["wizard"]
    memory = doc["memory"]
    assert memory.mode == backend
    # "..." is valid Python with nothing to flag.
    result = doc["result"]
    assert result["parsed"] is True
    assert result["vulnerabilities"] == []
    # The analysis was cached: the same input again is a hit, not a second analysis.
    again = await wizard.analyze_with_cache({"code": "...", "language": "python"})
    assert again == result
    assert wizard.stats == {"analyses_run": 1, "cache_hits": 1, "cache_misses": 1}
    # Another wizard sees the shared findings.
    other = BaseWizard(memory, wizard_id="performance_wizard")
    assert other.get_shared_context("security_findings") == []
    # The pattern waits in the validator queue, staged by the wizard.
    validator = EmpathyOS("lead", short_term_memory=memory, access_tier=AccessTier.VALIDATOR)
    [staged] = validator.get_staged_patterns()
    assert staged.pattern_id == "sec_001"
    assert staged.agent_id == wizard.wizard_id
    assert staged.name == "SQL Injection Prevention"
    assert staged.confidence == 0.9


# Mock Mode -----------------------------------------------------------------------------


def _port_6379_in_use() -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", 6379)) == 0


@pytest.mark.parametrize(
    ("redis_url", "expected"),
    [("server", "redis"), ("", "mock"), (None, "mock")],
    ids=["REDIS_URL=server", "REDIS_URL=empty", "REDIS_URL-unset-no-local-redis"],
)
def test_mock_mode(
    redis_url: str | None,
    expected: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    if redis_url == "server":
        server: RedisServer = request.getfixturevalue("redis_server")
        monkeypatch.setenv("REDIS_URL", server.url)
        with server.client() as client:
            client.flushall()
    elif redis_url is None:
        if _port_6379_in_use():
            pytest.skip("something listens on 127.0.0.1:6379, so there is no fallback to mock")
        monkeypatch.delenv("REDIS_URL", raising=False)
    else:
        monkeypatch.setenv("REDIS_URL", redis_url)
    flush_mock()
    doc = ReferenceRunner(capsys)
    try:
        doc.run("Quick Start")
        out = doc.run("Mock Mode")
        assert out == f"{expected}\n"
        assert doc["memory"].mode == expected
    finally:
        doc.close()


def test_mock_mode_explicit(capsys: pytest.CaptureFixture[str]) -> None:
    doc = ReferenceRunner(capsys)
    first_line = EXAMPLES["Mock Mode"].split("# Auto-mock")[0]
    try:
        doc.run("Mock Mode", first_line)
        assert doc["memory"].get_stats()["mode"] == "mock"
    finally:
        doc.close()


# Railway Deployment --------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["redis"])
def test_railway_deployment(doc: ReferenceRunner, redis_server: RedisServer) -> None:
    # REDIS_URL is set (Railway sets it; here it names the loopback test server).
    doc.run("Quick Start")
    assert doc.run("Railway Deployment") == ""

    memory = doc["memory"]
    assert memory.get_stats()["mode"] == "redis"
    assert memory.address == f"127.0.0.1:{redis_server.port}/0"


# Example: Multi-Agent Code Review ------------------------------------------------------


def test_multi_agent_code_review(doc: ReferenceRunner) -> None:
    out = doc.run("Example: Multi-Agent Code Review")

    assert out == "Received 2 reviews\n"
    signals = doc["signals"]
    assert len(signals) == 2
    assert {s["sender"]: s["data"] for s in signals} == {
        "security": {"passed": True},
        "performance": {"issues": 2},
    }
    counts = doc["coordinator"].counts()
    assert counts["pending"] == 2
    assert counts["pending_by_type"] == {"security_review": 1, "performance_review": 1}
    # Signals are consumed: a second look finds nothing new.
    assert doc["lead"].receive_signals("review_complete") == []


# Every example on the page has a test ---------------------------------------------------


TESTED: dict[str, Callable[..., None]] = {
    "Quick Start": test_quick_start,
    "Programmatic Configuration": test_programmatic_configuration,
    "Access Tiers": test_access_tiers,
    "Working Memory": test_working_memory,
    "Pattern Staging": test_pattern_staging,
    "Coordination Signals": test_coordination_signals,
    "State Persistence": test_state_persistence,
    "AgentCoordinator": test_agent_coordinator,
    "TeamSession": test_team_session,
    "Wizards with Redis Memory": test_wizards_with_redis_memory,
    "Mock Mode": test_mock_mode,
    "Railway Deployment": test_railway_deployment,
    "Example: Multi-Agent Code Review": test_multi_agent_code_review,
}


def test_every_example_has_a_test() -> None:
    assert list(TESTED) == list(EXAMPLES)
