"""One leading bridge among several: the lead is a lease with a fencing token that grows
with each new leader, and only the leader's token saves the stream cursor."""

from __future__ import annotations

import time

from memory import leadership


def until_no_leader(memory, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while leadership.leader(memory) is not None:
        assert time.monotonic() < deadline, "the lease did not run out"
        time.sleep(0.01)


def test_one_holder_leads_and_renewing_keeps_its_token(memory):
    token = leadership.lead(memory, "host:1", 30)

    assert token is not None
    assert leadership.lead(memory, "host:2", 30) is None
    assert leadership.lead(memory, "host:1", 30) == token
    leader = leadership.leader(memory)
    assert (leader.holder, leader.token) == ("host:1", token)
    assert 0 < leader.ttl_ms <= 30_000


def test_when_the_lease_runs_out_another_leads_with_a_larger_token(memory):
    first = leadership.lead(memory, "host:1", 0.05)
    until_no_leader(memory)

    second = leadership.lead(memory, "host:2", 30)

    assert second is not None and int(second) > int(first)
    assert leadership.lead(memory, "host:1", 30) is None


def test_only_the_leaders_token_saves_the_cursor(memory):
    stale = leadership.lead(memory, "host:1", 0.05)
    assert leadership.save_cursor(memory, stale, "1-0")
    until_no_leader(memory)
    token = leadership.lead(memory, "host:2", 30)

    assert not leadership.save_cursor(memory, stale, "0-1")  # a stalled old leader
    assert memory.bridge_cursor() == "1-0"
    assert leadership.save_cursor(memory, token, "2-0")
    assert memory.bridge_cursor() == "2-0"


def test_a_release_hands_the_lead_on_at_once_and_a_stale_one_does_nothing(memory):
    stale = leadership.lead(memory, "host:1", 0.05)
    until_no_leader(memory)
    token = leadership.lead(memory, "host:2", 30)

    leadership.release(memory, stale)
    assert leadership.leader(memory).holder == "host:2"
    leadership.release(memory, token)
    assert leadership.leader(memory) is None
    assert leadership.lead(memory, "host:3", 30) is not None
