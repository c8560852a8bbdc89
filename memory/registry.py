"""The registry of agents in each team, with their heartbeats, and the list of teams.

An agent is alive while its last heartbeat (by the server's clock) is younger than the
coordinator's ``alive_seconds``, late until ``dead_seconds``, and dead after that.

Each agent also has its own index of the teams it is registered in (``agent_teams_of``),
which registering and unregistering keep (under Redis Cluster, in their second call);
an agent registered in no team is org-wide.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

import redis

from . import scripts
from .codec import MAX_ACTOR_LENGTH, check_id, decode, encode
from .connection import RedisConnection, queue_time, redis_errors, time_ms
from .exceptions import InvalidValue
from .keys import TEAM_PARTS
from .page import FILTER_BATCH, Page, check_limit, offset_cursor
from .team import TeamScope
from .tiers import ADMIN, READ, WRITE, Caller
from .ttl import TTLStrategy


@dataclass(frozen=True)
class AgentInfo:
    agent_id: str
    capabilities: list[str]
    last_heartbeat_ms: int
    liveness: str  # "alive", "late" or "dead"


def liveness_ranges(
    now_ms: int, alive_ms: int, dead_ms: int
) -> list[tuple[str, str | int, str | int]]:
    """The heartbeat ranges (for ZCOUNT) of alive, late and dead agents."""
    alive, dead = now_ms - alive_ms, now_ms - dead_ms
    return [("alive", f"({alive}", "+inf"), ("late", f"({dead}", alive), ("dead", "-inf", dead)]


class AgentRegistry(TeamScope):
    """A team's agents: registration, heartbeats and liveness."""

    def _agent_keys(self) -> dict[str, str]:
        return {"agents": self._key("agents"), "heartbeats": self._key("heartbeats")}

    def _registration_keys(self, agent_id: str) -> dict[str, str]:
        return {**self._agent_keys(), "agent_teams": self.memory.keys.agent_teams(agent_id)}

    def register_agent(self, agent_id: str, capabilities: list[str] | None = None) -> bool:
        """Register (or re-register) an agent; returns True when it is new."""
        caller = self._as(agent_id)
        caller.require(WRITE, "register_agent")
        caps = list(capabilities or [])
        for cap in caps:
            check_id(cap, "capability")
        info = encode({"capabilities": caps}, self.memory.max_value_bytes, "capabilities")
        fresh = self.memory.run_script(
            scripts.REGISTER_AGENT,
            caller,
            {**self._registration_keys(agent_id), "teams": self.memory.keys.teams},
            {"agent": agent_id, "info_json": info, "team": self.team_id},
        )
        return bool(fresh)

    def unregister_agent(self, agent_id: str) -> bool:
        caller = self._as(agent_id)
        caller.require(WRITE, "unregister_agent")
        n = self.memory.run_script(
            scripts.UNREGISTER_AGENT,
            caller,
            self._registration_keys(agent_id),
            {"agent": agent_id, "team": self.team_id},
        )
        return bool(n)

    def heartbeat(self, agent_id: str) -> None:
        """Record that ``agent_id`` is alive (by the server's clock). Idempotent."""
        caller = self._as(agent_id)
        caller.require(WRITE, "heartbeat")
        self.memory.run_script(
            scripts.HEARTBEAT,
            caller,
            self._agent_keys(),
            {"agent": agent_id, "team": self.team_id},
        )

    def liveness(self, last_heartbeat_ms: int, now_ms: int) -> str:
        age = now_ms - last_heartbeat_ms
        if age < self.alive_ms:
            return "alive"
        return "late" if age < self.dead_ms else "dead"

    @redis_errors
    def get_agents(self, limit: int = 100, cursor: str | None = None) -> Page[AgentInfo]:
        """Registered agents with capabilities and liveness, most recently seen first."""
        self.caller.require(READ, "get_agents")
        start = offset_cursor(cursor)
        limit = check_limit(limit)
        with self.memory.client.pipeline(transaction=False) as pipe:
            queue_time(pipe)
            pipe.zcard(self._key("heartbeats"))
            pipe.zrevrange(self._key("heartbeats"), start, start + limit - 1, withscores=True)
            clock, total, beats = pipe.execute()
        now = time_ms(clock)
        ids = [m.decode() for m, _ in beats]
        infos = self.memory.client.hmget(self._key("agents"), ids) if ids else []
        agents = [
            AgentInfo(
                agent_id,
                decode(raw)["capabilities"] if raw else [],
                int(score),
                self.liveness(int(score), now),
            )
            for agent_id, (_, score), raw in zip(ids, beats, infos, strict=True)
        ]
        more = start + limit < total
        return Page(agents, str(start + limit) if more else None, total)


@redis_errors
def list_teams(memory: RedisConnection, caller: Caller) -> list[str]:
    """Every team that has registered an agent or queued a task, most recently active
    first. Pages that show teams use ``team_page``."""
    caller.require(READ, "listing teams")
    return [t.decode() for t in memory.client.zrevrange(memory.keys.teams, 0, -1)]


def prune_teams(memory: RedisConnection, caller: Caller, sample: int = 20) -> int:
    """Check up to ``sample`` teams, picked at random from the teams index, and remove
    those with nothing left in them (no task, counting completed ones until their
    results expire, and no registered agent) from the index, with their counters.
    Returns how many left. Pages that list teams call it now and then, so the index
    does not only grow; each call costs O(sample). A team with a registered agent stays,
    so no agent's teams (``agent_teams_of``) name a team it removes."""
    caller.require(READ, "pruning teams")
    keys = memory.keys
    try:
        picked = memory.client.zrandmember(keys.teams, check_limit(sample))
    except redis.RedisError as exc:
        raise memory.connection_error(exc) from exc
    ttl = memory.ttl_ms(TTLStrategy.WORKING_RESULTS)
    removed = 0
    for raw in picked or ():
        team = raw.decode()
        team_keys = {n: keys.team(team, n) for n in scripts.PRUNE_TEAM.keys if n in TEAM_PARTS}
        removed += memory.run_script(
            scripts.PRUNE_TEAM,
            caller,
            {**team_keys, "teams": keys.teams},
            {"team": team, "result_ttl_ms": ttl},
        )
    return removed


@redis_errors
def team_page(
    memory: RedisConnection,
    caller: Caller,
    limit: int = 50,
    cursor: str | None = None,
    *,
    among: Collection[str] | None = None,
) -> Page[str]:
    """Teams a page at a time, most recently active first; with ``among``, only those
    of these that exist, at a cost that follows their number, not every team's."""
    caller.require(READ, "listing teams")
    start = offset_cursor(cursor)
    limit = check_limit(limit)
    if among is not None:
        wanted = sorted({check_id(team_id, "team") for team_id in among})
        scores = memory.client.zmscore(memory.keys.teams, wanted) if wanted else []
        found = sorted(
            (-score, team_id)
            for team_id, score in zip(wanted, scores, strict=True)
            if score is not None
        )
        total, teams = len(found), [team_id for _, team_id in found[start : start + limit]]
    else:
        with memory.client.pipeline(transaction=False) as pipe:
            pipe.zcard(memory.keys.teams)
            pipe.zrevrange(memory.keys.teams, start, start + limit - 1)
            total, members = pipe.execute()
        teams = [member.decode() for member in members]
    more = start + limit < total
    return Page(teams, str(start + limit) if more else None, total)


@redis_errors
def agent_teams(memory: RedisConnection, caller: Caller) -> dict[str, list[str]]:
    """The teams each registered agent is in, by agent id."""
    team_ids = list_teams(memory, caller)
    with memory.client.pipeline(transaction=False) as pipe:
        for team_id in team_ids:
            pipe.zrange(memory.keys.team(team_id, "heartbeats"), 0, -1)  # its registered agents
        registered = pipe.execute()
    teams: dict[str, list[str]] = {}
    for team_id, agents in zip(team_ids, registered, strict=True):
        for agent_id in agents:
            teams.setdefault(agent_id.decode(), []).append(team_id)
    return teams


@redis_errors
def agent_teams_of(
    memory: RedisConnection, caller: Caller, agent_ids: Iterable[str]
) -> dict[str, list[str]]:
    """The teams each of ``agent_ids`` is registered in (sorted; none: org-wide), by
    agent id, from the agents' own indexes, in one round trip."""
    caller.require(READ, "listing agents' teams")
    if isinstance(agent_ids, str | bytes):
        raise InvalidValue("agent_ids must be a collection of agent ids, not one string")
    ids = list(
        dict.fromkeys(check_id(a, "agent_id", max_length=MAX_ACTOR_LENGTH) for a in agent_ids)
    )
    if not ids:
        return {}
    with memory.client.pipeline(transaction=False) as pipe:
        for agent_id in ids:
            pipe.smembers(memory.keys.agent_teams(agent_id))
        answers = pipe.execute()
    return {
        agent_id: sorted(team.decode() for team in teams)
        for agent_id, teams in zip(ids, answers, strict=True)
    }


@redis_errors
def rebuild_agent_teams(memory: RedisConnection, caller: Caller) -> int:
    """Rebuild the agents' own indexes of their teams (``agent_teams_of``) from the
    teams' registries, for every agent registered in a team or with working memory:
    each then names exactly the teams that hold the agent. Returns how many changed.

    Run it once after upgrading from a version without these indexes: agents registered
    before have none, and count as org-wide until they register again or this runs.
    Under Redis Cluster, run it too after a logged loss of writes elsewhere. It reads
    every team's registrations, and rewrites the agents whose index is wrong one at a
    time; agents may register and unregister meanwhile."""
    caller.require(ADMIN, "rebuilding agents' teams")
    keys = memory.keys
    team_ids = [t.decode() for t in memory.client.zrange(keys.teams, 0, -1)]
    with memory.client.pipeline(transaction=False) as pipe:
        for team_id in team_ids:
            pipe.hkeys(keys.team(team_id, "agents"))
        pipe.zrange(keys.working_agents, 0, -1)
        *registered, working = pipe.execute()
    found: dict[str, set[str]] = {a.decode(): set() for a in working}
    for team_id, agents in zip(team_ids, registered, strict=True):
        for agent_id in agents:
            found.setdefault(agent_id.decode(), set()).add(team_id)
    ids, changed = sorted(found), 0
    for i in range(0, len(ids), FILTER_BATCH):
        listed = agent_teams_of(memory, caller, ids[i : i + FILTER_BATCH])
        for agent_id, teams in listed.items():
            if set(teams) != found[agent_id]:
                changed += _rewrite_agent_teams(memory, agent_id, found[agent_id])
    return changed


def _rewrite_agent_teams(memory: RedisConnection, agent_id: str, seen: set[str]) -> int:
    """Rewrite one agent's teams from the registries of the teams it names and of
    ``seen``, under WATCH, so that a registration meanwhile makes it look again; 1 when
    that changed them."""
    key = memory.keys.agent_teams(agent_id)
    with memory.client.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(key)
                listed = {t.decode() for t in pipe.smembers(key)}
                candidates = sorted(listed | seen)
                with memory.client.pipeline(transaction=False) as check:
                    for team_id in candidates:
                        check.hexists(memory.keys.team(team_id, "agents"), agent_id)
                    answers = check.execute() if candidates else []
                teams = {t for t, yes in zip(candidates, answers, strict=True) if yes}
                if teams == listed:
                    pipe.unwatch()
                    return 0
                pipe.multi()
                pipe.delete(key)
                if teams:
                    pipe.sadd(key, *sorted(teams))
                pipe.execute()
                return 1
            except redis.WatchError:
                continue
