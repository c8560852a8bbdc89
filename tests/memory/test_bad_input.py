"""Bad input fails before anything is written: each case leaves the database empty."""

from __future__ import annotations

import math

import pytest

from memory import AgentCoordinator, AgentTask, EmpathyOS, StagedPattern, TeamSession
from memory.codec import encode
from memory.exceptions import UnserialisableValue

BIG = "x" * 2048  # over the 1 KiB limit these tests configure


def stash(memory, value=1, key="k", ttl=None):
    EmpathyOS("agent", short_term_memory=memory).stash(key, value, ttl)


def signal(memory, value=1, signal_type="t", target=None):
    EmpathyOS("agent", short_term_memory=memory).send_signal(signal_type, value, target)


def stage(memory, value=None, pattern_id="p1"):
    EmpathyOS("agent", short_term_memory=memory).stage_pattern(
        StagedPattern(pattern_id, "agent", "type", "name", "desc", context=value or {})
    )


def add_task(memory, value=None, task_id="t1", priority=5):
    AgentCoordinator(memory, "team").add_task(
        AgentTask(task_id, "review", "d", priority, context=value or {})
    )


def share(memory, value=1, key="k"):
    session = TeamSession(memory, "s", "p")
    memory.client.flushall()  # creating the session is fine; sharing must write nothing
    session.share(key, value)


CASES = {
    # not JSON-serialisable -> TypeError
    "stash NaN": (lambda m: stash(m, math.nan), TypeError),
    "stash infinity": (lambda m: stash(m, {"x": math.inf}), TypeError),
    "stash set": (lambda m: stash(m, {1, 2}), TypeError),
    "stash object": (lambda m: stash(m, object()), TypeError),
    "signal NaN": (lambda m: signal(m, [math.nan]), TypeError),
    "pattern NaN": (lambda m: stage(m, {"x": math.nan}), TypeError),
    "task bytes": (lambda m: add_task(m, {"x": b"raw"}), TypeError),
    "share NaN": (lambda m: share(m, math.nan), TypeError),
    "stash lone surrogate": (lambda m: stash(m, {"x": "\ud800"}), TypeError),
    "circular": (lambda m: stash(m, (loop := [], loop.append(loop))[0]), TypeError),
    # over the size limit -> ValueError
    "stash too big": (lambda m: stash(m, BIG), ValueError),
    "signal too big": (lambda m: signal(m, BIG), ValueError),
    "pattern too big": (lambda m: stage(m, {"x": BIG}), ValueError),
    "task too big": (lambda m: add_task(m, {"x": BIG}), ValueError),
    "share too big": (lambda m: share(m, BIG), ValueError),
    # malformed ids -> ValueError
    "empty key": (lambda m: stash(m, key=""), ValueError),
    "key with newline": (lambda m: stash(m, key="a\nb"), ValueError),
    "key too long": (lambda m: stash(m, key="k" * 600), ValueError),
    "empty signal type": (lambda m: signal(m, signal_type=""), ValueError),
    "target with control char": (lambda m: signal(m, target="lead\x00"), ValueError),
    "pattern id too long": (lambda m: stage(m, pattern_id="p" * 300), ValueError),
    "task id with tab": (lambda m: add_task(m, task_id="a\tb"), ValueError),
    "task id with brace": (lambda m: add_task(m, task_id="a}b"), ValueError),
    "user id not a string": (lambda m: EmpathyOS(42, short_term_memory=m), ValueError),
    # TTLs that are not positive -> ValueError
    "zero ttl": (lambda m: stash(m, ttl=0), ValueError),
    "negative ttl": (lambda m: stash(m, ttl=-5), ValueError),
    "nan ttl": (lambda m: stash(m, ttl=math.nan), ValueError),
    "huge ttl": (lambda m: stash(m, ttl=10**12), ValueError),
    "bool ttl": (lambda m: stash(m, ttl=True), ValueError),
    # priorities outside 1-10 -> ValueError
    "priority 0": (lambda m: add_task(m, priority=0), ValueError),
    "priority 11": (lambda m: add_task(m, priority=11), ValueError),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_refused_and_writes_nothing(make_memory, case):
    memory = make_memory(max_value_bytes=1024)
    action, error = CASES[case]
    with pytest.raises(error):
        action(memory)
    assert memory.client.dbsize() == 0, list(memory.client.scan_iter())


def test_size_limit_is_configurable_and_defaults_to_one_mebibyte(make_memory):
    memory = make_memory()
    assert memory.max_value_bytes == 1024 * 1024
    stash(memory, "x" * 1000)
    with pytest.raises(ValueError, match="limit"):
        stash(make_memory(max_value_bytes=100), "x" * 1000)


def test_a_value_that_refers_to_itself_is_refused_by_name():
    loop: dict = {}
    loop["self"] = loop
    with pytest.raises(UnserialisableValue, match="refers to itself"):
        encode(loop)
