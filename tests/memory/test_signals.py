from __future__ import annotations

import time

import pytest

from memory import AccessDenied, AccessTier, EmpathyOS, InvalidValue, TTLStrategy
from memory.signals import get_signal, list_signals, signals_after
from memory.tiers import Caller

READER = Caller("reader", AccessTier.OBSERVER)  # the reads below read as an observer


@pytest.fixture
def team(memory):
    def make(name: str, tier: AccessTier = AccessTier.CONTRIBUTOR) -> EmpathyOS:
        return EmpathyOS(name, short_term_memory=memory, access_tier=tier)

    return make


def test_targeted_signal_reaches_its_target_only(team):
    team("security").send_signal("review_complete", {"passed": True}, target_agent="lead")
    [signal] = team("lead").receive_signals("review_complete")
    assert signal["sender"] == "security"
    assert signal["target"] == "lead"
    assert signal["signal_type"] == "review_complete"
    assert signal["data"] == {"passed": True}
    assert set(signal) >= {"id", "sender", "target", "signal_type", "data", "timestamp"}
    assert team("bystander").receive_signals() == []


def test_two_identical_signals_are_two_signals(team):
    sender = team("security")
    sender.send_signal("progress", {"pct": 50}, target_agent="lead")
    sender.send_signal("progress", {"pct": 50}, target_agent="lead")
    received = team("lead").receive_signals("progress")
    assert len(received) == 2
    assert received[0]["id"] != received[1]["id"]


def test_broadcast_reaches_every_agent_but_the_sender(team):
    team("lead").send_signal("status_update", {"phase": "testing"})
    for name in ("a", "b", "c"):
        assert [s["data"] for s in team(name).receive_signals()] == [{"phase": "testing"}]
    assert team("lead").receive_signals() == []


def test_receiving_consumes(team):
    team("a").send_signal("ping", 1, target_agent="b")
    team("a").send_signal("ping", 2)
    assert len(team("b").receive_signals()) == 2
    assert team("b").receive_signals() == []


def test_type_filter_applies_to_broadcasts_and_leaves_others_waiting(team):
    sender = team("sender")
    sender.send_signal("wanted", 1)
    sender.send_signal("other", 2)
    sender.send_signal("wanted", 3, target_agent="me")
    sender.send_signal("other", 4, target_agent="me")
    me = team("me")
    assert sorted(s["data"] for s in me.receive_signals("wanted")) == [1, 3]
    assert sorted(s["data"] for s in me.receive_signals()) == [2, 4]


def test_agent_ids_are_never_patterns(team):
    team("x").send_signal("t", "for star", target_agent="*")
    team("x").send_signal("t", "for a?", target_agent="a?")
    assert team("a1").receive_signals() == []
    assert [s["data"] for s in team("*").receive_signals()] == ["for star"]
    assert [s["data"] for s in team("a?").receive_signals()] == ["for a?"]


def test_list_signals_does_not_consume_and_filters(memory, team):
    team("a").send_signal("one", 1, target_agent="b")
    team("a").send_signal("two", 2)
    team("c").send_signal("one", 3, target_agent="a")
    assert [s["data"] for s in list_signals(memory, READER)] == [3, 2, 1]
    assert [s["data"] for s in list_signals(memory, READER, signal_type="one")] == [3, 1]
    assert [s["data"] for s in list_signals(memory, READER, sender="a")] == [2, 1]
    assert [s["data"] for s in list_signals(memory, READER, target="*")] == [2]
    assert len(team("b").receive_signals()) == 2


def test_list_signals_pages(memory, team):
    for i in range(5):
        team("a").send_signal("n", i)
    first = list_signals(memory, READER, limit=2)
    second = list_signals(memory, READER, limit=2, cursor=first.next_cursor)
    third = list_signals(memory, READER, limit=2, cursor=second.next_cursor)
    assert [s["data"] for s in first + second + third] == [4, 3, 2, 1, 0]
    assert third.next_cursor is None


def test_signals_expire_after_the_coordination_ttl(make_memory):
    memory = make_memory(ttls={TTLStrategy.COORDINATION: 0.3})
    EmpathyOS("a", short_term_memory=memory).send_signal("t", 1, target_agent="b")
    EmpathyOS("a", short_term_memory=memory).send_signal("t", 2)
    time.sleep(0.45)
    assert EmpathyOS("b", short_term_memory=memory).receive_signals() == []
    assert list(list_signals(memory, READER)) == []


def test_observers_may_receive_but_not_send(memory, team):
    team("a").send_signal("t", 1, target_agent="monitor")
    monitor = team("monitor", AccessTier.OBSERVER)
    assert len(monitor.receive_signals()) == 1
    with pytest.raises(AccessDenied):
        monitor.send_signal("t", 2)


def test_mixed_filtered_and_unfiltered_receives_deliver_each_broadcast_once(team):
    sender, me = team("sender"), team("me")
    delivered = []
    for round_number in range(3):
        for kind in ("a", "b", "c"):
            sender.send_signal(kind, f"{kind}{round_number}")
        delivered += me.receive_signals("b")
        if round_number != 1:
            delivered += me.receive_signals()
    delivered += me.receive_signals()
    data = [s["data"] for s in delivered]
    assert sorted(data) == sorted(f"{k}{n}" for n in range(3) for k in "abc")
    assert len(data) == len(set(data))


def test_signals_after_an_id_catch_up_in_order_exactly_once(memory, team):
    for i in range(5):
        team("a").send_signal("n", i)
    first = signals_after(memory, READER, None, limit=2)
    rest = signals_after(memory, READER, first.next_cursor)
    assert [s["data"] for s in first + rest] == [0, 1, 2, 3, 4]
    assert signals_after(memory, READER, rest.next_cursor) == []
    nothing = signals_after(memory, READER, first.next_cursor, sender="nobody")
    assert nothing == [] and nothing.next_cursor == rest.next_cursor


def test_one_signal_is_read_by_its_id_until_it_expires(memory):
    sent = EmpathyOS("alice", memory).send_signal("ping", {"n": 1}, target_agent="bob")

    assert get_signal(memory, READER, sent["id"]) == sent
    memory.client.delete(memory.keys.signal(sent["id"].rpartition("-")[2], "bob"))
    assert get_signal(memory, READER, sent["id"]) is None


@pytest.mark.parametrize("bad", ["", "x", "1-2-3", f"{0:013d}-{0:012d}-{0:016x}/", None])
def test_a_signal_id_of_the_wrong_form_is_refused(memory, bad):
    with pytest.raises(InvalidValue):
        get_signal(memory, READER, bad)


def test_an_id_naming_another_signals_record_finds_nothing(memory):
    sent = EmpathyOS("alice", memory).send_signal("ping", {})
    forged = f"{0:013d}-{0:012d}-" + sent["id"].rpartition("-")[2]

    assert get_signal(memory, READER, forged) is None
