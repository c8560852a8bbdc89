"""What a team's coordinator is built on: the team, who acts, and its timings."""

from __future__ import annotations

import itertools
import secrets
from typing import Any

from .codec import MAX_ACTOR_LENGTH, check_id, ttl_ms
from .connection import RedisConnection
from .exceptions import InvalidValue
from .tiers import AccessTier, Caller
from .ttl import TTLStrategy

CACHE_SIZE = 1024
# An agent is alive while its last heartbeat is younger than this, by default.
ALIVE_SECONDS = 30.0


class TeamScope:
    """One team, acted on as ``actor`` with ``access_tier`` (see ``AgentCoordinator``)."""

    def __init__(
        self,
        memory: RedisConnection,
        team_id: str,
        *,
        access_tier: AccessTier = AccessTier.CONTRIBUTOR,
        actor: str | None = None,
        lease_seconds: float = 60.0,
        max_attempts: int = 3,
        alive_seconds: float = ALIVE_SECONDS,
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
        # Small caches for the hot path (claims): callers by agent, keys by type.
        self._callers: dict[str, Caller] = {}
        self._claim_cache: dict[str, tuple[dict[str, str], dict[str, Any]]] = {}
        # Claims' request ids, when the caller gives none (memory/tasks.py).
        self._request_prefix = secrets.token_hex(6) + "-"
        self._requests = itertools.count(1)

    def _key(self, part: str) -> str:
        return self.memory.keys.team(self.team_id, part)

    def _as(self, agent_id: str | None) -> Caller:
        """The coordinator's caller, or ``agent_id`` acting with the coordinator's tier."""
        if agent_id is None:
            return self.caller
        caller = self._callers.get(agent_id)
        if caller is None:
            if len(self._callers) >= CACHE_SIZE:
                self._callers.clear()
            caller = Caller(check_id(agent_id, "agent_id"), self.caller.tier)
            self._callers[agent_id] = caller
        return caller
