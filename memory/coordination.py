"""``AgentCoordinator``: one team's agent registry (``memory.registry``) and task
queues (``memory.tasks``), as the reference API has them in one object."""

from __future__ import annotations

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
