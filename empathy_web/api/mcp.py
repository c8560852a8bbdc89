"""The MCP server (``/mcp``, Streamable HTTP, stateless): the agent's work as tools for
LLM clients, with the same bearer credentials as the HTTP API.

Each tool runs the HTTP API's own endpoint function with the credential of its call,
so the tier, the teams, the identity rules, the rate limit and the audit of refusals
are exactly the API's. Stateless, with JSON responses: any web process answers any
call, and nothing is kept between calls.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import asdict, dataclass, is_dataclass
from functools import partial
from typing import Any

from django.conf import settings
from django.db import OperationalError
from django.http.request import split_domain_port, validate_host
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from ninja import Schema
from pydantic import ValidationError

from empathy_web.dashboard.agents_memory import UNAVAILABLE
from empathy_web.library.credentials import SecretRefused
from empathy_web.library.models import AgentCredential
from memory import RateLimited

from . import library, patterns, sessions, signals, tasks, working
from .admission import admit
from .core import DATABASE_UNAVAILABLE, REDIS_UNAVAILABLE, STATUSES, UNAUTHENTICATED
from .waiting import Wait, off_loop

PATH = "/mcp"

server = MCPServer(
    name="empathy-web",
    instructions=(
        "Short-term memory for a team of agents. You act as the agent your credential "
        "names, with its tier and teams. Claim a task, do it, stash what you learn, "
        "stage reusable patterns for a human validator, and complete the task with its "
        "fencing token."
    ),
)


@dataclass
class ToolCall:
    """One tool call as the API sees a request: who (``auth``) and where, for audits."""

    auth: AgentCredential
    path: str
    method: str = "TOOL"


# The credential that ``MCPApp`` admitted for the HTTP request a tool call came in.
_admitted: ContextVar[AgentCredential | None] = ContextVar("mcp_admitted", default=None)


async def _call(ctx: Context, tool: str) -> ToolCall:
    credential = _admitted.get()
    if credential is None:  # every request passes MCPApp, which admits it first
        raise ToolError("unauthenticated: no credential was admitted for this call")
    return ToolCall(auth=credential, path=f"{PATH}/{tool}")


def _plain(value: Any) -> Any:
    if isinstance(value, Schema):
        return json.loads(value.model_dump_json())
    if is_dataclass(value) and not isinstance(value, type):
        return json.loads(json.dumps(asdict(value), default=str))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


async def _run(ctx: Context, tool: str, endpoint: Callable[..., Any], *args: Any) -> Any:
    """``endpoint(call, *args)``, as the API runs it (a long poll waits in this loop),
    with its errors as tool errors that name the API's error code."""
    call = await _call(ctx, tool)
    try:
        try:
            result = await off_loop(partial(endpoint, call, *args))
        except Wait as wait:
            result = await wait.outcome(off_loop)
    except ValidationError as exc:
        raise ToolError(f"bad_input: {exc.errors()[0].get('msg', exc)}") from None
    except UNAVAILABLE:
        raise ToolError(f"unavailable: {REDIS_UNAVAILABLE}") from None
    except OperationalError:
        raise ToolError(f"unavailable: {DATABASE_UNAVAILABLE}") from None
    except Exception as exc:
        for kind, _, code in STATUSES:
            if isinstance(exc, kind):
                raise ToolError(f"{code}: {exc}") from None
        raise
    return _plain(result)


@server.tool(
    description="Keep a JSON value in your working memory under a key, for `ttl` seconds (default one hour)."
)
async def stash(key: str, value: Any, ctx: Context, ttl: float | None = None) -> Any:
    return await _run(ctx, "stash", working.stash, working.Stash(key=key, value=value, ttl=ttl))


@server.tool(
    description="Read a value from your working memory, or another agent's with `agent_id`. The value is null when missing or expired."
)
async def retrieve(key: str, ctx: Context, agent_id: str | None = None) -> Any:
    return await _run(ctx, "retrieve", working.retrieve, key, agent_id)


@server.tool(
    description="Send a coordination signal to one agent (`target_agent`) or to every agent, optionally about a team."
)
async def send_signal(
    signal_type: str, ctx: Context, data: Any = None, target_agent: str | None = None,
    team: str | None = None,
) -> Any:  # fmt: skip
    body = signals.Send(signal_type=signal_type, data=data, target_agent=target_agent, team=team)
    return await _run(ctx, "send_signal", signals.send, body)


@server.tool(
    description="Take the signals waiting for you (each is returned once). With `wait` (seconds, up to 30) an empty inbox waits for one."
)
async def receive_signals(ctx: Context, signal_type: str | None = None, wait: float = 0) -> Any:
    body = signals.Receive(signal_type=signal_type, wait=wait)
    return await _run(ctx, "receive_signals", signals.receive, body)


@server.tool(
    description="Claim the next task of `task_type` in `team`. The result holds the task with its `fencing_token` (null: none). With `wait` (seconds, up to 30) it waits for one."
)
async def claim_task(team: str, task_type: str, ctx: Context, wait: float = 0) -> Any:
    return await _run(
        ctx, "claim_task", tasks.claim, team, tasks.Claim(task_type=task_type, wait=wait)
    )


@server.tool(
    description="Complete a task you claimed, with the `fencing_token` from the claim and a JSON result. With `claim_next` (a task type) the same call then claims your next task of that type: the result's `next` (null: none)."
)
async def complete_task(
    team: str, task_id: str, fencing_token: int, ctx: Context, result: Any = None,
    claim_next: str | None = None,
) -> Any:  # fmt: skip
    body = tasks.Complete(fencing_token=fencing_token, result=result, claim_next=claim_next)
    return await _run(ctx, "complete_task", tasks.complete, team, task_id, body)


@server.tool(
    description="Give up a task you claimed: it goes back to its queue (`retry`, while attempts are left) or to the dead letters."
)
async def fail_task(
    team: str, task_id: str, fencing_token: int, ctx: Context, error: Any = None,
    retry: bool = True,
) -> Any:  # fmt: skip
    body = tasks.Fail(fencing_token=fencing_token, error=error, retry=retry)
    return await _run(ctx, "fail_task", tasks.fail, team, task_id, body)


@server.tool(
    description="Stage a pattern you discovered (an id, a type, a name, a description, optional code and a confidence from 0 to 1) for a human validator to approve into the library."
)
async def stage_pattern(
    pattern_id: str, pattern_type: str, name: str, description: str, ctx: Context,
    code: str | None = None, confidence: float = 0.5, team: str | None = None,
) -> Any:  # fmt: skip
    body = patterns.Stage(
        pattern_id=pattern_id, pattern_type=pattern_type, name=name, description=description,
        code=code, confidence=confidence, team=team,
    )  # fmt: skip
    return await _run(ctx, "stage_pattern", patterns.stage, body)


@server.tool(
    description="Search the library of patterns validators approved, by text and type (newest first)."
)
async def search_library(ctx: Context, q: str = "", type: str = "", limit: int = 10) -> Any:
    query = library.Search(q=q, type=type, limit=limit)
    return await _run(ctx, "search_library", library.search, query)


@server.tool(description="Share a JSON value under a key with every participant of a team session.")
async def share_in_session(session_id: str, key: str, value: Any, ctx: Context) -> Any:
    body = sessions.Share(key=key, value=value)
    return await _run(ctx, "share_in_session", sessions.share, session_id, body)


class MCPApp:
    """``/mcp`` as an ASGI app beside Django's: the SDK's Streamable HTTP transport,
    stateless, with one session manager per event loop, started on its first call (the
    server has no ASGI lifespan), and hosts checked against ALLOWED_HOSTS."""

    def __init__(self) -> None:
        self.managers: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, asyncio.Future[StreamableHTTPSessionManager]
        ] = weakref.WeakKeyDictionary()

    async def _manager(self) -> StreamableHTTPSessionManager:
        loop = asyncio.get_running_loop()
        if loop not in self.managers:
            ready: asyncio.Future[StreamableHTTPSessionManager] = loop.create_future()
            self.managers[loop] = ready
            loop.create_task(self._serve(ready))
        return await self.managers[loop]

    @staticmethod
    async def _serve(ready: asyncio.Future[StreamableHTTPSessionManager]) -> None:
        manager = StreamableHTTPSessionManager(
            app=server._lowlevel_server,
            json_response=True,
            stateless=True,
            security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        async with manager.run():
            ready.set_result(manager)
            await asyncio.Event().wait()  # for as long as the loop runs

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
        if not validate_host(split_domain_port(host)[0], settings.ALLOWED_HOSTS):
            await _plain_response(send, 400, b"Bad Request: the Host is not allowed here.")
            return
        authorization = dict(scope.get("headers") or []).get(b"authorization", b"")
        where = ToolCall(auth=None, path=PATH, method=scope.get("method", ""))  # type: ignore[arg-type]
        try:
            credential = await off_loop(partial(admit, authorization.decode("latin-1"), where))
        except SecretRefused as exc:
            await _rpc_error(send, 401, f"unauthenticated: {UNAUTHENTICATED[exc.reason]}")
            return
        except RateLimited as exc:
            wait = max(1, round(exc.retry_after))
            message = f"rate_limited: this credential is over its limit; try again in {wait} s"
            await _rpc_error(send, 429, message, (b"retry-after", str(wait).encode()))
            return
        except UNAVAILABLE:
            await _rpc_error(send, 503, f"unavailable: {REDIS_UNAVAILABLE}")
            return
        except OperationalError:
            await _rpc_error(send, 503, f"unavailable: {DATABASE_UNAVAILABLE}")
            return
        manager = await self._manager()
        token = _admitted.set(credential)  # the tool calls of this request run as it
        try:
            await manager.handle_request(scope, receive, send)
        finally:
            _admitted.reset(token)


async def _rpc_error(send: Any, status: int, message: str, *headers: tuple[bytes, bytes]) -> None:
    """A JSON-RPC error, which MCP clients surface, e.g. "unauthenticated: ..."."""
    error = {"jsonrpc": "2.0", "id": None, "error": {"code": -32001, "message": message}}
    await _plain_response(send, status, json.dumps(error).encode(), True, *headers)


async def _plain_response(
    send: Any, status: int, body: bytes, is_json: bool = False, *more: tuple[bytes, bytes]
) -> None:
    kind = b"application/json" if is_json else b"text/plain; charset=utf-8"
    headers = [(b"content-type", kind), *more]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="agents"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


mcp_app = MCPApp()
