"""Two teams' records, and the people who see them: what the team-boundary tests read.

Every record of a team carries that team's marker in its text (a task's description, a
value, a signal's data, a session's purpose, a pattern's name), so a page that shows
any of it shows the marker. Org-wide records carry ``ORG_MARKER``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from memory import (
    AccessTier,
    AgentCoordinator,
    AgentTask,
    EmpathyOS,
    RedisShortTermMemory,
    StagedPattern,
    TeamSession,
)
from memory.patterns import stage
from memory.signals import send
from memory.tiers import Caller

TEAMS = ("alpha", "beta")
# Hostile and unique: a page that leaks one shows it (escaped or not).
MARKERS = {team: f"<b>leak-{team}-7f3a</b>" for team in TEAMS}
ORG_MARKER = "org-wide-c41d"


@dataclass(frozen=True)
class TeamRecords:
    """The ids of one team's records."""

    team: str
    agent: str
    pending: str
    dead: str
    session: str
    pattern: str
    signal: str
    key: str


def seed_team(memory: RedisShortTermMemory, team: str) -> TeamRecords:
    """A registered agent with working memory, a queued and a dead-lettered task, a
    team session, a signal sent with the team and a staged pattern, all marked."""
    marker = MARKERS[team]
    agent = f"agent-{team}"
    coordinator = AgentCoordinator(memory, team, access_tier=AccessTier.STEWARD, actor=agent)
    coordinator.register_agent(agent, ["review"])
    coordinator.add_task(AgentTask(f"pending-{team}", "review", f"{marker} queued"))
    coordinator.add_task(AgentTask(f"dead-{team}", "fix", f"{marker} dead", priority=9))
    coordinator.claim_task(agent, "fix")
    coordinator.fail_task(f"dead-{team}", f"{marker} crashed", retry=False)
    EmpathyOS(agent, short_term_memory=memory).stash(f"key-{team}", {"note": marker})
    session = TeamSession(memory, f"session-{team}", f"{marker} purpose", team=team, actor=agent)
    session.add_agent(agent)
    session.share(f"shared-{team}", marker)
    writer = Caller(agent, AccessTier.CONTRIBUTOR)
    signal = send(memory, writer, f"sig-{team}", {"note": marker}, team=team)
    pattern = StagedPattern(
        f"pattern-{team}", agent, "fix", f"{marker} name", f"{marker} description", team=team
    )
    stage(memory, writer, pattern)
    return TeamRecords(
        team, agent, f"pending-{team}", f"dead-{team}", session.session_id,
        pattern.pattern_id, signal["id"], f"key-{team}",
    )  # fmt: skip


def seed_org(memory: RedisShortTermMemory) -> dict[str, str]:
    """Org-wide records: a signal and a session of no team, and a pattern staged by an
    agent registered in no team."""
    loner = "agent-loner"
    writer = Caller(loner, AccessTier.CONTRIBUTOR)
    signal = send(memory, writer, "sig-org", {"note": ORG_MARKER})
    TeamSession(memory, "session-org", f"{ORG_MARKER} purpose", actor=loner)
    stage(memory, writer, StagedPattern("pattern-org", loner, "fix", ORG_MARKER, ORG_MARKER))
    return {"signal": signal["id"], "session": "session-org", "pattern": "pattern-org"}


def seed_all(memory: RedisShortTermMemory) -> dict[str, Any]:
    """Both teams' records (by team) and the org-wide ones (``"org"``)."""
    found: dict[str, Any] = {team: seed_team(memory, team) for team in TEAMS}
    found["org"] = seed_org(memory)
    return found
