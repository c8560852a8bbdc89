"""Live updates in a real browser: agents in their own processes, the real bridge
command, the channel layer on Redis, and the page's websocket."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from playwright.sync_api import Page, expect

from memory import AgentCoordinator, AgentTask, RedisShortTermMemory
from tests.e2e.live_stack import LiveStack
from tests.redis_server import start_redis_server

pytestmark = pytest.mark.e2e

# Keeps a handle on every websocket the page opens, and can refuse new ones, so a test
# can drop the connection and hold it down while agents keep working.
TRACK_SOCKETS = """
(() => {
  const Native = window.WebSocket;
  window.__sockets = [];
  window.__blockSockets = false;
  function Tracked(url, protocols) {
    // While blocked, connect to a path of this site that refuses (the CSP allows only
    // this origin), so the page sees a failed attempt.
    const target = window.__blockSockets ? url.replace("/ws/dashboard/", "/ws/refused/") : url;
    const socket = new Native(target, protocols);
    window.__sockets.push(socket);
    return socket;
  }
  Tracked.prototype = Native.prototype;
  Object.assign(Tracked, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
  window.WebSocket = Tracked;
})();
"""

# What a network drop looks like to the page: the socket ends with 1006 (abnormal
# closure), which is when the ws extension reconnects. close() itself cannot send 1006.
DROP_CONNECTION = """
window.__blockSockets = true;
const socket = window.__sockets.at(-1);
const onclose = socket.onclose;
socket.onclose = null;
socket.close();
onclose(new CloseEvent("close", {code: 1006}));
"""

AGENT = """
import sys
from memory import EmpathyOS, get_redis_memory
agent = EmpathyOS(sys.argv[1], short_term_memory=get_redis_memory())
for text in sys.argv[2:]:
    agent.send_signal("progress", {"text": text}, target_agent="lead")
"""


class LiveDashboard(LiveStack):
    users = (("watcher", "observer"),)

    @pytest.fixture(autouse=True)
    def _page(self, page: Page) -> None:
        self.page = page
        page.add_init_script(TRACK_SOCKETS)

    def open(self, path: str) -> None:
        self.log_in(self.page, "watcher", path)

    def agent_says(self, name: str, *texts: str) -> None:
        subprocess.run(
            [sys.executable, "-c", AGENT, name, *texts],
            env={**os.environ, "REDIS_URL": self.redis.url},
            check=True,
            timeout=60,
        )

    def test_a_signal_from_an_agent_process_appears_in_the_feed(self) -> None:
        self.open("/signals/")
        self.agent_says("security_agent", "scanned auth.py")
        feed = self.page.locator("#signal-items")
        expect(feed).to_contain_text("scanned auth.py")
        expect(feed).to_contain_text("security_agent")

    def test_a_claimed_task_moves_from_queued_to_claimed(self) -> None:
        coordinator = AgentCoordinator(self.memory, "team")
        coordinator.add_task(AgentTask("review_7", "review", "Review PR #7", 8))
        self.open("/tasks/?team=team")
        row = self.page.locator("#task-review_7")
        expect(row).to_have_class("pending")
        coordinator.claim_task("security_agent", "review")
        expect(row).to_have_class("claimed")
        expect(row).to_contain_text("security_agent")

    def test_signals_sent_while_disconnected_arrive_once_in_order(self) -> None:
        self.agent_says("agent", "before")
        self.open("/signals/")
        expect(self.page.locator("#signal-items")).to_contain_text("before")
        self.page.evaluate(DROP_CONNECTION)
        expect(self.page.locator("#live-status")).not_to_have_text("live")
        self.agent_says("agent", "away-1", "away-2", "away-3")
        self.page.wait_for_timeout(500)
        self.page.evaluate("window.__blockSockets = false")
        expect(self.page.locator("#live-status")).to_have_text("live", timeout=15000)
        expect(self.page.locator("#signal-items")).to_contain_text("away-3")
        texts = self.page.locator("#signal-items pre").all_inner_texts()
        order = [t for t in (" ".join(x.split()) for x in texts) if '"text"' in t]
        assert order == [
            '{ "text": "away-3" }',
            '{ "text": "away-2" }',
            '{ "text": "away-1" }',
            '{ "text": "before" }',
        ]

    def test_dashboards_recover_on_their_own_after_redis_restarts(self) -> None:
        coordinator = AgentCoordinator(self.memory, "team")
        coordinator.add_task(AgentTask("before_restart", "review", "queued before", 5))
        self.open("/tasks/?team=team")
        expect(self.page.locator("#task-before_restart")).to_be_visible()

        port = self.redis.port
        self.redis.stop()  # no persistence: everything in Redis is gone
        type(self).redis = start_redis_server([], port=port)
        coordinator = AgentCoordinator(RedisShortTermMemory(url=self.redis.url), "team")
        coordinator.add_task(AgentTask("after_restart", "review", "queued after", 5))
        restarted = time.monotonic()

        # The true state now holds only the new task; the page converges without a reload,
        # and without a new websocket: the server kept the one it had.
        expect(self.page.locator("#task-after_restart")).to_be_visible(timeout=5000)
        expect(self.page.locator("#task-before_restart")).to_have_count(0)
        print(f"converged {time.monotonic() - restarted:.2f} s after the restart")
        expect(self.page.locator("#live-status")).to_have_text("live")
        assert self.page.evaluate("window.__sockets.length") == 1

    def test_the_status_says_while_redis_is_unreachable(self) -> None:
        self.open("/tasks/?team=team")
        port = self.redis.port
        self.redis.stop()
        stopped = time.monotonic()
        status = self.page.locator("#live-status")
        expect(status).to_have_text("Redis unreachable, retrying…")
        print(f"said so {time.monotonic() - stopped:.2f} s after Redis stopped")
        expect(status).to_have_attribute("data-state", "unavailable")
        self.page.wait_for_timeout(1500)  # a while down: still saying so, still one socket
        expect(status).to_have_text("Redis unreachable, retrying…")

        type(self).redis = start_redis_server([], port=port)
        coordinator = AgentCoordinator(RedisShortTermMemory(url=self.redis.url), "team")
        coordinator.add_task(AgentTask("after_outage", "review", "queued after", 5))
        expect(self.page.locator("#task-after_outage")).to_be_visible(timeout=5000)
        expect(status).to_have_text("live")
        assert self.page.evaluate("window.__sockets.length") == 1
