"""An agent's own limits in Redis: slots it may hold at once, shared by every process
that acts for it."""

from __future__ import annotations

import pytest

from memory import AccessDenied, AccessTier, Caller, InvalidValue, Suspended
from memory.limits import count_run, release_slot, suspend, take_slot

ALICE = Caller("alice", AccessTier.OBSERVER)
BOB = Caller("bob", AccessTier.OBSERVER)


def test_slots_are_capped_per_agent_and_pool(memory):
    assert take_slot(memory, ALICE, "dashboards", "s1", 2, 60)
    assert take_slot(memory, ALICE, "dashboards", "s2", 2, 60)

    assert not take_slot(memory, ALICE, "dashboards", "s3", 2, 60)
    assert take_slot(memory, BOB, "dashboards", "s3", 2, 60)  # bob's own pool
    assert take_slot(memory, ALICE, "other", "s3", 2, 60)  # another pool


def test_taking_a_held_slot_again_renews_it_even_at_the_cap(memory):
    take_slot(memory, ALICE, "dashboards", "s1", 1, 60)
    before = memory.client.zscore(memory.keys.slots("alice", "dashboards"), "s1")

    assert take_slot(memory, ALICE, "dashboards", "s1", 1, 120)
    assert memory.client.zscore(memory.keys.slots("alice", "dashboards"), "s1") > before


def test_a_released_slot_makes_room_at_once(memory):
    take_slot(memory, ALICE, "dashboards", "s1", 1, 60)
    release_slot(memory, ALICE, "dashboards", "s1")
    release_slot(memory, ALICE, "dashboards", "never-held")

    assert take_slot(memory, ALICE, "dashboards", "s2", 1, 60)


def test_a_slot_not_renewed_frees_itself_at_its_deadline(memory):
    take_slot(memory, ALICE, "dashboards", "s1", 1, 0.05)
    key = memory.keys.slots("alice", "dashboards")
    deadline = memory.client.zscore(key, "s1")
    while memory.server_time_ms() <= deadline:
        pass

    assert take_slot(memory, ALICE, "dashboards", "s2", 1, 60)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("dashboards", "s1", 0, 60), "cap"),
        (("dashboards", "s1", True, 60), "cap"),
        (("dashboards", "s1", 1, 0), "ttl"),
        (("a/b", "s1", 1, 60), "pool"),
        (("dashboards", " ", 1, 60), "slot"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_written(memory, args, message):
    with pytest.raises(InvalidValue, match=message):
        take_slot(memory, ALICE, *args)
    assert memory.client.keys("*slots*") == []


def test_a_suspended_caller_counts_nothing_until_its_suspension_ends(memory):
    steward = Caller("server", AccessTier.STEWARD)
    count_run(memory, ALICE, 5)
    suspend(memory, steward, "alice", 30)

    with pytest.raises(Suspended, match="alice is suspended"):
        count_run(memory, ALICE, 5)
    count_run(memory, BOB, 5)  # others count as before

    assert memory.client.get(memory.keys.runs("alice")) == b"1"  # not the refused run
    assert 0 < memory.client.pttl(memory.keys.suspended("alice")) <= 30_000
    memory.client.delete(memory.keys.suspended("alice"))  # as when it expires
    count_run(memory, ALICE, 5)
    assert memory.client.get(memory.keys.runs("alice")) == b"2"


def test_only_a_steward_suspends(memory):
    with pytest.raises(AccessDenied):
        suspend(memory, Caller("eve", AccessTier.VALIDATOR), "alice", 30)
    with pytest.raises(InvalidValue):
        suspend(memory, Caller("server", AccessTier.STEWARD), "a/b", 30)

    assert not memory.client.exists(memory.keys.suspended("alice"))
