"""The library's Lua scripts: the one place that names them, their keys and arguments.

Each script is a file ``lua/<name>.lua``; shared Lua (the task-state codec, the
pattern-index member, per-minute counters, event emission) lives in
``lua/includes/<name>.lua`` and is pulled in by a line ``--- @include "<name>"``.
A script's source is its file with its includes, behind a header that binds every key
and argument to a local of the name declared here, so the Lua reads ``queue`` and
``task_id`` rather than ``KEYS[4]`` and ``ARGV[5]``.

Every script also gets the event stream and who acts, for ``emit``: the locals
``events``, ``maxlen``, ``actor`` and ``tier``; and ``now``, the server's clock in
milliseconds, when it uses it (leases and timestamps never depend on a client's clock).

A key declared with a leading ``*`` takes the rest of ``KEYS`` as a Lua table: a
script that writes to a varying number of indexes (a signal's recipients) still names
every key it touches, so it stays atomic and Cluster-safe.

``RedisConnection.run_script`` runs them through redis-py's ``Script``, which
sends ``EVALSHA`` and loads the script again after a restart or ``SCRIPT FLUSH``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .exceptions import AlreadyDecided, IdTaken, LeaseLost, NotFound, StateConflict

LUA_DIR = Path(__file__).with_name("lua")

# Scripts raise ``<CODE> <message>`` (``fail`` in lua/includes/fail.lua); the code
# picks the exception class.
SCRIPT_ERRORS: dict[str, type[Exception]] = {
    "NOTFOUND": NotFound,
    "DECIDED": AlreadyDecided,
    "TAKEN": IdTaken,
    "LEASE": LeaseLost,
    "STATE": StateConflict,
}

_INCLUDE = re.compile(r'^[ \t]*--- @include "([a-z_]+)"\n', re.MULTILINE)
_NAME = re.compile(r"[a-z_][a-z0-9_]*")
_USES_NOW = re.compile(r"\bnow\b")
# Names a declared key or argument may not take: Lua's keywords and the globals the
# scripts use, which a local of that name would hide.
_RESERVED = frozenset(
    [
        "and",
        "break",
        "do",
        "else",
        "elseif",
        "end",
        "false",
        "for",
        "function",
        "if",
        "in",
        "local",
        "nil",
        "not",
        "or",
        "repeat",
        "return",
        "then",
        "true",
        "until",
        "while",
        "redis",
        "cjson",
        "string",
        "table",
        "math",
        "tonumber",
        "tostring",
        "type",
        "ipairs",
        "pairs",
        "unpack",
        "next",
        "select",
        "error",
        "events",
        "maxlen",
        "actor",
        "tier",
        "now",
    ]
)
# What every script gets before its own keys and arguments (see run_script).
_PRELUDE = "local events, maxlen, actor, tier = KEYS[1], ARGV[1], ARGV[2], ARGV[3]\n"
FIRST_KEY = 2  # KEYS[1] is the event stream
FIRST_ARG = 4  # ARGV[1..3] are the stream's length, the actor and the tier


@dataclass(frozen=True)
class LuaScript:
    """One script: its name (the file ``lua/<name>.lua``), and the names of its keys
    and arguments in the order they are passed."""

    name: str
    keys: tuple[str, ...]
    args: tuple[str, ...]
    source: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [name.removeprefix("*") for name in self.keys] + list(self.args)
        for name in names:
            if not _NAME.fullmatch(name) or name in _RESERVED:
                raise ValueError(f"script {self.name}: {name!r} cannot name a Lua local")
        if len(set(names)) != len(names):
            raise ValueError(f"script {self.name}: a key or argument is named twice")
        if any(name.startswith("*") for name in self.keys[:-1]):
            raise ValueError(f"script {self.name}: only the last key may take the rest")
        object.__setattr__(self, "source", self._build())

    @property
    def variadic(self) -> bool:
        """True when the last key takes the rest of ``KEYS`` as a list."""
        return bool(self.keys) and self.keys[-1].startswith("*")

    def key_values(self, keys: Mapping[str, str | Sequence[str]]) -> list[str]:
        """The keys in the declared order, from a mapping of name to key (to a list of
        keys for the last one, when it takes the rest)."""
        try:
            if len(keys) == len(self.keys):
                if not self.variadic:
                    return [keys[name] for name in self.keys]  # type: ignore[misc]
                *fixed, rest = self.keys
                return [*(keys[name] for name in fixed), *keys[rest[1:]]]  # type: ignore[misc]
        except KeyError:
            pass
        raise self._mismatch("keys", keys, [name.removeprefix("*") for name in self.keys])

    def arg_values(self, args: Mapping[str, Any]) -> list[Any]:
        """The arguments in the declared order, from a mapping of name to value."""
        try:
            if len(args) == len(self.args):
                return [args[name] for name in self.args]
        except KeyError:
            pass
        raise self._mismatch("args", args, list(self.args))

    def _mismatch(self, what: str, given: Mapping[str, Any], declared: list[str]) -> TypeError:
        return TypeError(
            f"script {self.name} takes {what} {', '.join(declared) or 'none'}; "
            f"got {', '.join(given) or 'none'}"
        )

    def _build(self) -> str:
        # Every script may emit its event, so every script includes emit.
        own = (LUA_DIR / f"{self.name}.lua").read_text()
        body = _with_includes('--- @include "emit"\n' + own, set())
        header = [_PRELUDE]
        if self.keys:
            fixed = [name for name in self.keys if not name.startswith("*")]
            if fixed:
                header.append(_bind(fixed, "KEYS", FIRST_KEY))
            if self.variadic:
                first = FIRST_KEY + len(fixed)
                header.append(f"local {self.keys[-1][1:]} = {{unpack(KEYS, {first})}}\n")
        if self.args:
            header.append(_bind(list(self.args), "ARGV", FIRST_ARG))
        if _USES_NOW.search(body):  # before the includes, whose functions may read it
            header.append(_with_includes('--- @include "clock"\n', set()))
        return "".join(header) + body


def _bind(names: list[str], table: str, first: int) -> str:
    values = ", ".join(f"{table}[{first + i}]" for i in range(len(names)))
    return f"local {', '.join(names)} = {values}\n"


def _with_includes(source: str, included: set[str]) -> str:
    """``source`` with each include replaced by its file, each file at most once."""

    def expand(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in included:
            return ""
        included.add(name)
        return _with_includes((LUA_DIR / "includes" / f"{name}.lua").read_text(), included)

    return _INCLUDE.sub(expand, source)


# Team task queues (memory/tasks.py). A team's keys share its hash tag.
_TEAM_TASK = ("spec", "state", "queue", "leases", "dead", "queue_changes")
ADD_TASK = LuaScript(
    "add_task",
    keys=("spec", "state", "queue", "types", "seq", "teams", "queue_changes"),
    args=("task_id", "task_type", "spec_json", "priority", "team"),
)
_REAP_ARGS = ("task_type", "max_attempts", "team", "batch")
CLAIM_TASK = LuaScript(
    "claim_task", keys=(*_TEAM_TASK, "fence"), args=(*_REAP_ARGS, "agent", "lease_ms")
)
REAP_EXPIRED = LuaScript("reap_expired", keys=_TEAM_TASK, args=_REAP_ARGS)
_LEASE_ARGS = ("task_id", "token", "team")
COMPLETE_TASK = LuaScript(
    "complete_task",
    keys=("spec", "state", "leases", "completed", "result"),
    args=(*_LEASE_ARGS, "result_json", "result_ttl_ms"),
)
FAIL_TASK = LuaScript(
    "fail_task",
    keys=("state", "leases", "queue", "dead", "result", "queue_changes"),
    args=(*_LEASE_ARGS, "error_json", "retry", "max_attempts", "result_ttl_ms"),
)
EXTEND_LEASE = LuaScript("extend_lease", keys=("state", "leases"), args=(*_LEASE_ARGS, "lease_ms"))
STEWARD_TASK = LuaScript(
    "steward_task",
    keys=("spec", "state", "queue", "leases", "dead", "result", "queue_changes"),
    args=("task_id", "action", "team", "task_type"),
)

# The agent registry (memory/registry.py).
REGISTER_AGENT = LuaScript(
    "register_agent",
    keys=("agents", "heartbeats", "teams"),
    args=("agent", "info_json", "team"),
)
HEARTBEAT = LuaScript("heartbeat", keys=("agents", "heartbeats"), args=("agent", "team"))
UNREGISTER_AGENT = LuaScript(
    "unregister_agent", keys=("agents", "heartbeats"), args=("agent", "team")
)

# Staged patterns (memory/patterns.py), all in the patterns' hash slot.
_PATTERN_INDEXES = (
    "patterns_staged",
    "patterns_expired_per_minute",
    "patterns_expired_log",
    "patterns_by_confidence",
    "patterns_by_staged_at",
)
STAGE_PATTERN = LuaScript(
    "stage_pattern",
    keys=("pattern", "pattern_decision", *_PATTERN_INDEXES),
    args=("pattern_id", "agent_id", "pattern_json", "ttl_ms", "confidence"),
)
_DECIDED_INDEXES = ("patterns_staged", "patterns_by_confidence", "patterns_by_staged_at")
DECIDE_PATTERN = LuaScript(
    "decide_pattern",
    keys=("pattern", "pattern_decision", *_DECIDED_INDEXES),
    args=("pattern_id", "decision", "reason", "decision_ttl_ms"),
)
RESTORE_PATTERN = LuaScript(
    "restore_pattern",
    keys=("pattern", "pattern_decision", *_DECIDED_INDEXES),
    args=("pattern_id", "window_ms"),
)
PRUNE_PATTERNS = LuaScript("prune_patterns", keys=_PATTERN_INDEXES, args=())

# Signals (memory/signals.py). ``delivery`` is one inbox, the broadcast index, or a
# session's participants' inboxes and its log.
SEND_SIGNAL = LuaScript(
    "send_signal",
    keys=("signal", "signals_recent", "signals_seq", "signals_rate", "*delivery"),
    args=("token", "record_json", "signal_type", "ttl_ms", "target", "team"),
)
RECEIVE_SIGNALS = LuaScript(
    "receive_signals",
    keys=("signal_inbox", "signals_broadcast", "signal_seen", "signal_cursor"),
    args=("agent", "type_filter", "ttl_ms"),
)

# Working memory (memory/working.py).
STASH = LuaScript(
    "stash",
    keys=("working", "working_index", "working_agents"),
    args=("value_json", "ttl_ms", "key"),
)
DELETE_WORKING = LuaScript(
    "delete_working", keys=("working", "working_index"), args=("key", "agent")
)

# Sessions, conflicts, collaboration state.
TOUCH_SESSION = LuaScript(
    "touch_session",
    keys=("meta", "agents", "context", "sessions"),
    args=("session_id", "ttl_ms", "op", "name", "value"),
)
CREATE_CONFLICT = LuaScript(
    "create_conflict",
    keys=("conflict", "conflicts"),
    args=("conflict_id", "topic", "positions_json", "ttl_ms"),
)
RESOLVE_CONFLICT = LuaScript(
    "resolve_conflict", keys=("conflict",), args=("conflict_id", "resolution_json")
)
PERSIST_COLLABORATION = LuaScript(
    "persist_collaboration", keys=("collaboration",), args=("state_json",)
)

ALL = (
    ADD_TASK,
    CLAIM_TASK,
    REAP_EXPIRED,
    COMPLETE_TASK,
    FAIL_TASK,
    EXTEND_LEASE,
    STEWARD_TASK,
    REGISTER_AGENT,
    HEARTBEAT,
    UNREGISTER_AGENT,
    STAGE_PATTERN,
    DECIDE_PATTERN,
    RESTORE_PATTERN,
    PRUNE_PATTERNS,
    SEND_SIGNAL,
    RECEIVE_SIGNALS,
    STASH,
    DELETE_WORKING,
    TOUCH_SESSION,
    CREATE_CONFLICT,
    RESOLVE_CONFLICT,
    PERSIST_COLLABORATION,
)
