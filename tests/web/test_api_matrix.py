"""Who may call what on the agent API: every operation in the generated schema, for
every credential state and tier. The matrix below is the rule book: an operation without
a row fails ``test_every_operation_has_a_rule``. A refused call changes nothing in
Redis. Runs on a real redis-server."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from empathy_web.library.credentials import issue, revoke
from empathy_web.library.models import AgentCredential, PromotedPattern
from memory import AgentCoordinator, AgentTask, EmpathyOS, StagedPattern, TeamSession
from memory.tiers import AccessTier
from tests.web.api import BASE, Agent, data_keys
from tests.web.test_permissions import assert_unchanged, redis_snapshot

pytestmark = pytest.mark.django_db

TEAM = "alpha"
TIERS = ("observer", "contributor", "validator", "steward")
# Who calls: no credential, a revoked or expired one, one for another team only
# (steward tier, so only the team can be the reason), and each tier in TEAM.
CALLERS = ("anonymous", "revoked", "expired", "wrong team", *TIERS)

OK = 200
READS = (OK, OK, OK, OK)
WRITES = (403, OK, OK, OK)
VALIDATES = (403, 403, OK, OK)


@dataclass(frozen=True)
class Rule:
    method: str
    path: str
    tiers: tuple[int, int, int, int]  # observer, contributor, validator, steward
    body: dict[str, Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    team: bool = False  # the operation acts in TEAM: another team's credential gets 403


# fmt: off
MATRIX: dict[str, Rule] = {
    "stash":      Rule("post", "/memory/stash", WRITES, {"key": "k", "value": 1}),
    "retrieve":   Rule("get", "/memory/retrieve", READS, params={"key": "draft", "agent_id": "worker"}),
    "delete":     Rule("post", "/memory/delete", WRITES, {"key": "k"}),
    "keys":       Rule("get", "/memory/keys", READS),
    "send":       Rule("post", "/signals/send", WRITES, {"signal_type": "s", "team": TEAM}, team=True),
    "receive":    Rule("post", "/signals/receive", READS, {}),
    "signals":    Rule("get", "/signals", READS, params={"team": TEAM}, team=True),
    "add task":   Rule("post", "/teams/alpha/tasks", WRITES, {"task_id": "t-2", "task_type": "review"}, team=True),
    "list tasks": Rule("get", "/teams/alpha/tasks", READS, params={"status": "claimed"}, team=True),
    "claim":      Rule("post", "/teams/alpha/tasks/claim", WRITES, {"task_type": "review"}, team=True),
    # The task is held by "worker": no credential here holds it, so it is theirs to keep.
    "complete":   Rule("post", "/teams/alpha/tasks/t-1/complete", (403, 409, 409, 409), {"fencing_token": 1}, team=True),
    "fail":       Rule("post", "/teams/alpha/tasks/t-1/fail", (403, 409, 409, 409), {"fencing_token": 1}, team=True),
    "extend":     Rule("post", "/teams/alpha/tasks/t-1/extend", (403, 409, 409, 409), {"fencing_token": 1}, team=True),
    "get task":   Rule("get", "/teams/alpha/tasks/t-1", READS, team=True),
    "counts":     Rule("get", "/teams/alpha/counts", READS, team=True),
    "whoami":     Rule("get", "/whoami", READS),
    "stage":      Rule("post", "/patterns/stage", WRITES, {"pattern_id": "p-2", "pattern_type": "fix", "name": "n"}),
    "patterns":   Rule("get", "/patterns", READS),
    "promote":    Rule("post", "/patterns/p-1/promote", VALIDATES, {}),
    "reject":     Rule("post", "/patterns/p-1/reject", VALIDATES, {"reason": "no"}),
    "create session": Rule("post", "/sessions", WRITES, {"session_id": "s-2"}),
    "session":    Rule("get", "/sessions/s-1", READS),
    "join":       Rule("post", "/sessions/s-1/join", WRITES),
    "leave":      Rule("post", "/sessions/s-1/leave", WRITES),
    "share":      Rule("post", "/sessions/s-1/share", WRITES, {"key": "k", "value": 1}),
    "context":    Rule("get", "/sessions/s-1/context", READS),
    "context get": Rule("get", "/sessions/s-1/context/get", READS, params={"key": "plan"}),
    "session signal": Rule("post", "/sessions/s-1/signal", WRITES, {"signal_type": "s"}),
    "library":    Rule("get", "/library", READS),
    "library pattern": Rule("get", "/library/lib-1", READS),
    "register":   Rule("post", "/teams/alpha/agents/register", WRITES, {}, team=True),
    "heartbeat":  Rule("post", "/teams/alpha/agents/heartbeat", (403, 404, 404, 404), team=True),
    "unregister": Rule("post", "/teams/alpha/agents/unregister", WRITES, team=True),
    "team agents": Rule("get", "/teams/alpha/agents", READS, team=True),
    "persist":    Rule("post", "/collaboration", WRITES, {"trust_level": 0.9}),
    "restore":    Rule("get", "/collaboration", READS),
    "conflict":   Rule("post", "/conflicts", WRITES, {"conflict_id": "c-2", "positions": {"a": 1, "b": 2}}),
    "get conflict": Rule("get", "/conflicts/c-1", READS),
    "resolve":    Rule("post", "/conflicts/c-1/resolve", VALIDATES, {"resolution": "a"}),
}
# fmt: on


def seed(memory) -> None:
    """One of everything, written the way agents write it."""
    worker = EmpathyOS("worker", memory)
    worker.stash("draft", {"step": 1})
    worker.stage_pattern(StagedPattern("p-1", "worker", "fix", "Guard", "d"))
    team = AgentCoordinator(memory, TEAM, actor="worker")
    team.add_task(AgentTask("t-1", "review"))
    team.claim_task("worker", "review")
    TeamSession(memory, "s-1", "review", actor="worker").share("plan", [1])
    worker.create_conflict("c-1", {"worker": "a", "other": "b"})
    PromotedPattern.objects.create(
        pattern_id="lib-1", name="L", pattern_type="fix", confidence=0.5, agent_id="a"
    )


def client_as(who: str) -> Client | Agent:
    if who == "anonymous":
        return Agent("")
    tier = (
        AccessTier.STEWARD
        if who in ("revoked", "expired", "wrong team")
        else AccessTier[who.upper()]
    )
    expires = timezone.now() - timedelta(days=1) if who == "expired" else None
    teams = ("beta",) if who == "wrong team" else (TEAM,)
    credential, secret = issue(
        f"agent-{who.replace(' ', '-')}", tier, teams=teams, expires_at=expires
    )
    if who == "revoked":
        revoke([credential])
    return Agent(secret)


def expected(rule: Rule, who: str) -> int:
    if who in ("anonymous", "revoked", "expired"):
        return 401
    if who == "wrong team":
        return 403 if rule.team else rule.tiers[TIERS.index("steward")]
    return rule.tiers[TIERS.index(who)]


def call(agent: Agent, rule: Rule):
    if agent.secret == "":
        headers: dict[str, str] = {}
        client = Client()
        if rule.method == "get":
            return client.get(BASE + rule.path, rule.params, **headers)
        return client.post(BASE + rule.path, rule.body or {}, content_type="application/json")
    if rule.method == "get":
        return agent.get(rule.path, **rule.params)
    return agent.post(rule.path, rule.body)


def test_every_operation_has_a_rule(client):
    schema = client.get(f"{BASE}/openapi.json").json()
    operations = {
        (method, path.removeprefix(BASE))
        for path, methods in schema["paths"].items()
        for method in methods
    }
    templated = {(r.method, r.path) for r in MATRIX.values()}

    def matches(operation: tuple[str, str], rule: tuple[str, str]) -> bool:
        parts, concrete = operation[1].split("/"), rule[1].split("/")
        return (
            operation[0] == rule[0]
            and len(parts) == len(concrete)
            and all(p == c or p.startswith("{") for p, c in zip(parts, concrete, strict=True))
        )

    missing = [op for op in operations if not any(matches(op, r) for r in templated)]
    assert not missing, f"operations without a rule: {sorted(missing)}"


@pytest.mark.parametrize("who", CALLERS)
@pytest.mark.parametrize("case", MATRIX)
def test_the_matrix(memory, case, who):
    rule = MATRIX[case]
    seed(memory)
    agent = client_as(who)
    want = expected(rule, who)
    before = redis_snapshot(memory.client)
    keys_before = data_keys(memory)

    response = call(agent, rule)

    assert response.status_code == want, (case, who, response.content[:300])
    assert response.json().get("code") if want != OK else True
    if want in (401, 403):
        after = redis_snapshot(memory.client)
        assert data_keys(memory) == keys_before
        assert_unchanged(
            {k: v for k, v in before.items() if k in keys_before},
            {k: v for k, v in after.items() if k in keys_before},
        )
    AgentCredential.objects.all().delete()
