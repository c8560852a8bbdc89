"""Live updates when parts of a deployment fail: several web workers behind one
Redis, a bridge that dies and comes back, websockets that cannot connect at all, and a
worker that goes away under an open page.

Everything runs as real processes: a private redis-server, web workers (uvicorn) on the
project's ASGI application, ``manage.py run_bridge`` and agents writing through the
``memory`` library, watched by Chromium pages logged in through the login form.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from memory import AgentCoordinator, AgentTask, RedisShortTermMemory
from tests.live_server import web_command
from tests.redis_server import RedisServer, start_redis_server

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
USERNAME = "watcher"
PASSWORD = "watcher-password-1"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
UPDATE_WAIT = 10_000  # ms for a change to travel from an agent to a page
POLL_WAIT = 12_000  # ms: one 5 s polling period, with room to spare

MIGRATE_AND_CREATE_USER = f"""
from django.contrib.auth.models import Group, User
from django.core.management import call_command
call_command("migrate", verbosity=0)
user = User.objects.create_user({USERNAME!r}, password={PASSWORD!r})
user.groups.add(Group.objects.get(name="observer"))
from empathy_web.accounts.models import Membership
Membership.objects.create(user=user, team="*", tier="OBSERVER")
"""

# An agent in its own process; prints the ids of the signals it sent, in order.
AGENT = """
import json, sys
from memory import EmpathyOS, get_redis_memory
agent = EmpathyOS(sys.argv[1], short_term_memory=get_redis_memory())
sent = [agent.send_signal("progress", {"text": t}, target_agent="lead") for t in sys.argv[2:]]
print(json.dumps([s["id"] for s in sent]))
"""

# Every state the connection indicator shows, in order, so a test can check one that
# lasts only until the next reconnect attempt.
RECORD_STATUS = """
(() => {
  window.__statusLog = [];
  document.addEventListener("DOMContentLoaded", () => {
    const el = document.getElementById("live-status");
    if (!el) { return; }
    window.__statusLog.push(el.textContent);
    new MutationObserver(() => window.__statusLog.push(el.textContent))
      .observe(el, {childList: true, characterData: true, subtree: true});
  });
})();
"""

# A network where websockets never get through: every socket the page opens goes to a
# port that refuses. Counts the attempts, and how many there had been when the page
# switched to polling.
REFUSE_WEBSOCKETS = """
(() => {
  const Native = window.WebSocket;
  window.__wsAttempts = 0;
  window.__wsAttemptsBeforePolling = null;
  function Refused(url, protocols) {
    window.__wsAttempts += 1;
    // A path of this site that refuses (the CSP allows only this origin).
    return new Native(url.replace("/ws/dashboard/", "/ws/refused/"), protocols);
  }
  Refused.prototype = Native.prototype;
  Object.assign(Refused, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
  window.WebSocket = Refused;
  document.addEventListener("DOMContentLoaded", () => {
    const el = document.getElementById("live-status");
    if (!el) { return; }
    new MutationObserver(() => {
      if (el.dataset.state === "polling" && window.__wsAttemptsBeforePolling === null) {
        window.__wsAttemptsBeforePolling = window.__wsAttempts;
      }
    }).observe(el, {childList: true, characterData: true, subtree: true, attributes: true});
  });
})();
"""

# Resolves with the status of the next poll once the page has swapped in its fragments.
NEXT_POLL_HANDLED = """
timeout => new Promise((resolve, reject) => {
  setTimeout(() => reject(new Error("no poll within " + timeout + " ms")), timeout);
  document.body.addEventListener("htmx:afterOnLoad", event => {
    if (event.detail.xhr.responseURL.includes("/live/?")) { resolve(event.detail.xhr.status); }
  });
})
"""


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, sig)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(STOP_TIMEOUT)


def _free_port(taken: Iterable[int]) -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in taken:
            return port


@dataclass
class Stack:
    """The deployment under test; every process it starts is stopped by ``close``."""

    redis: RedisServer
    workdir: Path
    env: dict[str, str]
    processes: list[subprocess.Popen] = field(default_factory=list)
    workers: dict[int, subprocess.Popen] = field(default_factory=dict)
    bridge: subprocess.Popen | None = None
    bridge_log: Path | None = None

    def _spawn(self, args: list[str], log_name: str) -> tuple[subprocess.Popen, Path]:
        log = self.workdir / log_name
        with open(log, "ab") as out:
            process = subprocess.Popen(
                args, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )
        self.processes.append(process)
        return process, log

    def start_worker(self, port: int | None = None, wait: bool = True) -> int:
        port = port or _free_port(self.workers)
        process, log = self._spawn(web_command(port), f"web-{port}.log")
        self.workers[port] = process
        if wait:
            self.wait_for_worker(port)
        return port

    def wait_for_worker(self, port: int) -> None:
        process, log = self.workers[port], self.workdir / f"web-{port}.log"

        def answers() -> bool:
            assert process.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False

        _wait_for(answers, START_TIMEOUT, f"the web worker on port {port}")

    def kill_worker(self, port: int) -> None:
        _stop(self.workers.pop(port), signal.SIGKILL)

    def start_bridge(self, wait: bool = True) -> None:
        assert self.bridge is None or self.bridge.poll() is not None
        args = [sys.executable, "manage.py", "run_bridge", "--coalesce", "0.05"]
        self.bridge, self.bridge_log = self._spawn(args, f"bridge-{len(self.processes)}.log")
        if wait:
            self.wait_for_bridge()

    def wait_for_bridge(self) -> None:
        bridge, log = self.bridge, self.bridge_log
        assert bridge is not None and log is not None

        def reading() -> bool:
            assert bridge.poll() is None, log.read_text()
            return "bridge reading events after" in log.read_text()

        _wait_for(reading, START_TIMEOUT, "the bridge to start reading events")

    def kill_bridge(self) -> None:
        assert self.bridge is not None
        _stop(self.bridge, signal.SIGKILL)

    def close(self) -> None:
        try:
            for process in reversed(self.processes):
                _stop(process, signal.SIGKILL)
        finally:
            self.redis.stop()


def deployment_env(workdir: Path, **redis: str) -> dict[str, str]:
    """The processes' environment: ``redis`` says where Redis is (``REDIS_URL``, or the
    sentinels), with a SQLite database in ``workdir`` and no embedded bridge."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_")}
    env.update(
        redis,
        DJANGO_SETTINGS_MODULE="empathy_web.settings",
        DJANGO_DEBUG="true",
        DATABASE_URL=f"sqlite:///{workdir / 'db.sqlite3'}",
        EMBEDDED_BRIDGE="false",
        PYTHONUNBUFFERED="1",
    )
    # The servers run as deployed: Django's async-safety checks stay on.
    for name in ("DJANGO_TEST_DB_FILE", "DJANGO_ALLOW_ASYNC_UNSAFE"):
        env.pop(name, None)
    return env


def start_one_worker_and_bridge(stack: Stack) -> None:
    """Migrate, create the login, then start one web worker and one bridge."""
    setup = [sys.executable, "manage.py", "shell", "-v0", "-c", MIGRATE_AND_CREATE_USER]
    subprocess.run(setup, cwd=ROOT, env=stack.env, check=True, timeout=120)
    stack.start_worker()
    stack.start_bridge()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("live-failures")
    redis = start_redis_server([])
    env = deployment_env(workdir, REDIS_URL=redis.url)
    deployment = Stack(redis=redis, workdir=workdir, env=env)
    try:
        # Migrating takes longest; the workers and the bridge start meanwhile.
        setup = subprocess.Popen(
            [sys.executable, "manage.py", "shell", "-v0", "-c", MIGRATE_AND_CREATE_USER],
            cwd=ROOT,
            env=env,
        )
        deployment.processes.append(setup)
        ports = [deployment.start_worker(wait=False) for _ in range(2)]
        deployment.start_bridge(wait=False)
        assert setup.wait(60) == 0
        for port in ports:
            deployment.wait_for_worker(port)
        deployment.wait_for_bridge()
        yield deployment
    finally:
        deployment.close()


@pytest.fixture
def memory(stack: Stack) -> Iterator[RedisShortTermMemory]:
    memory = RedisShortTermMemory(url=stack.redis.url)
    yield memory
    memory.close()


@pytest.fixture
def open_page(browser: Browser) -> Iterator[Callable[..., Page]]:
    """Log in, in a browser of its own, and open ``path`` on one worker."""
    contexts = []

    def open_page(port: int, path: str, *scripts: str, wait_live: bool = True) -> Page:
        context = browser.new_context()
        contexts.append(context)
        for script in (RECORD_STATUS, *scripts):
            context.add_init_script(script)
        page = context.new_page()
        base = f"http://127.0.0.1:{port}"
        page.goto(f"{base}/accounts/login/")
        page.fill("#id_username", USERNAME)
        page.fill("#id_password", PASSWORD)
        with page.expect_navigation():
            page.click("button[type=submit]")
        page.goto(f"{base}{path}")
        page.evaluate("window.__sameDocument = true")
        if wait_live:
            expect(page.locator("#live-status")).to_have_text("live", timeout=UPDATE_WAIT)
        return page

    yield open_page
    for context in contexts:
        context.close()


def agent_says(stack: Stack, name: str, *texts: str) -> list[str]:
    """Send one signal per text from an agent process; the ids, oldest first."""
    done = subprocess.run(
        [sys.executable, "-c", AGENT, name, *texts],
        cwd=ROOT,
        env=stack.env,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_not_reloaded(*pages: Page) -> None:
    """What a page shows came through its live updates: it was never reloaded."""
    for page in pages:
        assert page.evaluate("window.__sameDocument === true"), page.url


def feed_ids(page: Page) -> list[str]:
    ids = page.locator("#signal-items [data-signal-id]").evaluate_all(
        "els => els.map(e => e.dataset.signalId)"
    )
    return list(ids)


def assert_shows_once_in_order(page: Page, sent: list[str], before: list[str]) -> None:
    """The feed (newest first) is what it showed before plus each sent signal, once."""
    shown = feed_ids(page)
    repeated = {i: n for i, n in Counter(shown).items() if n > 1}
    assert not repeated, f"signals shown more than once: {repeated}"
    assert shown == list(reversed(sent)) + before


def show_settled(stack: Stack, agent: str, *pages: Page) -> str:
    """Send one more signal and wait until the pages show it: every earlier hint has
    been handled by then (a consumer handles hints in order), so repeats would show."""
    (sentinel,) = agent_says(stack, agent, "settled")
    for page in pages:
        expect(page.locator(f"#signal-items [data-signal-id='{sentinel}']")).to_have_count(
            1, timeout=UPDATE_WAIT
        )
    return sentinel


def test_with_two_web_workers_each_browser_gets_each_event_once(
    stack: Stack, open_page: Callable[..., Page]
) -> None:
    first, second = list(stack.workers)
    pages = [open_page(first, "/signals/"), open_page(second, "/signals/")]
    before = [feed_ids(page) for page in pages]

    sent = agent_says(stack, "scanner", *(f"finding {n}" for n in range(12)))
    sent += agent_says(stack, "scanner", *(f"finding {n}" for n in range(12, 20)))

    sentinel = show_settled(stack, "scanner", *pages)
    for page, shown_before in zip(pages, before, strict=True):
        assert_shows_once_in_order(page, [*sent, sentinel], shown_before)
        texts = page.locator("#signal-items pre").all_inner_texts()
        assert sum("finding 7" in text for text in texts) == 1
    assert_not_reloaded(*pages)


def test_a_restarted_bridge_resumes_where_the_killed_one_stopped(
    stack: Stack, memory: RedisShortTermMemory, open_page: Callable[..., Page]
) -> None:
    first, second = list(stack.workers)
    coordinator = AgentCoordinator(memory, "restart-team")
    coordinator.add_task(AgentTask("before_kill", "review", "queued before the kill", 5))
    feed = open_page(first, "/signals/")
    board = open_page(second, "/tasks/?team=restart-team")
    expect(board.locator("#task-before_kill")).to_be_visible()
    before = feed_ids(feed)
    (alive,) = agent_says(stack, "builder", "while the bridge runs")
    expect(feed.locator(f"[data-signal-id='{alive}']")).to_have_count(1, timeout=UPDATE_WAIT)

    stack.kill_bridge()
    coordinator.add_task(AgentTask("while_down", "review", "queued while it was down", 5))
    down = agent_says(stack, "builder", "down 1", "down 2", "down 3")
    stack.start_bridge()

    expect(board.locator("#task-while_down")).to_be_visible(timeout=UPDATE_WAIT)
    expect(board.locator("#task-before_kill")).to_be_visible()
    expect(feed.locator(f"[data-signal-id='{down[-1]}']")).to_have_count(1, timeout=UPDATE_WAIT)
    sentinel = show_settled(stack, "builder", feed)
    assert_shows_once_in_order(feed, [alive, *down, sentinel], before)
    expect(feed.locator("#live-status")).to_have_text("live")
    assert_not_reloaded(feed, board)


def test_without_websockets_pages_poll_the_same_fragments(
    stack: Stack, memory: RedisShortTermMemory, open_page: Callable[..., Page]
) -> None:
    port = next(iter(stack.workers))
    feed = open_page(port, "/signals/", REFUSE_WEBSOCKETS, wait_live=False)
    board = open_page(port, "/tasks/?team=poll-team", REFUSE_WEBSOCKETS, wait_live=False)
    for page in (feed, board):
        status = page.locator("#live-status")
        expect(status).to_have_text("polling every 5 s", timeout=POLL_WAIT)
        expect(status).to_have_attribute("data-state", "polling")
    before = feed_ids(feed)

    coordinator = AgentCoordinator(memory, "poll-team")
    coordinator.add_task(AgentTask("polled_task", "review", "seen by polling", 5))
    sent = agent_says(stack, "poller", "seen by polling 1", "seen by polling 2")
    expect(feed.locator(f"[data-signal-id='{sent[-1]}']")).to_have_count(1, timeout=POLL_WAIT)
    expect(board.locator("#task-polled_task")).to_be_visible(timeout=POLL_WAIT)
    # One more poll after they showed: a poll that repeated signals would show them twice.
    assert feed.evaluate(NEXT_POLL_HANDLED, POLL_WAIT) == 200
    assert_shows_once_in_order(feed, sent, before)
    for page in (feed, board):
        assert "live" not in page.evaluate("window.__statusLog")
    assert_not_reloaded(feed, board)


def test_pages_try_the_websocket_three_times_before_polling(
    stack: Stack, open_page: Callable[..., Page]
) -> None:
    port = next(iter(stack.workers))
    page = open_page(port, "/signals/", REFUSE_WEBSOCKETS, wait_live=False)
    expect(page.locator("#live-status")).to_have_text("polling every 5 s", timeout=POLL_WAIT)
    assert page.evaluate("window.__wsAttemptsBeforePolling") >= 3


def test_the_indicator_shows_live_then_reconnecting_when_the_worker_dies(
    stack: Stack, open_page: Callable[..., Page]
) -> None:
    port = list(stack.workers)[-1]
    page = open_page(port, "/signals/")
    status = page.locator("#live-status")
    expect(status).to_have_text("live")
    expect(status).to_have_attribute("data-state", "live")
    before = feed_ids(page)

    connected = len(page.evaluate("window.__statusLog"))
    stack.kill_worker(port)  # a real drop: the socket ends without a closing handshake
    page.wait_for_function(f"window.__statusLog.length > {connected}", timeout=10_000)
    assert page.evaluate("window.__statusLog")[connected] == "reconnecting…"
    sent = agent_says(stack, "watchdog", "while the worker was down")

    stack.start_worker(port)
    expect(status).to_have_text("live", timeout=20_000)
    expect(page.locator(f"[data-signal-id='{sent[-1]}']")).to_have_count(1, timeout=UPDATE_WAIT)
    sentinel = show_settled(stack, "watchdog", page)
    assert_shows_once_in_order(page, [*sent, sentinel], before)
    assert_not_reloaded(page)
