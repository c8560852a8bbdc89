"""The library's Lua: the one place that names each script, its keys and arguments.

Each script is a file ``lua/<name>.lua``; shared Lua (the task-state codec, the
pattern-index member, per-minute counters, event emission) lives in
``lua/includes/<name>.lua`` and is pulled in by a line ``--- @include "<name>"``.

All of it is one Redis function library (``FUNCTION LOAD``), built here: the includes
are defined once, at the library's top level, and each script becomes a function whose
first lines bind every key and argument to a local of the name declared here, so the
Lua reads ``queue`` and ``task_id`` rather than ``KEYS[4]`` and ``ARGV[5]``. A function
library rather than ``EVAL`` scripts because a script re-creates every helper it
includes on every call, and that garbage cost Redis more CPU than the calls' work.

Every function also gets the event stream and who acts, for ``emit``: ``events``,
``maxlen``, ``actor`` and ``tier``, library-level locals that each call sets first
(Redis runs one function at a time); and ``now``, the server's clock in milliseconds,
when it or its includes read it (leases and timestamps never depend on a client's clock).

Under Redis Cluster a function may touch one hash slot only, so the library is built a
second way (``cluster=True``): the keys in other slots, declared ``elsewhere``, come as
arguments, ``emit`` and ``elsewhere`` (``lua/includes/emit.lua``) queue their writes in
``outbox``, and the function answers ``{reply, outbox}``, which the connection sends on.
A key declared ``*name`` takes the rest of ``KEYS`` as a Lua table (a signal's
recipients), so every key a script touches is still declared.

The library's and its functions' names carry a digest of its source, so processes of
different versions on one Redis each call their own. ``RedisConnection.run_script``
loads the library when Redis lacks it (first call, restart, ``FUNCTION FLUSH``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from operator import itemgetter
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
# fmt: off
_RESERVED = frozenset([
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "if", "in",
    "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
    "redis", "cjson", "string", "table", "math", "tonumber", "tostring", "type", "ipairs",
    "pairs", "unpack", "next", "select", "error", "events", "maxlen", "actor", "tier", "now",
    "outbox", "KEYS", "ARGV",
])
# fmt: on
# What every function gets first (see run_script): on one server, KEYS[1] the event
# stream; everywhere, ARGV[1..3] the stream's length, the actor and the tier.
FIRST_ARG = 4
_SHARED = "local events, maxlen, actor, tier, now, outbox\n"
_PRELUDE = "  events, maxlen, actor, tier = KEYS[1], ARGV[1], ARGV[2], ARGV[3]\n"
_CLUSTER_PRELUDE = "  outbox, maxlen, actor, tier = {}, ARGV[1], ARGV[2], ARGV[3]\n"
_CLOCK = "  now = clock()\n"
# Under Cluster, a function's own reply and its outbox (an error reply as it is).
_CLUSTER_FUNCTION = """local function {name}_body(KEYS, ARGV)
{body}end
redis.register_function{{
  function_name = '{name}_@', flags = {{{flags}}}, callback = function(KEYS, ARGV)
  local reply = {name}_body(KEYS, ARGV)
  if type(reply) == 'table' and reply.err then return reply end
  if reply == nil then reply = false end
  return {{reply, outbox}}
end}}
"""
_FUNCTION = """redis.register_function{{
  function_name = '{name}_@', flags = {{{flags}}}, callback = function(KEYS, ARGV)
{body}end}}
"""


# What a script works out once from its declaration: its Lua, and getters of values.
_derived = partial(field, init=False, repr=False, compare=False)
_Getter = Callable[[Mapping[str, Any]], tuple[Any, ...]]


@dataclass(frozen=True)
class LuaScript:
    """One script: its name (the file ``lua/<name>.lua``), and the names of its keys
    and arguments in the order they are passed.

    - ``retry``: it may be sent again when the connection failed before its reply,
      since a second run answers as the first (idempotent, or fenced and idempotent).
      Others are sent once: after ``MemoryConnectionError`` they may or may not have run.
    - ``elsewhere``: the declared keys outside its hash slot (small cross-group indexes;
      ``*name`` for a last key that takes the rest), written only through
      ``elsewhere(...)`` or ``elsewhere_run(...)``: under Cluster, in a second call.
    - ``reads``: it only reads. Its function is flagged ``no-writes`` and called with
      ``FCALL_RO``, which every library Redis user may send (``memory.acl``).
    """

    name: str
    keys: tuple[str, ...]
    args: tuple[str, ...]
    retry: bool = False
    elsewhere: tuple[str, ...] = ()
    reads: bool = False
    includes: tuple[str, ...] = _derived()
    uses_now: bool = _derived()
    lua: str = _derived()
    rest: str | None = _derived()  # the last key's name, when it takes the rest
    rest_elsewhere: bool = _derived()
    # Called on every run, each for values in order: the fixed keys in the script's
    # slot, those elsewhere, the arguments, and (one server) elsewhere's then its own.
    _own: _Getter = _derived()
    _elsewhere: _Getter = _derived()
    _args: _Getter = _derived()
    _server: _Getter = _derived()

    def __post_init__(self) -> None:
        names = [name.removeprefix("*") for name in self.keys] + list(self.args)
        for name in names:
            if not _NAME.fullmatch(name) or name in _RESERVED:
                raise ValueError(f"script {self.name}: {name!r} cannot name a Lua local")
        if len(set(names)) != len(names):
            raise ValueError(f"script {self.name}: a key or argument is named twice")
        if any(name.startswith("*") for name in self.keys[:-1]):
            raise ValueError(f"script {self.name}: only the last key may take the rest")
        own = [name for name in self.keys if name not in self.elsewhere]
        if not set(self.elsewhere) <= set(self.keys) or not own:
            raise ValueError(f"script {self.name}: elsewhere must name some of its keys, not all")
        text = (LUA_DIR / f"{self.name}.lua").read_text()
        # Every script may emit its event, so every script includes emit.
        includes = _includes(["emit", *_INCLUDE.findall(text)])
        uses_now = any(_USES_NOW.search(lua) for lua in [text, *includes.values()])
        rest = self.keys[-1][1:] if self.keys[-1].startswith("*") else None
        fixed = [name for name in own if not name.startswith("*")]
        elsewhere = [name for name in self.elsewhere if not name.startswith("*")]
        object.__setattr__(self, "rest", rest)
        object.__setattr__(self, "rest_elsewhere", self.keys[-1] in self.elsewhere)
        object.__setattr__(self, "_own", _getter(fixed))
        object.__setattr__(self, "_elsewhere", _getter(elsewhere))
        object.__setattr__(self, "_args", _getter(list(self.args)))
        object.__setattr__(self, "_server", _getter([*elsewhere, *fixed]))
        object.__setattr__(self, "includes", tuple(includes))
        object.__setattr__(self, "uses_now", uses_now)
        object.__setattr__(self, "lua", _INCLUDE.sub("", text))

    def split_keys(
        self, keys: Mapping[str, str | Sequence[str]]
    ) -> tuple[Sequence[str], Sequence[str], Sequence[str]]:
        """Under Cluster, from a mapping of name to key (a list for the rest): the keys
        in the script's slot, the fixed keys elsewhere, and the rest when elsewhere."""
        if len(keys) == len(self.keys):
            try:
                own, elsewhere = self._own(keys), self._elsewhere(keys)
                rest = keys[self.rest] if self.rest else ()
                return (
                    (own, elsewhere, rest)
                    if self.rest_elsewhere
                    else ([*own, *rest], elsewhere, ())
                )
            except KeyError:
                pass
        raise self._mismatch("keys", keys, [name.removeprefix("*") for name in self.keys])

    def server_keys(self, keys: Mapping[str, str | Sequence[str]]) -> tuple[str, ...]:
        """On one server: the fixed keys elsewhere, the script's own, then the rest."""
        if len(keys) == len(self.keys):
            try:
                fixed = self._server(keys)
                return (*fixed, *keys[self.rest]) if self.rest else fixed
            except KeyError:
                pass
        raise self._mismatch("keys", keys, [name.removeprefix("*") for name in self.keys])

    def arg_values(self, args: Mapping[str, Any]) -> Sequence[Any]:
        """The arguments in the declared order, from a mapping of name to value."""
        if len(args) == len(self.args):
            try:
                return self._args(args)
            except KeyError:
                pass
        raise self._mismatch("args", args, list(self.args))

    def _mismatch(self, what: str, given: Mapping[str, Any], declared: list[str]) -> TypeError:
        return TypeError(
            f"script {self.name} takes {what} {', '.join(declared) or 'none'}; "
            f"got {', '.join(given) or 'none'}"
        )

    def body(self, cluster: bool) -> str:
        """The function's Lua: its keys and arguments bound to locals, then the script.

        On one server, KEYS holds the event stream, the fixed keys elsewhere, the
        script's own and then the rest. Under Cluster, KEYS holds only the script's own
        keys, and ARGV, after what every function gets, the fixed keys elsewhere, the
        arguments and then the rest, when it is elsewhere (``RedisConnection.run_script``
        sends them so)."""
        own = [n for n in self.keys if n not in self.elsewhere and not n.startswith("*")]
        elsewhere = [n for n in self.elsewhere if not n.startswith("*")]
        lines = [_CLUSTER_PRELUDE if cluster else _PRELUDE, _CLOCK if self.uses_now else ""]
        keys_bound = own if cluster else [*elsewhere, *own]
        argv_bound = [*elsewhere, *self.args] if cluster else list(self.args)
        first_key = 1 if cluster else 2
        if keys_bound:
            lines.append(_bind(keys_bound, "KEYS", first_key))
        if argv_bound:
            lines.append(_bind(argv_bound, "ARGV", FIRST_ARG))
        if self.rest:
            table, first = "KEYS", first_key + len(keys_bound)
            if cluster and self.rest_elsewhere:
                table, first = "ARGV", FIRST_ARG + len(argv_bound)
            lines.append(f"  local {self.rest} = {{unpack({table}, {first})}}\n")
        return "".join(lines) + self.lua


class FunctionLibrary:
    """The scripts as one Redis function library: its ``source`` for ``FUNCTION LOAD``,
    and the name each script's function has in it. ``cluster``: built for Redis
    Cluster, where each function answers ``{reply, outbox}`` (see the module)."""

    def __init__(self, scripts: Iterable[LuaScript], *, cluster: bool = False) -> None:
        self.scripts = tuple(scripts)
        self.cluster = cluster
        includes = _includes(["clock", *(name for s in self.scripts for name in s.includes)])
        layout = _CLUSTER_FUNCTION if cluster else _FUNCTION
        functions = [
            layout.format(name=s.name, flags="'no-writes'" if s.reads else "", body=s.body(cluster))
            for s in self.scripts
        ]
        template = "".join(
            ["#!lua name=empathy_memory_@\n", _SHARED, *includes.values(), *functions]
        )
        self.version = hashlib.sha1(template.encode()).hexdigest()[:12]
        self.name = f"empathy_memory_{self.version}"
        self.source = template.replace("_@", f"_{self.version}")
        self._functions = {s.name: f"{s.name}_{self.version}" for s in self.scripts}

    def function(self, script: LuaScript) -> str:
        """The name of ``script``'s function in this library."""
        try:
            return self._functions[script.name]
        except KeyError:
            raise LookupError(f"script {script.name} is not in {self.name}") from None


def _getter(names: list[str]) -> _Getter:
    """A function from a mapping to the values of ``names``, in order, as a tuple."""
    if len(names) > 1:
        return itemgetter(*names)
    if names:
        name = names[0]
        return lambda mapping: (mapping[name],)
    return lambda mapping: ()


def _bind(names: list[str], table: str, first: int) -> str:
    values = ", ".join(f"{table}[{first + i}]" for i in range(len(names)))
    return f"  local {', '.join(names)} = {values}\n"


def _includes(names: Iterable[str], found: dict[str, str] | None = None) -> dict[str, str]:
    """The includes ``names`` and those they include, each once, each after the ones it
    includes: name -> its Lua, without its include lines."""
    found = {} if found is None else found
    for name in names:
        if name not in found:
            text = (LUA_DIR / "includes" / f"{name}.lua").read_text()
            _includes(_INCLUDE.findall(text), found)
            found[name] = _INCLUDE.sub("", text)
    return found


# Team task queues (memory/tasks.py). A team's keys share its hash tag. ``waiting``: a
# type's pending tasks by when they became pending; ``_COUNTS``: the team's series and
# totals (memory/series.py); ``*_timings``: of the task's type and its holder.
_COUNTS = ("series", "series_leaving", "totals")
_TEAM_TASK = ("spec", "state", "queue", "leases", "dead", "queue_changes", "waiting", *_COUNTS)
ADD_TASK = LuaScript(
    "add_task",
    keys=("spec", "state", "queue", "types", "seq", "teams", "queue_changes", "waiting", *_COUNTS),
    args=("task_id", "task_type", "spec_json", "priority", "team"),
    elsewhere=("teams",),
)
_REAP_ARGS = ("task_type", "max_attempts", "team", "batch")
CLAIM_TASK = LuaScript(
    "claim_task",
    keys=(*_TEAM_TASK, "fence", "claim_request"),
    args=(*_REAP_ARGS, "agent", "lease_ms"),
    retry=True,
)
REAP_EXPIRED = LuaScript("reap_expired", keys=_TEAM_TASK, args=_REAP_ARGS, retry=True)
_LEASE_ARGS = ("task_id", "token", "agent", "team")
_TIMINGS = ("type_timings", "agent_timings", "timings_agents")
COMPLETE_TASK = LuaScript(
    "complete_task",
    keys=("spec", "state", "leases", "completed", "result", "finished", *_COUNTS, *_TIMINGS),
    args=(*_LEASE_ARGS, "result_json", "result_ttl_ms"),
    retry=True,
)
FAIL_TASK = LuaScript(
    "fail_task",
    keys=("state", "leases", "queue", "dead", "result", "queue_changes", "finished", "waiting",
          *_COUNTS, "agent_timings", "timings_agents"),
    args=(*_LEASE_ARGS, "error_json", "retry", "max_attempts", "result_ttl_ms"),
    retry=True,
)  # fmt: skip
EXTEND_LEASE = LuaScript(
    "extend_lease", keys=("state", "leases"), args=(*_LEASE_ARGS, "lease_ms"), retry=True
)
STEWARD_TASK = LuaScript(
    "steward_task",
    keys=("spec", "state", "queue", "leases", "dead", "result", "queue_changes", "finished",
          "waiting"),
    args=("task_id", "action", "team", "task_type"),
)  # fmt: skip

# The agent registry (memory/registry.py).
PRUNE_TEAM = LuaScript(
    "prune_team",
    keys=(
        "spec", "state", "finished", "completed", "types", "fence", "seq",
        "queue_changes", "agents", "heartbeats", *_COUNTS, "timings_agents", "teams",
    ),
    args=("team", "result_ttl_ms"),
    elsewhere=("teams",),
)  # fmt: skip
REGISTER_AGENT = LuaScript(
    "register_agent",
    keys=("agents", "heartbeats", "teams", "agent_teams"),
    args=("agent", "info_json", "team"),
    elsewhere=("teams", "agent_teams"),
)
HEARTBEAT = LuaScript(
    "heartbeat", keys=("agents", "heartbeats"), args=("agent", "team"), retry=True
)
UNREGISTER_AGENT = LuaScript(
    "unregister_agent", keys=("agents", "heartbeats", "agent_teams"), args=("agent", "team"),
    elsewhere=("agent_teams",),
)  # fmt: skip

# Staged patterns (memory/patterns.py), each script in one pattern shard's hash slot.
# The per-team orderings and the team entries (memory/pattern_teams.py).
_TEAM_INDEXES = (
    "patterns_team_expiry",
    "patterns_team_confidence",
    "patterns_team_staged_at",
    "patterns_team_of",
)
# Series and totals of staged and decided patterns by team (memory/series.py).
_PATTERN_COUNTS = ("patterns_series", "patterns_series_leaving", "patterns_totals")
_PATTERN_INDEXES = (
    "patterns_staged",
    "patterns_expired_per_minute",
    "patterns_expired_log",
    "patterns_by_confidence",
    "patterns_by_staged_at",
    *_TEAM_INDEXES,
    "patterns_expired_team_minute",
    "patterns_expired_team_fields",
    *_PATTERN_COUNTS,
)
STAGE_PATTERN = LuaScript(
    "stage_pattern",
    keys=("pattern", "pattern_decision", *_PATTERN_INDEXES),
    args=("pattern_id", "agent_id", "pattern_json", "ttl_ms", "confidence", "team",
          "confidence_key"),
    retry=True,
)  # fmt: skip
_DECIDED_INDEXES = (
    "patterns_staged", "patterns_by_confidence", "patterns_by_staged_at", *_TEAM_INDEXES
)  # fmt: skip
DECIDE_PATTERN = LuaScript(
    "decide_pattern",
    keys=("pattern", "pattern_decision", *_DECIDED_INDEXES, *_PATTERN_COUNTS),
    args=("pattern_id", "decision", "reason", "decision_ttl_ms", "team", "check_team"),
)
RESTORE_PATTERN = LuaScript(
    "restore_pattern",
    keys=("pattern", "pattern_decision", *_DECIDED_INDEXES),
    args=("pattern_id", "window_ms"),
)
PRUNE_PATTERNS = LuaScript("prune_patterns", keys=_PATTERN_INDEXES, args=())

# Signals (memory/signals.py). A signal to one agent is in its mailbox; broadcasts and
# sessions' signals are with the shared signals, and a session's participants get a
# copy in their mailboxes (``mailboxes``: record and inbox keys, in pairs).
_SEND_ARGS = ("token", "record_json", "signal_type", "ttl_ms", "target", "team")
_FEED = ("signals_recent", "signals_rate", "signals_team_rate", "signals_team_minutes",
         "signals_team_totals")  # fmt: skip
SEND_SIGNAL = LuaScript(
    "send_signal",
    keys=("signal", "signal_inbox", *_FEED),
    args=_SEND_ARGS,
    elsewhere=_FEED,
)
BROADCAST_SIGNAL = LuaScript(
    "broadcast_signal",
    keys=("signal", *_FEED, "signals_broadcast"),
    args=tuple(a for a in _SEND_ARGS if a != "target"),
)
SESSION_SIGNAL = LuaScript(
    "session_signal",
    keys=("signal", *_FEED, "session_signals", "*mailboxes"),
    args=_SEND_ARGS,
    elsewhere=("*mailboxes",),
)
# What send_signal and session_signal write elsewhere, run as functions under Cluster.
FEED_SIGNAL = LuaScript("feed_signal", keys=_FEED, args=("entry", "ttl_ms", "team"))
DELIVER_SIGNAL = LuaScript(
    "deliver_signal", keys=("signal", "signal_inbox"), args=("body", "member", "ttl_ms")
)
RECEIVE_INBOX = LuaScript("receive_inbox", keys=("signal_inbox",), args=("agent", "type_filter"))
RECEIVE_BROADCASTS = LuaScript(
    "receive_broadcasts",
    keys=("signals_broadcast", "signal_seen", "signal_cursor"),
    args=("agent", "type_filter", "ttl_ms"),
)

# Working memory (memory/working.py).
STASH = LuaScript(
    "stash",
    keys=("working", "working_index", "working_agents"),
    args=("value_json", "ttl_ms", "key"),
    retry=True,
    elsewhere=("working_agents",),
)
DELETE_WORKING = LuaScript(
    "delete_working", keys=("working", "working_index"), args=("key", "agent")
)

# Sessions, conflicts, collaboration state.
TOUCH_SESSION = LuaScript(
    "touch_session",
    keys=("meta", "agents", "context", "sessions"),
    args=("session_id", "ttl_ms", "op", "name", "value", "team"),
    elsewhere=("sessions",),
)
CREATE_CONFLICT = LuaScript(
    "create_conflict",
    keys=("conflict", "conflicts"),
    args=("conflict_id", "topic", "positions_json", "ttl_ms"),
    elsewhere=("conflicts",),
)
RESOLVE_CONFLICT = LuaScript(
    "resolve_conflict", keys=("conflict",), args=("conflict_id", "resolution_json")
)
# An agent's own limits (memory/limits.py), in its working memory's hash slot.
COUNT_RUN = LuaScript("count_run", keys=("runs", "suspended"), args=("limit", "window_ms"))
TAKE_SLOT = LuaScript("take_slot", keys=("slots",), args=("slot", "cap", "ttl_ms"))
# Which of the running dashboard bridges leads (memory/leadership.py).
LEAD_BRIDGE = LuaScript(
    "lead_bridge", keys=("bridge_lead", "bridge_fence"), args=("holder", "ttl_ms")
)
SAVE_BRIDGE_CURSOR = LuaScript(
    "save_bridge_cursor", keys=("bridge_lead", "bridge_cursor"), args=("token", "event_id"),
    retry=True,
)  # fmt: skip
RELEASE_BRIDGE = LuaScript("release_bridge", keys=("bridge_lead",), args=("token",), retry=True)
PERSIST_COLLABORATION = LuaScript(
    "persist_collaboration", keys=("collaboration",), args=("state_json",), retry=True
)

# Reads for overviews and charts, each of one team's (or one series hash's) slot:
# memory/summaries.py and memory/series.py.
TEAM_SUMMARY = LuaScript(
    "team_summary",
    keys=("completed", "dead", "heartbeats", "*queues"),
    args=("cutoff", "ranges"),
    reads=True,
)
READ_SERIES = LuaScript(
    "read_series", keys=("series",), args=("prefix", "mark", "first", "points", "group"),
    reads=True,
)  # fmt: skip

ALL = (
    ADD_TASK, CLAIM_TASK, REAP_EXPIRED, COMPLETE_TASK, FAIL_TASK, EXTEND_LEASE, STEWARD_TASK,
    REGISTER_AGENT, HEARTBEAT, UNREGISTER_AGENT, PRUNE_TEAM, STAGE_PATTERN, DECIDE_PATTERN,
    RESTORE_PATTERN, PRUNE_PATTERNS, SEND_SIGNAL, BROADCAST_SIGNAL, SESSION_SIGNAL, FEED_SIGNAL,
    DELIVER_SIGNAL, RECEIVE_INBOX, RECEIVE_BROADCASTS, STASH, DELETE_WORKING, TOUCH_SESSION,
    CREATE_CONFLICT, RESOLVE_CONFLICT, PERSIST_COLLABORATION, COUNT_RUN, TAKE_SLOT, LEAD_BRIDGE,
    SAVE_BRIDGE_CURSOR, RELEASE_BRIDGE, TEAM_SUMMARY, READ_SERIES,
)  # fmt: skip
LIBRARY = FunctionLibrary(ALL)
CLUSTER_LIBRARY = FunctionLibrary(ALL, cluster=True)
