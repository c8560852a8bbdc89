"""An LLM client's round through MCP, seen live in a real browser: an agent process
that holds only a credential and the server's URL claims a task, stashes what it found,
stages a pattern and completes the task, step by step, and the open dashboard shows
each step as it happens."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from playwright.sync_api import Page, expect

from empathy_web.library.credentials import issue
from memory import AgentCoordinator, AgentTask
from memory.tiers import AccessTier
from tests.e2e.live_stack import LiveStack

pytestmark = pytest.mark.e2e

# The agent: one MCP session; each line on stdin is the next step, and it prints "done"
# after each, so the test moves on when the step has happened, not after a sleep.
AGENT = """
import asyncio, json, sys
import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

async def main(url, secret):
    async with httpx2.AsyncClient(headers={"Authorization": "Bearer " + secret}) as http, \\
            streamable_http_client(url, http_client=http) as (read, write), \\
            ClientSession(read, write) as session:
        await session.initialize()
        task = None
        for line in sys.stdin:
            step = line.strip()
            if step == "claim":
                result = await session.call_tool("claim_task", {"team": "alpha", "task_type": "review"})
                text = "".join(getattr(part, "text", "") for part in result.content)
                task = json.loads(text)["task"]
            elif step == "stash":
                result = await session.call_tool("stash", {"key": "finding", "value": {"ok": True}})
            elif step == "stage":
                result = await session.call_tool("stage_pattern", {
                    "pattern_id": "mcp-guard", "pattern_type": "fix", "name": "Guard clause from MCP",
                    "description": "Return early"})
            elif step == "complete":
                result = await session.call_tool("complete_task", {
                    "team": "alpha", "task_id": task["task_id"],
                    "fencing_token": task["fencing_token"], "result": {"verdict": "fine"}})
            assert not result.is_error, result.content
            print("done", flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


class MCPRoundLive(LiveStack):
    users = (("watcher", "observer"),)

    @pytest.fixture(autouse=True)
    def _page(self, page: Page) -> None:
        self.page = page

    def test_each_step_of_an_mcp_round_shows_live(self) -> None:
        _, secret = issue("mcp-agent", AccessTier.CONTRIBUTOR, teams=["alpha"])
        AgentCoordinator(self.memory, "alpha").add_task(AgentTask("review_9", "review", "PR 9"))
        self.log_in(self.page, "watcher", "/tasks/?team=alpha")
        row = self.page.locator("#task-review_9")
        expect(row).to_have_class("pending")
        agent = subprocess.Popen(
            [sys.executable, "-c", AGENT, f"{self.live_server_url}/mcp", secret],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={**os.environ},
        )  # fmt: skip
        try:

            def step(name: str) -> None:
                agent.stdin.write(name + "\n")
                agent.stdin.flush()
                assert agent.stdout.readline().strip() == "done", f"{name} failed"

            step("claim")
            expect(row).to_have_class("claimed")
            expect(row).to_contain_text("mcp-agent")
            step("stash")
            step("stage")
            step("complete")
            expect(row).to_have_class("completed")
            expect(row).to_contain_text("fine")
        finally:
            agent.stdin.close()
            assert agent.wait(30) == 0
        self.page.goto(f"{self.live_server_url}/patterns/")
        expect(self.page.locator("#pattern-mcp-guard")).to_contain_text("Guard clause from MCP")
        self.page.goto(f"{self.live_server_url}/memory/?agent=mcp-agent")
        expect(self.page.locator("#working-memory")).to_contain_text("finding")
