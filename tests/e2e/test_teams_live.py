"""Two teams on one deployment, in two real browsers: an agent of beta works (in its own
process); beta's member sees it live, alpha's member sees nothing of it, although their
page is live and shows what alpha's agent does next."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.live_stack import LiveStack

pytestmark = pytest.mark.e2e

# An agent of one team in its own process: registers, queues a task, sends a signal.
AGENT = """
import sys
from memory import AgentCoordinator, AgentTask, EmpathyOS, get_redis_memory
team, agent_id, word = sys.argv[1:]
memory = get_redis_memory()
coordinator = AgentCoordinator(memory, team, actor=agent_id)
coordinator.register_agent(agent_id, ["review"])
coordinator.add_task(AgentTask(f"{word}-task", "review", f"{word} work"))
EmpathyOS(agent_id, short_term_memory=memory).send_signal("progress", {"text": word})
"""
# What alpha's member's pages show of it: a signal's data and task id carry ``word``.


class TeamsLive(LiveStack):
    users = (("ann", "tierless"), ("ben", "tierless"))
    memberships = {"ann": {"alpha": "observer"}, "ben": {"beta": "observer"}}  # noqa: RUF012

    @pytest.fixture(autouse=True)
    def _pages(self, page: Page, browser: Browser) -> None:
        self.ann = page
        context = browser.new_context()
        self.ben = context.new_page()
        yield
        context.close()

    def agent_works(self, team: str, word: str) -> None:
        subprocess.run(
            [sys.executable, "-c", AGENT, team, f"agent-{team}", word],
            env={**os.environ, "REDIS_URL": self.redis.url},
            check=True,
            timeout=60,
        )

    def test_each_browser_follows_its_own_team_only(self) -> None:
        self.agent_works("alpha", "alpha-first")  # so that alpha's board has a team to show
        self.agent_works("beta", "beta-first")
        self.log_in(self.ann, "ann", "/tasks/")
        self.log_in(self.ben, "ben", "/tasks/")
        ann_board, ben_board = self.ann.locator("#task-board"), self.ben.locator("#task-board")
        expect(ann_board).to_contain_text("alpha-first-task")
        expect(ben_board).to_contain_text("beta-first-task")

        self.agent_works("beta", "beta-later")
        expect(ben_board).to_contain_text("beta-later-task")  # live, in beta's browser
        self.agent_works("alpha", "alpha-later")
        expect(ann_board).to_contain_text("alpha-later-task")  # alpha's page is live ...
        for text in ("beta-first", "beta-later", "agent-beta"):  # ... and saw none of beta
            expect(self.ann.locator("body")).not_to_contain_text(text)
        for text in ("alpha-first", "alpha-later"):
            expect(self.ben.locator("body")).not_to_contain_text(text)
        self.ann.goto(f"{self.live_server_url}/tasks/?team=beta")
        expect(self.ann.locator("body")).not_to_contain_text("beta-first")
