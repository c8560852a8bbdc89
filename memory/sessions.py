"""Team sessions: a purpose, its participants and their shared context.

A session's keys share the ``{sess:<id>}`` hash tag. Every write refreshes the SESSION
TTL on all of them, so a session lives while it is used and disappears after the TTL of
silence. Participants are a hash (one field each), so concurrent joins never lose one.
A session may belong to a team, set when it is created; its signals are that team's.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from . import scripts
from .codec import MAX_ACTOR_LENGTH, check_id, check_key, decode, encode
from .connection import RedisConnection, redis_errors
from .page import Page, check_limit, filter_batch, offset_cursor
from .signals import list_signals, send
from .team_filter import check_teams, shows
from .tiers import ADMIN, READ, WRITE, AccessTier, Caller
from .ttl import TTLStrategy


@dataclass(frozen=True)
class SessionInfo:
    session_id: str
    purpose: str
    created_by: str
    created_at_ms: int
    participants: list[str]
    ttl_ms: int
    team: str | None = None  # None: org-wide


class TeamSession:
    """A collaborative session. Constructing one creates it when it does not exist yet
    (for callers that may write, unless ``create=False``), of ``team`` (None: org-wide);
    an existing session keeps its purpose and its team. Writes to a session that does not
    exist raise ``NotFound``."""

    def __new__(cls, *args: Any, **kwargs: Any) -> TeamSession:
        # On a server's memory (memory.remote), the same methods go to the server.
        classes = getattr(kwargs.get("memory", args[0] if args else None), "classes", None)
        if cls is TeamSession and classes and cls in classes:
            return super().__new__(classes[cls])
        return super().__new__(cls)

    def __init__(
        self,
        memory: RedisConnection,
        session_id: str,
        purpose: str = "",
        *,
        actor: str | None = None,
        access_tier: AccessTier = AccessTier.CONTRIBUTOR,
        create: bool = True,
        team: str | None = None,
    ) -> None:
        self.memory = memory
        self.session_id = check_id(session_id, "session_id")
        if not isinstance(purpose, str) or len(purpose) > 2000:
            raise ValueError("purpose must be a string of at most 2000 characters")
        self.purpose = purpose
        self.team = None if team is None else check_id(team, "team")
        self.caller = Caller(
            check_id(actor or f"session:{session_id}", "actor", max_length=MAX_ACTOR_LENGTH),
            access_tier,
        )
        if create and access_tier.can_write:
            self._touch("create", "", purpose, self.team or "")

    def _key(self, part: str) -> str:
        return self.memory.keys.session(self.session_id, part)

    def _touch(self, op: str, name: str = "", value: str = "", team: str = "") -> int:
        return self.memory.run_script(
            scripts.TOUCH_SESSION,
            self.caller,
            {
                "meta": self._key("meta"),
                "agents": self._key("agents"),
                "context": self._key("context"),
                "sessions": self.memory.keys.sessions,
            },
            {
                "session_id": self.session_id,
                "ttl_ms": self.memory.ttl_ms(TTLStrategy.SESSION),
                "op": op,
                "name": name,
                "value": value,
                "team": team,
            },
        )

    def add_agent(self, agent_id: str) -> None:
        self.caller.require(WRITE, "add_agent")
        self._touch("join", check_id(agent_id, "agent_id"))

    def remove_agent(self, agent_id: str) -> None:
        self.caller.require(WRITE, "remove_agent")
        self._touch("leave", check_id(agent_id, "agent_id"))

    def share(self, key: str, data: Any) -> None:
        """Share ``data`` under ``key`` with every participant."""
        self.caller.require(WRITE, "share")
        self._touch("share", check_key(key), encode(data, self.memory.max_value_bytes))

    @redis_errors
    def get(self, key: str) -> Any:
        """A shared value, or None."""
        self.caller.require(READ, "get")
        return decode(self.memory.client.hget(self._key("context"), check_key(key)))

    @redis_errors
    def get_context(self) -> dict[str, Any]:
        self.caller.require(READ, "get_context")
        raw = self.memory.client.hgetall(self._key("context"))
        return {k.decode(): decode(v) for k, v in sorted(raw.items())}

    @property
    @redis_errors
    def participants(self) -> list[str]:
        self.caller.require(READ, "participants")
        return sorted(a.decode() for a in self.memory.client.hkeys(self._key("agents")))

    def get_agents(self) -> list[str]:
        return self.participants

    def signal(self, signal_type: str, data: Any = None) -> dict[str, Any]:
        """Signal every participant; the signal also goes to the session's own log, and
        is of the session's team."""
        self.caller.require(WRITE, "signal")
        participants, team = self._audience()
        return send(
            self.memory,
            self.caller,
            signal_type,
            data,
            team=team,
            deliver_to=participants,
            session_id=self.session_id,
        )

    @redis_errors
    def _audience(self) -> tuple[list[str], str | None]:
        """The participants, and the session's team (None: org-wide)."""
        with self.memory.client.pipeline(transaction=False) as pipe:
            pipe.hkeys(self._key("agents"))
            pipe.hget(self._key("meta"), "team")
            agents, team = pipe.execute()
        return sorted(a.decode() for a in agents), team.decode() if team else None

    def signals(self, limit: int = 50, cursor: str | None = None) -> Page[dict[str, Any]]:
        """The session's recent signals, newest first."""
        return list_signals(self.memory, self.caller, limit, cursor, session_id=self.session_id)

    def info(self) -> SessionInfo | None:
        """What the session is now, or None once it has expired or been deleted."""
        return get_session(self.memory, self.caller, self.session_id)

    def delete(self) -> bool:
        """End the session for everyone (STEWARD)."""
        self.caller.require(ADMIN, "deleting a session")
        return bool(self._touch("delete"))


@redis_errors
def get_session(memory: RedisConnection, caller: Caller, session_id: str) -> SessionInfo | None:
    caller.require(READ, "get_session")
    return _read(memory, [session_id])[0]


def _read(memory: RedisConnection, session_ids: list[str]) -> list[SessionInfo | None]:
    """Sessions by id, in one round trip; None for those that have expired."""
    keys = memory.keys
    with memory.client.pipeline(transaction=False) as pipe:
        for session_id in session_ids:
            pipe.hgetall(keys.session(session_id, "meta"))
            pipe.hkeys(keys.session(session_id, "agents"))
            pipe.pttl(keys.session(session_id, "meta"))
        answers = pipe.execute() if session_ids else []
    return [
        _info(session_id, *answers[3 * i : 3 * i + 3]) for i, session_id in enumerate(session_ids)
    ]


def _info(
    session_id: str, raw_meta: dict[bytes, bytes], agents: list[bytes], ttl: int
) -> SessionInfo | None:
    if not raw_meta:
        return None
    meta = {k.decode(): v.decode() for k, v in raw_meta.items()}
    return SessionInfo(
        session_id,
        meta.get("purpose", ""),
        meta.get("created_by", ""),
        int(meta.get("created_at", 0)),
        sorted(a.decode() for a in agents),
        ttl,
        meta.get("team") or None,
    )


@redis_errors
def list_sessions(
    memory: RedisConnection,
    caller: Caller,
    limit: int = 50,
    cursor: str | None = None,
    *,
    teams: Collection[str] | None = None,
) -> Page[SessionInfo]:
    """Active sessions, the one expiring last first. ``teams``: only sessions of these
    teams and org-wide ones (``memory.team_filter``), and ``total`` is None. The cursor
    is the offset in the sessions index after the last session examined."""
    caller.require(READ, "list_sessions")
    start = offset_cursor(cursor)
    limit = check_limit(limit)
    allowed = check_teams(teams)
    now = memory.server_time_ms()
    if allowed is not None:
        return _sessions_of(memory, allowed, start, limit, now)
    index = memory.keys.sessions
    with memory.client.pipeline(transaction=False) as pipe:
        pipe.zcount(index, f"({now}", "+inf")
        pipe.zrevrangebyscore(index, "+inf", f"({now}", start=start, num=limit)
        total, ids = pipe.execute()
    sessions = _read(memory, [i.decode() for i in ids])
    more = start + limit < total
    return Page([s for s in sessions if s is not None], str(start + limit) if more else None, total)


def _sessions_of(
    memory: RedisConnection, allowed: frozenset[str], start: int, limit: int, now: int
) -> Page[SessionInfo]:
    """``list_sessions`` restricted to ``allowed``: the index is read from ``start`` in
    batches, each batch's teams in one round trip, until the page is full."""
    batch, offset = filter_batch(limit), start
    index = memory.keys.sessions
    kept: list[str] = []
    while True:
        members = memory.client.zrevrangebyscore(index, "+inf", f"({now}", start=offset, num=batch)
        ids = [m.decode() for m in members]
        with memory.client.pipeline(transaction=False) as pipe:
            for session_id in ids:
                pipe.hmget(memory.keys.session(session_id, "meta"), ["created_at", "team"])
            metas = pipe.execute() if ids else []
        for i, (created, team) in enumerate(metas):
            if created is None or not shows(allowed, team.decode() if team else None):
                continue
            kept.append(ids[i])
            if len(kept) == limit:
                more = i + 1 < len(ids) or len(ids) == batch
                return _page(memory, kept, str(offset + i + 1) if more else None)
        if len(ids) < batch:
            return _page(memory, kept, None)
        offset += len(ids)


def _page(memory: RedisConnection, ids: list[str], cursor: str | None) -> Page[SessionInfo]:
    return Page([s for s in _read(memory, ids) if s is not None], cursor)
