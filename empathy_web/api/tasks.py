"""A team's task queue: add, claim (with a long poll), complete, fail, extend, list.

Only the holder of a claim, with its fencing token, may complete, fail or extend it:
the holder is the credential's agent, whatever the request says.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from empathy_web.dashboard.agents_memory import get_memory
from memory import AgentCoordinator, AgentTask, NotFound
from memory.events import Event
from memory.page import MAX_PAGE
from memory.tiers import WRITE

from .core import ERRORS, at_least, team_of
from .waiting import MAX_WAIT, at_once_or_wait

router = Router(tags=["tasks"])


class NewTask(Schema):
    task_id: str
    task_type: str
    description: str = ""
    priority: int = Field(5, ge=1, le=10)
    context: dict[str, Any] = Field(default_factory=dict)


class Task(Schema):
    task_id: str
    task_type: str
    description: str
    priority: int
    context: dict[str, Any]
    status: str
    claimed_by: str | None
    fencing_token: int | None
    attempts: int
    lease_expires_ms: int | None
    result: Any = None


class Added(Schema):
    added: bool = Field(description="False when a task of that id already exists")


class Claim(Schema):
    task_type: str
    lease_seconds: float | None = Field(None, gt=0, description="default: 60")
    request_id: str | None = Field(None, description="send the same one to retry a claim")
    wait: float = Field(0, ge=0, le=MAX_WAIT, description="seconds to wait for a task")


class Claimed(Schema):
    task: Task | None = Field(description="null: nothing to claim")


class Complete(Schema):
    fencing_token: int
    result: Any = None
    claim_next: str | None = Field(
        None,
        description="a task type: once this task is complete, claim the next task of that "
        "type for this agent, in the same call (one call per task in an agent's loop)",
    )


class Completed(Schema):
    ok: bool = True
    next: Task | None = Field(
        None, description="with claim_next: the task claimed next (null: none to claim)"
    )


class Fail(Schema):
    fencing_token: int
    error: Any = None
    retry: bool = True


class Failed(Schema):
    status: Literal["pending", "dead"]


class Extend(Schema):
    fencing_token: int
    lease_seconds: float | None = Field(None, gt=0)


class Extended(Schema):
    lease_expires_ms: int


class Tasks(Schema):
    items: list[Task]
    next_cursor: str | None
    total: int | None


class Listing(Schema):
    status: Literal["pending", "claimed", "completed", "dead"]
    task_type: str | None = Field(None, description="needed for pending")
    limit: int = Field(50, ge=1, le=MAX_PAGE)
    cursor: str | None = None


def coordinator(request: HttpRequest, team: str, lease_seconds: float = 60.0) -> AgentCoordinator:
    """The team, as the credential's agent acts on it."""
    credential = request.auth
    return AgentCoordinator(
        get_memory(),
        team_of(request, team),
        access_tier=credential.access_tier,
        actor=credential.agent_id,
        lease_seconds=lease_seconds,
    )


@router.post("/{team}/tasks", response={200: Added, **ERRORS}, summary="Add a task")
def add(request: HttpRequest, team: str, body: NewTask) -> Added:
    """Queue a task in ``team``; an id that exists changes nothing (``added`` False)."""
    return Added(added=coordinator(request, team).add_task(AgentTask(**body.dict())))


@router.post("/{team}/tasks/claim", response={200: Claimed, **ERRORS}, summary="Claim a task")
def claim(request: HttpRequest, team: str, body: Claim) -> Claimed:
    """Claim the highest-priority, oldest pending task of ``task_type`` for this agent,
    with a lease and a fencing token. With ``wait``, waits up to that many seconds for
    one. A retried claim with the same ``request_id`` gets the same task back."""
    tasks = coordinator(request, team)
    at_least(request, WRITE, "claim_task")
    agent = request.auth.agent_id

    def attempt() -> AgentTask | None:
        return tasks.claim_task(
            agent, body.task_type, lease_seconds=body.lease_seconds, request_id=body.request_id
        )

    def in_team(event: Event) -> bool:
        return event.type.startswith("task.") and event.ids.get("team") == team

    def answer(task: AgentTask | None) -> Claimed:
        return Claimed(task=Task(**asdict(task)) if task else None)

    return at_once_or_wait(attempt, in_team, body.wait, answer)


@router.post(
    "/{team}/tasks/{task_id}/complete", response={200: Completed, **ERRORS}, summary="Complete"
)
def complete(request: HttpRequest, team: str, task_id: str, body: Complete) -> Completed:
    """Complete a task this agent holds, with its fencing token and a result; with
    ``claim_next``, then claim the next task of that type. Sent again (after an error
    or a lost reply), the call completes nothing twice and claims the same next task:
    completing is idempotent, and the next claim's request id is this claim's token."""
    tasks = coordinator(request, team)
    tasks.complete_task(task_id, body.result, fencing_token=body.fencing_token)
    if body.claim_next is None:
        return Completed()
    at_least(request, WRITE, "claim_task")
    request_id = f"after-{body.fencing_token}"  # tokens are unique in a team
    task = tasks.claim_task(request.auth.agent_id, body.claim_next, request_id=request_id)
    return Completed(next=Task(**asdict(task)) if task else None)


@router.post("/{team}/tasks/{task_id}/fail", response={200: Failed, **ERRORS}, summary="Fail")
def fail(request: HttpRequest, team: str, task_id: str, body: Fail) -> Failed:
    """Give up a task this agent holds: back to its queue (``retry``, attempts left) or
    to the dead letters. Returns the status it went to."""
    status = coordinator(request, team).fail_task(
        task_id, body.error, retry=body.retry, fencing_token=body.fencing_token
    )
    return Failed(status=status)


@router.post(
    "/{team}/tasks/{task_id}/extend", response={200: Extended, **ERRORS}, summary="Extend lease"
)
def extend(request: HttpRequest, team: str, task_id: str, body: Extend) -> Extended:
    """Push the lease of a task this agent holds further out."""
    deadline = coordinator(request, team).extend_lease(
        task_id, fencing_token=body.fencing_token, lease_seconds=body.lease_seconds
    )
    return Extended(lease_expires_ms=deadline)


@router.get("/{team}/tasks", response={200: Tasks, **ERRORS}, summary="List tasks")
def list_tasks(request: HttpRequest, team: str, query: Query[Listing]) -> Tasks:
    """A team's tasks in one state, a page at a time (``pending`` needs ``task_type``)."""
    page = coordinator(request, team).list_tasks(
        query.status, query.task_type, query.limit, query.cursor
    )
    return Tasks(
        items=[Task(**asdict(t)) for t in page], next_cursor=page.next_cursor, total=page.total
    )


class Counts(Schema):
    pending: int
    claimed: int
    completed: int
    dead: int
    pending_by_type: dict[str, int] = Field(default_factory=dict)


@router.get("/{team}/counts", response={200: Counts, **ERRORS}, summary="Count tasks")
def counts(request: HttpRequest, team: str) -> Counts:
    """How many of the team's tasks are in each state, and pending per task type."""
    found = coordinator(request, team).counts()
    return Counts(**{name: found[name] for name in Counts.model_fields})


@router.get("/{team}/tasks/{task_id}", response={200: Task, **ERRORS}, summary="Get a task")
def get(request: HttpRequest, team: str, task_id: str) -> Task:
    """One task with its state (and its result, until the result expires)."""
    task = coordinator(request, team).get_task(task_id)
    if task is None:
        raise NotFound(f"no task {task_id} in team {team} (or its result has expired)")
    return Task(**asdict(task))
