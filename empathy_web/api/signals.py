"""Coordination signals: send, receive (consuming, with a long poll) and list."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from empathy_web.dashboard.agents_memory import get_memory
from memory import signals
from memory.events import Event
from memory.page import MAX_PAGE

from .core import ERRORS, caller, team_of
from .waiting import MAX_WAIT, at_once_or_wait

router = Router(tags=["signals"])


class Send(Schema):
    signal_type: str
    data: Any = None
    target_agent: str | None = Field(None, description="one agent; none: every agent")
    team: str | None = Field(None, description="the team it concerns, if any")


class Signal(Schema):
    id: str
    timestamp: float
    sender: str
    target: str | None
    signal_type: str
    data: Any
    team: str | None
    session_id: str | None = None


class Receive(Schema):
    signal_type: str | None = Field(None, description="only signals of this type")
    wait: float = Field(0, ge=0, le=MAX_WAIT, description="seconds to wait for one")


class Signals(Schema):
    items: list[Signal]
    next_cursor: str | None = None


class Listing(Schema):
    limit: int = Field(50, ge=1, le=MAX_PAGE)
    cursor: str | None = None
    signal_type: str | None = None
    sender: str | None = None
    target: str | None = Field(None, description='an agent id, or "*" for broadcasts')
    team: str | None = None


@router.post("/send", response={200: Signal, **ERRORS}, summary="Send a signal")
def send(request: HttpRequest, body: Send) -> dict[str, Any]:
    """Send a signal to ``target_agent``, or to every agent. The sender is this agent."""
    team = team_of(request, body.team) if body.team is not None else None
    return signals.send(
        get_memory(), caller(request), body.signal_type, body.data, body.target_agent, team=team
    )


@router.post("/receive", response={200: Signals, **ERRORS}, summary="Receive signals")
def receive(request: HttpRequest, body: Receive) -> Signals:
    """Consume the signals waiting for this agent, oldest first (each is returned once).
    With ``wait``, an empty inbox waits up to that many seconds for one to arrive.
    Broadcasts of teams the credential is not in are consumed unseen: they are those
    teams' records."""
    who = caller(request)
    memory = get_memory()

    def attempt() -> list[dict[str, Any]] | None:
        found = signals.receive(memory, who, body.signal_type)
        return [s for s in found if s["target"] is not None or who.sees(s.get("team"))] or None

    def for_me(event: Event) -> bool:
        target = event.ids.get("target", "")
        return event.type == "signal.sent" and (
            target in (who.user_id, "*") or target.startswith("session:")
        )

    def answer(found: list[dict[str, Any]] | None) -> Signals:
        return Signals(items=found or [])

    return at_once_or_wait(attempt, for_me, body.wait, answer)


@router.get("", response={200: Signals, **ERRORS}, summary="List recent signals")
def list_signals(request: HttpRequest, query: Query[Listing]) -> Signals:
    """Recent signals, newest first, without consuming them."""
    team = team_of(request, query.team) if query.team is not None else None
    page = signals.list_signals(
        get_memory(),
        caller(request),
        query.limit,
        query.cursor,
        signal_type=query.signal_type,
        sender=query.sender,
        target=query.target,
        team=team,
        teams=caller(request).teams,
    )
    return Signals(items=list(page), next_cursor=page.next_cursor)
