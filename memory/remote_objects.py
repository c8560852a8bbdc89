"""``EmpathyOS``, ``AgentCoordinator`` and ``TeamSession`` on a ``RemoteMemory``: the same
methods, each one call to the server's agent API as the agent it acts for (see
``memory.remote``). The library's classes make these when given a remote memory."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any
from urllib.parse import quote

from .collaboration import CollaborationState
from .conflicts import Conflict
from .coordination import AgentCoordinator
from .empathy_os import EmpathyOS
from .exceptions import AccessDenied, LeaseLost, NotFound
from .page import Page
from .patterns import StagedPattern
from .registry import AgentInfo
from .remote_client import RemoteMemory
from .sessions import SessionInfo, TeamSession
from .tasks import AgentTask
from .tiers import AccessTier

_NOT_HERE = "is not offered over the server; a steward does it on the dashboard"


def _q(part: str) -> str:
    return quote(part, safe="")


def _pattern(found: dict[str, Any]) -> StagedPattern:
    staged_at = found.get("staged_at")
    return StagedPattern(
        **{**found, "staged_at": datetime.fromisoformat(staged_at) if staged_at else None}
    )


class RemoteEmpathyOS(EmpathyOS):
    """An agent on a server: ``user_id`` and ``access_tier`` must be its credential's."""

    def __init__(
        self,
        user_id: str,
        short_term_memory: RemoteMemory,
        access_tier: AccessTier = AccessTier.CONTRIBUTOR,
    ) -> None:
        self.remote = short_term_memory
        identity = short_term_memory.identity(user_id, access_tier)
        self.user_id = identity.agent_id
        self.access_tier = identity.tier
        self._memory = short_term_memory  # type: ignore[assignment]
        self._collaboration_state = None

    def _call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        return self.remote.call(self.user_id, method, path, body, params)

    def stash(self, key: str, data: Any, ttl: float | None = None) -> None:
        self._call("POST", "/memory/stash", {"key": key, "value": data, "ttl": ttl})

    def retrieve(self, key: str, agent_id: str | None = None) -> Any:
        return self._call("GET", "/memory/retrieve", key=key, agent_id=agent_id)["value"]

    def delete(self, key: str) -> bool:
        return self._call("POST", "/memory/delete", {"key": key})["deleted"]

    def clear_memory(self, agent_id: str | None = None) -> int:
        raise AccessDenied(f"clear_memory {_NOT_HERE}")

    def stage_pattern(self, pattern: StagedPattern) -> StagedPattern:
        fields = {k: v for k, v in asdict(pattern).items() if k not in ("agent_id", "staged_at")}
        if pattern.agent_id != self.user_id:
            raise AccessDenied(f"{self.user_id} may stage patterns only as itself")
        return _pattern(self._call("POST", "/patterns/stage", fields))

    def get_staged_patterns(
        self, limit: int = 50, cursor: str | None = None
    ) -> Page[StagedPattern]:
        found = self._call("GET", "/patterns", limit=limit, cursor=cursor)
        return Page([_pattern(p) for p in found["items"]], found["next_cursor"])

    def promote_pattern(self, pattern_id: str) -> StagedPattern:
        found = self._call("POST", f"/patterns/{_q(pattern_id)}/promote", {})
        return _pattern(found["pattern"])

    def reject_pattern(self, pattern_id: str, reason: str) -> StagedPattern:
        found = self._call("POST", f"/patterns/{_q(pattern_id)}/reject", {"reason": reason})
        return _pattern(found["pattern"])

    def send_signal(
        self, signal_type: str, data: Any = None, target_agent: str | None = None
    ) -> dict[str, Any]:
        body = {"signal_type": signal_type, "data": data, "target_agent": target_agent}
        return self._call("POST", "/signals/send", body)

    def receive_signals(
        self, signal_type: str | None = None, wait: float = 0
    ) -> list[dict[str, Any]]:
        return self._call("POST", "/signals/receive", {"signal_type": signal_type, "wait": wait})[
            "items"
        ]

    def create_conflict(self, conflict_id: str, positions: dict[str, Any], topic: str = "") -> None:
        self._call(
            "POST",
            "/conflicts",
            {"conflict_id": conflict_id, "positions": positions, "topic": topic},
        )

    def resolve_conflict(self, conflict_id: str, resolution: Any) -> None:
        self._call("POST", f"/conflicts/{_q(conflict_id)}/resolve", {"resolution": resolution})

    def get_conflict(self, conflict_id: str) -> Conflict | None:
        try:
            return Conflict(**self._call("GET", f"/conflicts/{_q(conflict_id)}"))
        except NotFound:
            return None

    @property
    def collaboration_state(self) -> CollaborationState:
        if self._collaboration_state is None:
            stored = self._call("GET", "/collaboration")["state"]
            self._collaboration_state = (
                CollaborationState.from_dict(stored) if stored else CollaborationState()
            )
        return self._collaboration_state

    @collaboration_state.setter
    def collaboration_state(self, state: CollaborationState) -> None:
        self._collaboration_state = state

    def persist_collaboration_state(self) -> None:
        self._call("POST", "/collaboration", asdict(self.collaboration_state))

    def restore_collaboration_state(self) -> bool:
        stored = self._call("GET", "/collaboration")["state"]
        if stored is None:
            return False
        self._collaboration_state = CollaborationState.from_dict(stored)
        return True


def _task(found: dict[str, Any]) -> AgentTask:
    return AgentTask(**found)


class RemoteCoordinator(AgentCoordinator):
    """A team on a server. Calls that name an agent act with that agent's credential;
    the others with the credential of ``actor`` (``coordinator:<team>`` by default)."""

    def __init__(
        self,
        memory: RemoteMemory,
        team_id: str,
        *,
        access_tier: AccessTier = AccessTier.CONTRIBUTOR,
        actor: str | None = None,
        lease_seconds: float = 60.0,
        **_: Any,
    ) -> None:
        self.remote = memory
        self.memory = memory  # type: ignore[assignment]
        self.team_id = team_id
        self.actor = actor or f"coordinator:{team_id}"
        self.access_tier = AccessTier(access_tier)
        self.lease_seconds = lease_seconds
        self._held: dict[str, tuple[str, int, str]] = {}

    def _call(
        self, agent: str | None, method: str, path: str, body: Any = None, **params: Any
    ) -> Any:
        who = agent or self.actor
        if agent is None:
            self.remote.identity(who, self.access_tier)
        return self.remote.call(who, method, f"/teams/{_q(self.team_id)}{path}", body, params)

    def register_agent(self, agent_id: str, capabilities: list[str] | None = None) -> bool:
        return self._call(
            agent_id, "POST", "/agents/register", {"capabilities": capabilities or []}
        )["new"]

    def unregister_agent(self, agent_id: str) -> bool:
        self._call(agent_id, "POST", "/agents/unregister")
        return True

    def heartbeat(self, agent_id: str) -> None:
        self._call(agent_id, "POST", "/agents/heartbeat")

    def get_agents(self, limit: int = 100, cursor: str | None = None) -> Page[AgentInfo]:
        found = self._call(None, "GET", "/agents", limit=limit, cursor=cursor)
        return Page([AgentInfo(**a) for a in found["items"]], found["next_cursor"], found["total"])

    def add_task(self, task: AgentTask) -> bool:
        fields = {
            k: getattr(task, k)
            for k in ("task_id", "task_type", "description", "priority", "context")
        }
        return self._call(None, "POST", "/tasks", fields)["added"]

    def claim_task(
        self, agent_id: str, task_type: str, *, lease_seconds: float | None = None,
        request_id: str | None = None, wait: float = 0,
    ) -> AgentTask | None:  # fmt: skip
        body = {"task_type": task_type, "lease_seconds": lease_seconds or self.lease_seconds,
                "request_id": request_id, "wait": wait}  # fmt: skip
        found = self._call(agent_id, "POST", "/tasks/claim", body)["task"]
        if found is None:
            return None
        task = _task(found)
        self._held[task.task_id] = (agent_id, int(task.fencing_token or 0), task_type)
        return task

    def _holder(self, task_id: str, fencing_token: int | None) -> tuple[str | None, int]:
        held = self._held.get(task_id)
        if fencing_token is None:
            if held is None:
                raise LeaseLost(
                    f"this coordinator holds no lease on task {task_id}; pass the fencing_token from the claim"
                )
            return held[0], held[1]
        return (held[0] if held and held[1] == fencing_token else None), int(fencing_token)

    def complete_task(
        self, task_id: str, result: Any = None, *, fencing_token: int | None = None
    ) -> None:
        agent, token = self._holder(task_id, fencing_token)
        self._call(
            agent,
            "POST",
            f"/tasks/{_q(task_id)}/complete",
            {"fencing_token": token, "result": result},
        )
        self._held.pop(task_id, None)

    def fail_task(
        self,
        task_id: str,
        error: Any = None,
        *,
        retry: bool = True,
        fencing_token: int | None = None,
    ) -> str:
        agent, token = self._holder(task_id, fencing_token)
        body = {"fencing_token": token, "error": error, "retry": retry}
        status = self._call(agent, "POST", f"/tasks/{_q(task_id)}/fail", body)["status"]
        self._held.pop(task_id, None)
        return status

    def extend_lease(
        self, task_id: str, *, fencing_token: int | None = None, lease_seconds: float | None = None
    ) -> int:
        agent, token = self._holder(task_id, fencing_token)
        body = {"fencing_token": token, "lease_seconds": lease_seconds}
        return self._call(agent, "POST", f"/tasks/{_q(task_id)}/extend", body)["lease_expires_ms"]

    def list_tasks(
        self, status: str, task_type: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> Page[AgentTask]:
        found = self._call(
            None, "GET", "/tasks", status=status, task_type=task_type, limit=limit, cursor=cursor
        )
        return Page([_task(t) for t in found["items"]], found["next_cursor"], found["total"])

    def get_task(self, task_id: str) -> AgentTask | None:
        try:
            return _task(self._call(None, "GET", f"/tasks/{_q(task_id)}"))
        except NotFound:
            return None

    def counts(self) -> dict[str, Any]:
        return self._call(None, "GET", "/counts")

    def requeue_task(self, task_id: str) -> None:
        raise AccessDenied(f"requeue_task {_NOT_HERE}")

    def cancel_task(self, task_id: str) -> None:
        raise AccessDenied(f"cancel_task {_NOT_HERE}")


class RemoteSession(TeamSession):
    """A team session on a server; joining and leaving act as the agent named."""

    def __init__(
        self,
        memory: RemoteMemory,
        session_id: str,
        purpose: str = "",
        *,
        actor: str | None = None,
        access_tier: AccessTier = AccessTier.CONTRIBUTOR,
        create: bool = True,
        team: str | None = None,
    ) -> None:
        self.remote = memory
        self.memory = memory  # type: ignore[assignment]
        self.session_id = session_id
        self.purpose = purpose
        self.team = team
        self.actor = actor or f"session:{session_id}"
        self.access_tier = AccessTier(access_tier)
        if create and self.access_tier.can_write:
            body = {"session_id": session_id, "purpose": purpose, "team": team}
            self._call(None, "POST", "", body, base="/sessions")

    def _call(
        self,
        agent: str | None,
        method: str,
        path: str,
        body: Any = None,
        base: str | None = None,
        **params: Any,
    ) -> Any:
        who = agent or self.actor
        if agent is None:
            self.remote.identity(who, self.access_tier)
        where = base if base is not None else f"/sessions/{_q(self.session_id)}"
        return self.remote.call(who, method, where + path, body, params)

    def add_agent(self, agent_id: str) -> None:
        self._call(agent_id, "POST", "/join")

    def remove_agent(self, agent_id: str) -> None:
        self._call(agent_id, "POST", "/leave")

    def share(self, key: str, data: Any) -> None:
        self._call(None, "POST", "/share", {"key": key, "value": data})

    def get(self, key: str) -> Any:
        return self._call(None, "GET", "/context/get", key=key)["value"]

    def get_context(self) -> dict[str, Any]:
        return self._call(None, "GET", "/context")["context"]

    @property
    def participants(self) -> list[str]:
        return self._call(None, "GET", "")["participants"]

    def signal(self, signal_type: str, data: Any = None) -> dict[str, Any]:
        return self._call(None, "POST", "/signal", {"signal_type": signal_type, "data": data})

    def info(self) -> SessionInfo | None:
        try:
            return SessionInfo(**self._call(None, "GET", ""))
        except NotFound:
            return None

    def delete(self) -> bool:
        raise AccessDenied(f"deleting a session {_NOT_HERE}")
