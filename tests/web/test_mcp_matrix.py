"""Who may call which MCP tool: every tool, for no credential, a revoked, an expired and
another team's credential, and each tier, over the SDK's client on a live daphne. A
refused call changes nothing in Redis."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from memory import AgentCoordinator, AgentTask, TeamSession
from tests.web.api import data_keys

TEAM = "alpha"
TIERS = ("observer", "contributor", "validator", "steward")
CALLERS = ("anonymous", "revoked", "expired", "wrong team", *TIERS)
OK, NO = "ok", "forbidden"
READS = (OK, OK, OK, OK)
WRITES = (NO, OK, OK, OK)
HELD = (NO, "lease_lost", "lease_lost", "lease_lost")  # the task is another agent's

# tool: (arguments, results by tier, acts in TEAM)
MATRIX: dict[str, tuple[dict[str, Any], tuple[str, ...], bool]] = {
    "stash": ({"key": "k", "value": 1}, WRITES, False),
    "retrieve": ({"key": "k"}, READS, False),
    "send_signal": ({"signal_type": "s", "team": TEAM}, WRITES, True),
    "receive_signals": ({}, READS, False),
    "claim_task": ({"team": TEAM, "task_type": "none-queued"}, WRITES, True),
    "complete_task": ({"team": TEAM, "task_id": "t-1", "fencing_token": 1}, HELD, True),
    "fail_task": ({"team": TEAM, "task_id": "t-1", "fencing_token": 1}, HELD, True),
    "stage_pattern": ({"pattern_type": "fix", "name": "n", "description": "d"}, WRITES, False),
    "search_library": ({}, READS, False),
    "share_in_session": ({"session_id": "s-1", "key": "k", "value": 1}, WRITES, False),
}
ISSUE = """
from datetime import timedelta
from django.utils import timezone
from empathy_web.library.credentials import issue, revoke
from memory.tiers import AccessTier
def made(name, tier, teams, **options):
    credential, secret = issue("mcp-" + name.replace(" ", "-"), tier, teams=teams, **options)
    return credential, secret
for tier in ("observer", "contributor", "validator", "steward"):
    print(tier, made(tier, AccessTier[tier.upper()], ["alpha"])[1])
print("wrong-team", made("wrong team", AccessTier.STEWARD, ["beta"])[1])
print("expired", made("expired", AccessTier.STEWARD, ["alpha"],
      expires_at=timezone.now() - timedelta(days=1))[1])
credential, secret = made("revoked", AccessTier.STEWARD, ["alpha"])
revoke([credential])
print("revoked", secret)
"""


@pytest.fixture(scope="module")
def secrets(live) -> dict[str, str]:
    lines = live.manage("shell", "-v", "0", "-c", ISSUE).split("\n")
    found = dict(line.split(" ", 1) for line in lines if line.strip())
    return {name.replace("-", " "): secret for name, secret in found.items()}


@pytest.fixture(scope="module")
def seeded(live) -> None:
    team = AgentCoordinator(live.memory, TEAM, actor="worker")
    team.add_task(AgentTask("t-1", "review"))
    team.claim_task("worker", "review")
    TeamSession(live.memory, "s-1", "review", actor="worker")


def expected(tool: str, who: str) -> str:
    _, by_tier, in_team = MATRIX[tool]
    if who in ("anonymous", "revoked", "expired"):
        return "unauthenticated"
    if who == "wrong team":
        return NO if in_team else by_tier[TIERS.index("steward")]
    return by_tier[TIERS.index(who)]


def flat(exc: BaseException) -> list[BaseException]:
    """``exc`` and everything in its exception groups, however nested."""
    return [exc, *(inner for e in getattr(exc, "exceptions", ()) for inner in flat(e))]


async def call(url: str, secret: str | None, tool: str, arguments: dict[str, Any]) -> str:
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    try:
        async with (
            httpx2.AsyncClient(headers=headers, timeout=30) as http,
            streamable_http_client(url, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            result = await session.call_tool(tool, arguments)
    except Exception as exc:  # noqa: BLE001 - the SDK raises the server's JSON-RPC error
        if any("unauthenticated: " in str(e) for e in flat(exc)):
            return "unauthenticated"
        raise
    if not result.is_error:
        return OK
    text = "".join(getattr(part, "text", "") for part in result.content)
    return text.removeprefix(f"Error executing tool {tool}: ").split(":", 1)[0]


@pytest.mark.parametrize("who", CALLERS)
@pytest.mark.parametrize("tool", MATRIX)
async def test_the_matrix(live, secrets, seeded, tool, who):
    arguments = dict(MATRIX[tool][0])
    if tool == "stage_pattern":
        arguments["pattern_id"] = f"p-{who.replace(' ', '-')}"
    before = data_keys(live.memory)

    got = await call(f"{live.url}/mcp", secrets.get(who), tool, arguments)

    assert got == expected(tool, who), (tool, who, got)
    if got in ("unauthenticated", NO):
        assert data_keys(live.memory) == before
