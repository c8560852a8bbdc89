"""The API's one ``NinjaAPI``: who is calling (the credential, and nothing the request
says), the per-credential rate limit, and one JSON error shape with a stable ``code``.

Every request is authenticated by ``Authorization: Bearer <secret>``. The credential
gives the agent id, the tier and the teams; the library checks the tier on every call,
and ``team_of`` checks the team before anything is read or written.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from typing import Any, NoReturn

from django.conf import settings
from django.core.handlers.exception import response_for_exception
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse
from django.views import defaults
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, ValidationError
from ninja.security import HttpBearer

from empathy_web.accounts.teams import Viewer
from empathy_web.dashboard.agents_memory import UNAVAILABLE
from empathy_web.library.credentials import SecretRefused, caller_for_credential, refused
from empathy_web.library.models import AgentCredential
from memory import AccessDenied, NotFound, RateLimited
from memory.codec import check_id
from memory.exceptions import ERROR_CODES
from memory.tiers import AccessTier

from .admission import admit
from .waiting import Pending, Wait

PREFIX = "/api/v1/"  # where the API is mounted (empathy_web/urls.py)
logger = logging.getLogger("empathy_web.api")


class Error(Schema):
    """Every error: a stable ``code``, and a message that says what to do."""

    code: str
    message: str


# The errors any endpoint may answer, for the schema (one shape: ``Error``).
ERRORS: dict[int, type[Error]] = dict.fromkeys((400, 401, 403, 404, 409, 413, 422, 429, 503), Error)


class Refused(Exception):
    """A request this credential may not make: 403, naming what it needs."""


class CredentialAuth(HttpBearer):
    """The request's agent credential; the caller is its agent, with its tier."""

    def __call__(self, request: HttpRequest) -> AgentCredential:
        return admit(request.headers.get("Authorization"), request)

    def authenticate(self, request: HttpRequest, token: str) -> Any:  # pragma: no cover
        raise NotImplementedError  # __call__ reads the header itself


api = NinjaAPI(
    title="Empathy Web agent API",
    version="1",
    description=(
        "What an agent does through the short-term memory library, over HTTP. Send an "
        "agent credential as `Authorization: Bearer <secret>`: the agent id, tier and "
        "teams come from it, never from the request."
    ),
    auth=CredentialAuth(),
    urls_namespace="api_v1",
    openapi_url="/openapi.json",
    docs_url="/docs",
)


def caller(request: HttpRequest) -> Viewer:
    """Who acts: the credential's agent, with the credential's tier in its teams."""
    return caller_for_credential(request.auth)


def refuse(request: HttpRequest, message: str) -> NoReturn:
    """Audit a request past the credential's rights, and answer it 403 (call it from
    sync code: the audit log is in the database)."""
    refused(request, "forbidden", request.auth, detail=message)
    raise Refused(message)


def team_of(request: HttpRequest, team: str) -> str:
    """``team``, checked, if the credential may act in it; else 403."""
    check_id(team, "team")
    credential: AgentCredential = request.auth
    if not credential.may_act_in(team):
        scope = ", ".join(credential.teams) or "none"
        refuse(request, f"this credential may act in teams: {scope}; not in {team}")
    return team


def visible(request: HttpRequest, owner: str | Collection[str] | None, what: str) -> None:
    """404 for a record of a team the credential is not in (as if it were not there)."""
    if not caller(request).sees(owner):
        raise NotFound(f"no {what}")


def same_agent(request: HttpRequest, agent_id: str | None, what: str = "agent_id") -> None:
    """Refuse a request that names an agent other than the credential's own."""
    if agent_id is not None and agent_id != request.auth.agent_id:
        refuse(
            request,
            f"{what} {agent_id!r} is not this credential's agent ({request.auth.agent_id}); "
            "an agent acts only as itself",
        )


def at_least(request: HttpRequest, tier: AccessTier, action: str) -> None:
    """Refuse unless the credential's tier is ``tier`` or higher."""
    if request.auth.access_tier < tier:
        refuse(request, f"{action} needs the {tier.name.lower()} tier; this credential is "
                        f"{request.auth.tier.lower()}")  # fmt: skip


UNAUTHENTICATED = {
    "missing": "An agent credential is needed: send 'Authorization: Bearer <secret>'.",
    "unknown": "This credential is not known here.",
    "revoked": "This credential was revoked; ask a steward for a new one.",
    "expired": "This credential has expired; ask a steward for a new one.",
}


def _error(request: HttpRequest, status: int, code: str, message: str) -> HttpResponse:
    response = api.create_response(request, {"code": code, "message": message}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="agents"'
    return response


# The HTTP status of each of the library's error codes (memory.exceptions.ERROR_CODES);
# rate limits and Redis being down have handlers of their own, below.
STATUS_OF_CODE = {
    "too_large": 413, "bad_input": 400, "already_decided": 409, "lease_lost": 409,
    "id_taken": 409, "state_conflict": 409, "not_found": 404, "forbidden": 403,
}  # fmt: skip
STATUSES: list[tuple[type[Exception], int, str]] = [
    *((kind, STATUS_OF_CODE[code], code) for kind, code in ERROR_CODES if code in STATUS_OF_CODE),
    (Refused, 403, "forbidden"),
]


def _register(kind: type[Exception], status: int, code: str) -> None:
    def handler(request: HttpRequest, exc: Exception) -> HttpResponse:
        if kind is AccessDenied:  # the library's tier check; ``refuse`` audits its own
            _audit_denied(request, str(exc))
        return _error(request, status, code, str(exc))

    api.add_exception_handler(kind, handler)


def _audit_denied(request: HttpRequest, message: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # sync code: the usual case
        refused(request, "forbidden", request.auth, detail=message)
    else:  # a long poll checks its tier before it waits, so this is a slip: say so
        logger.error("api: refusal not audited (async): %s %s", request.path, message)


for _kind, _status, _code in STATUSES:
    _register(_kind, _status, _code)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return _error(
        request,
        401,
        "unauthenticated",
        "An agent credential is needed: send 'Authorization: Bearer <secret>'.",
    )


@api.exception_handler(SecretRefused)
def _refused_secret(request: HttpRequest, exc: SecretRefused) -> HttpResponse:
    return _error(request, 401, "unauthenticated", UNAUTHENTICATED[exc.reason])


@api.exception_handler(RateLimited)
def _rate_limited(request: HttpRequest, exc: RateLimited) -> HttpResponse:
    wait = max(1, round(exc.retry_after))
    response = _error(
        request,
        429,
        "rate_limited",
        f"This credential has made {settings.API_REQUESTS_PER_MINUTE} requests in the last "
        f"minute, its limit; try again in {wait} s.",
    )
    response["Retry-After"] = str(wait)
    return response


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in error.get('loc', ()))}: {error.get('msg', '')}"
        for error in exc.errors[:10]
    )
    return _error(request, 422, "bad_input", f"The request does not fit the schema: {problems}")


# What a 503 says (HTTP: as a sentence; MCP: after "unavailable: ").
REDIS_UNAVAILABLE = "Redis is unreachable; try again shortly"
DATABASE_UNAVAILABLE = "the database is unreachable or busy; try again shortly"


def _unavailable(request: HttpRequest, exc: Exception) -> HttpResponse:
    return _error(request, 503, "unavailable", REDIS_UNAVAILABLE.capitalize() + ".")


for _kind in UNAVAILABLE:
    api.add_exception_handler(_kind, _unavailable)


@api.exception_handler(OperationalError)
def _database_unavailable(request: HttpRequest, exc: OperationalError) -> HttpResponse:
    """The database did not answer (down, locked, or no pooled connection free in time)."""
    logger.warning("api: %s %s: the database failed: %s", request.method, request.path, exc)
    return _error(request, 503, "unavailable", DATABASE_UNAVAILABLE.capitalize() + ".")


def _json_under_prefix(
    default: Callable[..., HttpResponse], status: int, code: str, message: str
) -> Callable[..., HttpResponse]:
    """Django's error view for ``status`` (urls.py's handlers), answering the API's JSON
    error under ``PREFIX`` (what no endpoint answers: an unknown path, a request Django
    refuses before any view, a failure outside the API's handlers), and Django's own
    page elsewhere."""

    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.path.startswith(PREFIX):
            return _error(request, status, code, message)
        return default(request, *args, **kwargs)

    return view


bad_request = _json_under_prefix(
    defaults.bad_request, 400, "bad_input", "The request is malformed: its host, headers or body."
)
not_found = _json_under_prefix(
    defaults.page_not_found, 404, "not_found", f"No endpoint here; see {PREFIX}docs for them."
)
server_error = _json_under_prefix(
    defaults.server_error, 500, "internal_error", "The server failed on this request; it is logged."
)


# Set on a request by the agent API's handler, which finishes a ``Wait`` in its loop.
WAITS_IN_LOOP = "agent_api.waits_in_loop"


@api.exception_handler(Wait)
def _waiting(request: HttpRequest, exc: Wait) -> HttpResponse:
    if request.META.get(WAITS_IN_LOOP):
        return Pending(request, exc)
    return api.create_response(request, exc.outcome_here(), status=200)


def error_response(request: HttpRequest, exc: Exception) -> HttpResponse:
    """The API's answer to an error raised outside a view (a long poll's later tries):
    its JSON error, or Django's own 500 for an error the API does not know."""
    try:
        return api.on_exception(request, exc)
    except Exception:
        return response_for_exception(request, exc)
