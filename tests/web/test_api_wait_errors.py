"""A long poll that fails while it waits in the handler's event loop (Redis goes away):
the agent gets the API's JSON error, with the API's headers, not a broken connection."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from empathy_web.api import waiting
from empathy_web.api.handler import AgentAPIHandler
from empathy_web.dashboard.agents_memory import use_memory
from empathy_web.library.credentials import issue
from memory import RedisShortTermMemory
from memory.tiers import AccessTier
from tests.redis_server import start_redis_server

pytestmark = pytest.mark.django_db(transaction=True)


async def post(app: AgentAPIHandler, path: str, body: Any, secret: str) -> dict[str, Any]:
    """One request through the ASGI app: its status, headers and JSON body."""
    scope = {
        "type": "http", "method": "POST", "path": path, "raw_path": path.encode(),
        "query_string": b"", "root_path": "", "scheme": "http", "http_version": "1.1",
        "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000),
        "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                    (b"authorization", f"Bearer {secret}".encode())],
    }  # fmt: skip
    sent = [{"type": "http.request", "body": json.dumps(body).encode(), "more_body": False}]
    answer: dict[str, Any] = {"body": b""}

    async def receive() -> dict[str, Any]:
        if sent:
            return sent.pop()
        await asyncio.Event().wait()  # the client stays connected
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = {k.decode().lower(): v.decode() for k, v in message["headers"]}
        else:
            answer["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return {**answer, "json": json.loads(answer["body"])}


async def until_waiting(deadline: float) -> None:
    while not any(h.waiters for h in list(waiting._hubs.values())):
        assert time.monotonic() < deadline, "the receive never started waiting"
        await asyncio.sleep(0.01)


def test_redis_lost_during_a_wait_is_a_503_with_the_api_headers():
    server = start_redis_server(["--save", "", "--appendonly", "no"])
    memory = RedisShortTermMemory(url=server.url)
    use_memory(memory)
    try:
        _, secret = issue("waiting-bot", AccessTier.OBSERVER, all_teams=True)
        app = AgentAPIHandler()

        async def scenario() -> dict[str, Any]:
            asking = asyncio.create_task(post(app, "/api/v1/signals/receive", {"wait": 20}, secret))
            await until_waiting(time.monotonic() + 30)
            await asyncio.to_thread(server.stop)
            return await asyncio.wait_for(asking, 30)

        answer = asyncio.run(scenario())
    finally:
        use_memory(None)
        memory.close()
        server.stop()

    assert answer["status"] == 503, answer
    assert answer["json"]["code"] == "unavailable"
    assert answer["headers"]["cache-control"] == "no-store"
