"""Agents are answered in JSON whatever fails. With the database gone, the HTTP API
answers 503 ``unavailable`` and MCP a JSON-RPC error or a tool error saying so, never
Django's HTML error page; and under the API's prefix, what no endpoint answers (an
unknown path, a host not allowed) is the API's JSON error too."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import httpx2
import pytest

from tests.live_server import PRODUCTION, LiveServer, start_live_server
from tests.web.test_mcp import Agent, ToolFailed

GONE = "the database is unreachable or busy; try again shortly"


@pytest.fixture
def live() -> Iterator[LiveServer]:
    """A live server of this test's own: its database is taken away."""
    server = start_live_server(**PRODUCTION)
    try:
        yield server
    finally:
        server.stop()


def api(live: LiveServer, secret: str, **headers: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {secret}", **headers}
    return httpx.Client(base_url=f"{live.url}/api/v1", headers=headers, timeout=30)


async def mcp_post(live: LiveServer, secret: str) -> httpx2.Response:
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {secret}"}) as http:
        return await http.post(
            f"{live.url}/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"Accept": "application/json, text/event-stream"},
        )


async def test_with_the_database_gone_agents_get_503_unavailable(live: LiveServer) -> None:
    kept, unread = live.credential("db-kept", "contributor"), live.credential("db-new", "observer")
    async with Agent(live, kept) as agent:
        assert (await agent.call("search_library", q="guard"))["items"] == []
        with api(live, kept) as http:
            assert http.get("/library").status_code == 200  # kept by this process now

            os.rename(live.workdir / "db.sqlite3", live.workdir / "gone.sqlite3")

            # a call that reads the database
            answer = http.get("/library")
            assert answer.status_code == 503, answer.text
            assert answer.json() == {"code": "unavailable", "message": GONE.capitalize() + "."}
            with pytest.raises(ToolFailed, match=f"unavailable: {GONE}$"):
                await agent.call("search_library", q="guard")
    # a credential this process must read from the database first
    with api(live, unread) as http:
        answer = http.get("/memory/retrieve", params={"key": "k"})
    assert answer.status_code == 503 and answer.json()["code"] == "unavailable", answer.text
    refused = await mcp_post(live, unread)
    assert refused.status_code == 503
    assert refused.json()["error"]["message"] == f"unavailable: {GONE}"


def test_what_no_endpoint_answers_is_a_json_error_under_the_prefix(live: LiveServer) -> None:
    secret = live.credential("lost", "observer")
    with api(live, secret) as http:
        unknown = http.get("/no-such-endpoint")
        wrong_host = http.get("/library", headers={"Host": "elsewhere.example"})
    assert unknown.status_code == 404
    assert unknown.json() == {
        "code": "not_found", "message": "No endpoint here; see /api/v1/docs for them."
    }  # fmt: skip
    assert wrong_host.status_code == 400 and wrong_host.json()["code"] == "bad_input"
    page = httpx.get(f"{live.url}/no-such-page")  # elsewhere, Django's own page
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
