"""Staged patterns: agents stage what they find; validator credentials approve them into
the pattern library or reject them, exactly as validator people do on the dashboard."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from empathy_web.dashboard.agents_memory import get_memory
from empathy_web.triage import decisions
from memory import AlreadyDecided, NotFound, StagedPattern
from memory import patterns as staged
from memory.page import MAX_PAGE
from memory.patterns import MAX_REASON_LENGTH
from memory.tiers import VALIDATE

from .core import ERRORS, at_least, caller, refuse, team_of

router = Router(tags=["patterns"])


class Stage(Schema):
    pattern_id: str
    pattern_type: str
    name: str
    description: str = ""
    code: str | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    confidence: float = Field(0.5, ge=0, le=1)
    interests: list[str] = Field(default_factory=list)
    team: str | None = Field(None, description="the team it was found in, if any")
    session_id: str | None = None


class Pattern(Schema):
    pattern_id: str
    agent_id: str = Field(description="the agent that staged it")
    pattern_type: str
    name: str
    description: str
    code: str | None
    context: dict[str, Any]
    confidence: float
    interests: list[str]
    staged_at: datetime | None
    team: str | None
    session_id: str | None


class Patterns(Schema):
    items: list[Pattern]
    next_cursor: str | None


class Paging(Schema):
    limit: int = Field(50, ge=1, le=MAX_PAGE)
    cursor: str | None = None


class Approve(Schema):
    note: str = Field("", max_length=MAX_REASON_LENGTH)


class Reject(Schema):
    reason: str = Field(min_length=1, max_length=MAX_REASON_LENGTH)


class Decided(Schema):
    pattern_id: str
    decision: str
    message: str
    pattern: Pattern = Field(description="the pattern as it was staged")


def _pattern(found: StagedPattern) -> Pattern:
    return Pattern(**{name: getattr(found, name) for name in Pattern.model_fields})


@router.post("/stage", response={200: Pattern, **ERRORS}, summary="Stage a pattern")
def stage(request: HttpRequest, body: Stage) -> Pattern:
    """Stage a discovered pattern for a validator. The staging agent is this agent;
    re-staging an id another agent staged is 409 ``id_taken``."""
    if body.team is not None:
        team_of(request, body.team)
    who = caller(request)
    pattern = StagedPattern(agent_id=who.user_id, **body.dict())
    return _pattern(staged.stage(get_memory(), who, pattern))


@router.get("", response={200: Patterns, **ERRORS}, summary="List staged patterns")
def list_staged(request: HttpRequest, paging: Query[Paging]) -> Patterns:
    """Patterns awaiting a decision, newest first."""
    who = caller(request)
    page = staged.list_staged(get_memory(), who, paging.limit, paging.cursor, teams=who.teams)
    return Patterns(items=[_pattern(p) for p in page], next_cursor=page.next_cursor)


def _decide(request: HttpRequest, pattern_id: str, decision: str, reason: str) -> Decided:
    at_least(request, VALIDATE, f"{decisions.VERBS[decision]} a pattern")
    outcome = decisions.decide(
        decisions.Decider.of_agent(caller(request)), pattern_id, decision, reason
    )
    if outcome.ok:
        assert outcome.pattern is not None
        return Decided(
            pattern_id=pattern_id,
            decision=decision,
            message=outcome.message,
            pattern=_pattern(outcome.pattern),
        )
    if outcome.status == 404:
        raise NotFound(outcome.message)
    if outcome.status == 403:
        refuse(request, outcome.message)
    if outcome.status == 409:
        raise AlreadyDecided(outcome.message)
    raise RuntimeError(outcome.message)  # the database refused: a 500, logged


@router.post("/{pattern_id}/promote", response={200: Decided, **ERRORS}, summary="Approve")
def promote(request: HttpRequest, pattern_id: str, body: Approve) -> Decided:
    """Approve a staged pattern into the pattern library (validator credentials)."""
    return _decide(request, pattern_id, decisions.PROMOTED, body.note)


@router.post("/{pattern_id}/reject", response={200: Decided, **ERRORS}, summary="Reject")
def reject(request: HttpRequest, pattern_id: str, body: Reject) -> Decided:
    """Reject a staged pattern with a reason (validator credentials)."""
    return _decide(request, pattern_id, decisions.REJECTED, body.reason)
