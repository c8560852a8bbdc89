"""Every public call raises only the library's exceptions while Redis is down: each is
called, with valid arguments, on a memory whose server has been killed."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import memory as package
from memory import (
    AccessTier,
    AgentCoordinator,
    AgentTask,
    Caller,
    CollaborationState,
    EmpathyOS,
    MemoryConnectionError,
    RedisShortTermMemory,
    StagedPattern,
    TeamSession,
)
from tests.redis_server import start_redis_server

STEWARD = Caller("steward", AccessTier.STEWARD)
# A valid value for each parameter name the public calls take.
SAMPLES: dict[str, Any] = {
    "caller": STEWARD,
    "key": "k",
    "data": {"v": 1},
    "agent_id": "a",
    "agent_ids": ["a"],
    "pattern": StagedPattern("p1", "steward", "kind", "name", "description", confidence=0.5),
    "pattern_id": "p1",
    "pattern_ids": ["p1"],
    "decision": "promoted",
    "conflict_id": "c1",
    "positions": {"a": "yes", "b": "no"},
    "reason": "r",
    "status": "dead",
    "fencing_token": 7,  # a token this coordinator does not hold: it must ask Redis
    "resolution": {"winner": "a"},
    "state": CollaborationState(),
    "team_id": "t",
    "team_ids": ["t"],
    "order": "confidence",
    "session_id": "s1",
    "signal_type": "ping",
    "signal_id": f"{0:013d}-{0:012d}-{0:016x}",
    "limit": 3,
    "pool": "p",
    "slot": "s",
    "cap": 1,
    "ttl": 1,
    "seconds": 1,
    "user_id": "u",
    "holder": "host:1",
    "token": "1",
    "after": "0",
    "task": AgentTask("t1", "x"),
    "task_id": "t1",
    "task_type": "x",
    "task_types": ["x"],
    "capabilities": ["x"],
    "event_id": "1-0",
    "kind": "tasks_added",
    # series and timings (memory/series.py, memory/timings.py)
    "range": "24h",
    "since_ms": 0,
    "window": "1h",
    "by": "agent",
    # the staged patterns' index reads (memory/pattern_index.py)
    "members": [f"{1:013d}|p1"],
    "cursor": None,
    "read": lambda pipe, shard: pipe.zcard(shard.patterns_staged),
    "start": 0,
    "stop": "+",
    "now": 0,
    "count": 3,
    # the per-team orderings' reads (memory/pattern_teams.py)
    "teams": [None, "t"],
    "first": 0,
    "last": 1,
    "within_ms": None,
}
# Calls whose parameter of a name above takes another kind of value.
OVERRIDES: dict[str, dict[str, Any]] = {
    name: {"teams": ["t"]} for name in ("series.series", "series.series_totals")
}
# Calls that do not touch Redis, or are the connection's own plumbing.
PURE = {
    "ping", "liveness", "connection_error", "ttl_ms", "event", "follow", "close",
    "run_script", "run_scripts",
}  # fmt: skip


@pytest.fixture(scope="module")
def down() -> Iterator[RedisShortTermMemory]:
    server = start_redis_server([])
    memory = RedisShortTermMemory(url=server.url, socket_timeout=2)
    objects = public_objects(memory)  # built while Redis answers
    server.kill()
    memory.objects = objects  # type: ignore[attr-defined]
    yield memory
    memory.close()


def public_objects(memory: RedisShortTermMemory) -> list[object]:
    return [
        memory,
        EmpathyOS("steward", short_term_memory=memory, access_tier=AccessTier.STEWARD),
        AgentCoordinator(memory, "t", access_tier=AccessTier.STEWARD, actor="steward"),
        TeamSession(memory, "s1", access_tier=AccessTier.STEWARD, actor="steward"),
    ]


def public_calls(memory: RedisShortTermMemory) -> Iterator[tuple[str, Callable[..., Any]]]:
    """Every public method of the library's objects, and every public function of its
    modules that takes a memory first."""
    for owner in memory.objects:  # type: ignore[attr-defined]
        for name, _ in inspect.getmembers(type(owner), inspect.isfunction):
            if not name.startswith("_") and name not in PURE:
                yield f"{type(owner).__name__}.{name}", getattr(owner, name)
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"memory.{info.name}")
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("_") or function.__module__ != module.__name__:
                continue
            if next(iter(inspect.signature(function).parameters), None) == "memory":
                yield f"{info.name}.{name}", function


def call(function: Callable[..., Any], memory: RedisShortTermMemory, **extra: Any) -> Any:
    arguments = {"memory": memory, **SAMPLES, **extra}
    bound = {
        name: arguments[name]
        for name, parameter in inspect.signature(function).parameters.items()
        if (parameter.default is inspect.Parameter.empty or name == "fencing_token")
        and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    }
    result = function(**bound)
    if inspect.isgenerator(result) or hasattr(result, "__next__"):
        return list(result)
    return result


def test_every_public_call_raises_the_librarys_error_while_redis_is_down(down):
    raw = {}
    calls = dict(public_calls(down))
    assert len(calls) > 60  # the walk found the API
    for name, function in calls.items():
        try:
            call(function, down, **OVERRIDES.get(name, {}))
        except MemoryConnectionError:
            continue
        except Exception as exc:  # noqa: BLE001 - the point is to catch whatever leaks
            raw[name] = repr(exc)
        else:
            raw[name] = "returned"
    assert not raw, "\n".join(f"{name}: {error}" for name, error in sorted(raw.items()))
