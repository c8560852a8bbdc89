"""This agent in a team's registry (register, heartbeat, unregister, and the team's
agents), its collaboration state, and conflicts between agents."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from empathy_web.dashboard.agents_memory import get_memory
from memory import AgentInfo, CollaborationState, Conflict, NotFound, collaboration, conflicts
from memory.page import MAX_PAGE

from .core import ERRORS, caller
from .tasks import coordinator

router = Router(tags=["agents"])


class Me(Schema):
    agent_id: str
    tier: str
    teams: list[str]
    all_teams: bool


@router.get("/whoami", response={200: Me, **ERRORS}, summary="This credential")
def whoami(request: HttpRequest) -> Me:
    """Who this credential acts as: its agent id, tier and teams."""
    credential = request.auth
    return Me(agent_id=credential.agent_id, tier=credential.tier.lower(),
              teams=credential.teams, all_teams=credential.all_teams)  # fmt: skip


class Register(Schema):
    capabilities: list[str] = Field(default_factory=list)


class Registered(Schema):
    agent_id: str
    new: bool = Field(description="False when it was registered already")


class Agents(Schema):
    items: list[AgentInfo]
    next_cursor: str | None
    total: int | None


class Paging(Schema):
    limit: int = Field(100, ge=1, le=MAX_PAGE)
    cursor: str | None = None


class Done(Schema):
    ok: bool = True


@router.post("/teams/{team}/agents/register", response={200: Registered, **ERRORS})
def register(request: HttpRequest, team: str, body: Register) -> Registered:
    """Register this agent in ``team`` (again, to change its capabilities)."""
    agent = request.auth.agent_id
    new = coordinator(request, team).register_agent(agent, body.capabilities)
    return Registered(agent_id=agent, new=new)


@router.post("/teams/{team}/agents/heartbeat", response={200: Done, **ERRORS})
def heartbeat(request: HttpRequest, team: str) -> Done:
    """Say this agent is alive in ``team``."""
    coordinator(request, team).heartbeat(request.auth.agent_id)
    return Done()


@router.post("/teams/{team}/agents/unregister", response={200: Done, **ERRORS})
def unregister(request: HttpRequest, team: str) -> Done:
    coordinator(request, team).unregister_agent(request.auth.agent_id)
    return Done()


@router.get("/teams/{team}/agents", response={200: Agents, **ERRORS})
def agents(request: HttpRequest, team: str, paging: Query[Paging]) -> Agents:
    """The team's agents with their liveness, a page at a time."""
    page = coordinator(request, team).get_agents(paging.limit, paging.cursor)
    return Agents(items=list(page), next_cursor=page.next_cursor, total=page.total)


class State(Schema):
    trust_level: float = Field(0.5, ge=0, le=1)
    successful_interventions: int = Field(0, ge=0)
    failed_interventions: int = Field(0, ge=0)
    total_interactions: int = Field(0, ge=0)
    shared_context: dict[str, Any] = Field(default_factory=dict)


class Restored(Schema):
    state: State | None = Field(description="null: nothing persisted")


@router.post("/collaboration", response={200: State, **ERRORS}, tags=["collaboration"])
def persist(request: HttpRequest, body: State) -> State:
    """Persist this agent's collaboration state (it has no TTL)."""
    collaboration.persist(get_memory(), caller(request), CollaborationState(**body.dict()))
    return body


@router.get("/collaboration", response={200: Restored, **ERRORS}, tags=["collaboration"])
def restore(request: HttpRequest) -> Restored:
    """This agent's persisted collaboration state, or null."""
    stored = collaboration.restore(get_memory(), caller(request))
    return Restored(state=State(**vars(stored)) if stored else None)


class NewConflict(Schema):
    conflict_id: str
    positions: dict[str, Any] = Field(description="each agent's position, two or more")
    topic: str = ""


class Resolve(Schema):
    resolution: Any


@router.post("/conflicts", response={200: Conflict, **ERRORS}, tags=["conflicts"])
def create_conflict(request: HttpRequest, body: NewConflict) -> Conflict:
    """Record that agents disagree."""
    conflicts.create(get_memory(), caller(request), body.conflict_id, body.positions, body.topic)
    return get_conflict(request, body.conflict_id)


@router.get("/conflicts/{conflict_id}", response={200: Conflict, **ERRORS}, tags=["conflicts"])
def get_conflict(request: HttpRequest, conflict_id: str) -> Conflict:
    found = conflicts.get(get_memory(), caller(request), conflict_id)
    if found is None:
        raise NotFound(f"no conflict {conflict_id}: it never existed or has expired")
    return found


@router.post(
    "/conflicts/{conflict_id}/resolve", response={200: Conflict, **ERRORS}, tags=["conflicts"]
)
def resolve_conflict(request: HttpRequest, conflict_id: str, body: Resolve) -> Conflict:
    """Resolve an open conflict (validator credentials); exactly one resolution wins."""
    conflicts.resolve(get_memory(), caller(request), conflict_id, body.resolution)
    return get_conflict(request, conflict_id)
