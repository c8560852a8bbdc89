"""Task queues that agents claim from, and the registry of agents with their heartbeats.

A team's keys share the ``{team:<id>}`` hash tag. Per task there is a spec (the
``AgentTask`` as JSON, in the ``spec`` hash) and a state (in the ``state`` hash):
``status, attempts, holder, token, score, type`` joined by tabs (ids hold no control
characters). Queues are sorted sets per task type scored so that ``ZPOPMIN`` gives the
highest priority first and FIFO within a priority; leases are sorted sets per task type
by deadline, so a claim reaps exactly the expired leases of its own type.

A claim is a lease with a fencing token from a per-team counter. Only the current token,
before its deadline, may complete or fail the task. A lease that runs out puts the task
back in its queue at its old place, or in the dead-letter set once it has used up its
attempts. Expired leases are reaped by claims of the same type and by ``reap_expired``.
Queued and claimed tasks never expire; completed tasks' results do, after the
WORKING_RESULTS TTL.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .codec import MAX_ACTOR_LENGTH, check_id, check_priority, decode, encode, ttl_ms
from .exceptions import InvalidValue, LeaseLost, NotFound
from .page import Page, check_limit, offset_cursor
from .redis_memory import RedisShortTermMemory
from .tiers import ADMIN, READ, WRITE, AccessTier, Caller
from .ttl import TTLStrategy

# KEYS[1] of every script is the event stream; the keys after it are named, in order, by
# the script's ``_*_KEYS`` tuple, which ``AgentCoordinator._keys`` turns into key names.

# A task's state string, split in one match: status, attempts, holder, token, score, type.
_STATE_PATTERN = "'^([^\\t]*)\\t([^\\t]*)\\t([^\\t]*)\\t([^\\t]*)\\t([^\\t]*)\\t(.*)$'"

# Queue depth for the dashboard's sparkline: the net change of the pending count in each
# minute, kept for two hours; readers walk back from the queues' current sizes. Scripts
# that move tasks in or out of a queue pass this hash as their last key.
_DEPTH = """
do
  local minute = math.floor(now / 60000)
  local changes = KEYS[#KEYS]
  -- Only a minute's first change (or a return to zero) can need old minutes trimmed.
  if redis.call('HINCRBY', changes, minute, DELTA) == DELTA
      and redis.call('HLEN', changes) > 150 then
    for _, field in ipairs(redis.call('HKEYS', changes)) do
      if tonumber(field) < minute - 120 then redis.call('HDEL', changes, field) end
    end
  end
end
"""

# Helpers on KEYS[3], the team's state hash. Scripts on the hot path (claim) inline what
# they need instead: each helper is a new Lua closure on every call.
LUA_STATE = (
    """
local function get_state(id)
  local raw = redis.call('HGET', KEYS[3], id)
  if not raw then return nil end
  local status, attempts, holder, token, score, type = string.match(raw, STATE_PATTERN)
  return {status=status, attempts=tonumber(attempts), holder=holder, token=token,
          score=score, type=type}
end
local function put_state(id, s)
  redis.call('HSET', KEYS[3], id, s.status .. '\\t' .. s.attempts .. '\\t' .. s.holder
             .. '\\t' .. s.token .. '\\t' .. s.score .. '\\t' .. s.type)
end
local function depth(delta)
"""
    + _DEPTH.replace("DELTA", "delta")
    + "end\n"
).replace("STATE_PATTERN", _STATE_PATTERN)


# KEYS (from 2): spec, state, queue, types, seq, then the teams index, queue_changes.
# ARGV: 4 id, 5 type, 6 spec json, 7 priority, 8 team
_ADD = (
    LUA_STATE
    + """
if redis.call('HEXISTS', KEYS[2], ARGV[4]) == 1 then return 0 end
local seq = redis.call('INCR', KEYS[6])
-- Scores stay exact doubles: (10 - priority) * 2^40 + seq is below 2^53.
local score = (10 - tonumber(ARGV[7])) * 1099511627776 + seq
redis.call('HSET', KEYS[2], ARGV[4], ARGV[6])
put_state(ARGV[4], {status='pending', attempts=0, holder='', token='',
                    score=string.format('%.0f', score), type=ARGV[5]})
redis.call('ZADD', KEYS[4], score, ARGV[4])
depth(1)
redis.call('SADD', KEYS[5], ARGV[5])
redis.call('ZADD', KEYS[7], now, ARGV[8])
emit('task.added', 'team', ARGV[8], 'task_id', ARGV[4], 'task_type', ARGV[5], 'priority', ARGV[7])
return 1
"""
)

REAP_BATCH = 200
_CACHE_SIZE = 1024

# Reaping, shared by claim and reap: leases of this type that ran out put their tasks
# back in the queue, or in the dead-letter set. Sets ``reaped``; the helpers are defined
# only when there is something to reap.
# KEYS from 2 are named in _REAP_KEYS (claim's start the same way).
# ARGV 4 type, 5 max attempts, 6 team.
_REAP_KEYS = ("spec", "state", "queue", "leases", "dead", "queue_changes")
_REAP = (
    """
local reaped = 0
local expired = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now, 'LIMIT', 0, REAP_BATCH)
if #expired > 0 then
"""
    + LUA_STATE
    + """
  for _, id in ipairs(expired) do
    local s = get_state(id)
    if s and s.type == ARGV[4] then
      redis.call('ZREM', KEYS[5], id)
      local holder = s.holder
      s.holder = ''
      s.token = ''
      if s.attempts >= tonumber(ARGV[5]) then
        s.status = 'dead'
        redis.call('ZADD', KEYS[6], now, id)
        emit('task.dead_lettered', 'team', ARGV[6], 'task_id', id, 'holder', holder,
             'attempts', s.attempts, 'reason', 'lease expired')
      else
        s.status = 'pending'
        redis.call('ZADD', KEYS[4], tonumber(s.score), id)
        depth(1)
        emit('task.lease_expired', 'team', ARGV[6], 'task_id', id, 'holder', holder,
             'attempts', s.attempts)
      end
      put_state(id, s)
      reaped = reaped + 1
    end
  end
end
"""
).replace("REAP_BATCH", str(REAP_BATCH))

# The hot path, written out without helpers.
# ARGV: 4 type, 5 max attempts, 6 team, 7 agent, 8 lease ms
_CLAIM_KEYS = ("spec", "state", "queue", "leases", "dead", "fence", "queue_changes")
_CLAIM = (
    _REAP
    + """
local id = redis.call('ZPOPMIN', KEYS[4])[1]
if not id then return nil end
local _, attempts, _, _, score, task_type = string.match(redis.call('HGET', KEYS[3], id),
                                                        STATE_PATTERN)
attempts = tonumber(attempts) + 1
local token = redis.call('INCR', KEYS[7])
local deadline = now + tonumber(ARGV[8])
redis.call('HSET', KEYS[3], id, 'claimed\\t' .. attempts .. '\\t' .. ARGV[7] .. '\\t' .. token
           .. '\\t' .. score .. '\\t' .. task_type)
redis.call('ZADD', KEYS[5], deadline, id)
"""
    + _DEPTH.replace("DELTA", "-1")
    + """
emit('task.claimed', 'team', ARGV[6], 'task_id', id, 'task_type', ARGV[4], 'agent', ARGV[7],
     'token', token, 'attempts', attempts)
return {redis.call('HGET', KEYS[2], id), token, deadline, attempts}
"""
).replace("STATE_PATTERN", _STATE_PATTERN)

_REAP_ONLY = _REAP + "\nreturn reaped\n"

# Finishing a claim (complete, fail, extend): the caller must hold the current token and
# the lease must not have run out, by the server's clock.
_CHECK_LEASE = """
local s = get_state(ARGV[4])
if not s then return fail('NOTFOUND', 'no task ' .. ARGV[4] .. ' in team ' .. ARGV[6]) end
if s.status ~= 'claimed' then
  return fail('LEASE', 'task ' .. ARGV[4] .. ' is ' .. s.status .. ', not claimed')
end
if s.token ~= ARGV[5] then
  return fail('LEASE', 'task ' .. ARGV[4] .. ' is now held by ' .. s.holder
              .. ' with token ' .. s.token .. '; token ' .. ARGV[5] .. ' is stale')
end
local deadline = tonumber(redis.call('ZSCORE', KEYS[4], ARGV[4]) or 0)
if deadline < now then
  return fail('LEASE', 'the lease on task ' .. ARGV[4] .. ' ran out '
              .. (now - deadline) .. ' ms ago')
end
"""

# ARGV: 4 id, 5 token, 6 team, 7 result json, 8 result ttl
_COMPLETE_KEYS = ("spec", "state", "leases", "completed", "result")
_COMPLETE = (
    LUA_STATE
    + _CHECK_LEASE
    + """
local ttl = tonumber(ARGV[8])
-- Completed tasks leave with their results: trim those older than the result TTL.
for _, old in ipairs(redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now - ttl, 'LIMIT', 0, 100)) do
  redis.call('HDEL', KEYS[2], old)
  redis.call('HDEL', KEYS[3], old)
  redis.call('ZREM', KEYS[5], old)
end
redis.call('ZREM', KEYS[4], ARGV[4])
redis.call('ZADD', KEYS[5], now, ARGV[4])
s.status = 'completed'
put_state(ARGV[4], s)
redis.call('SET', KEYS[6], ARGV[7], 'PX', ttl)
emit('task.completed', 'team', ARGV[6], 'task_id', ARGV[4], 'agent', s.holder,
     'token', s.token)
return 1
"""
)

# ARGV: 4 id, 5 token, 6 team, 7 error json, 8 retry (1/0), 9 max attempts, 10 ttl
_FAIL_KEYS = ("spec", "state", "leases", "queue", "dead", "result", "queue_changes")
_FAIL = (
    LUA_STATE
    + _CHECK_LEASE
    + """
redis.call('ZREM', KEYS[4], ARGV[4])
local holder = s.holder
s.holder = ''
s.token = ''
redis.call('SET', KEYS[7], ARGV[7], 'PX', tonumber(ARGV[10]))
if ARGV[8] == '1' and s.attempts < tonumber(ARGV[9]) then
  s.status = 'pending'
  redis.call('ZADD', KEYS[5], tonumber(s.score), ARGV[4])
  depth(1)
else
  s.status = 'dead'
  redis.call('ZADD', KEYS[6], now, ARGV[4])
end
put_state(ARGV[4], s)
emit('task.failed', 'team', ARGV[6], 'task_id', ARGV[4], 'agent', holder,
     'attempts', s.attempts, 'status', s.status)
return s.status
"""
)

# ARGV: 4 id, 5 token, 6 team, 7 lease ms
_EXTEND_KEYS = ("spec", "state", "leases")
_EXTEND = (
    LUA_STATE
    + _CHECK_LEASE
    + """
local deadline = now + tonumber(ARGV[7])
redis.call('ZADD', KEYS[4], deadline, ARGV[4])
emit('task.lease_extended', 'team', ARGV[6], 'task_id', ARGV[4], 'agent', s.holder)
return deadline
"""
)

# Steward actions. ARGV: 4 id, 5 action ('requeue' | 'cancel'), 6 team, 7 expected type
_ADMIN_KEYS = ("spec", "state", "queue", "leases", "dead", "result", "queue_changes")
_ADMIN = (
    LUA_STATE
    + """
local s = get_state(ARGV[4])
if not s or s.type ~= ARGV[7] then
  return fail('NOTFOUND', 'no task ' .. ARGV[4] .. ' in team ' .. ARGV[6])
end
if s.status == 'completed' or s.status == 'cancelled' then
  return fail('STATE', 'task ' .. ARGV[4] .. ' is already ' .. s.status)
end
local was_pending = redis.call('ZREM', KEYS[4], ARGV[4]) == 1
redis.call('ZREM', KEYS[5], ARGV[4])
redis.call('ZREM', KEYS[6], ARGV[4])
s.holder = ''
s.token = ''
if ARGV[5] == 'requeue' then
  s.status = 'pending'
  s.attempts = 0
  redis.call('ZADD', KEYS[4], tonumber(s.score), ARGV[4])
  if not was_pending then depth(1) end
  put_state(ARGV[4], s)
  emit('task.requeued', 'team', ARGV[6], 'task_id', ARGV[4])
else
  redis.call('HDEL', KEYS[2], ARGV[4])
  redis.call('HDEL', KEYS[3], ARGV[4])
  redis.call('DEL', KEYS[7])
  if was_pending then depth(-1) end
  emit('task.cancelled', 'team', ARGV[6], 'task_id', ARGV[4])
end
return 1
"""
)

# KEYS: 2 agents, 3 heartbeats, 4 teams. ARGV: 4 agent, 5 json, 6 team
_REGISTER = """
local fresh = redis.call('HSET', KEYS[2], ARGV[4], ARGV[5])
redis.call('ZADD', KEYS[3], now, ARGV[4])
redis.call('ZADD', KEYS[4], now, ARGV[6])
emit('agent.registered', 'team', ARGV[6], 'agent', ARGV[4])
return fresh
"""

_HEARTBEAT = """
if redis.call('HEXISTS', KEYS[2], ARGV[4]) == 0 then
  return fail('NOTFOUND', 'agent ' .. ARGV[4] .. ' is not registered in team ' .. ARGV[5])
end
redis.call('ZADD', KEYS[3], now, ARGV[4])
emit('agent.heartbeat', 'team', ARGV[5], 'agent', ARGV[4])
return now
"""

_UNREGISTER = """
local n = redis.call('HDEL', KEYS[2], ARGV[4])
redis.call('ZREM', KEYS[3], ARGV[4])
if n > 0 then emit('agent.unregistered', 'team', ARGV[5], 'agent', ARGV[4]) end
return n
"""


@dataclass
class AgentTask:
    """A unit of work in a team's queue. ``priority`` runs from 1 to 10 (highest).

    The claim fields (``status``, ``claimed_by``, ``fencing_token``, ``attempts``,
    ``lease_expires_ms``) are filled in by the coordinator, not by the caller.
    """

    task_id: str
    task_type: str
    description: str = ""
    priority: int = 5
    context: dict[str, Any] = field(default_factory=dict)
    status: str = "pending"
    claimed_by: str | None = None
    fencing_token: int | None = None
    attempts: int = 0
    lease_expires_ms: int | None = None
    result: Any = None

    _SPEC = ("task_id", "task_type", "description", "priority", "context")

    def spec_json(self, limit: int) -> bytes:
        spec = {name: value for name, value in asdict(self).items() if name in self._SPEC}
        return encode(spec, limit, "task")

    def validate(self) -> None:
        check_id(self.task_id, "task_id")
        check_id(self.task_type, "task_type")
        check_priority(self.priority)
        if not isinstance(self.description, str):
            raise InvalidValue("description must be a string")
        if not isinstance(self.context, dict):
            raise InvalidValue("context must be a dict")


@dataclass(frozen=True)
class AgentInfo:
    agent_id: str
    capabilities: list[str]
    last_heartbeat_ms: int
    liveness: str  # "alive", "late" or "dead"


class AgentCoordinator:
    """Coordinates one team: agent registry, heartbeats and task queues.

    ``access_tier`` and ``actor`` are who the coordinator acts as (for tier checks and
    events); requeueing and cancelling need STEWARD. Leases last ``lease_seconds``; a
    task is dead-lettered after ``max_attempts`` claims that did not complete. An agent
    is alive while its last heartbeat is younger than ``alive_seconds``, late until
    ``dead_seconds``, and dead after that.
    """

    def __init__(
        self,
        memory: RedisShortTermMemory,
        team_id: str,
        *,
        access_tier: AccessTier = AccessTier.CONTRIBUTOR,
        actor: str | None = None,
        lease_seconds: float = 60.0,
        max_attempts: int = 3,
        alive_seconds: float = 30.0,
        dead_seconds: float | None = None,
    ) -> None:
        self.memory = memory
        self.team_id = check_id(team_id, "team_id")
        self.caller = Caller(
            check_id(actor or f"coordinator:{team_id}", "actor", max_length=MAX_ACTOR_LENGTH),
            access_tier,
        )
        self.lease_ms = ttl_ms(lease_seconds, "lease_seconds")
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise InvalidValue("max_attempts must be a positive integer")
        self.max_attempts = max_attempts
        self.alive_ms = ttl_ms(alive_seconds, "alive_seconds")
        self.dead_ms = (
            memory.ttl_ms(TTLStrategy.COORDINATION)
            if dead_seconds is None
            else ttl_ms(dead_seconds, "dead_seconds")
        )
        # Leases this coordinator took, so complete_task(task_id, result) works as in
        # the reference without passing the token around.
        self._held: dict[str, tuple[str, int, str]] = {}
        # Small caches for the hot path (claims): callers by agent, key lists by type.
        self._callers: dict[str, Caller] = {}
        self._claim_keys: dict[str, list[str]] = {}

    def _key(self, part: str) -> str:
        return self.memory.keys.team(self.team_id, part)

    def _as(self, agent_id: str | None) -> Caller:
        if agent_id is None:
            return self.caller
        caller = self._callers.get(agent_id)
        if caller is None:
            if len(self._callers) >= _CACHE_SIZE:
                self._callers.clear()
            caller = Caller(check_id(agent_id, "agent_id"), self.caller.tier)
            self._callers[agent_id] = caller
        return caller

    def _keys(self, *parts: str, task_type: str = "", task_id: str = "") -> list[str]:
        """A script's keys, named as in its ``KEYS`` comment: the team's own keys by
        part, and ``queue`` and ``leases`` (of ``task_type``) and ``result`` (of
        ``task_id``)."""
        keys, team = self.memory.keys, self.team_id
        names = []
        for part in parts:
            match part:
                case "queue":
                    names.append(keys.queue(team, task_type))
                case "leases":
                    names.append(keys.leases(team, task_type))
                case "result":
                    names.append(keys.result(team, task_id))
                case _:
                    names.append(keys.team(team, part))
        return names

    def _keys_for_claim(self, task_type: str) -> list[str]:
        keys = self._claim_keys.get(task_type)
        if keys is None:
            if len(self._claim_keys) >= _CACHE_SIZE:
                self._claim_keys.clear()
            check_id(task_type, "task_type")
            keys = self._keys(*_CLAIM_KEYS, task_type=task_type)
            self._claim_keys[task_type] = keys
        return keys

    # agents --------------------------------------------------------------------

    def register_agent(self, agent_id: str, capabilities: list[str] | None = None) -> bool:
        """Register (or re-register) an agent; returns True when it is new."""
        caller = self._as(agent_id)
        caller.require(WRITE, "register_agent")
        caps = list(capabilities or [])
        for cap in caps:
            check_id(cap, "capability")
        info = encode({"capabilities": caps}, self.memory.max_value_bytes, "capabilities")
        fresh = self.memory.run_script(
            _REGISTER,
            caller,
            [self._key("agents"), self._key("heartbeats"), self.memory.keys.teams],
            [agent_id, info, self.team_id],
        )
        return bool(fresh)

    def unregister_agent(self, agent_id: str) -> bool:
        caller = self._as(agent_id)
        caller.require(WRITE, "unregister_agent")
        n = self.memory.run_script(
            _UNREGISTER,
            caller,
            [self._key("agents"), self._key("heartbeats")],
            [agent_id, self.team_id],
        )
        return bool(n)

    def heartbeat(self, agent_id: str) -> None:
        """Record that ``agent_id`` is alive (by the server's clock)."""
        caller = self._as(agent_id)
        caller.require(WRITE, "heartbeat")
        self.memory.run_script(
            _HEARTBEAT,
            caller,
            [self._key("agents"), self._key("heartbeats")],
            [agent_id, self.team_id],
        )

    def liveness(self, last_heartbeat_ms: int, now_ms: int) -> str:
        age = now_ms - last_heartbeat_ms
        if age < self.alive_ms:
            return "alive"
        return "late" if age < self.dead_ms else "dead"

    def get_agents(self, limit: int = 100, cursor: str | None = None) -> Page[AgentInfo]:
        """Registered agents with capabilities and liveness, most recently seen first."""
        start = offset_cursor(cursor)
        limit = check_limit(limit)
        with self.memory.client.pipeline(transaction=False) as pipe:
            pipe.time()
            pipe.zcard(self._key("heartbeats"))
            pipe.zrevrange(self._key("heartbeats"), start, start + limit - 1, withscores=True)
            (seconds, micros), total, beats = pipe.execute()
        now = int(seconds) * 1000 + int(micros) // 1000
        ids = [m.decode() for m, _ in beats]
        infos = self.memory.client.hmget(self._key("agents"), ids) if ids else []
        agents = [
            AgentInfo(
                agent_id,
                decode(raw)["capabilities"] if raw else [],
                int(score),
                self.liveness(int(score), now),
            )
            for agent_id, (_, score), raw in zip(ids, beats, infos, strict=True)
        ]
        more = start + limit < total
        return Page(agents, str(start + limit) if more else None, total)

    # tasks ---------------------------------------------------------------------

    def add_task(self, task: AgentTask) -> bool:
        """Queue ``task``; adding a task_id that exists changes nothing and returns False."""
        self.caller.require(WRITE, "add_task")
        if not isinstance(task, AgentTask):
            raise TypeError(f"add_task takes an AgentTask, not {type(task).__name__}")
        task.validate()
        added = self.memory.run_script(
            _ADD,
            self.caller,
            [
                *self._keys("spec", "state", "queue", "types", "seq", task_type=task.task_type),
                self.memory.keys.teams,
                *self._keys("queue_changes"),
            ],
            [
                task.task_id,
                task.task_type,
                task.spec_json(self.memory.max_value_bytes),
                task.priority,
                self.team_id,
            ],
        )
        return bool(added)

    def claim_task(
        self, agent_id: str, task_type: str, *, lease_seconds: float | None = None
    ) -> AgentTask | None:
        """Claim the highest-priority, oldest pending task of ``task_type``, or None.

        The returned task carries its ``fencing_token``; this coordinator remembers it,
        so ``complete_task(task.task_id, result)`` works without passing it back.
        """
        caller = self._as(agent_id)
        caller.require(WRITE, "claim_task")
        keys = self._keys_for_claim(task_type)
        lease = self.lease_ms if lease_seconds is None else ttl_ms(lease_seconds, "lease_seconds")
        answer = self.memory.run_script(
            _CLAIM, caller, keys, [task_type, self.max_attempts, self.team_id, agent_id, lease]
        )
        if answer is None:
            return None
        spec, token, deadline, attempts = answer
        task = AgentTask(
            **decode(spec),
            status="claimed",
            claimed_by=agent_id,
            fencing_token=int(token),
            attempts=int(attempts),
            lease_expires_ms=int(deadline),
        )
        self._held[task.task_id] = (agent_id, task.fencing_token, task_type)
        return task

    def _lease(self, task_id: str, fencing_token: int | None) -> tuple[Caller, int, str]:
        """Who holds ``task_id``'s lease, with which token, for which task type."""
        check_id(task_id, "task_id")
        held = self._held.get(task_id)
        if fencing_token is None:
            if held is None:
                raise LeaseLost(
                    f"this coordinator holds no lease on task {task_id}; pass the "
                    "fencing_token from the claim"
                )
            agent_id, token, task_type = held
            return self._as(agent_id), token, task_type
        if held is not None and held[1] == fencing_token:
            return self._as(held[0]), held[1], held[2]
        # Another claim's token: the task may since have been re-added with another type.
        return self.caller, int(fencing_token), self._task_type(task_id)

    def _release(self, task_id: str, token: int) -> None:
        # Forget the lease once it is used or lost, but only the one that was used: a
        # late call with an old token must not drop a newer claim of the same task.
        if task_id in self._held and self._held[task_id][1] == token:
            del self._held[task_id]

    def complete_task(
        self, task_id: str, result: Any = None, *, fencing_token: int | None = None
    ) -> None:
        """Complete a claimed task with ``result``; refused unless the lease is current."""
        caller, token, task_type = self._lease(task_id, fencing_token)
        caller.require(WRITE, "complete_task")
        payload = encode(result, self.memory.max_value_bytes, "result")
        try:
            self.memory.run_script(
                _COMPLETE,
                caller,
                self._keys(*_COMPLETE_KEYS, task_type=task_type, task_id=task_id),
                [
                    task_id,
                    token,
                    self.team_id,
                    payload,
                    self.memory.ttl_ms(TTLStrategy.WORKING_RESULTS),
                ],
            )
        finally:
            self._release(task_id, token)

    def fail_task(
        self,
        task_id: str,
        error: Any = None,
        *,
        retry: bool = True,
        fencing_token: int | None = None,
    ) -> str:
        """Give a claimed task up. It goes back to its queue (``retry`` and attempts left)
        or to the dead-letter set; returns the new status, ``"pending"`` or ``"dead"``."""
        caller, token, task_type = self._lease(task_id, fencing_token)
        caller.require(WRITE, "fail_task")
        payload = encode({"error": error}, self.memory.max_value_bytes, "error")
        try:
            status = self.memory.run_script(
                _FAIL,
                caller,
                self._keys(*_FAIL_KEYS, task_type=task_type, task_id=task_id),
                [
                    task_id,
                    token,
                    self.team_id,
                    payload,
                    "1" if retry else "0",
                    self.max_attempts,
                    self.memory.ttl_ms(TTLStrategy.WORKING_RESULTS),
                ],
            )
        finally:
            self._release(task_id, token)
        return status.decode()

    def extend_lease(
        self, task_id: str, *, fencing_token: int | None = None, lease_seconds: float | None = None
    ) -> int:
        """Push a held lease's deadline out; returns the new deadline (server ms)."""
        caller, token, task_type = self._lease(task_id, fencing_token)
        caller.require(WRITE, "extend_lease")
        lease = self.lease_ms if lease_seconds is None else ttl_ms(lease_seconds, "lease_seconds")
        return int(
            self.memory.run_script(
                _EXTEND,
                caller,
                self._keys(*_EXTEND_KEYS, task_type=task_type),
                [task_id, token, self.team_id, lease],
            )
        )

    def reap_expired(self) -> int:
        """Return every task whose lease ran out to its queue (or dead-letter it)."""
        self.caller.require(WRITE, "reap_expired")
        total = 0
        for task_type in self.task_types():
            reaped = REAP_BATCH
            while reaped == REAP_BATCH:  # a script reaps one batch, to stay short
                reaped = self._reap(task_type)
                total += reaped
        return total

    def _reap(self, task_type: str) -> int:
        return self.memory.run_script(
            _REAP_ONLY,
            self.caller,
            self._keys(*_REAP_KEYS, task_type=task_type),
            [task_type, self.max_attempts, self.team_id],
        )

    def requeue_task(self, task_id: str) -> None:
        """Put a dead-lettered or claimed task back in its queue with no attempts (STEWARD)."""
        self._admin(task_id, "requeue")

    def cancel_task(self, task_id: str) -> None:
        """Remove a task that is not finished, wherever it is (STEWARD)."""
        self._admin(task_id, "cancel")

    def _admin(self, task_id: str, action: str) -> None:
        self.caller.require(ADMIN, f"{action}_task")
        task_type = self._task_type(task_id)
        self.memory.run_script(
            _ADMIN,
            self.caller,
            self._keys(*_ADMIN_KEYS, task_type=task_type, task_id=task_id),
            [task_id, action, self.team_id, task_type],
        )
        self._held.pop(task_id, None)

    def _task_type(self, task_id: str) -> str:
        raw = self.memory.client.hget(self._key("state"), check_id(task_id, "task_id"))
        if raw is None:
            raise NotFound(f"no task {task_id} in team {self.team_id}")
        return raw.decode().split("\t")[5]

    # reading -------------------------------------------------------------------

    def task_types(self) -> list[str]:
        return sorted(t.decode() for t in self.memory.client.smembers(self._key("types")))

    def get_task(self, task_id: str) -> AgentTask | None:
        """A task with its current state, or None when unknown (or its result expired)."""
        tasks = self._load([check_id(task_id, "task_id")])
        return tasks[0] if tasks else None

    def _load(self, ids: list[str]) -> list[AgentTask]:
        if not ids:
            return []
        with self.memory.client.pipeline(transaction=False) as pipe:
            pipe.hmget(self._key("spec"), ids)
            pipe.hmget(self._key("state"), ids)
            pipe.mget([self.memory.keys.result(self.team_id, i) for i in ids])
            specs, states, results = pipe.execute()
        tasks = []
        for spec, state, result in zip(specs, states, results, strict=True):
            if spec is None or state is None:
                continue
            status, attempts, holder, token, _, _ = state.decode().split("\t")
            task = AgentTask(**decode(spec))
            task.status = status
            task.attempts = int(attempts)
            task.claimed_by = holder or None
            task.fencing_token = int(token) if token else None
            task.result = decode(result)
            tasks.append(task)
        claimed = [t for t in tasks if t.status == "claimed"]
        if claimed:  # the lease sets are the one record of deadlines
            with self.memory.client.pipeline(transaction=False) as pipe:
                for task in claimed:
                    pipe.zscore(self.memory.keys.leases(self.team_id, task.task_type), task.task_id)
                for task, deadline in zip(claimed, pipe.execute(), strict=True):
                    task.lease_expires_ms = None if deadline is None else int(deadline)
        return tasks

    def list_tasks(
        self,
        status: str,
        task_type: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[AgentTask]:
        """Tasks in one state, a page at a time.

        ``pending`` needs ``task_type`` and lists in claim order; ``claimed`` lists by
        lease deadline (its listing reads every claim: there are as many as workers); ``completed`` and ``dead`` newest first.
        """
        start = offset_cursor(cursor)
        limit = check_limit(limit)
        end = start + limit - 1
        client = self.memory.client
        if status == "pending":
            if task_type is None:
                raise InvalidValue("listing pending tasks needs a task_type")
            key = self.memory.keys.queue(self.team_id, check_id(task_type, "task_type"))
            total, ids = client.zcard(key), client.zrange(key, start, end)
        elif status == "claimed":
            claims = self._claims(task_type)
            total, ids = len(claims), [task_id for task_id, _ in claims[start : end + 1]]
        elif status in ("completed", "dead"):
            key = self._key(status)
            total, ids = client.zcard(key), client.zrevrange(key, start, end)
        else:
            raise InvalidValue(
                f"status must be pending, claimed, completed or dead, not {status!r}"
            )
        tasks = self._load([i.decode() for i in ids])
        more = start + limit < total
        return Page(tasks, str(start + limit) if more else None, total)

    def _claims(self, task_type: str | None) -> list[tuple[bytes, float]]:
        """Claimed task ids with their deadlines, soonest first, across types."""
        types = [check_id(task_type, "task_type")] if task_type else self.task_types()
        with self.memory.client.pipeline(transaction=False) as pipe:
            for name in types:
                pipe.zrange(self.memory.keys.leases(self.team_id, name), 0, -1, withscores=True)
            per_type = pipe.execute()
        return sorted((pair for pairs in per_type for pair in pairs), key=lambda p: p[1])

    def counts(self) -> dict[str, Any]:
        """Tasks per state, and pending per task type."""
        return team_summaries(self.memory, [self.team_id], agents=False)[self.team_id]

    def _liveness_ranges(self, now_ms: int) -> list[tuple[str, str | int, str | int]]:
        """The heartbeat ranges (for ZCOUNT) of alive, late and dead agents."""
        alive, dead = now_ms - self.alive_ms, now_ms - self.dead_ms
        return [("alive", f"({alive}", "+inf"), ("late", f"({dead}", alive), ("dead", "-inf", dead)]

    def aggregate_results(self, limit: int = 100) -> dict[str, Any]:
        """Totals by status, and the newest ``limit`` completed results."""
        counts = self.counts()
        done = self.list_tasks("completed", limit=limit)
        return {
            "team_id": self.team_id,
            "total_pending": counts["pending"],
            "total_claimed": counts["claimed"],
            "total_completed": counts["completed"],
            "total_dead_lettered": counts["dead"],
            "by_status": {k: counts[k] for k in ("pending", "claimed", "completed", "dead")},
            "results": [
                {"task_id": t.task_id, "task_type": t.task_type, "result": t.result} for t in done
            ],
        }


def list_teams(memory: RedisShortTermMemory, caller: Caller | None = None) -> list[str]:
    """Every team that has registered an agent or queued a task, most recently active
    first. Pages that show teams use ``team_page``: this list only grows."""
    if caller is not None:
        caller.require(READ, "listing teams")
    return [t.decode() for t in memory.client.zrevrange(memory.keys.teams, 0, -1)]


def agent_teams(memory: RedisShortTermMemory) -> dict[str, list[str]]:
    """The teams each registered agent is in, by agent id."""
    team_ids = list_teams(memory)
    with memory.client.pipeline(transaction=False) as pipe:
        for team_id in team_ids:
            pipe.zrange(memory.keys.team(team_id, "heartbeats"), 0, -1)  # its registered agents
        registered = pipe.execute()
    teams: dict[str, list[str]] = {}
    for team_id, agents in zip(team_ids, registered, strict=True):
        for agent_id in agents:
            teams.setdefault(agent_id.decode(), []).append(team_id)
    return teams


def team_page(
    memory: RedisShortTermMemory, limit: int = 50, cursor: str | None = None
) -> Page[str]:
    """Teams a page at a time, most recently active first."""
    start = offset_cursor(cursor)
    limit = check_limit(limit)
    with memory.client.pipeline(transaction=False) as pipe:
        pipe.zcard(memory.keys.teams)
        pipe.zrevrange(memory.keys.teams, start, start + limit - 1)
        total, members = pipe.execute()
    more = start + limit < total
    return Page([t.decode() for t in members], str(start + limit) if more else None, total)


def team_summaries(
    memory: RedisShortTermMemory, team_ids: list[str], *, agents: bool = True
) -> dict[str, dict[str, Any]]:
    """For each team: tasks per state, pending per task type, and (with ``agents``) how
    many agents are alive, late and dead (by a coordinator's default thresholds). Two
    round trips, however many teams."""
    keys = memory.keys
    coordinators = [AgentCoordinator(memory, team_id) for team_id in team_ids]
    with memory.client.pipeline(transaction=False) as pipe:
        pipe.time()
        for coordinator in coordinators:
            pipe.smembers(coordinator._key("types"))
        (seconds, micros), *type_sets = pipe.execute()
    now = int(seconds) * 1000 + int(micros) // 1000
    cutoff = now - memory.ttl_ms(TTLStrategy.WORKING_RESULTS)
    types = [sorted(t.decode() for t in members) for members in type_sets]
    with memory.client.pipeline(transaction=False) as pipe:
        for coordinator, team_types in zip(coordinators, types, strict=True):
            team = coordinator.team_id
            for task_type in team_types:
                pipe.zcard(keys.queue(team, task_type))
            for task_type in team_types:
                pipe.zcard(keys.leases(team, task_type))
            pipe.zcount(coordinator._key("completed"), f"({cutoff}", "+inf")
            pipe.zcard(coordinator._key("dead"))
            if agents:
                for _, low, high in coordinator._liveness_ranges(now):
                    pipe.zcount(coordinator._key("heartbeats"), low, high)
        answers = iter(pipe.execute())
    summaries = {}
    for coordinator, team_types in zip(coordinators, types, strict=True):
        pending_by_type = {task_type: next(answers) for task_type in team_types}
        claimed = sum(next(answers) for _ in team_types)
        completed, dead = next(answers), next(answers)
        summary = {
            "pending": sum(pending_by_type.values()),
            "claimed": claimed,
            "completed": completed,
            "dead": dead,
            "pending_by_type": pending_by_type,
        }
        if agents:
            ranges = coordinator._liveness_ranges(now)
            summary["agents"] = {state: next(answers) for state, _, _ in ranges}
        summaries[coordinator.team_id] = summary
    return summaries
