"""The agent API's interactive docs in a real browser: served from this site under the
site's Content-Security-Policy, and still whole (every operation listed, nothing the
policy refused)."""

from __future__ import annotations

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from tests.e2e.live_stack import LiveStack

pytestmark = pytest.mark.e2e


class APIDocs(LiveStack):
    @pytest.fixture(autouse=True)
    def _page(self, page: Page) -> None:
        self.page = page

    def test_the_docs_render_under_the_sites_policy(self) -> None:
        refused: list[str] = []

        def on_console(message: ConsoleMessage) -> None:
            if "Content Security Policy" in message.text:
                refused.append(message.text)

        self.page.on("console", on_console)
        response = self.page.goto(f"{self.live_server_url}/api/v1/docs")

        assert response is not None and response.status == 200
        policy = response.headers.get("content-security-policy", "")
        assert "script-src 'self'" in policy and "object-src 'none'" in policy
        expect(self.page.get_by_text("/api/v1/memory/stash", exact=True)).to_be_visible()
        expect(
            self.page.get_by_text("/api/v1/teams/{team}/tasks/claim", exact=True)
        ).to_be_visible()
        assert refused == []
