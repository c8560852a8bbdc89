"""Redis ACL users per tier (``memory.acl``), on a real redis-server of their own: an
observer's user reads and cannot write, scripts included; a contributor's user works
but cannot write pattern decisions, even by hand; the channel layer's user and the
memory's users cannot reach each other's keys."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator

import pytest
import redis

from memory import (
    AccessDenied,
    AccessTier,
    AgentCoordinator,
    AgentTask,
    EmpathyOS,
    RedisShortTermMemory,
    StagedPattern,
    TeamSession,
)
from memory.acl import USER_PREFIX, setuser_commands
from memory.keys import PATTERN_SHARDS, KeySchema
from memory.series import series
from memory.summaries import team_summaries
from memory.tiers import Caller
from tests.redis_server import RedisServer, start_redis_server

READER = Caller("reader", AccessTier.OBSERVER)


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    started = start_redis_server([])
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def users(server) -> dict[str, str]:
    """Each user's URL, on a Redis seeded by the server's own (default) user."""
    admin = redis.Redis.from_url(server.url)
    admin.flushall()
    seeded = RedisShortTermMemory(url=server.url)
    seeded.load_library()
    worker = EmpathyOS("worker", seeded)
    worker.stash("draft", {"step": 1})
    worker.stage_pattern(StagedPattern("p-1", "worker", "fix", "Guard", "d"))
    AgentCoordinator(seeded, "alpha").add_task(AgentTask("t-1", "review"))
    seeded.close()
    urls = {}
    for user, password, arguments in setuser_commands(KeySchema()):
        admin.execute_command("ACL", "SETUSER", *arguments)
        urls[user.removeprefix(USER_PREFIX)] = server.url.replace(
            "redis://", f"redis://{user}:{password}@"
        )
    return urls


def memory_as(url: str) -> RedisShortTermMemory:
    return RedisShortTermMemory(url=url)


def test_an_observers_user_reads_everything(users):
    memory = memory_as(users["observer"])
    reader = EmpathyOS("reader", memory, AccessTier.OBSERVER)

    assert reader.retrieve("draft", agent_id="worker") == {"step": 1}
    assert [p.pattern_id for p in reader.get_staged_patterns()] == ["p-1"]
    team = AgentCoordinator(memory, "alpha", access_tier=AccessTier.OBSERVER)
    assert team.get_task("t-1").status == "pending"
    assert list(memory.read_events(count=5))
    # The reads that are functions (FCALL_RO).
    [alpha] = team_summaries(memory, READER, ["alpha"]).values()
    assert alpha["pending_by_type"] == {"review": 1}
    added = series(memory, READER, "tasks_added", teams=["alpha"], range="1h")
    assert sum(n for _, n in added) == 1


@pytest.mark.parametrize(
    "write",
    [
        lambda m: EmpathyOS("x", m, AccessTier.STEWARD).stash("k", 1),  # a forged tier
        lambda m: AgentCoordinator(m, "alpha", access_tier=AccessTier.STEWARD).claim_task(
            "x", "review"
        ),
        lambda m: EmpathyOS("x", m, AccessTier.STEWARD).receive_signals(),  # it consumes
        lambda m: m.client.set(m.keys.working("worker", "draft"), b"forged"),
        lambda m: m.client.xadd(m.keys.events, {"type": "forged"}),
    ],
)
def test_an_observers_user_cannot_write_through_the_library_or_by_hand(users, write):
    memory = memory_as(users["observer"])

    with pytest.raises((AccessDenied, redis.exceptions.NoPermissionError)):
        write(memory)
    assert EmpathyOS("r", memory, AccessTier.OBSERVER).retrieve("draft", "worker") == {"step": 1}


def test_a_contributors_user_does_a_contributors_work(users):
    memory = memory_as(users["contributor"])
    agent = EmpathyOS("agent", memory)

    agent.stash("k", 1)
    agent.send_signal("ping", {}, "worker")
    agent.stage_pattern(StagedPattern("p-2", "agent", "fix", "Mine", "d"))
    team = AgentCoordinator(memory, "alpha", actor="agent")
    task = team.claim_task("agent", "review")
    team.complete_task(task.task_id, 1)
    TeamSession(memory, "s-1", actor="agent").share("plan", 1)
    assert agent.retrieve("k") == 1


def test_a_contributors_user_cannot_write_a_pattern_decision(users):
    memory = memory_as(users["contributor"])
    decided = memory.keys.pattern_decision("p-1")

    with pytest.raises(AccessDenied, match="refused it for this Redis user"):
        EmpathyOS("x", memory, AccessTier.VALIDATOR).promote_pattern("p-1")  # a forged tier
    with pytest.raises(redis.exceptions.NoPermissionError):
        memory.client.set(decided, b'{"decision": "promoted"}')
    staged = EmpathyOS("r", memory, AccessTier.OBSERVER).get_staged_patterns()
    assert [p.pattern_id for p in staged] == ["p-1"]  # still staged, undecided
    assert memory.client.exists(decided) == 0


def test_a_validators_user_decides(users):
    memory = memory_as(users["validator"])

    assert (
        EmpathyOS("judge", memory, AccessTier.VALIDATOR).promote_pattern("p-1").pattern_id == "p-1"
    )


def test_memory_users_cannot_reach_the_channel_layers_keys_and_back(users):
    for tier in ("observer", "contributor", "validator", "steward", "server"):
        client = redis.Redis.from_url(users[tier])
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.zadd("asgi:group:dashboard", {"specific.forged!": 1})
    channels = redis.Redis.from_url(users["channels"])
    channels.zadd("asgi:group:dashboard", {"specific.real!": 1})
    with pytest.raises(redis.exceptions.NoPermissionError):
        channels.get(KeySchema().working("worker", "draft"))


def test_every_key_the_schema_builds_is_in_exactly_one_family():
    keys = KeySchema("t:")
    cluster = KeySchema("t:", PATTERN_SHARDS)  # the staged patterns' keys under Cluster
    built = [
        keys.events, keys.teams, keys.sessions, keys.conflicts, keys.working_agents,
        keys.bridge_cursor, keys.bridge_lead, keys.bridge_fence,
        *(index for shard in (*keys.pattern_shards, *cluster.pattern_shards) for index in (
            shard.patterns_staged, shard.patterns_by_confidence, shard.patterns_by_staged_at,
            shard.patterns_expired_per_minute, shard.patterns_expired_log, shard.pattern("p"),
            shard.pattern_decision("p"), shard.patterns_team_expiry, shard.patterns_team_confidence,
            shard.patterns_team_staged_at, shard.patterns_team_of,
            shard.patterns_expired_team_minute, shard.patterns_expired_team_fields,
            shard.patterns_series, shard.patterns_series_leaving, shard.patterns_totals,
        )),
        keys.signals_recent, keys.signals_broadcast, keys.signals_rate,
        keys.signals_team_rate, keys.signals_team_minutes, keys.signals_team_totals,
        keys.agent_teams("a"), keys.waiting("t", "x"), keys.type_timings("t", "x"),
        keys.agent_timings("t", "a"), *(keys.team("t", part) for part in (
            "series", "series_leaving", "totals", "timings_agents")),
        keys.working("a", "k"), keys.working_index("a"), keys.runs("a"), keys.suspended("a"), keys.slots("a", "p"),
        keys.pattern("p"), keys.pattern_decision("p"), keys.signal("t"), keys.signal_inbox("a"),
        keys.signal_seen("a"), keys.signal_cursor("a"), keys.session_signals("s"),
        keys.team("t", "spec"), keys.queue("t", "x"), keys.leases("t", "x"), keys.result("t", "i"),
        keys.claim_request("t", "r"), keys.session("s", "meta"), keys.conflict("c"),
        keys.collaboration("a"),
    ]  # fmt: skip
    patterns = keys.families().values()
    for key in built:
        matching = [p for p in patterns if fnmatch.fnmatchcase(key, p)]
        assert len(matching) == 1, (key, matching)
