"""Dead-lettered tasks by type and failure reason, and a steward's requeue of many at
once: each task is requeued on its own, atomically (``AgentCoordinator.requeue_task``),
and audited; a request reads and requeues a bounded number, and says how many more
match."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from memory import AgentCoordinator, AgentTask, NotFound, StateConflict

READ_AT_MOST = 5_000  # dead-lettered tasks read per request, matching or not
REQUEUE_AT_MOST = 500  # tasks requeued per request
BATCH = 200
MAX_REASON = 200  # characters of a reason filter


def reason_of(task: AgentTask) -> str:
    """What a dead-lettered task failed with, as text ("" for nothing said)."""
    error = task.result.get("error") if isinstance(task.result, dict) else task.result
    return "" if error is None else str(error)


@dataclass
class DeadMatch:
    """Dead-lettered tasks of one team that match the filters, newest first."""

    tasks: list[AgentTask] = field(default_factory=list)
    more: bool = False  # more may match: past ``limit``, or not read within the budget
    read: int = 0


def matching(coordinator: AgentCoordinator, task_type: str, reason: str, limit: int) -> DeadMatch:
    """Up to ``limit`` dead-lettered tasks of ``task_type`` ("" any) whose failure holds
    ``reason`` ("" any; case-insensitive), reading at most ``READ_AT_MOST``."""
    found, wanted, cursor = DeadMatch(), reason.casefold(), None
    while found.read < READ_AT_MOST:
        page = coordinator.list_tasks("dead", limit=BATCH, cursor=cursor)
        for task in page:
            found.read += 1
            if task_type and task.task_type != task_type:
                continue
            if wanted and wanted not in reason_of(task).casefold():
                continue
            if len(found.tasks) == limit:
                found.more = True
                return found
            found.tasks.append(task)
        cursor = page.next_cursor
        if cursor is None:
            return found
    found.more = True  # out of budget with more left to read
    return found


def requeue_matching(
    coordinator: AgentCoordinator, task_type: str, reason: str
) -> tuple[list[str], dict[str, str], bool]:
    """Requeue the matching dead-lettered tasks, up to ``REQUEUE_AT_MOST``: the ids
    requeued, those that could not be (id -> why: someone else moved it meanwhile), and
    whether more may match."""
    found = matching(coordinator, task_type, reason, REQUEUE_AT_MOST)
    done, failed = [], {}
    for task in found.tasks:
        try:
            coordinator.requeue_task(task.task_id)
        except (NotFound, StateConflict) as exc:
            failed[task.task_id] = str(exc)
        else:
            done.append(task.task_id)
    return done, failed, found.more


def filters(params: Any) -> tuple[str, str]:
    """The dead-letter filters of a query or form: task type and failure reason."""
    return (params.get("dead_type") or "").strip(), (params.get("dead_reason") or "").strip()[
        :MAX_REASON
    ]
