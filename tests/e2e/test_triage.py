"""A validator triages staged patterns with the keyboard in a real browser, while the
queue in a second browser follows live (the real bridge process, the channel layer on
Redis, the page's websocket)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from empathy_web.library.models import AuditEntry, PromotedPattern
from memory import EmpathyOS, RedisShortTermMemory, StagedPattern, TTLStrategy
from memory import patterns as staged
from memory.tiers import AccessTier, Caller
from tests.e2e.live_stack import LiveStack

READER = Caller("reader", AccessTier.OBSERVER)  # the reads below read as an observer

pytestmark = pytest.mark.e2e

CURRENT = re.compile(r"\bcurrent\b")


class LiveTriage(LiveStack):
    users = (("vera", "validator"), ("olga", "observer"))

    @pytest.fixture(autouse=True)
    def _pages(self, page: Page, browser: Browser) -> None:
        self.page = page
        context = browser.new_context()
        self.watcher = context.new_page()
        yield
        context.close()

    def open(self, page: Page, name: str, path: str) -> None:
        self.log_in(page, name, path)

    def stage(self, pattern_id: str, ttl_seconds: float) -> None:
        memory = RedisShortTermMemory(
            url=self.redis.url, ttls={TTLStrategy.STAGED_PATTERNS: ttl_seconds}
        )
        try:
            EmpathyOS("security_agent", short_term_memory=memory).stage_pattern(
                StagedPattern(
                    pattern_id, "security_agent", "security", f"Pattern {pattern_id}", "found"
                )
            )
        finally:
            memory.close()

    def row(self, page: Page, pattern_id: str):
        return page.locator(f"#pattern-{pattern_id}")

    def test_a_validator_triages_three_patterns_with_the_keyboard(self) -> None:
        self.stage("p-a", 1800)  # expiring soonest: first in the queue, and urgent
        self.stage("p-b", 3 * 3600)
        self.stage("p-c", 6 * 3600)
        page, watcher = self.page, self.watcher
        self.open(watcher, "olga", "/patterns/")
        self.open(page, "vera", "/patterns/")
        expect(self.row(page, "p-a")).to_have_class(re.compile(r"\burgent\b"))
        expect(self.row(page, "p-b")).not_to_have_class(re.compile(r"\burgent\b"))
        expect(self.row(watcher, "p-a")).to_be_visible()

        # ? shows the keys
        page.keyboard.press("?")
        expect(page.locator("#keys-help")).to_be_visible()
        page.keyboard.press("Escape")
        expect(page.locator("#keys-help")).to_be_hidden()

        # j selects the first pattern, a approves it
        page.keyboard.press("j")
        expect(self.row(page, "p-a")).to_have_class(CURRENT)
        page.keyboard.press("a")
        expect(self.row(page, "p-a")).to_have_count(0)
        expect(self.row(watcher, "p-a")).to_have_count(0)  # live, no reload

        # the selection stays in place: r rejects p-b, asking for the reason
        expect(self.row(page, "p-b")).to_have_class(CURRENT)
        page.keyboard.press("r")
        reason = page.locator("#reject-reason")
        expect(reason).to_be_focused()
        reason.fill("duplicate of the JWT pattern")
        reason.press("Enter")
        expect(self.row(page, "p-b")).to_have_count(0)
        expect(self.row(watcher, "p-b")).to_have_count(0)
        assert (
            staged.decision(self.memory, READER, "p-b")["reason"] == "duplicate of the JWT pattern"
        )

        # u undoes that rejection within 10 s: p-b is back, in both browsers
        expect(page.locator("#undo-form")).to_contain_text("rejected")
        page.keyboard.press("u")
        expect(self.row(page, "p-b")).to_be_visible()
        expect(self.row(watcher, "p-b")).to_be_visible()

        # k back to p-b and approve it; then j, a on p-c
        expect(self.row(page, "p-c")).to_have_class(CURRENT)
        page.keyboard.press("k")
        expect(self.row(page, "p-b")).to_have_class(CURRENT)
        page.keyboard.press("a")
        expect(self.row(page, "p-b")).to_have_count(0)
        expect(self.row(page, "p-c")).to_have_class(CURRENT)
        page.keyboard.press("a")
        expect(page.locator("#pattern-queue")).to_contain_text("No patterns are awaiting")
        expect(watcher.locator("#pattern-queue")).to_contain_text("No patterns are awaiting")

        promoted = sorted(
            PromotedPattern.objects.values_list("pattern_id", "promoted_by__username")
        )
        assert promoted == [("p-a", "vera"), ("p-b", "vera"), ("p-c", "vera")]
        assert list(AuditEntry.objects.order_by("pk").values_list("action", "target")) == [
            ("pattern.approve", "p-a"),
            ("pattern.reject", "p-b"),
            ("pattern.undo", "p-b"),
            ("pattern.approve", "p-b"),
            ("pattern.approve", "p-c"),
        ]

    def test_a_live_update_keeps_the_patterns_a_validator_selected(self) -> None:
        self.stage("sec.p:a", 3600)  # an id that a CSS selector would need escaped
        self.stage("p-b", 2 * 3600)
        page = self.page
        self.open(page, "vera", "/patterns/")
        ids = ("sec.p:a", "p-b", "p-c")
        box = {p: page.locator(f"input[name=pattern_id][value='{p}']") for p in ids}
        box["sec.p:a"].check()

        self.stage("p-c", 3 * 3600)  # the queue is sent again, live
        expect(self.row(page, "p-c")).to_be_visible()
        expect(box["sec.p:a"]).to_be_checked()
        expect(box["p-b"]).not_to_be_checked()
        expect(box["p-c"]).not_to_be_checked()

    def test_a_rare_match_is_found_page_by_page_past_the_search_budget(self) -> None:
        # 2,100 staged (one TTL, so expiring in staging order); "needle" in three of them.
        finder = EmpathyOS("security_agent", short_term_memory=self.memory)
        for i in range(2100):
            words = "needle in the haystack" if i % 1000 == 0 else "hay"
            finder.stage_pattern(
                StagedPattern(f"p-{i:04d}", "security_agent", "security", f"P{i}", words)
            )
        page = self.page
        self.open(page, "vera", "/patterns/")
        page.fill("input[name=q]", "needle")
        page.get_by_role("button", name="Apply").click()

        # The first request searches 2,000 patterns: two matches, and it says it stopped.
        queue = page.locator("#pattern-queue")
        expect(queue.locator("tr[data-pattern-id]")).to_have_count(2)
        expect(self.row(page, "p-0000")).to_be_visible()
        expect(self.row(page, "p-1000")).to_be_visible()
        expect(page.locator("#search-progress")).to_contain_text("searched 2000 staged patterns")

        # Its next page searches on from there and finds the third.
        page.get_by_role("link", name="Next page →").click()
        expect(queue.locator("tr[data-pattern-id]")).to_have_count(1)
        expect(self.row(page, "p-2000")).to_be_visible()
        expect(page.locator("#search-progress")).to_have_count(0)
        expect(page.get_by_role("link", name="Next page →")).to_have_count(0)
        assert "q=needle" in page.url
