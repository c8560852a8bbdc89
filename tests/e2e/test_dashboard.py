from __future__ import annotations

import os

import pytest
import redis
from django.contrib.auth.models import Group, User
from playwright.sync_api import Page, expect

from empathy_web.accounts.models import Membership
from empathy_web.accounts.teams import EVERY_TEAM
from memory import AgentCoordinator, AgentTask, EmpathyOS, RedisShortTermMemory, StagedPattern
from tests.e2e.live_server_process import LiveServerTestCase
from tests.redis_server import start_redis_server
from tests.web.pages import PAGES

pytestmark = pytest.mark.e2e

CSP_PAGES = [*PAGES, "/admin/"]


class DashboardInABrowser(LiveServerTestCase):
    serve_static = True

    @classmethod
    def setUpClass(cls) -> None:
        # The live server runs in another process, started by setUpClass; it finds the
        # agents' memory through REDIS_URL, so the server must exist before it starts.
        cls.redis = start_redis_server([])
        cls.redis_url = cls.redis.url
        os.environ["REDIS_URL"] = cls.redis_url
        super().setUpClass()

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        os.environ.pop("REDIS_URL", None)
        cls.redis.stop()

    def setUp(self) -> None:
        redis.Redis.from_url(self.redis_url).flushall()
        self.memory = RedisShortTermMemory(url=self.redis_url)
        self.passwords = {}
        for tier in ("observer", "steward"):
            user = User.objects.create_user(tier, password=f"{tier}-password-1")
            user.groups.add(Group.objects.get_or_create(name=tier)[0])
            if tier != "steward":  # a member of every team at that tier
                Membership.objects.create(user=user, team=EVERY_TEAM, tier=tier.upper())
            self.passwords[tier] = f"{tier}-password-1"

    def tearDown(self) -> None:
        self.memory.close()

    @pytest.fixture(autouse=True)
    def _page(self, page: Page) -> None:
        self.page = page

    def log_in(self, username: str) -> None:
        self.page.goto(f"{self.live_server_url}/accounts/login/")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", self.passwords[username])
        self.page.click("button[type=submit]")
        expect(self.page.get_by_role("heading", name="Overview")).to_be_visible()

    def test_every_page_works_under_the_content_security_policy(self) -> None:
        violations: list[str] = []
        self.page.on(
            "console",
            lambda message: (
                violations.append(message.text)
                if "Content Security Policy" in message.text
                else None
            ),
        )
        self.page.add_init_script(
            "window.__csp = []; document.addEventListener('securitypolicyviolation',"
            " (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
        )
        AgentCoordinator(self.memory, "team").add_task(AgentTask("t1", "review", "d", 5))
        self.log_in("steward")
        expect(self.page.locator("#live-status")).to_have_text("live")  # the websocket
        for path in CSP_PAGES:
            self.page.goto(f"{self.live_server_url}{path}")
            expect(self.page.locator("main, #content").first).to_be_visible()
            assert self.page.evaluate("window.__csp") == [], path
        self.page.goto(f"{self.live_server_url}/tasks/?team=team")
        self.page.get_by_role("button", name="Cancel").first.click()  # htmx, no eval
        expect(self.page.locator("#task-t1")).to_have_count(0)
        assert violations == []

    def test_overview_shows_what_the_agents_did(self) -> None:
        coordinator = AgentCoordinator(self.memory, "code_review_team")
        coordinator.register_agent("security_agent", ["security_review"])
        for i in range(3):
            coordinator.add_task(AgentTask(f"review_{i}", "security_review", "Review", 5))
        coordinator.claim_task("security_agent", "security_review")
        finder = EmpathyOS("security_agent", short_term_memory=self.memory)
        finder.stage_pattern(StagedPattern("pat_1", "security_agent", "security", "JWT", "d"))
        finder.send_signal("review_complete", {"passed": True}, target_agent="lead")

        self.log_in("observer")
        panel = self.page.locator("#overview-panel")
        expect(panel).to_contain_text("1 alive")
        expect(panel).to_contain_text("1 awaiting validation")
        expect(panel).to_contain_text("1 in the last 5 minutes")
        row = panel.get_by_role("row", name="code_review_team")
        expect(row).to_contain_text("2")  # queued
        self.page.get_by_role("link", name="Signals").click()
        expect(self.page.locator("#signal-feed")).to_contain_text("review_complete")
        expect(self.page.locator("#signal-feed")).to_contain_text('"passed": true')

    def test_a_steward_cancels_a_task_and_an_observer_sees_no_buttons(self) -> None:
        coordinator = AgentCoordinator(self.memory, "team")
        coordinator.add_task(AgentTask("doomed", "review", "to be cancelled", 5))
        coordinator.add_task(AgentTask("kept", "review", "stays", 5))

        self.log_in("observer")
        self.page.goto(f"{self.live_server_url}/tasks/?team=team")
        expect(self.page.locator("#task-doomed")).to_be_visible()
        expect(self.page.get_by_role("button", name="Cancel")).to_have_count(0)
        self.page.get_by_role("button", name="Log out").click()

        self.log_in("steward")
        self.page.goto(f"{self.live_server_url}/tasks/?team=team")
        self.page.locator("#task-doomed").get_by_role("button", name="Cancel").click()
        expect(self.page.locator(".messages")).to_contain_text("doomed")
        expect(self.page.locator("#task-doomed")).to_have_count(0)
        expect(self.page.locator("#task-kept")).to_be_visible()
        assert coordinator.get_task("doomed") is None
