"""The library over a server: ``connect(base_url, token)`` returns a memory that
``EmpathyOS``, ``AgentCoordinator`` and ``TeamSession`` accept unchanged, so code written
for the library runs against a server by changing the line that makes the memory::

    memory = remote.connect("https://memory.example.com", token)   # was get_redis_memory()
    agent = EmpathyOS("code_reviewer", short_term_memory=memory,
                      access_tier=AccessTier.CONTRIBUTOR)

Every call goes to the server's agent API (``/api/v1/``) with a credential's secret. A
credential is one agent: its id and tier. Pass one secret, or a mapping of agent id to
secret when the code acts as several agents (each object then uses the credential of
the agent it acts as: ``coordinator:<team>`` for a coordinator's own calls,
``session:<id>`` for a session's, unless ``actor`` says otherwise). An agent id or tier
that differs from its credential's raises ``AccessDenied``, as does acting as an agent
with no credential here. The server's errors come back as the library's exceptions
(``LeaseLost``, ``NotFound``...). One ``httpx.Client`` carries every call, reusing its
connections; ``close()`` it when done.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .coordination import AgentCoordinator
from .empathy_os import EmpathyOS
from .remote_client import RemoteMemory
from .remote_objects import RemoteCoordinator, RemoteEmpathyOS, RemoteSession
from .sessions import TeamSession

CLASSES = {
    EmpathyOS: RemoteEmpathyOS,
    AgentCoordinator: RemoteCoordinator,
    TeamSession: RemoteSession,
}

__all__ = ["RemoteMemory", "connect"]


def connect(base_url: str, token: str | Mapping[str, str], **options: Any) -> RemoteMemory:
    """A memory on the server at ``base_url``, with one credential's secret, or a
    mapping of agent id to secret."""
    return RemoteMemory(base_url, token, classes=CLASSES, **options)
