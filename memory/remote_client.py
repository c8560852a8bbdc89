"""``RemoteMemory``: the HTTP side of ``memory.remote`` (see there)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from .exceptions import (
    ERROR_CODES,
    AccessDenied,
    InvalidValue,
    MemoryConnectionError,
    RateLimited,
)
from .tiers import AccessTier

API = "/api/v1"
DEFAULT_TIMEOUT = 40.0  # a long poll waits up to 30 s
_EXCEPTIONS = {code: kind for kind, code in ERROR_CODES}  # the last, most general, wins


@dataclass(frozen=True)
class Identity:
    """One credential: the agent it acts as, its tier, and its secret."""

    agent_id: str
    tier: AccessTier
    secret: str


class RemoteMemory:
    """A short-term memory on a server, reached with agent credentials."""

    mode = "remote"

    def __init__(
        self,
        base_url: str,
        token: str | Mapping[str, str],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        classes: Mapping[type, type] | None = None,
    ) -> None:
        # The library's classes and what each becomes on this memory (their __new__
        # looks here), so that they need not import this module.
        self.classes = dict(classes or {})
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)
        secrets = [token] if isinstance(token, str) else list(token.values())
        self.identities: dict[str, Identity] = {}
        for secret in secrets:
            me = self._send("GET", "/whoami", secret)
            tier = AccessTier[me["tier"].upper()]
            self.identities[me["agent_id"]] = Identity(me["agent_id"], tier, secret)
        if isinstance(token, Mapping):
            for agent_id in token:
                if agent_id not in self.identities:
                    raise AccessDenied(f"the credential given for {agent_id} is not {agent_id}'s")

    @property
    def agent_id(self) -> str:
        """The agent of a memory with one credential."""
        if len(self.identities) != 1:
            raise AccessDenied("this memory holds several credentials: name the agent")
        return next(iter(self.identities))

    def identity(self, agent_id: str | None, tier: AccessTier | None = None) -> Identity:
        """The credential for ``agent_id`` (the only one, when None), checked against the
        ``tier`` the code asks for."""
        found = self.identities.get(agent_id or self.agent_id)
        if found is None:
            raise AccessDenied(
                f"no credential for agent {agent_id} here: a server decides who an agent "
                "is, by its credential"
            )
        if tier is not None and AccessTier(tier) != found.tier:
            raise AccessDenied(
                f"{found.agent_id}'s credential is {found.tier.name.lower()}, not "
                f"{AccessTier(tier).name.lower()}: the server decides the tier"
            )
        return found

    def call(
        self,
        agent_id: str | None,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """One API call as ``agent_id``; the answer's JSON, or the library's exception."""
        return self._send(method, path, self.identity(agent_id).secret, body, params)

    def _send(
        self,
        method: str,
        path: str,
        secret: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            answer = self.http.request(
                method,
                API + path,
                json=body,
                params=query,
                headers={"Authorization": f"Bearer {secret}"},
            )
        except httpx.HTTPError as exc:
            raise MemoryConnectionError(f"the server at {self.base_url} failed: {exc}") from exc
        if answer.is_success:
            return answer.json()
        raise _error(answer)

    def close(self) -> None:
        self.http.close()

    def __repr__(self) -> str:
        return f"<RemoteMemory {self.base_url} as {', '.join(self.identities)}>"


def _error(answer: httpx.Response) -> Exception:
    try:
        found = answer.json()
        code, message = found["code"], found["message"]
    except (ValueError, KeyError, TypeError):
        return MemoryConnectionError(
            f"the server answered {answer.status_code}: {answer.text[:200]}"
        )
    if code == "rate_limited":
        return RateLimited(message, retry_after=float(answer.headers.get("Retry-After", 1)))
    if code == "unauthenticated":
        return AccessDenied(f"the server refused the credential: {message}")
    return _EXCEPTIONS.get(code, InvalidValue)(message)
