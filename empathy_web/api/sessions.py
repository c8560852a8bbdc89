"""Team sessions: create one, join and leave it (as this agent only), share and read
values, and signal its participants."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema

from empathy_web.dashboard.agents_memory import get_memory
from memory import NotFound, TeamSession
from memory.sessions import SessionInfo, get_session

from .core import ERRORS, caller, team_of
from .signals import Signal

router = Router(tags=["team sessions"])


class Create(Schema):
    session_id: str
    purpose: str = Field("", max_length=2000)
    team: str | None = Field(None, description="the team it belongs to (one of yours)")


class Share(Schema):
    key: str
    value: Any


class Shared(Schema):
    key: str
    value: Any = Field(description="null when nothing is shared under the key")


class Context(Schema):
    context: dict[str, Any]


class SessionSignal(Schema):
    signal_type: str
    data: Any = None


def _session(request: HttpRequest, session_id: str) -> TeamSession:
    """An existing session of the credential's teams (or an org-wide one); else 404."""
    info = _info(request, session_id)
    who = caller(request)
    return TeamSession(get_memory(), session_id, actor=who.user_id,
                       access_tier=who.tier_for(info.team), create=False)  # fmt: skip


def _info(request: HttpRequest, session_id: str) -> SessionInfo:
    """The session, when it exists and is of the credential's teams or org-wide."""
    info = get_session(get_memory(), caller(request), session_id)
    if info is None or not caller(request).sees(info.team):
        raise NotFound(f"no session {session_id}: it never existed, expired or was deleted")
    return info


@router.post("", response={200: SessionInfo, **ERRORS}, summary="Create a session")
def create(request: HttpRequest, body: Create) -> SessionInfo:
    """Create a team session (an existing one keeps its purpose) and join it."""
    if body.team is not None:
        team_of(request, body.team)
    who = caller(request)
    existing = get_session(get_memory(), who, body.session_id)
    if existing is not None and not who.sees(existing.team):
        raise NotFound(f"no session {body.session_id} in this credential's teams")
    session = TeamSession(
        get_memory(), body.session_id, body.purpose, team=body.team, actor=who.user_id,
        access_tier=who.tier,
    )  # fmt: skip
    session.add_agent(request.auth.agent_id)
    return _info(request, body.session_id)


@router.get("/{session_id}", response={200: SessionInfo, **ERRORS}, summary="Get a session")
def info(request: HttpRequest, session_id: str) -> SessionInfo:
    return _info(request, session_id)


@router.post("/{session_id}/join", response={200: SessionInfo, **ERRORS}, summary="Join")
def join(request: HttpRequest, session_id: str) -> SessionInfo:
    """Join a session as this agent."""
    _session(request, session_id).add_agent(request.auth.agent_id)
    return _info(request, session_id)


@router.post("/{session_id}/leave", response={200: SessionInfo, **ERRORS}, summary="Leave")
def leave(request: HttpRequest, session_id: str) -> SessionInfo:
    """Leave a session."""
    _session(request, session_id).remove_agent(request.auth.agent_id)
    return _info(request, session_id)


@router.post("/{session_id}/share", response={200: Shared, **ERRORS}, summary="Share a value")
def share(request: HttpRequest, session_id: str, body: Share) -> Shared:
    """Share a JSON value under ``key`` with every participant."""
    _session(request, session_id).share(body.key, body.value)
    return Shared(key=body.key, value=body.value)


@router.get("/{session_id}/context", response={200: Context, **ERRORS}, summary="Read values")
def context(request: HttpRequest, session_id: str) -> Context:
    """Everything shared in the session."""
    return Context(context=_session(request, session_id).get_context())


@router.get("/{session_id}/context/get", response={200: Shared, **ERRORS}, summary="Read one")
def get(request: HttpRequest, session_id: str, key: str) -> Shared:
    """The value shared under ``key``, or null."""
    return Shared(key=key, value=_session(request, session_id).get(key))


@router.post("/{session_id}/signal", response={200: Signal, **ERRORS}, summary="Signal")
def signal(request: HttpRequest, session_id: str, body: SessionSignal) -> dict[str, Any]:
    """Signal every participant of the session."""
    return _session(request, session_id).signal(body.signal_type, body.data)
