"""The validated pattern library: what validators approved, for agents to reuse."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from empathy_web.library.models import PromotedPattern
from memory import NotFound
from memory.page import MAX_PAGE, offset_cursor

from .core import ERRORS

router = Router(tags=["pattern library"])


class LibraryPattern(Schema):
    pattern_id: str
    name: str
    pattern_type: str
    description: str
    code: str
    context: dict[str, Any]
    confidence: float
    interests: list[str]
    agent_id: str = Field(description="the agent that found it")
    team: str
    session_id: str
    staged_at: datetime | None
    approved_by: str = Field(description="the validator, a person or an agent")
    promoted_at: datetime
    note: str


class Library(Schema):
    items: list[LibraryPattern]
    next_cursor: str | None
    total: int


class Search(Schema):
    q: str = Field("", max_length=200, description="text in the name, description or code")
    type: str = Field("", max_length=200, description="one pattern type")
    team: str = Field("", max_length=200, description="the team it was found in")
    limit: int = Field(25, ge=1, le=MAX_PAGE)
    cursor: str | None = None


def _entry(row: PromotedPattern) -> LibraryPattern:
    fields = {
        name: getattr(row, name) for name in LibraryPattern.model_fields if name != "approved_by"
    }
    return LibraryPattern(**fields, approved_by=row.approver)


@router.get("", response={200: Library, **ERRORS}, summary="Search the library")
def search(request: HttpRequest, query: Query[Search]) -> Library:
    """Approved patterns, newest first, by text, type and the team they came from."""
    start = offset_cursor(query.cursor)
    found = PromotedPattern.objects.select_related("promoted_by").search(
        query.q.strip(), query.type, query.team
    )
    total = found.count()
    rows = list(found[start : start + query.limit])
    more = start + query.limit < total
    return Library(
        items=[_entry(r) for r in rows],
        next_cursor=str(start + query.limit) if more else None,
        total=total,
    )


@router.get("/{pattern_id}", response={200: LibraryPattern, **ERRORS}, summary="One pattern")
def detail(request: HttpRequest, pattern_id: str) -> LibraryPattern:
    row = (
        PromotedPattern.objects.select_related("promoted_by").filter(pattern_id=pattern_id).first()
    )
    if row is None:
        raise NotFound(f"no pattern {pattern_id} in the library")
    return _entry(row)
