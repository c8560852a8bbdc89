"""Working memory: an agent's own JSON values with TTLs (and reading another's)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from empathy_web.accounts.tiers import may_read_memory_of
from empathy_web.dashboard.agents_memory import get_memory
from memory import working
from memory.page import MAX_PAGE
from memory.registry import agent_teams_of

from .core import ERRORS, Refused, caller, visible

router = Router(tags=["working memory"])


class Stash(Schema):
    key: str = Field(description="the key, free text up to 256 characters")
    value: Any = Field(description="any JSON value, up to the memory's value limit (1 MiB)")
    ttl: float | None = Field(None, gt=0, description="seconds; default 1 hour")


class Stored(Schema):
    key: str


class Value(Schema):
    key: str
    agent_id: str
    value: Any = Field(description="null when the key is missing or has expired")


class Entry(Schema):
    key: str
    value: Any
    ttl_ms: int


class Entries(Schema):
    items: list[Entry]
    next_cursor: str | None
    total: int | None


class Deleted(Schema):
    deleted: bool


@router.post("/stash", response={200: Stored, **ERRORS}, summary="Stash a value")
def stash(request: HttpRequest, body: Stash) -> Stored:
    """Keep ``value`` under ``key`` in this agent's working memory for ``ttl`` seconds.
    Idempotent: sent again, it stores the same value."""
    working.stash(get_memory(), caller(request), body.key, body.value, body.ttl)
    return Stored(key=body.key)


@router.get("/retrieve", response={200: Value, **ERRORS}, summary="Retrieve a value")
def retrieve(request: HttpRequest, key: str, agent_id: str | None = None) -> Value:
    """This agent's value under ``key``, or another agent's with ``agent_id``."""
    who = caller(request)
    owner = agent_id or who.user_id
    if owner != who.user_id:  # another agent's: of the credential's teams, or org-wide
        visible(request, agent_teams_of(get_memory(), who, [owner])[owner], f"agent {owner}")
    if not may_read_memory_of(who, owner):
        raise Refused(f"the working memory of {owner} is private to its person and stewards")
    value = working.retrieve(get_memory(), who, key, owner)
    return Value(key=key, agent_id=owner, value=value)


@router.post("/delete", response={200: Deleted, **ERRORS}, summary="Delete a value")
def delete(request: HttpRequest, body: Stored) -> Deleted:
    """Delete one of this agent's keys; ``deleted`` is False if it was not there."""
    return Deleted(deleted=working.delete(get_memory(), caller(request), body.key))


class Paging(Schema):
    limit: int = Field(50, ge=1, le=MAX_PAGE)
    cursor: str | None = Field(None, description="next_cursor of the page before")


@router.get("/keys", response={200: Entries, **ERRORS}, summary="List this agent's keys")
def keys(request: HttpRequest, paging: Query[Paging]) -> Entries:
    """This agent's live keys with their values and remaining TTLs, soonest to expire
    first, a page at a time."""
    who = caller(request)
    page = working.list_entries(get_memory(), who, who.user_id, paging.limit, paging.cursor)
    return Entries(
        items=[Entry(key=e.key, value=e.value, ttl_ms=e.ttl_ms) for e in page],
        next_cursor=page.next_cursor,
        total=page.total,
    )
