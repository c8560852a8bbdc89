"""Calling the agent API as an agent does: a credential, JSON in and out."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client

from empathy_web.library.credentials import issue
from memory.tiers import AccessTier

BASE = "/api/v1"


class Agent:
    """A test client that sends one credential's secret with every request."""

    def __init__(self, secret: str, agent_id: str = "") -> None:
        self.secret = secret
        self.agent_id = agent_id
        self.client = Client()
        self.headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}

    def get(self, path: str, **params: Any):
        return self.client.get(BASE + path, params, **self.headers)

    def post(self, path: str, body: Any = None):
        data = json.dumps({} if body is None else body)
        return self.client.post(BASE + path, data, content_type="application/json", **self.headers)


def agent(
    agent_id: str = "bot",
    tier: str = "contributor",
    teams: tuple[str, ...] = (),
    all_teams: bool = True,
    **options: Any,
) -> Agent:
    """A new credential for ``agent_id`` and a client that uses it."""
    _, secret = issue(
        agent_id, AccessTier[tier.upper()], teams=teams, all_teams=all_teams and not teams,
        **options,
    )  # fmt: skip
    return Agent(secret, agent_id)


def data_keys(memory: Any) -> set[bytes]:
    """Every key but the credentials' rate counters: what the agents' data holds."""
    return {k for k in memory.client.keys("*") if b"{wm:credential-" not in k}
