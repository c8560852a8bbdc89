"""An agent's own limits in Redis: slots it may hold at once, shared by every process
that acts for it."""

from __future__ import annotations

import pytest

from memory import AccessTier, Caller, InvalidValue
from memory.limits import release_slot, take_slot

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
