"""Which backend the library connects to, and how it behaves when it cannot.

The reference's environment-variable block, as rules:

- ``REDIS_URL`` set: that server, and an error (never the mock) when it does not answer;
- ``REDIS_URL=""``: the in-process mock, one per process;
- ``REDIS_URL`` unset: ``localhost:6379`` if it answers, else the mock with a warning.

Only loopback servers are contacted.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import fakeredis
import pytest
import redis

from memory import (
    AgentCoordinator,
    AgentTask,
    EmpathyOS,
    MemoryConnectionError,
    RedisShortTermMemory,
    StagedPattern,
    TeamSession,
    check_redis_connection,
    get_railway_redis,
    get_redis_memory,
)
from memory.connection import mock_server
from tests.redis_server import RedisServer, start_redis_server

LOCAL_PORT = 6379
FAILS_FAST_SECONDS = 3.0
PASSWORD = "s3cret-for-tests"


def closed_port() -> int:
    """A loopback port nothing listens on (bound once to pick it, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def memory_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "memory" and r.levelno >= logging.WARNING]


@pytest.fixture
def private_server() -> Iterator[Callable[[list[str]], RedisServer]]:
    """Start extra redis-servers on free loopback ports; all are stopped afterwards."""
    started: list[RedisServer] = []

    def start(extra_args: list[str]) -> RedisServer:
        server = start_redis_server(extra_args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def mock_backend() -> Iterator[None]:
    """The process's in-process mock, emptied before the test."""
    fakeredis.FakeRedis(server=mock_server()).flushall()
    yield


def run_session(mem: RedisShortTermMemory) -> None:
    """A little of everything: working memory, a pattern, signals, a task, a session."""
    agent = EmpathyOS("session_agent", short_term_memory=mem)
    agent.stash("notes", {"step": 1})
    agent.stash("more", [1, 2, 3])
    agent.stage_pattern(
        StagedPattern(
            pattern_id="pat_1",
            agent_id="session_agent",
            pattern_type="style",
            name="Short names",
            description="Prefer short names",
        )
    )
    agent.send_signal("ping", {"n": 1}, target_agent="other_agent")
    coordinator = AgentCoordinator(mem, team_id="team_a")
    coordinator.register_agent("session_agent", ["review"])
    coordinator.add_task(AgentTask(task_id="t1", task_type="review"))
    coordinator.add_task(AgentTask(task_id="t2", task_type="review"))
    claimed = coordinator.claim_task("session_agent", "review")
    assert claimed is not None
    coordinator.complete_task(claimed.task_id, {"ok": True})
    TeamSession(mem, session_id="s1", purpose="testing").add_agent("session_agent")
    EmpathyOS("other_agent", short_term_memory=mem).receive_signals()


# REDIS_URL set and reachable -------------------------------------------------------------


def test_redis_url_reachable_uses_that_server(
    redis_server: RedisServer, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_server.url)

    mem = get_redis_memory()
    try:
        stats = mem.get_stats()
        assert stats["mode"] == "redis"
        assert stats["address"] == f"127.0.0.1:{redis_server.port}/0"

        EmpathyOS("agent_a", short_term_memory=mem).stash("k", {"a": 1})
        raw = redis_client.get(mem.keys.working("agent_a", "k"))
        assert raw is not None
        assert json.loads(raw) == {"a": 1}
    finally:
        mem.close()


def test_redis_url_with_password_in_url(
    private_server: Callable[[list[str]], RedisServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = private_server(["--requirepass", PASSWORD])
    monkeypatch.setenv("REDIS_URL", server.url)

    mem = get_redis_memory()
    try:
        assert mem.mode == "redis"
        assert PASSWORD not in mem.address
        assert PASSWORD not in repr(mem)
    finally:
        mem.close()


# REDIS_URL set but unreachable -----------------------------------------------------------


@pytest.mark.parametrize(
    "connect",
    [
        get_redis_memory,
        lambda: RedisShortTermMemory(url=os.environ["REDIS_URL"]),
        lambda: EmpathyOS("lazy_agent").stash("k", 1),
    ],
    ids=["get_redis_memory", "RedisShortTermMemory", "EmpathyOS-lazy"],
)
def test_redis_url_unreachable_raises_quickly(
    connect: Callable[[], object], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = closed_port()
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{port}/0")

    started = time.monotonic()
    with pytest.raises(MemoryConnectionError) as caught:
        connect()
    elapsed = time.monotonic() - started

    assert elapsed < FAILS_FAST_SECONDS
    assert isinstance(caught.value, ConnectionError)
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert "REDIS_URL" in message  # says what to do about it
    assert "Start the server" in message


def test_server_that_accepts_but_never_answers_fails_quickly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        # The kernel completes the TCP handshake from the backlog; nothing ever replies.
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{port}/0")

        started = time.monotonic()
        with pytest.raises(MemoryConnectionError) as caught:
            get_redis_memory()
        elapsed = time.monotonic() - started

    assert f"127.0.0.1:{port}" in str(caught.value)
    assert elapsed < FAILS_FAST_SECONDS


def test_redis_url_unreachable_never_falls_back_to_mock(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{closed_port()}/0")

    with pytest.raises(MemoryConnectionError):
        get_redis_memory()
    # Not even with the unset-REDIS_URL fallback warning.
    assert memory_warnings(caplog) == []


# REDIS_URL="" ------------------------------------------------------------------------------


def test_empty_redis_url_selects_the_shared_mock(
    monkeypatch: pytest.MonkeyPatch, mock_backend: None, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("REDIS_URL", "")

    first, second = get_redis_memory(), get_redis_memory()
    explicit = RedisShortTermMemory(use_mock=True)

    assert first.get_stats()["mode"] == "mock"
    assert second.get_stats()["mode"] == "mock"
    assert first.client is not second.client
    EmpathyOS("writer", short_term_memory=first).stash("shared", {"seen": True})
    for mem in (second, explicit):
        assert EmpathyOS("writer", short_term_memory=mem).retrieve("shared") == {"seen": True}
    # Choosing the mock explicitly is not worth a warning.
    assert memory_warnings(caplog) == []


def test_whitespace_redis_url_selects_the_mock(
    monkeypatch: pytest.MonkeyPatch, mock_backend: None
) -> None:
    monkeypatch.setenv("REDIS_URL", "  ")

    assert get_redis_memory().mode == "mock"


# REDIS_URL unset ---------------------------------------------------------------------------


def test_unset_redis_url_without_local_server_uses_mock_and_warns(
    monkeypatch: pytest.MonkeyPatch, mock_backend: None, caplog: pytest.LogCaptureFixture
) -> None:
    if listening(LOCAL_PORT):
        pytest.skip(
            f"something already listens on 127.0.0.1:{LOCAL_PORT}; the fallback to the mock "
            "only happens when nothing does"
        )
    monkeypatch.delenv("REDIS_URL", raising=False)
    caplog.set_level(logging.WARNING, logger="memory")

    mem = get_redis_memory()

    assert mem.get_stats()["mode"] == "mock"
    [warning] = memory_warnings(caplog)
    assert warning.levelno == logging.WARNING
    assert "REDIS_URL is not set" in warning.getMessage()
    assert "mock" in warning.getMessage()


@pytest.fixture
def local_6379_server() -> Iterator[RedisServer]:
    """A private redis-server on 127.0.0.1:6379, or a skip when the port is taken."""
    if listening(LOCAL_PORT):
        pytest.skip(
            f"127.0.0.1:{LOCAL_PORT} is already in use; not starting a private redis-server "
            "there, and not touching whatever listens"
        )
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed", pytrace=False)
    workdir = Path(tempfile.mkdtemp(prefix="redis-test-6379-"))
    log = workdir / "redis.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [binary, "--port", str(LOCAL_PORT), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", str(workdir)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = RedisServer(
        port=LOCAL_PORT, pid=process.pid, password=None, process=process, workdir=workdir
    )
    try:
        client = redis.Redis(host="127.0.0.1", port=LOCAL_PORT, socket_timeout=0.5)
        deadline = time.monotonic() + 10
        while True:
            if not server.running:
                text = log.read_text(errors="replace")
                pytest.skip(f"could not start redis-server on port {LOCAL_PORT}: {text[-300:]}")
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        client.close()
        yield server
    finally:
        server.stop()


def test_unset_redis_url_uses_local_server_when_it_answers(
    local_6379_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)

    mem = get_redis_memory()
    try:
        assert mem.get_stats()["mode"] == "redis"
        EmpathyOS("local_agent", short_term_memory=mem).stash("k", "v")
        with local_6379_server.client() as client:
            assert json.loads(client.get(mem.keys.working("local_agent", "k"))) == "v"
        assert check_redis_connection() is True
        assert memory_warnings(caplog) == []
    finally:
        mem.close()


# rediss:// means TLS -----------------------------------------------------------------------


def test_rediss_url_builds_a_tls_client(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Skip the connection check so the client can be inspected without a TLS server.
    monkeypatch.setattr(RedisShortTermMemory, "_check_server", lambda self, timeout: None)
    monkeypatch.setattr(RedisShortTermMemory, "_warn_of_eviction", lambda self: None)

    tls = RedisShortTermMemory(url=f"rediss://127.0.0.1:{redis_server.port}")
    plain = RedisShortTermMemory(url=f"redis://127.0.0.1:{redis_server.port}")
    monkeypatch.setenv("REDIS_URL", f"rediss://127.0.0.1:{redis_server.port}")
    from_env = get_redis_memory()

    assert issubclass(tls.client.connection_pool.connection_class, redis.SSLConnection)
    assert issubclass(from_env.client.connection_pool.connection_class, redis.SSLConnection)
    assert not issubclass(plain.client.connection_pool.connection_class, redis.SSLConnection)
    for mem in (tls, plain, from_env):
        mem.close()


def test_rediss_url_against_a_plain_port_fails_quickly(redis_server: RedisServer) -> None:
    started = time.monotonic()
    with pytest.raises(MemoryConnectionError) as caught:
        RedisShortTermMemory(url=f"rediss://127.0.0.1:{redis_server.port}")
    elapsed = time.monotonic() - started

    assert f"127.0.0.1:{redis_server.port}" in str(caught.value)
    assert elapsed < FAILS_FAST_SECONDS


# get_railway_redis -------------------------------------------------------------------------


def test_get_railway_redis_with_password(
    private_server: Callable[[list[str]], RedisServer],
) -> None:
    server = private_server(["--requirepass", PASSWORD])

    mem = get_railway_redis(host="127.0.0.1", port=server.port, password=PASSWORD)
    try:
        assert mem.get_stats()["mode"] == "redis"
        assert mem.address == f"127.0.0.1:{server.port}/0"
        EmpathyOS("railway_agent", short_term_memory=mem).stash("k", {"x": 1})
        with server.client() as client:
            assert json.loads(client.get(mem.keys.working("railway_agent", "k"))) == {"x": 1}
    finally:
        mem.close()


@pytest.mark.parametrize("password", ["wrong-password", None], ids=["wrong", "missing"])
def test_get_railway_redis_bad_password_raises(
    private_server: Callable[[list[str]], RedisServer], password: str | None
) -> None:
    server = private_server(["--requirepass", PASSWORD])

    started = time.monotonic()
    with pytest.raises(MemoryConnectionError) as caught:
        get_railway_redis(host="127.0.0.1", port=server.port, password=password)
    elapsed = time.monotonic() - started

    assert elapsed < FAILS_FAST_SECONDS
    message = str(caught.value)
    assert f"127.0.0.1:{server.port}" in message
    assert PASSWORD not in message
    assert "wrong-password" not in message


# check_redis_connection --------------------------------------------------------------------


def test_check_redis_connection_live_server(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_server.url)

    assert check_redis_connection() is True
    assert check_redis_connection(redis_server.url) is True


def test_check_redis_connection_closed_port(monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"redis://127.0.0.1:{closed_port()}/0"
    monkeypatch.setenv("REDIS_URL", url)

    started = time.monotonic()
    assert check_redis_connection() is False
    assert check_redis_connection(url) is False
    assert time.monotonic() - started < 2 * FAILS_FAST_SECONDS


def test_check_redis_connection_needs_the_password(
    private_server: Callable[[list[str]], RedisServer],
) -> None:
    server = private_server(["--requirepass", PASSWORD])

    assert check_redis_connection(server.url) is True
    assert check_redis_connection(server.bare_url) is False


def test_check_redis_connection_does_not_count_the_mock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # REDIS_URL="" selects the mock for get_redis_memory, but the mock is not a server.
    monkeypatch.setenv("REDIS_URL", "")
    if listening(LOCAL_PORT):
        pytest.skip(f"something listens on 127.0.0.1:{LOCAL_PORT}")

    assert check_redis_connection() is False


def test_check_redis_connection_bad_url_is_false() -> None:
    assert check_redis_connection("not-a-url") is False


# get_stats ---------------------------------------------------------------------------------

EXPECTED_COUNTS = {
    "working_keys": 2,
    "working_agents": 1,
    "staged_patterns": 1,
    "signals": 1,
    "tasks": {"pending": 1, "claimed": 0, "completed": 1, "dead": 0},
    "sessions": 1,
}


def test_stats_on_the_mock(mock_backend: None) -> None:
    mem = RedisShortTermMemory(use_mock=True)
    empty = mem.get_stats()
    assert empty["mode"] == "mock"
    assert empty["working_keys"] == 0
    assert empty["events"] == 0
    assert "used_memory" in empty

    run_session(mem)
    stats = mem.get_stats()

    assert stats["mode"] == "mock"
    assert stats["address"] == "in-process mock"
    assert {k: stats[k] for k in EXPECTED_COUNTS} == EXPECTED_COUNTS
    assert stats["events"] > 0
    assert "used_memory" in stats


def test_stats_on_redis(redis_server: RedisServer, redis_client: redis.Redis) -> None:
    mem = RedisShortTermMemory(url=redis_server.url)
    try:
        run_session(mem)
        stats = mem.get_stats()
    finally:
        mem.close()

    assert stats["mode"] == "redis"
    assert {k: stats[k] for k in EXPECTED_COUNTS} == EXPECTED_COUNTS
    assert stats["events"] > 0
    used = stats["used_memory"]
    assert isinstance(used, int) and not isinstance(used, bool)
    assert used > 0


# maxmemory-policy --------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["allkeys-lru", "allkeys-lfu", "allkeys-random"])
def test_evicting_policy_warns_at_connect(
    policy: str,
    private_server: Callable[[list[str]], RedisServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = private_server(["--maxmemory-policy", policy])
    caplog.set_level(logging.WARNING, logger="memory")

    RedisShortTermMemory(url=server.url).close()

    [warning] = memory_warnings(caplog)
    assert warning.levelno == logging.WARNING
    assert policy in warning.getMessage()
    assert f"127.0.0.1:{server.port}" in warning.getMessage()


@pytest.mark.parametrize("policy", ["noeviction", "volatile-lru"])
def test_safe_policy_does_not_warn(
    policy: str,
    private_server: Callable[[list[str]], RedisServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = private_server(["--maxmemory-policy", policy])
    caplog.set_level(logging.DEBUG, logger="memory")

    RedisShortTermMemory(url=server.url).close()

    assert memory_warnings(caplog) == []


# The library writes no files ---------------------------------------------------------------


@pytest.mark.parametrize("backend", ["redis", "mock"])
def test_library_writes_no_files(
    backend: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    if backend == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        request.getfixturevalue("redis_client")  # flushes the server
        monkeypatch.setenv("REDIS_URL", server.url)
    else:
        request.getfixturevalue("mock_backend")
        monkeypatch.setenv("REDIS_URL", "")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)

    mem = get_redis_memory()
    run_session(mem)
    mem.get_stats()
    mem.close()

    assert list(cwd.iterdir()) == []


def test_reads_let_no_raw_redis_error_out() -> None:
    from memory import AgentCoordinator, EmpathyOS
    from memory import patterns as staged
    from memory.sessions import get_session
    from memory.signals import list_signals
    from memory.tiers import AccessTier, Caller
    from tests.redis_server import start_redis_server

    server = start_redis_server([])
    memory = RedisShortTermMemory(url=server.url, retry=None)
    reader = Caller("reader", AccessTier.OBSERVER)
    team = AgentCoordinator(memory, "team", access_tier=AccessTier.OBSERVER)
    server.kill()
    reads = {
        "get_staged": lambda: staged.get_staged(memory, reader, "p1"),
        "count_staged": lambda: staged.count_staged(memory, reader),
        "decision": lambda: staged.decision(memory, reader, "p1"),
        "get_agents": lambda: team.get_agents(),
        "list_tasks": lambda: team.list_tasks("dead"),
        "get_session": lambda: get_session(memory, reader, "s1"),
        "list_signals": lambda: list_signals(memory, reader),
        "retrieve": lambda: EmpathyOS("a", memory, AccessTier.OBSERVER).retrieve("k"),
        "bridge_cursor": memory.bridge_cursor,
    }
    for read in reads.values():
        with pytest.raises(MemoryConnectionError, match=r"Redis at 127\.0\.0\.1:\d+/0 failed"):
            read()
    memory.close()


def test_a_server_that_refuses_config_is_said_once(
    private_server: Callable[[list[str]], RedisServer],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from memory import clients

    monkeypatch.setattr(clients, "_eviction_unknown_logged", False)
    server = private_server(["--rename-command", "CONFIG", ""])
    caplog.set_level(logging.WARNING, logger="memory")

    RedisShortTermMemory(url=server.url).close()
    RedisShortTermMemory(url=server.url).close()

    [warning] = memory_warnings(caplog)
    assert "could not check the maxmemory-policy" in warning.getMessage()
