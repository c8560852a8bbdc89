"""What operators watch, in a real browser: the task board's chart of tasks completed and
failed follows agents working in their own processes, live; each queue says how long it
has waited; and a steward requeues dead-lettered tasks of one type after confirming."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from playwright.sync_api import Page, expect

from empathy_web.library.models import AuditEntry
from tests.e2e.live_stack import LiveStack

pytestmark = pytest.mark.e2e

# An agent of team "ops" in its own process: ``add <type> <id>...`` queues tasks, ``do
# <type> <n>`` claims and completes n of them, ``fail <type> <n>`` claims and fails n for
# good (one attempt each, so they are dead-lettered).
AGENT = """
import sys
from memory import AgentCoordinator, AgentTask, get_redis_memory
action, task_type, *rest = sys.argv[1:]
team = AgentCoordinator(get_redis_memory(), "ops", actor="worker", max_attempts=1)
if action == "add":
    for task_id in rest:
        team.add_task(AgentTask(task_id, task_type))
for _ in range(int(rest[0]) if action != "add" else 0):
    task = team.claim_task("worker", task_type)
    if action == "do":
        team.complete_task(task.task_id, {"ok": True})
    else:
        team.fail_task(task.task_id, "linter crashed", retry=False)
"""


class OperatingLive(LiveStack):
    users = (("stew", "steward"),)

    @pytest.fixture(autouse=True)
    def _page(self, page: Page) -> None:
        self.page = page

    def agent(self, *args: str) -> None:
        subprocess.run(
            [sys.executable, "-c", AGENT, *args],
            env={**os.environ, "REDIS_URL": self.redis.url},
            check=True,
            timeout=60,
        )

    def test_the_chart_follows_the_agents_live(self) -> None:
        self.agent("add", "review", "r-1", "r-2", "r-3")
        self.log_in(self.page, "stew", "/tasks/?team=ops")
        caption = self.page.locator("#throughput figcaption")
        expect(caption).to_contain_text("completed 0")
        # the queue's wait, titled with its type
        expect(self.page.locator("#task-board .latency").first).to_have_attribute(
            "title", re.compile(r"^review: the oldest waiting task")
        )

        self.agent("do", "review", "2")
        self.agent("fail", "review", "1")

        expect(caption).to_contain_text("completed 2")
        expect(caption).to_contain_text("failed 1")  # dead-lettered counts as failed
        svg = self.page.locator("#throughput svg")
        expect(svg).to_have_attribute("aria-label", re.compile(r"completed 2, failed 1;"))
        # the same figures in the table, for a screen reader
        table = self.page.locator("#throughput table.chart-table tbody")
        expect(table.locator("td").filter(has_text="2")).not_to_have_count(0)

        self.page.click("#throughput .ranges a:text-is('24h')")
        expect(caption).to_contain_text("last 24 hours")
        expect(caption).to_contain_text("completed 2")
        expect(caption).to_contain_text("per 5 minutes")

    def test_a_steward_requeues_the_dead_letters_of_one_type(self) -> None:
        self.agent("add", "lint", "l-1", "l-2")
        self.agent("add", "review", "r-1")
        self.agent("fail", "lint", "2")
        self.agent("fail", "review", "1")
        self.log_in(self.page, "stew", "/tasks/?team=ops")
        board = self.page.locator("#task-board")
        expect(board.locator(".counts")).to_contain_text("3 dead-lettered")

        self.page.select_option(".dead-filters select[name=dead_type]", "lint")
        self.page.fill(".dead-filters input[name=dead_reason]", "crashed")
        self.page.click(".dead-filters button[type=submit]")
        self.page.click(".dead-filters a.button:text('Requeue these')")
        expect(self.page.locator("h1")).to_have_text("Requeue dead-lettered tasks of ops")
        expect(self.page.locator("main")).to_contain_text("2 dead-lettered tasks of type lint")
        self.page.click("button:text('Requeue 2 tasks')")

        expect(self.page.locator(".messages")).to_contain_text("Requeued 2 dead-lettered tasks")
        expect(board.locator(".counts")).to_contain_text("2 queued")
        expect(board.locator(".counts")).to_contain_text("1 dead-lettered")
        audited = AuditEntry.objects.filter(action="task.requeue").values_list("target", "team")
        assert sorted(audited) == [("ops/l-1", "ops"), ("ops/l-2", "ops")]

    def test_a_live_update_keeps_the_filters_a_steward_is_choosing(self) -> None:
        self.agent("add", "lint", "l-1", "l-2")
        self.agent("fail", "lint", "1")
        self.log_in(self.page, "stew", "/tasks/?team=ops")
        counts = self.page.locator("#task-board .counts")
        expect(counts).to_contain_text("1 dead-lettered")
        task_type = self.page.locator(".dead-filters select[name=dead_type]")
        reason = self.page.locator(".dead-filters input[name=dead_reason]")
        task_type.select_option("lint")
        reason.fill("crash")

        self.agent("fail", "lint", "1")  # the board is sent again, live
        expect(counts).to_contain_text("2 dead-lettered")
        expect(task_type).to_have_value("lint")
        expect(reason).to_have_value("crash")

        # a task type that appears meanwhile joins the choices, and the choice stays
        self.agent("add", "audit", "a-1")
        expect(counts).to_contain_text("1 queued")
        options = task_type.locator("option")
        expect(options).to_have_text(["any", "audit", "lint"])
        expect(task_type).to_have_value("lint")
        expect(reason).to_have_value("crash")
