"""The MCP server at /mcp, reached with the SDK's own client over Streamable HTTP, on a
live daphne: the tools an LLM client sees, a whole agent round, and the credential's
tier and teams on every call."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from memory import AgentCoordinator, AgentTask
from tests.live_server import LiveServer

TOOLS = {
    "stash", "retrieve", "send_signal", "receive_signals", "claim_task", "complete_task",
    "fail_task", "stage_pattern", "search_library", "share_in_session",
}  # fmt: skip


class Agent:
    """An MCP client session with one credential."""

    def __init__(self, live: LiveServer, secret: str) -> None:
        self.url = f"{live.url}/mcp"
        self.headers = {"Authorization": f"Bearer {secret}"}

    async def __aenter__(self) -> Agent:
        self.http = httpx2.AsyncClient(headers=self.headers, timeout=30)
        self.stream = streamable_http_client(self.url, http_client=self.http)
        read, write = await self.stream.__aenter__()
        self.session = await ClientSession(read, write).__aenter__()
        await self.session.initialize()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.__aexit__(*exc)
        await self.stream.__aexit__(*exc)
        await self.http.aclose()

    async def call(self, tool: str, **arguments: Any) -> Any:
        result = await self.session.call_tool(tool, arguments)
        text = "".join(getattr(part, "text", "") for part in result.content)
        if result.is_error:
            raise ToolFailed(text)
        if result.structured_content is not None:
            return result.structured_content.get("result", result.structured_content)
        return json.loads(text) if text else None


class ToolFailed(Exception):
    pass


async def test_the_tools_an_llm_client_sees(live):
    async with Agent(live, live.credential("lister", "observer")) as agent:
        tools = (await agent.session.list_tools()).tools

    assert {t.name for t in tools} == TOOLS
    assert all(len(t.description or "") > 40 for t in tools)


async def test_a_whole_agent_round_through_mcp(live):
    AgentCoordinator(live.memory, "alpha").add_task(AgentTask("t-1", "review", "Check"))
    after = live.memory.latest_event_id()

    async with Agent(live, live.credential("mcp-bot", "contributor", "alpha")) as agent:
        claimed = await agent.call("claim_task", team="alpha", task_type="review")
        task = claimed["task"]
        await agent.call("stash", key="finding", value={"ok": True})
        staged = await agent.call(
            "stage_pattern", pattern_id="mcp-p", pattern_type="fix", name="Guard",
            description="Return early", confidence=0.7,
        )  # fmt: skip
        done = await agent.call(
            "complete_task", team="alpha", task_id=task["task_id"],
            fencing_token=task["fencing_token"], result={"verdict": "fine"},
        )  # fmt: skip

    assert task["claimed_by"] == "mcp-bot" and staged["agent_id"] == "mcp-bot"
    assert done == {"ok": True, "next": None}
    # What the dashboards are sent: the round's events, in order, as the agent.
    events = [e for e in live.memory.read_events(after, count=100) if e.actor == "mcp-bot"]
    assert [e.type for e in events] == [
        "task.claimed", "working.stashed", "pattern.staged", "task.completed",
    ]  # fmt: skip
    assert AgentCoordinator(live.memory, "alpha").get_task("t-1").result == {"verdict": "fine"}


async def test_tools_keep_to_the_credentials_tier_and_teams(live):
    AgentCoordinator(live.memory, "beta").add_task(AgentTask("t-b", "review"))
    before = live.memory.client.hgetall(live.memory.keys.team("beta", "state"))

    async with Agent(live, live.credential("mcp-alpha", "contributor", "alpha")) as agent:
        with pytest.raises(ToolFailed, match="forbidden: this credential may act in teams: alpha"):
            await agent.call("claim_task", team="beta", task_type="review")
    async with Agent(live, live.credential("mcp-reader", "observer")) as reader:
        with pytest.raises(ToolFailed, match="forbidden"):
            await reader.call("stash", key="k", value=1)
        assert (await reader.call("retrieve", key="k"))["value"] is None

    assert live.memory.client.hgetall(live.memory.keys.team("beta", "state")) == before


async def test_no_credential_or_a_revoked_one_is_401(live):
    secret = live.credential("mcp-gone", "contributor")
    live.manage("agent_credential", "revoke", "mcp-gone")
    for headers in ({}, {"Authorization": f"Bearer {secret}"}):
        async with httpx2.AsyncClient(headers=headers) as http:
            answer = await http.post(
                f"{live.url}/mcp",
                json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                headers={"Accept": "application/json, text/event-stream"},
            )
        assert answer.status_code == 401
        assert answer.json()["error"]["message"].startswith("unauthenticated: ")


async def test_the_library_search_and_a_session_share(live):
    async with Agent(live, live.credential("mcp-sharer", "contributor")) as agent:
        found = await agent.call("search_library", q="nothing")
        with pytest.raises(ToolFailed, match="not_found"):
            await agent.call("share_in_session", session_id="s-none", key="k", value=1)

    assert found["items"] == [] and found["total"] == 0


async def test_complete_task_can_claim_the_next_in_the_same_call(live):
    coordinator = AgentCoordinator(live.memory, "loop")
    for n in (1, 2):
        coordinator.add_task(AgentTask(f"loop-{n}", "review", "Check"))

    async with Agent(live, live.credential("looper", "contributor", "loop")) as agent:
        task = (await agent.call("claim_task", team="loop", task_type="review"))["task"]
        done = await agent.call(
            "complete_task", team="loop", task_id=task["task_id"],
            fencing_token=task["fencing_token"], result=1, claim_next="review",
        )  # fmt: skip

    assert done["ok"] and (done["next"]["task_id"], done["next"]["claimed_by"]) == (
        "loop-2", "looper",
    )  # fmt: skip
    assert coordinator.get_task("loop-1").status == "completed"
    assert coordinator.get_task("loop-2").status == "claimed"
