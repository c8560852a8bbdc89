"""Task queues that agents claim from, with leases and fencing tokens.

A team's keys share the ``{team:<id>}`` hash tag. Per task there is a spec (the
``AgentTask`` as JSON, in the ``spec`` hash) and a state (in the ``state`` hash, see
``memory.formats.TaskState``). Queues are sorted sets per task type scored so that
``ZPOPMIN`` gives the highest priority first and FIFO within a priority; leases are
sorted sets per task type by deadline, so a claim reaps exactly the expired leases of
its own type.

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

from . import scripts
from .codec import check_id, check_priority, decode, encode, ttl_ms
from .connection import redis_errors
from .exceptions import (
    InvalidValue,
    LeaseLost,
    MemoryConnectionError,
    NotFound,
    ShortTermMemoryError,
)
from .formats import TaskState
from .page import Page, check_limit, offset_cursor
from .summaries import team_summaries
from .team import CACHE_SIZE, TeamScope
from .tiers import ADMIN, READ, WRITE, Caller
from .ttl import TTLStrategy

# A script reaps at most this many expired leases, to stay short.
REAP_BATCH = 200


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


class TaskQueue(TeamScope):
    """A team's task queues: adding, claiming, finishing, and steward actions.

    Requeueing and cancelling need STEWARD. Leases last ``lease_seconds``; a task is
    dead-lettered after ``max_attempts`` claims that did not complete.
    """

    def _task_keys(
        self, *names: str, task_type: str = "", task_id: str = "", agent: str = ""
    ) -> dict[str, str]:
        """A script's keys by name: the team's own keys by part, ``queue``, ``leases``,
        ``waiting`` and ``type_timings`` of ``task_type``, ``result`` of ``task_id``, and
        ``agent_timings`` of ``agent``."""
        keys, team = self.memory.keys, self.team_id
        built = {}
        for name in names:
            if name in ("queue", "leases", "waiting", "type_timings"):
                built[name] = getattr(keys, name)(team, task_type)
            elif name == "result":
                built[name] = keys.result(team, task_id)
            elif name == "agent_timings":
                built[name] = keys.agent_timings(team, agent)
            else:
                built[name] = keys.team(team, name)
        return built

    def _claim_for(self, task_type: str) -> tuple[dict[str, str], dict[str, Any]]:
        """A claim's keys (but its request's) and fixed arguments for ``task_type``,
        built once per type: claims are the hot path."""
        claim = self._claim_cache.get(task_type)
        if claim is None:
            if len(self._claim_cache) >= CACHE_SIZE:
                self._claim_cache.clear()
            check_id(task_type, "task_type")
            names = [name for name in scripts.CLAIM_TASK.keys if name != "claim_request"]
            keys = self._task_keys(*names, task_type=task_type)
            claim = self._claim_cache[task_type] = (keys, self._reap_args(task_type))
        return claim

    def add_task(self, task: AgentTask) -> bool:
        """Queue ``task``; adding a task_id that exists changes nothing and returns False."""
        self.caller.require(WRITE, "add_task")
        if not isinstance(task, AgentTask):
            raise TypeError(f"add_task takes an AgentTask, not {type(task).__name__}")
        task.validate()
        names = [name for name in scripts.ADD_TASK.keys if name != "teams"]
        keys = self._task_keys(*names, task_type=task.task_type)
        added = self.memory.run_script(
            scripts.ADD_TASK,
            self.caller,
            {**keys, "teams": self.memory.keys.teams},
            {
                "task_id": task.task_id,
                "task_type": task.task_type,
                "spec_json": task.spec_json(self.memory.max_value_bytes),
                "priority": task.priority,
                "team": self.team_id,
            },
        )
        return bool(added)

    def claim_task(
        self,
        agent_id: str,
        task_type: str,
        *,
        lease_seconds: float | None = None,
        request_id: str | None = None,
    ) -> AgentTask | None:
        """Claim the highest-priority, oldest pending task of ``task_type``, or None.

        The returned task carries its ``fencing_token``; this coordinator remembers it,
        so ``complete_task(task.task_id, result)`` works without passing it back.

        Idempotent by ``request_id`` (one is made up when none is given): a claim sent
        again with the same id, while the first one's lease is held, returns that task
        with the same token and attempt count rather than a second one. After a
        ``MemoryConnectionError``, call again with the same ``request_id``.
        """
        caller = self._as(agent_id)
        caller.require(WRITE, "claim_task")
        if request_id is None:  # unique: this coordinator's random prefix and a count
            request = f"{self._request_prefix}{next(self._requests)}"
        else:
            request = check_id(request_id, "request_id")
        keys, args = self._claim_for(task_type)
        keys = {**keys, "claim_request": self.memory.keys.claim_request(self.team_id, request)}
        lease = self.lease_ms if lease_seconds is None else ttl_ms(lease_seconds, "lease_seconds")
        answer = self.memory.run_script(
            scripts.CLAIM_TASK,
            caller,
            keys,
            {**args, "agent": agent_id, "lease_ms": lease},
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

    def _reap_args(self, task_type: str) -> dict[str, Any]:
        return {
            "task_type": task_type,
            "max_attempts": self.max_attempts,
            "team": self.team_id,
            "batch": REAP_BATCH,
        }

    def _lease(self, task_id: str, fencing_token: int | None) -> tuple[Caller, int, str]:
        """Who acts on ``task_id``'s lease (the holder), with which token, for which task
        type. With a token this coordinator did not take, the holder must be its own
        caller: a token alone, which observers can see, is not enough to act."""
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

    def _with_lease(
        self,
        script: scripts.LuaScript,
        task_id: str,
        token: int | None,
        *,
        release: bool = True,
        **args: Any,
    ) -> Any:
        """Run a script that needs the current lease (complete, fail, extend) as its
        holder, and then forget the lease when ``release``. Only an answer from the
        server forgets it: after ``MemoryConnectionError`` the lease may still be held,
        and the same call can be made again."""
        caller, held_token, task_type = self._lease(task_id, token)
        caller.require(WRITE, script.name)
        keys = self._task_keys(
            *script.keys, task_type=task_type, task_id=task_id, agent=caller.user_id
        )
        args.update(task_id=task_id, token=held_token, agent=caller.user_id, team=self.team_id)
        try:
            answer = self.memory.run_script(script, caller, keys, args)
        except MemoryConnectionError:
            raise
        except ShortTermMemoryError:  # refused: the lease is not ours any more
            if release:
                self._release(task_id, held_token)
            raise
        if release:
            self._release(task_id, held_token)
        return answer

    def complete_task(
        self, task_id: str, result: Any = None, *, fencing_token: int | None = None
    ) -> None:
        """Complete a claimed task with ``result``; refused (``LeaseLost``) unless the
        caller holds the current lease. Fenced and idempotent: sent again after it took
        effect (a lost reply, a retry after ``MemoryConnectionError``), it succeeds again
        and changes nothing."""
        self._with_lease(
            scripts.COMPLETE_TASK,
            task_id,
            fencing_token,
            result_json=encode(result, self.memory.max_value_bytes, "result"),
            result_ttl_ms=self.memory.ttl_ms(TTLStrategy.WORKING_RESULTS),
        )

    def fail_task(
        self,
        task_id: str,
        error: Any = None,
        *,
        retry: bool = True,
        fencing_token: int | None = None,
    ) -> str:
        """Give a claimed task up. It goes back to its queue (``retry`` and attempts left)
        or to the dead-letter set; returns the new status, ``"pending"`` or ``"dead"``.
        Fenced and idempotent: sent again after it took effect, it returns the same
        status and changes nothing."""
        status = self._with_lease(
            scripts.FAIL_TASK,
            task_id,
            fencing_token,
            error_json=encode({"error": error}, self.memory.max_value_bytes, "error"),
            retry="1" if retry else "0",
            max_attempts=self.max_attempts,
            result_ttl_ms=self.memory.ttl_ms(TTLStrategy.WORKING_RESULTS),
        )
        return status.decode()

    def extend_lease(
        self, task_id: str, *, fencing_token: int | None = None, lease_seconds: float | None = None
    ) -> int:
        """Push a held lease's deadline out; returns the new deadline (server ms).
        Fenced and idempotent: sent again, it sets the deadline from the server's clock
        again."""
        lease = self.lease_ms if lease_seconds is None else ttl_ms(lease_seconds, "lease_seconds")
        return int(
            self._with_lease(
                scripts.EXTEND_LEASE, task_id, fencing_token, release=False, lease_ms=lease
            )
        )

    def reap_expired(self) -> int:
        """Return every task whose lease ran out to its queue (or dead-letter it).
        Idempotent: a second run finds nothing more to reap."""
        self.caller.require(WRITE, "reap_expired")
        total = 0
        for task_type in self.task_types():
            keys = self._task_keys(*scripts.REAP_EXPIRED.keys, task_type=task_type)
            reaped = REAP_BATCH
            while reaped == REAP_BATCH:  # a script reaps one batch, to stay short
                reaped = self.memory.run_script(
                    scripts.REAP_EXPIRED, self.caller, keys, self._reap_args(task_type)
                )
                total += reaped
        return total

    def requeue_task(self, task_id: str) -> None:
        """Put a dead-lettered or claimed task back in its queue with no attempts (STEWARD)."""
        self._steward(task_id, "requeue")

    def cancel_task(self, task_id: str) -> None:
        """Remove a task that is not finished, wherever it is (STEWARD)."""
        self._steward(task_id, "cancel")

    def _steward(self, task_id: str, action: str) -> None:
        self.caller.require(ADMIN, f"{action}_task")
        task_type = self._task_type(task_id)
        self.memory.run_script(
            scripts.STEWARD_TASK,
            self.caller,
            self._task_keys(*scripts.STEWARD_TASK.keys, task_type=task_type, task_id=task_id),
            {"task_id": task_id, "action": action, "team": self.team_id, "task_type": task_type},
        )
        self._held.pop(task_id, None)

    @redis_errors
    def _task_type(self, task_id: str) -> str:
        raw = self.memory.client.hget(self._key("state"), check_id(task_id, "task_id"))
        if raw is None:
            raise NotFound(f"no task {task_id} in team {self.team_id}")
        return TaskState.decode(raw).task_type

    # reading -------------------------------------------------------------------

    @redis_errors
    def task_types(self) -> list[str]:
        self.caller.require(READ, "task_types")
        return sorted(t.decode() for t in self.memory.client.smembers(self._key("types")))

    def get_task(self, task_id: str) -> AgentTask | None:
        """A task with its current state, or None when unknown (or its result expired)."""
        self.caller.require(READ, "get_task")
        tasks = self._load([check_id(task_id, "task_id")])
        return tasks[0] if tasks else None

    @redis_errors
    def _load(self, ids: list[str]) -> list[AgentTask]:
        if not ids:
            return []
        client, keys = self.memory.client, self.memory.keys
        with client.pipeline(transaction=False) as pipe:
            pipe.hmget(self._key("spec"), ids)
            pipe.hmget(self._key("state"), ids)
            pipe.execute_command("MGET", *(keys.result(self.team_id, i) for i in ids))
            specs, states, results = pipe.execute()
        tasks = []
        for spec, raw_state, result in zip(specs, states, results, strict=True):
            if spec is None or raw_state is None:
                continue
            state = TaskState.decode(raw_state)
            task = AgentTask(**decode(spec))
            task.status = state.status
            task.attempts = state.attempts
            task.claimed_by = state.holder or None
            task.fencing_token = int(state.token) if state.token else None
            task.result = decode(result)
            tasks.append(task)
        claimed = [t for t in tasks if t.status == "claimed"]
        if claimed:  # the lease sets are the one record of deadlines
            with client.pipeline(transaction=False) as pipe:
                for task in claimed:
                    pipe.zscore(keys.leases(self.team_id, task.task_type), task.task_id)
                for task, deadline in zip(claimed, pipe.execute(), strict=True):
                    task.lease_expires_ms = None if deadline is None else int(deadline)
        return tasks

    @redis_errors
    def list_tasks(
        self,
        status: str,
        task_type: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[AgentTask]:
        """Tasks in one state, a page at a time.

        ``pending`` needs ``task_type`` and lists in claim order; ``claimed`` lists by
        lease deadline (its listing reads every claim: there are as many as workers);
        ``completed`` and ``dead`` newest first.
        """
        self.caller.require(READ, "list_tasks")
        start = offset_cursor(cursor)
        limit = check_limit(limit)
        end = start + limit - 1
        if status == "pending":
            if task_type is None:
                raise InvalidValue("listing pending tasks needs a task_type")
            pages = self.pending_pages([task_type], limit, {task_type: cursor} if cursor else None)
            return pages[task_type]
        if status == "claimed":
            claims = self._claims(task_type)
            total, ids = len(claims), [task_id for task_id, _ in claims[start : end + 1]]
        elif status in ("completed", "dead"):
            with self.memory.client.pipeline(transaction=False) as pipe:  # newest first
                pipe.zcard(self._key(status))
                pipe.zrevrange(self._key(status), start, end)
                total, ids = pipe.execute()
        else:
            raise InvalidValue(
                f"status must be pending, claimed, completed or dead, not {status!r}"
            )
        tasks = self._load([i.decode() for i in ids])
        more = start + limit < total
        return Page(tasks, str(start + limit) if more else None, total)

    @redis_errors
    def pending_pages(
        self, task_types: list[str], limit: int = 50, cursors: dict[str, str] | None = None
    ) -> dict[str, Page[AgentTask]]:
        """A page of each type's pending tasks, as ``list_tasks("pending", t)`` gives it,
        in two round trips however many types; ``cursors``: the cursor of each type not
        on its first page."""
        self.caller.require(READ, "list_tasks")
        limit = check_limit(limit)
        types = [check_id(task_type, "task_type") for task_type in task_types]
        starts = [offset_cursor((cursors or {}).get(task_type)) for task_type in types]
        keys = self.memory.keys
        with self.memory.client.pipeline(transaction=False) as pipe:
            for task_type, start in zip(types, starts, strict=True):
                pipe.zcard(keys.queue(self.team_id, task_type))
                pipe.zrange(keys.queue(self.team_id, task_type), start, start + limit - 1)
            answers = iter(pipe.execute())
        slices = [(next(answers), [i.decode() for i in next(answers)]) for _ in types]
        loaded = {task.task_id: task for task in self._load([i for _, ids in slices for i in ids])}
        return {
            task_type: Page(
                [loaded[i] for i in ids if i in loaded],
                str(start + limit) if start + limit < total else None,
                total,
            )
            for task_type, start, (total, ids) in zip(types, starts, slices, strict=True)
        }

    def _claims(self, task_type: str | None) -> list[tuple[bytes, float]]:
        """Claimed task ids with their deadlines, soonest first, across types."""
        types = [check_id(task_type, "task_type")] if task_type else self.task_types()
        with self.memory.client.pipeline(transaction=False) as pipe:
            for name in types:
                pipe.zrange(self.memory.keys.leases(self.team_id, name), 0, -1, withscores=True)
            per_type = pipe.execute()
        return sorted((pair for pairs in per_type for pair in pairs), key=lambda p: p[1])

    def counts(self) -> dict[str, Any]:
        """Tasks per state, pending per task type, and how long each type's oldest
        pending task has waited (``waiting_ms``, ms)."""
        self.caller.require(READ, "counts")
        return team_summaries(self.memory, self.caller, [self.team_id], agents=False)[self.team_id]

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
