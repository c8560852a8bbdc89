"""``AgentCoordinator``: one team's agent registry (``memory.registry``) and task
queues (``memory.tasks``), as the reference API has them in one object."""

from __future__ import annotations

from typing import Any

from .registry import AgentRegistry
from .tasks import TaskQueue


class AgentCoordinator(AgentRegistry, TaskQueue):
    """Coordinates one team: agent registry, heartbeats and task queues.

    ``access_tier`` and ``actor`` are who the coordinator acts as (for tier checks and
    events); requeueing and cancelling need STEWARD. Leases last ``lease_seconds``; a
    task is dead-lettered after ``max_attempts`` claims that did not complete. An agent
    is alive while its last heartbeat is younger than ``alive_seconds``, late until
    ``dead_seconds``, and dead after that.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> AgentCoordinator:
        # On a server's memory (memory.remote), the same methods go to the server.
        classes = getattr(kwargs.get("memory", args[0] if args else None), "classes", None)
        if cls is AgentCoordinator and classes and cls in classes:
            return super().__new__(classes[cls])
        return super().__new__(cls)
