"""A simulated code-review team, for demos: agents that really use short-term memory.

Each agent runs in its own thread with its own ``EmpathyOS``; together they register,
heartbeat, queue and claim tasks, stash results, signal, share session context and stage
patterns, and a lead validates some of them, so every panel of a dashboard has life.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

from .coordination import AgentCoordinator
from .empathy_os import EmpathyOS
from .exceptions import AlreadyDecided, NotFound
from .patterns import StagedPattern
from .redis_memory import RedisShortTermMemory
from .sessions import TeamSession
from .tasks import AgentTask
from .tiers import AccessTier

FINDINGS = {
    "security_review": [
        ("Parameterised queries", "Build SQL with placeholders, never string formatting"),
        ("JWT refresh window", "Refresh tokens five minutes before they expire"),
        ("Secrets from the environment", "Read credentials from the environment"),
    ],
    "style_review": [
        ("One name per idea", "Name a helper after what it returns"),
        ("Early returns", "Return early instead of nesting conditionals"),
    ],
    "performance_review": [
        ("Batch round trips", "Pipeline Redis commands issued in a loop"),
        ("Select related rows", "Fetch related rows in one query, not one per row"),
        ("Cache hot reads", "Cache read-mostly lookups with a short TTL"),
    ],
}


@dataclass
class SimulatedTeam:
    """Runs until ``stop()``; ``pace`` scales every pause (smaller is busier).

    Now and then a specialist "dies" holding a task: it stops heartbeating and never
    finishes, so its lease runs out and the task goes back to the queue (or, after
    ``max_attempts``, to the dead-letter set); after a while it comes back.
    """

    memory: RedisShortTermMemory
    team_id: str = "code_review_team"
    pace: float = 1.0
    seed: int | None = None
    lease_seconds: float = 15.0
    crash_rate: float = 0.08
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        specialists = [
            ("security_agent", "security_review"),
            ("performance_agent", "performance_review"),
            ("style_agent", "style_review"),
        ]
        self._threads = [
            threading.Thread(target=self._specialist, args=(name, kind), daemon=True)
            for name, kind in specialists
        ]
        self._threads.append(threading.Thread(target=self._lead, daemon=True))
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)

    def _pause(self, rng: random.Random, low: float, high: float) -> bool:
        """Sleep a while; False once the team is stopping."""
        return not self._stop.wait(rng.uniform(low, high) * self.pace)

    def _specialist(self, name: str, task_type: str) -> None:
        rng = random.Random(None if self.seed is None else hash((self.seed, name)))
        agent = EmpathyOS(name, short_term_memory=self.memory)
        coordinator = AgentCoordinator(
            self.memory, self.team_id, actor=name, lease_seconds=self.lease_seconds
        )
        coordinator.register_agent(name, [task_type])
        done = 0
        while self._pause(rng, 0.5, 2.0):
            coordinator.heartbeat(name)
            task = coordinator.claim_task(name, task_type)
            if task is None:
                continue
            if not self._pause(rng, 0.5, 1.5):
                return
            if rng.random() < self.crash_rate:
                # Die mid-task: no completion, no heartbeats, until well past the lease.
                if not self._pause(rng, 2 * self.lease_seconds, 3 * self.lease_seconds):
                    return
                continue
            issues = rng.randint(0, 4)
            if rng.random() < 0.1:
                coordinator.fail_task(task.task_id, "analyser timed out")
                continue
            coordinator.complete_task(task.task_id, {"issues": issues, "by": name})
            agent.stash(f"result:{task.task_id}", {"issues": issues}, ttl=900)
            agent.send_signal(
                "review_complete", {"task": task.task_id}, target_agent="lead_reviewer"
            )
            done += 1
            if rng.random() < 0.4:
                title, text = rng.choice(FINDINGS[task_type])
                agent.stage_pattern(
                    StagedPattern(
                        pattern_id=f"{name}-{task.task_id}",
                        agent_id=name,
                        pattern_type=task_type.split("_")[0],
                        name=title,
                        description=text,
                        confidence=round(rng.uniform(0.5, 0.99), 2),
                    )
                )

    def _lead(self) -> None:
        rng = random.Random(self.seed)
        lead = EmpathyOS(
            "lead_reviewer", short_term_memory=self.memory, access_tier=AccessTier.VALIDATOR
        )
        coordinator = AgentCoordinator(self.memory, self.team_id, actor="lead_reviewer")
        coordinator.register_agent("lead_reviewer", ["coordination"])
        number = 0
        while self._pause(rng, 1.0, 3.0):
            coordinator.heartbeat("lead_reviewer")
            if coordinator.counts()["pending"] >= 12:  # let the team catch up
                lead.receive_signals("review_complete")
                continue
            number += 1
            session = TeamSession(
                self.memory, f"pr_{number}", f"Review PR #{number}", actor="lead_reviewer"
            )
            for name, kind in (
                ("security_agent", "security"),
                ("performance_agent", "performance"),
                ("style_agent", "style"),
            ):
                session.add_agent(name)
                coordinator.add_task(
                    AgentTask(
                        task_id=f"pr{number}-{kind}",
                        task_type=f"{kind}_review",
                        description=f"{kind.title()} review of PR #{number}",
                        priority=rng.randint(1, 10),
                    )
                )
            session.share("scope", {"files_changed": rng.randint(1, 40)})
            lead.send_signal("status_update", {"phase": "reviewing", "pr": number})
            lead.receive_signals("review_complete")
            for pattern in lead.get_staged_patterns(limit=5):
                if rng.random() < 0.3:
                    try:
                        if pattern.confidence >= 0.75:
                            lead.promote_pattern(pattern.pattern_id)
                        else:
                            lead.reject_pattern(pattern.pattern_id, "confidence too low")
                    except (AlreadyDecided, NotFound):
                        pass  # a person validated it first, or it expired
