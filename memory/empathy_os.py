"""``EmpathyOS``: one agent (or person) working with short-term memory."""

from __future__ import annotations

from typing import Any

from . import collaboration, conflicts, patterns, signals, working
from .codec import check_id
from .collaboration import CollaborationState
from .conflicts import Conflict
from .page import Page
from .patterns import StagedPattern
from .redis_memory import RedisShortTermMemory, get_redis_memory
from .tiers import AccessTier, Caller


class EmpathyOS:
    """An agent identified by ``user_id``, acting on ``short_term_memory`` with
    ``access_tier``. Without a memory it uses ``get_redis_memory()`` on first use."""

    def __new__(cls, *args: Any, **kwargs: Any) -> EmpathyOS:
        # On a server's memory (memory.remote), the same methods go to the server.
        classes = getattr(
            kwargs.get("short_term_memory", args[1] if len(args) > 1 else None), "classes", None
        )
        if cls is EmpathyOS and classes and cls in classes:
            return super().__new__(classes[cls])
        return super().__new__(cls)

    def __init__(
        self,
        user_id: str,
        short_term_memory: RedisShortTermMemory | None = None,
        access_tier: AccessTier = AccessTier.CONTRIBUTOR,
    ) -> None:
        self.user_id = check_id(user_id, "user_id")
        self.access_tier = AccessTier(access_tier)
        self._memory = short_term_memory
        self._caller = Caller(self.user_id, self.access_tier)
        self._collaboration_state: CollaborationState | None = None

    @property
    def short_term_memory(self) -> RedisShortTermMemory:
        if self._memory is None:
            self._memory = get_redis_memory()
        return self._memory

    # working memory -----------------------------------------------------------

    def stash(self, key: str, data: Any, ttl: float | None = None) -> None:
        """Store ``data`` (JSON) under ``key`` for ``ttl`` seconds (default 1 hour)."""
        working.stash(self.short_term_memory, self._caller, key, data, ttl)

    def retrieve(self, key: str, agent_id: str | None = None) -> Any:
        """Your value under ``key`` (or ``agent_id``'s); None when missing or expired."""
        return working.retrieve(self.short_term_memory, self._caller, key, agent_id)

    def delete(self, key: str) -> bool:
        return working.delete(self.short_term_memory, self._caller, key)

    def clear_memory(self, agent_id: str | None = None) -> int:
        """Delete all your working memory, or another agent's (STEWARD)."""
        return working.clear(self.short_term_memory, self._caller, agent_id)

    # patterns ------------------------------------------------------------------

    def stage_pattern(self, pattern: StagedPattern) -> StagedPattern:
        """Stage a discovered pattern for validation; returns it with ``staged_at``."""
        return patterns.stage(self.short_term_memory, self._caller, pattern)

    def get_staged_patterns(
        self, limit: int = 50, cursor: str | None = None
    ) -> Page[StagedPattern]:
        """Staged patterns, newest first; ``.next_cursor`` continues the listing."""
        return patterns.list_staged(self.short_term_memory, self._caller, limit, cursor)

    def promote_pattern(self, pattern_id: str) -> StagedPattern:
        """Approve a staged pattern (VALIDATOR); returns it for the pattern library."""
        return patterns.decide(self.short_term_memory, self._caller, pattern_id, "promoted")

    def reject_pattern(self, pattern_id: str, reason: str) -> StagedPattern:
        """Reject a staged pattern with a reason (VALIDATOR)."""
        return patterns.decide(self.short_term_memory, self._caller, pattern_id, "rejected", reason)

    # signals -------------------------------------------------------------------

    def send_signal(
        self, signal_type: str, data: Any = None, target_agent: str | None = None
    ) -> dict[str, Any]:
        """Signal ``target_agent``, or every agent when it is None."""
        return signals.send(self.short_term_memory, self._caller, signal_type, data, target_agent)

    def receive_signals(self, signal_type: str | None = None) -> list[dict[str, Any]]:
        """Consume the signals waiting for you, oldest first (see ``memory.signals``)."""
        return signals.receive(self.short_term_memory, self._caller, signal_type)

    # conflicts -----------------------------------------------------------------

    def create_conflict(self, conflict_id: str, positions: dict[str, Any], topic: str = "") -> None:
        conflicts.create(self.short_term_memory, self._caller, conflict_id, positions, topic)

    def resolve_conflict(self, conflict_id: str, resolution: Any) -> None:
        conflicts.resolve(self.short_term_memory, self._caller, conflict_id, resolution)

    def get_conflict(self, conflict_id: str) -> Conflict | None:
        return conflicts.get(self.short_term_memory, self._caller, conflict_id)

    # collaboration state -------------------------------------------------------

    @property
    def collaboration_state(self) -> CollaborationState:
        """Your collaboration state, loaded from memory the first time it is read."""
        if self._collaboration_state is None:
            stored = collaboration.restore(self.short_term_memory, self._caller)
            self._collaboration_state = stored or CollaborationState()
        return self._collaboration_state

    @collaboration_state.setter
    def collaboration_state(self, state: CollaborationState) -> None:
        self._collaboration_state = state

    def persist_collaboration_state(self) -> None:
        collaboration.persist(self.short_term_memory, self._caller, self.collaboration_state)

    def restore_collaboration_state(self) -> bool:
        """Reload the persisted state; False (and state unchanged) when none is stored."""
        stored = collaboration.restore(self.short_term_memory, self._caller)
        if stored is None:
            return False
        self._collaboration_state = stored
        return True

    def __repr__(self) -> str:
        return f"<EmpathyOS {self.user_id} {self.access_tier.name}>"
