from __future__ import annotations

import time

import pytest

from memory import (
    AccessDenied,
    AccessTier,
    AgentCoordinator,
    AgentTask,
    InvalidValue,
    LeaseLost,
    NotFound,
    TTLStrategy,
)
from memory.registry import list_teams, team_page
from memory.summaries import team_summaries
from memory.tiers import Caller

READER = Caller("reader", AccessTier.OBSERVER)  # the reads below read as an observer


def task(task_id: str, priority: int = 5, task_type: str = "review", **fields) -> AgentTask:
    fields.setdefault("description", "d")
    return AgentTask(task_id=task_id, task_type=task_type, priority=priority, **fields)


@pytest.fixture
def coordinator(memory):
    return AgentCoordinator(memory, team_id="code_review_team")


def test_claims_highest_priority_first_then_fifo(coordinator):
    for task_id, priority in [("low", 2), ("high1", 9), ("mid", 5), ("high2", 9)]:
        coordinator.add_task(task(task_id, priority))
    claimed = [coordinator.claim_task("worker", "review").task_id for _ in range(4)]
    assert claimed == ["high1", "high2", "mid", "low"]
    assert coordinator.claim_task("worker", "review") is None


def test_claims_only_the_requested_type(coordinator):
    coordinator.add_task(task("sec", task_type="security_review"))
    assert coordinator.claim_task("perf_agent", "performance_review") is None
    assert coordinator.claim_task("sec_agent", "security_review").task_id == "sec"


def test_add_task_is_idempotent(coordinator):
    assert coordinator.add_task(task("t1", 3)) is True
    assert coordinator.add_task(task("t1", 9, description="changed")) is False
    claimed = coordinator.claim_task("w", "review")
    assert (claimed.priority, claimed.description) == (3, "d")
    assert coordinator.claim_task("w", "review") is None


def test_claim_carries_lease_and_increasing_fencing_tokens(coordinator):
    coordinator.add_task(task("a"))
    coordinator.add_task(task("b"))
    first = coordinator.claim_task("w1", "review")
    second = coordinator.claim_task("w2", "review")
    assert first.status == "claimed" and first.claimed_by == "w1" and first.attempts == 1
    assert second.fencing_token > first.fencing_token
    assert first.lease_expires_ms > 0


def test_complete_and_aggregate(coordinator):
    coordinator.register_agent("security_agent", ["security_review"])
    coordinator.add_task(task("review_001", 8, task_type="security_review"))
    claimed = coordinator.claim_task("security_agent", "security_review")
    coordinator.complete_task(claimed.task_id, {"vulnerabilities": 0})
    results = coordinator.aggregate_results()
    assert results["total_completed"] == 1
    assert results["by_status"] == {"pending": 0, "claimed": 0, "completed": 1, "dead": 0}
    assert results["results"] == [
        {"task_id": "review_001", "task_type": "security_review", "result": {"vulnerabilities": 0}}
    ]
    assert coordinator.get_task("review_001").status == "completed"


def test_only_the_lease_holder_completes(memory, coordinator):
    coordinator.add_task(task("t"))
    claimed = coordinator.claim_task("w1", "review")
    other = AgentCoordinator(memory, "code_review_team")
    with pytest.raises(LeaseLost):
        other.complete_task("t", "mine")
    # The token, which observers can see, is not enough: the caller must be the holder.
    with pytest.raises(LeaseLost, match="may not finish"):
        other.complete_task("t", "mine", fencing_token=claimed.fencing_token)
    holder = AgentCoordinator(memory, "code_review_team", actor="w1")
    with pytest.raises(LeaseLost, match="may not finish"):
        holder.complete_task("t", "mine", fencing_token=claimed.fencing_token + 1)
    holder.complete_task("t", "theirs", fencing_token=claimed.fencing_token)
    assert coordinator.get_task("t").result == "theirs"
    with pytest.raises(LeaseLost, match="completed"):
        coordinator.complete_task("t", "again", fencing_token=claimed.fencing_token)


def test_expired_lease_returns_task_and_fences_late_completion(memory):
    coordinator = AgentCoordinator(memory, "team", lease_seconds=0.2, max_attempts=3)
    coordinator.add_task(task("t"))
    slow = coordinator.claim_task("slow", "review")
    time.sleep(0.3)
    fast = coordinator.claim_task("fast", "review")
    assert fast.task_id == "t" and fast.attempts == 2
    with pytest.raises(LeaseLost):
        coordinator.complete_task("t", "late", fencing_token=slow.fencing_token)
    coordinator.complete_task("t", "on time")
    assert coordinator.get_task("t").result == "on time"


def test_completion_after_the_deadline_is_refused_even_before_reclaim(memory):
    coordinator = AgentCoordinator(memory, "team", lease_seconds=0.2)
    coordinator.add_task(task("t"))
    coordinator.claim_task("slow", "review")
    time.sleep(0.3)
    with pytest.raises(LeaseLost, match="ran out"):
        coordinator.complete_task("t", "late")


def test_dead_letter_after_max_attempts(memory):
    coordinator = AgentCoordinator(memory, "team", lease_seconds=0.1, max_attempts=2)
    coordinator.add_task(task("t"))
    coordinator.claim_task("w", "review")
    time.sleep(0.15)
    assert coordinator.claim_task("w", "review").attempts == 2
    time.sleep(0.15)
    assert coordinator.claim_task("w", "review") is None
    assert coordinator.counts()["dead"] == 1
    [dead] = coordinator.list_tasks("dead")
    assert (dead.task_id, dead.status, dead.attempts) == ("t", "dead", 2)


def test_reap_expired_handles_every_type(memory):
    coordinator = AgentCoordinator(memory, "team", lease_seconds=0.1)
    coordinator.add_task(task("a", task_type="x"))
    coordinator.add_task(task("b", task_type="y"))
    coordinator.claim_task("w", "x")
    coordinator.claim_task("w", "y")
    time.sleep(0.15)
    assert coordinator.reap_expired() == 2
    assert coordinator.counts()["pending_by_type"] == {"x": 1, "y": 1}


def test_fail_task_retries_then_dead_letters(memory):
    coordinator = AgentCoordinator(memory, "team", max_attempts=2)
    coordinator.add_task(task("t"))
    coordinator.claim_task("w", "review")
    assert coordinator.fail_task("t", "boom") == "pending"
    coordinator.claim_task("w", "review")
    assert coordinator.fail_task("t", "boom again") == "dead"
    assert coordinator.get_task("t").result == {"error": "boom again"}


def test_extend_lease(memory):
    coordinator = AgentCoordinator(memory, "team", lease_seconds=0.3)
    coordinator.add_task(task("t"))
    claimed = coordinator.claim_task("w", "review")
    deadline = coordinator.extend_lease("t", lease_seconds=5)
    assert deadline > claimed.lease_expires_ms
    time.sleep(0.4)
    coordinator.complete_task("t", "done")


def test_steward_requeues_and_cancels(memory):
    steward = AgentCoordinator(memory, "team", access_tier=AccessTier.STEWARD, max_attempts=1)
    steward.add_task(task("t"))
    steward.add_task(task("u"))
    steward.claim_task("w", "review")
    steward.fail_task("t", "boom")
    assert steward.counts()["dead"] == 1
    steward.requeue_task("t")
    requeued = steward.get_task("t")
    assert (requeued.status, requeued.attempts) == ("pending", 0)
    steward.cancel_task("u")
    assert steward.get_task("u") is None
    assert [t.task_id for t in steward.list_tasks("pending", "review")] == ["t"]
    with pytest.raises(NotFound):
        steward.cancel_task("nope")


def test_only_stewards_requeue_or_cancel(memory, coordinator):
    coordinator.add_task(task("t"))
    for action in (coordinator.requeue_task, coordinator.cancel_task):
        with pytest.raises(AccessDenied, match="STEWARD"):
            action("t")
    assert coordinator.counts()["pending"] == 1


def test_observers_cannot_queue_or_claim(memory):
    observer = AgentCoordinator(memory, "team", access_tier=AccessTier.OBSERVER)
    with pytest.raises(AccessDenied):
        observer.add_task(task("t"))
    with pytest.raises(AccessDenied):
        observer.claim_task("w", "review")


def test_pending_and_claimed_tasks_never_expire(memory):
    coordinator = AgentCoordinator(memory, "team")
    coordinator.add_task(task("a"))
    coordinator.add_task(task("b"))
    coordinator.claim_task("w", "review")
    team_keys = list(memory.client.scan_iter(match=f"{memory.keys.prefix}{{team:team}}*"))
    # What a claim request got lives as long as its lease, for a retried claim.
    requests = memory.keys.claim_request("team", "").encode()
    kept = [key for key in team_keys if not key.startswith(requests)]
    assert kept and len(kept) < len(team_keys)
    assert all(memory.client.pttl(k) == -1 for k in kept)


def test_results_expire_per_ttl(make_memory):
    memory = make_memory(ttls={TTLStrategy.WORKING_RESULTS: 0.2})
    coordinator = AgentCoordinator(memory, "team")
    coordinator.add_task(task("t"))
    coordinator.claim_task("w", "review")
    coordinator.complete_task("t", {"big": "result"})
    time.sleep(0.3)
    assert coordinator.aggregate_results()["total_completed"] == 0
    assert memory.client.get(memory.keys.result("team", "t")) is None


def test_agents_liveness_from_heartbeats(memory):
    coordinator = AgentCoordinator(memory, "team", alive_seconds=0.3, dead_seconds=0.5)
    coordinator.register_agent("a", ["x"])
    coordinator.register_agent("b", ["y"])
    assert {a.agent_id: a.liveness for a in coordinator.get_agents()} == {
        "a": "alive",
        "b": "alive",
    }
    time.sleep(0.35)
    coordinator.heartbeat("a")
    assert {a.agent_id: a.liveness for a in coordinator.get_agents()} == {"a": "alive", "b": "late"}
    time.sleep(0.2)
    liveness = {a.agent_id: (a.liveness, a.capabilities) for a in coordinator.get_agents()}
    assert liveness == {"a": ("alive", ["x"]), "b": ("dead", ["y"])}
    with pytest.raises(NotFound):
        coordinator.heartbeat("stranger")
    assert list_teams(memory, READER) == ["team"]


def test_listing_tasks_by_state(memory, coordinator):
    for i in range(5):
        coordinator.add_task(task(f"t{i}", priority=i + 1))
    page = coordinator.list_tasks("pending", "review", limit=2)
    assert [t.task_id for t in page] == ["t4", "t3"]
    rest = coordinator.list_tasks("pending", "review", limit=5, cursor=page.next_cursor)
    assert [t.task_id for t in rest] == ["t2", "t1", "t0"]
    assert rest.next_cursor is None
    coordinator.claim_task("w", "review")
    [claimed] = coordinator.list_tasks("claimed")
    assert claimed.claimed_by == "w"
    with pytest.raises(InvalidValue):
        coordinator.list_tasks("pending")


@pytest.mark.parametrize("priority", [0, 11, -1, 5.5, "5", True])
def test_bad_priorities_write_nothing(memory, coordinator, priority):
    with pytest.raises(ValueError, match="priority"):
        coordinator.add_task(task("t", priority=priority))
    assert memory.client.dbsize() == 0


def test_a_claim_reaps_its_own_type_behind_many_expired_leases_of_another(memory):
    coordinator = AgentCoordinator(memory, "team", lease_seconds=60)
    for i in range(250):
        coordinator.add_task(task(f"a{i}", task_type="a"))
    coordinator.add_task(task("b0", task_type="b"))
    for _ in range(250):
        coordinator.claim_task("w", "a")
    coordinator.claim_task("w", "b")
    # Stand in for the clock: every lease's deadline moves into the past.
    for task_type in ("a", "b"):
        leases = memory.keys.leases("team", task_type)
        memory.client.zadd(leases, dict.fromkeys(memory.client.zrange(leases, 0, -1), 0))
    assert coordinator.claim_task("w2", "b").task_id == "b0"
    assert coordinator.reap_expired() == 250
    assert coordinator.counts()["pending_by_type"] == {"a": 250, "b": 0}


def test_teams_page_most_recently_active_first(memory):
    for team_id in ("a", "b", "c"):
        AgentCoordinator(memory, team_id).add_task(task(f"{team_id}-1"))
        time.sleep(0.002)  # activity is scored in ms
    AgentCoordinator(memory, "a").register_agent("w", ["review"])  # a is active again
    first = team_page(memory, READER, limit=2)
    assert (list(first), first.total) == (["a", "c"], 3)
    rest = team_page(memory, READER, limit=2, cursor=first.next_cursor)
    assert (list(rest), rest.next_cursor) == (["b"], None)


def test_a_page_among_some_teams_has_only_those_that_exist_most_recent_first(memory):
    for team_id in ("a", "b", "c", "d"):
        AgentCoordinator(memory, team_id).add_task(task(f"{team_id}-1"))
        time.sleep(0.002)  # activity is scored in ms
    AgentCoordinator(memory, "b").register_agent("w", ["review"])  # b is active again

    first = team_page(memory, READER, limit=2, among=["a", "b", "d", "never"])
    rest = team_page(memory, READER, limit=2, cursor=first.next_cursor, among={"a", "b", "d"})

    assert (list(first), first.total) == (["b", "d"], 3)
    assert (list(rest), rest.next_cursor) == (["a"], None)
    assert (
        list(team_page(memory, READER, among=[])),
        team_page(memory, READER, among=[]).total,
    ) == ([], 0)
    with pytest.raises(InvalidValue):
        team_page(memory, READER, among=["{slot}"])


def test_team_summaries_count_tasks_and_agents_of_many_teams_at_once(memory):
    busy = AgentCoordinator(memory, "busy", alive_seconds=30, max_attempts=1)
    busy.register_agent("fresh", ["review"])
    busy.register_agent("quiet", ["review"])
    busy.register_agent("gone", ["review"])
    now = memory.server_time_ms()
    heartbeats = memory.keys.team("busy", "heartbeats")
    memory.client.zadd(heartbeats, {"quiet": now - 60_000, "gone": now - 400_000})
    for i in range(4):
        busy.add_task(task(f"t{i}", task_type="review" if i < 3 else "triage"))
    busy.claim_task("fresh", "review")
    busy.complete_task("t0", "ok")
    busy.claim_task("fresh", "review")
    busy.fail_task("t1", "boom")
    busy.claim_task("fresh", "review")
    AgentCoordinator(memory, "idle").register_agent("x", [])

    summaries = team_summaries(memory, READER, ["busy", "idle", "unknown"])

    waits = summaries["busy"].pop("waiting_ms")  # the types with a pending task
    assert list(waits) == ["triage"] and waits["triage"] >= 0
    assert summaries["busy"] == {
        "pending": 1,
        "claimed": 1,
        "completed": 1,
        "dead": 1,
        "pending_by_type": {"review": 0, "triage": 1},
        "agents": {"alive": 1, "late": 1, "dead": 1},
    }
    assert summaries["busy"]["agents"] == {
        state: sum(a.liveness == state for a in busy.get_agents())
        for state in ("alive", "late", "dead")
    }
    assert summaries["idle"]["agents"] == {"alive": 1, "late": 0, "dead": 0}
    assert summaries["unknown"]["pending"] == 0
    stats = memory.get_stats()
    assert stats["tasks"] == {"pending": 1, "claimed": 1, "completed": 1, "dead": 1}
    assert stats["agents"] == {"alive": 2, "late": 1, "dead": 1}
    counts = busy.counts()
    assert list(counts.pop("waiting_ms")) == ["triage"]
    assert counts == {k: v for k, v in summaries["busy"].items() if k != "agents"}


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
def test_a_page_of_a_listing_is_two_round_trips(memory, monkeypatch):
    """The set's size and its page in one, the tasks in the other (none is claimed)."""
    team = AgentCoordinator(memory, "alpha")
    for i in range(3):
        team.add_task(AgentTask(f"t{i}", "review"))
    team.fail_task(team.claim_task("a", "review").task_id, "no", retry=False)
    sent = []
    connection = memory.client.connection_pool.connection_class
    real = connection.send_packed_command
    monkeypatch.setattr(
        connection, "send_packed_command", lambda *a, **k: sent.append(1) or real(*a, **k)
    )

    pending = team.list_tasks("pending", "review", limit=1)
    assert (len(sent), pending.total, len(pending)) == (2, 2, 1)
    dead = team.list_tasks("dead")
    assert (len(sent), dead.total, [t.task_id for t in dead]) == (4, 1, ["t0"])


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
def test_the_pending_pages_of_many_types_are_two_round_trips(memory, monkeypatch):
    team = AgentCoordinator(memory, "alpha")
    for task_type in ("fix", "lint", "review"):
        for i in range(3):
            team.add_task(AgentTask(f"{task_type}-{i}", task_type, priority=i + 1))
    sent = []
    connection = memory.client.connection_pool.connection_class
    real = connection.send_packed_command
    monkeypatch.setattr(
        connection, "send_packed_command", lambda *a, **k: sent.append(1) or real(*a, **k)
    )

    pages = team.pending_pages(["fix", "lint", "review"], limit=2, cursors={"lint": "2"})
    assert len(sent) == 2
    for task_type, cursor in (("fix", None), ("lint", "2"), ("review", None)):
        one = team.list_tasks("pending", task_type, limit=2, cursor=cursor)
        got = pages[task_type]
        assert ([t.task_id for t in got], got.next_cursor, got.total) == (
            [t.task_id for t in one],
            one.next_cursor,
            one.total,
        )
    assert pages["lint"].next_cursor is None and len(pages["lint"]) == 1
    assert team.pending_pages([]) == {}
