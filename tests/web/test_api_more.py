"""The agent API's patterns (staged by the agent, decided by validator agents into the
library), team sessions, the registry, collaboration state, conflicts and the library.
Runs on a real redis-server."""

from __future__ import annotations

import pytest

from empathy_web.library.models import AuditEntry, PromotedPattern
from memory import EmpathyOS
from memory.patterns import decision
from memory.tiers import AccessTier, Caller
from tests.web.api import agent

pytestmark = pytest.mark.django_db

READER = Caller("reader", AccessTier.OBSERVER)
PATTERN = {"pattern_id": "p-1", "pattern_type": "fix", "name": "Guard clause", "description": "d"}


def test_an_agent_stages_a_pattern_as_itself(memory):
    bot = agent("bot")

    staged = bot.post("/patterns/stage", {**PATTERN, "agent_id": "alice"}).json()

    assert staged["agent_id"] == "bot" and staged["staged_at"]
    assert [p["pattern_id"] for p in bot.get("/patterns").json()["items"]] == ["p-1"]
    other = agent("other").post("/patterns/stage", PATTERN)
    assert other.status_code == 409 and other.json()["code"] == "id_taken"


def test_a_validator_agent_approves_into_the_library_and_is_audited(memory):
    agent("bot").post("/patterns/stage", PATTERN)

    approved = agent("judge", "validator").post("/patterns/p-1/promote", {"note": "good"})

    assert approved.status_code == 200 and approved.json()["decision"] == "promoted"
    row = PromotedPattern.objects.get(pattern_id="p-1")
    assert (row.promoted_by, row.promoted_by_agent, row.approver) == (None, "judge", "agent judge")
    entry = AuditEntry.objects.get(action="pattern.approve")
    assert (entry.actor, entry.actor_name, entry.tier) == (None, "judge", "VALIDATOR")
    assert decision(memory, READER, "p-1")["decision"] == "promoted"
    again = agent("judge2", "validator").post("/patterns/p-1/reject", {"reason": "late"})
    assert again.status_code == 409 and again.json()["code"] == "already_decided"
    found = agent("bot", "observer").get("/library", q="guard").json()
    assert [p["pattern_id"] for p in found["items"]] == ["p-1"]
    assert found["items"][0]["approved_by"] == "agent judge"


def test_a_contributor_cannot_decide(memory):
    agent("bot").post("/patterns/stage", PATTERN)

    refused = agent("bot2").post("/patterns/p-1/reject", {"reason": "no"})

    assert refused.status_code == 403 and "validator" in refused.json()["message"]
    assert decision(memory, READER, "p-1") is None


def test_a_reject_needs_a_reason_and_an_unknown_pattern_is_404(memory):
    judge = agent("judge", "validator")

    assert judge.post("/patterns/p-9/reject", {"reason": ""}).status_code == 422
    missing = judge.post("/patterns/p-9/reject", {"reason": "x"})
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_sessions_are_created_joined_shared_signalled_and_left(memory):
    alice, bob = agent("alice"), agent("bob")

    created = alice.post("/sessions", {"session_id": "s-1", "purpose": "review"}).json()
    bob.post("/sessions/s-1/join")
    bob.post("/sessions/s-1/share", {"key": "plan", "value": [1, 2]})
    sent = alice.post("/sessions/s-1/signal", {"signal_type": "ready"}).json()

    assert created["participants"] == ["alice"] and created["created_by"] == "alice"
    assert alice.get("/sessions/s-1/context").json() == {"context": {"plan": [1, 2]}}
    assert alice.get("/sessions/s-1/context/get", key="plan").json()["value"] == [1, 2]
    assert [s["id"] for s in bob.post("/signals/receive").json()["items"]] == [sent["id"]]
    assert bob.post("/sessions/s-1/leave").json()["participants"] == ["alice"]
    assert alice.get("/sessions/s-9").status_code == 404


def test_an_agent_registers_and_beats_in_its_teams_only(memory):
    bot = agent("bot", teams=("alpha",))

    assert bot.post("/teams/alpha/agents/register", {"capabilities": ["lint"]}).json() == {
        "agent_id": "bot",
        "new": True,
    }
    assert bot.post("/teams/alpha/agents/heartbeat").json() == {"ok": True}
    listed = bot.get("/teams/alpha/agents").json()["items"]
    assert [(a["agent_id"], a["liveness"]) for a in listed] == [("bot", "alive")]
    assert bot.post("/teams/beta/agents/register", {}).status_code == 403


def test_collaboration_state_persists_per_agent(memory):
    bot = agent("bot")

    assert bot.get("/collaboration").json() == {"state": None}
    bot.post("/collaboration", {"trust_level": 0.8, "total_interactions": 3})

    assert bot.get("/collaboration").json()["state"]["trust_level"] == 0.8
    assert EmpathyOS("bot", memory).collaboration_state.total_interactions == 3
    assert agent("other").get("/collaboration").json() == {"state": None}


def test_conflicts_are_recorded_and_resolved_by_validators(memory):
    positions = {"alice": "tabs", "bob": "spaces"}
    created = agent("alice").post("/conflicts", {"conflict_id": "c-1", "positions": positions})

    assert created.json()["status"] == "open" and created.json()["created_by"] == "alice"
    assert agent("bob").post("/conflicts/c-1/resolve", {"resolution": "tabs"}).status_code == 403
    resolved = agent("judge", "validator").post("/conflicts/c-1/resolve", {"resolution": "spaces"})
    assert (resolved.json()["status"], resolved.json()["resolved_by"]) == ("resolved", "judge")


def test_the_library_pages_with_cursors(memory):
    for n in range(3):
        PromotedPattern.objects.create(
            pattern_id=f"lib-{n}", name=f"P{n}", pattern_type="fix", confidence=0.5, agent_id="a"
        )
    reader = agent("reader", "observer")

    first = reader.get("/library", limit=2).json()
    second = reader.get("/library", limit=2, cursor=first["next_cursor"]).json()

    assert [p["pattern_id"] for p in first["items"] + second["items"]] == [
        "lib-2",
        "lib-1",
        "lib-0",
    ]
    assert first["total"] == 3 and second["next_cursor"] is None
    assert reader.get("/library/lib-1").json()["name"] == "P1"
    assert reader.get("/library/lib-9").status_code == 404
    assert reader.get("/library", cursor="x").status_code == 400


def test_a_staged_pattern_names_only_the_credentials_teams(memory):
    refused = agent("bot", teams=("alpha",)).post("/patterns/stage", {**PATTERN, "team": "beta"})

    assert refused.status_code == 403
    assert EmpathyOS("x", memory, AccessTier.OBSERVER).get_staged_patterns() == []
