"""The key schema: every Redis key the library uses is built here, and only here.

All keys live under one prefix (default ``empathy:``). Keys that change together in one
script share a Redis Cluster hash tag (the part in braces), so they land in one slot:

- ``{wm:<agent>}``      one agent's working memory and its index
- ``{patterns}``        staged patterns, their indexes and decisions (under Cluster
                        spread by id over ``PATTERN_SHARDS`` tags, ``{patterns:<n>}``)
- ``{signals}``         broadcasts and sessions' signals, the recent feed, who has had
                        which broadcast
- ``{sig:<agent>}``     one agent's mailbox: its inbox, and the signals sent to it
- ``{team:<team>}``     one team's agents, task specs and states, queues and leases
- ``{sess:<session>}``  one team session
- ``{conflict:<id>}``   one conflict
- ``{agent:<agent>}``   one agent's collaboration state, and the teams it is
                        registered in

The event stream and the small cross-group indexes (``teams``, ``sessions``,
``conflicts``, ``wm:agents``) have no tag. On a single server each script is atomic as a
whole. Under Cluster a script writes only its own slot, and its event and index writes
follow in a second call (``memory.scripts``); the event stream is then split into
``EVENT_SHARDS`` streams (``{events:<n>}``) spread over the masters, and a change's event
goes to the shard its slot picks, so one group's events keep their order.
"""

from __future__ import annotations

from zlib import crc32

# The parts of a team's keys (``team``) and of a session's (``session``).
TEAM_PARTS = frozenset(
    {
        "agents",
        "heartbeats",
        "spec",
        "state",
        "completed",
        "dead",
        "types",
        "fence",
        "finished",
        "seq",
        "queue_changes",
        "series",
        "series_leaving",
        "totals",
        "timings_agents",
    }
)
SESSION_PARTS = frozenset({"meta", "agents", "context"})

# Under Redis Cluster: how many streams the event stream is split into.
EVENT_SHARDS = 8
# Under Redis Cluster: how many hash slots staged patterns are spread over, by id, so
# that no one master takes every staging. Each shard has the same indexes; listings
# merge them.
PATTERN_SHARDS = 8


class PatternShard:
    """One hash slot's staged patterns: their records and decisions, and its indexes."""

    def __init__(self, prefix: str, tag: str) -> None:
        self.tag = f"{prefix}{{{tag}}}"
        self.patterns_staged = f"{self.tag}:staged"
        # The same members as patterns_staged, scored by confidence and by staging time.
        self.patterns_by_confidence = f"{self.tag}:by_confidence"
        self.patterns_by_staged_at = f"{self.tag}:by_staged_at"
        # Patterns that expired undecided: counts per minute of their expiry, and a log
        # of the latest (beside the index, in the shard's hash slot).
        self.patterns_expired_per_minute = f"{self.tag}:expired:per_minute"
        self.patterns_expired_log = f"{self.tag}:expired:log"
        # Per-team orderings of the same patterns, by expiry, confidence and staging
        # time (members ``memory.formats.team_member``); each pattern's team entry by id
        # (``memory.formats.team_entry``); and the expired ones' counts per team and
        # minute (fields ``memory.formats.team_minute``), with those fields by minute.
        self.patterns_team_expiry = f"{self.tag}:by_team:expiry"
        self.patterns_team_confidence = f"{self.tag}:by_team:confidence"
        self.patterns_team_staged_at = f"{self.tag}:by_team:staged_at"
        self.patterns_team_of = f"{self.tag}:staged:team_of"
        self.patterns_expired_team_minute = f"{self.tag}:expired:team_minute"
        self.patterns_expired_team_fields = f"{self.tag}:expired:team_minute:fields"
        # Series of staged, promoted and rejected patterns by team (fields
        # ``memory.formats.team_series``), their fields by when they leave, and the
        # all-time totals of every kind by team (``memory.formats.team_total``).
        self.patterns_series = f"{self.tag}:series"
        self.patterns_series_leaving = f"{self.tag}:series:leaving"
        self.patterns_totals = f"{self.tag}:series:totals"

    def pattern(self, pattern_id: str) -> str:
        return f"{self.tag}:p:{pattern_id}"

    def pattern_decision(self, pattern_id: str) -> str:
        return f"{self.tag}:decided:{pattern_id}"


class KeySchema:
    """Builds key names under one prefix."""

    def __init__(self, prefix: str = "empathy:", pattern_shards: int = 1) -> None:
        """``pattern_shards``: 1 on one server, ``PATTERN_SHARDS`` under Cluster."""
        self.prefix = prefix
        self.events = f"{prefix}events"
        self.event_shards = tuple(f"{prefix}{{events:{n}}}" for n in range(EVENT_SHARDS))
        self.teams = f"{prefix}teams"
        self.sessions = f"{prefix}sessions"
        self.conflicts = f"{prefix}conflicts"
        self.working_agents = f"{prefix}wm:agents"
        tags = (
            ["patterns"]
            if pattern_shards == 1
            else [f"patterns:{n}" for n in range(pattern_shards)]
        )
        self.pattern_shards = tuple(PatternShard(prefix, tag) for tag in tags)
        self.signals_recent = f"{prefix}{{signals}}:recent"
        self.signals_broadcast = f"{prefix}{{signals}}:broadcast"
        self.signals_rate = f"{prefix}{{signals}}:per_minute"
        # Signals sent per team and minute (``memory.formats.team_minute``), and
        # those fields by minute, so that old ones can leave.
        self.signals_team_rate = f"{prefix}{{signals}}:per_minute:team"
        self.signals_team_minutes = f"{prefix}{{signals}}:per_minute:team:minutes"
        # All-time counts of signals sent, by team (``memory.formats.team_total``).
        self.signals_team_totals = f"{prefix}{{signals}}:totals:team"
        # The dashboards' bridges, in one hash slot: where the stream has been announced
        # up to, which bridge leads (holder and token), and its fencing tokens.
        self.bridge_cursor = f"{prefix}{{bridge}}:last_id"
        self.bridge_lead = f"{prefix}{{bridge}}:lead"
        self.bridge_fence = f"{prefix}{{bridge}}:fence"

    def families(self) -> dict[str, str]:
        """Every key this schema builds, as Redis glob patterns by family (for ACL
        rules): the tagged groups with ``*`` for their variable parts."""
        p = self.prefix
        return {
            "events": self.events,
            "event shards": f"{p}{{events:*",
            "teams index": self.teams,
            "sessions index": self.sessions,
            "conflicts index": self.conflicts,
            "working agents index": self.working_agents,
            "bridges": f"{p}{{bridge}}:*",
            "working memory": f"{p}{{wm:*",
            # (``{patterns}`` on one server, ``{patterns:<n>}`` under Cluster)
            "staged patterns": f"{p}{{patterns*}}:p:*",
            "pattern indexes": f"{p}{{patterns*}}:[sbe]*",  # staged*, by_*, expired:*
            "pattern decisions": f"{p}{{patterns*}}:decided:*",
            "signals": f"{p}{{signals}}:*",
            "mailboxes": f"{p}{{sig:*",
            "teams": f"{p}{{team:*",
            "sessions": f"{p}{{sess:*",
            "conflicts": f"{p}{{conflict:*",
            "agent state": f"{p}{{agent:*",  # collaboration state, registered teams
        }

    # working memory
    def working(self, agent_id: str, key: str) -> str:
        return f"{self.prefix}{{wm:{agent_id}}}:k:{key}"

    def working_index(self, agent_id: str) -> str:
        return f"{self.prefix}{{wm:{agent_id}}}:index"

    # an agent's own limits (memory/limits.py)
    def runs(self, agent_id: str) -> str:
        """How many runs an agent (a wizard) has started in the current window."""
        return f"{self.prefix}{{wm:{agent_id}}}:runs"

    def suspended(self, agent_id: str) -> str:
        """Present while an agent's runs are suspended (``memory.limits.suspend``)."""
        return f"{self.prefix}{{wm:{agent_id}}}:suspended"

    def slots(self, agent_id: str, pool: str) -> str:
        """The slots an agent holds in one capped pool, by deadline."""
        return f"{self.prefix}{{wm:{agent_id}}}:slots:{pool}"

    # patterns
    def pattern_shard(self, pattern_id: str) -> PatternShard:
        """The shard that holds ``pattern_id`` (the only one on one server)."""
        shards = self.pattern_shards
        return shards[crc32(pattern_id.encode()) % len(shards)] if len(shards) > 1 else shards[0]

    def pattern(self, pattern_id: str) -> str:
        return self.pattern_shard(pattern_id).pattern(pattern_id)

    def pattern_decision(self, pattern_id: str) -> str:
        return self.pattern_shard(pattern_id).pattern_decision(pattern_id)

    # signals
    def signal(self, token: str, mailbox: str | None = None) -> str:
        """A signal's record: in the mailbox of the agent it was sent to, or with the
        shared signals (a broadcast's, a session's; ``mailbox`` None)."""
        if mailbox is None:
            return f"{self.prefix}{{signals}}:s:{token}"
        return f"{self.prefix}{{sig:{mailbox}}}:s:{token}"

    def signal_inbox(self, agent_id: str) -> str:
        return f"{self.prefix}{{sig:{agent_id}}}:inbox"

    def signal_seen(self, agent_id: str) -> str:
        return f"{self.prefix}{{signals}}:seen:{agent_id}"

    def signal_cursor(self, agent_id: str) -> str:
        return f"{self.prefix}{{signals}}:cursor:{agent_id}"

    def session_signals(self, session_id: str) -> str:
        return f"{self.prefix}{{signals}}:session:{session_id}"

    # teams and tasks
    def team(self, team_id: str, part: str) -> str:
        """One of a team's keys: ``agents``, ``heartbeats``, ``spec``, ``state``,
        ``completed``, ``dead``, ``types``, ``fence``, ``finished``, ``seq``,
        ``queue_changes``, ``series`` and ``series_leaving`` (its counts by minute and
        hour, ``memory.series``), ``totals`` (its all-time counts) or
        ``timings_agents`` (the agents with timings, by last activity)."""
        if part not in TEAM_PARTS:
            raise ValueError(f"{part!r} is not a part of a team's keys")
        return f"{self.prefix}{{team:{team_id}}}:{part}"

    def queue(self, team_id: str, task_type: str) -> str:
        return f"{self.prefix}{{team:{team_id}}}:queue:{task_type}"

    def leases(self, team_id: str, task_type: str) -> str:
        return f"{self.prefix}{{team:{team_id}}}:leases:{task_type}"

    def waiting(self, team_id: str, task_type: str) -> str:
        """The pending tasks of a type by when they last became pending (server ms)."""
        return f"{self.prefix}{{team:{team_id}}}:waiting:{task_type}"

    def type_timings(self, team_id: str, task_type: str) -> str:
        """How long a type's tasks took from claim to completion (``memory.timings``)."""
        return f"{self.prefix}{{team:{team_id}}}:timings:type:{task_type}"

    def agent_timings(self, team_id: str, agent_id: str) -> str:
        """How long an agent's tasks in a team took, and how many it failed."""
        return f"{self.prefix}{{team:{team_id}}}:timings:agent:{agent_id}"

    def result(self, team_id: str, task_id: str) -> str:
        return f"{self.prefix}{{team:{team_id}}}:result:{task_id}"

    def claim_request(self, team_id: str, request_id: str) -> str:
        """What one claim request got (``<task id>\\t<token>``), for as long as its lease."""
        return f"{self.prefix}{{team:{team_id}}}:claim:{request_id}"

    # sessions, conflicts, collaboration state
    def session(self, session_id: str, part: str) -> str:
        """One of a session's keys: ``meta``, ``agents`` or ``context``."""
        if part not in SESSION_PARTS:
            raise ValueError(f"{part!r} is not a part of a session's keys")
        return f"{self.prefix}{{sess:{session_id}}}:{part}"

    def conflict(self, conflict_id: str) -> str:
        return f"{self.prefix}{{conflict:{conflict_id}}}"

    def collaboration(self, user_id: str) -> str:
        return f"{self.prefix}{{agent:{user_id}}}:collaboration"

    def agent_teams(self, agent_id: str) -> str:
        """The teams an agent is registered in (a set): the reverse of the teams'
        ``agents``, written by the same scripts."""
        return f"{self.prefix}{{agent:{agent_id}}}:teams"
