"""On PostgreSQL each web process keeps its connections in a pool: a live server, on a
database of its own in the suite's PostgreSQL, answers many page requests at once from
at most ``DB_POOL_SIZE`` connections, and keeps them for the next requests instead of
connecting anew for each. ``make test`` runs the web suite on PostgreSQL too; on SQLite
there is no pool and this is skipped."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest

from tests.live_server import LiveServer, start_live_server

URL = os.environ.get("DATABASE_URL", "")
pytestmark = pytest.mark.skipif(
    not URL.startswith(("postgres://", "postgresql://")),
    reason="the pool is PostgreSQL's (make test runs the web suite on PostgreSQL too)",
)
SIZE = 3
CLIENTS = 8  # more than SIZE: requests wait for a free connection
PAGES = ("/", "/patterns/", "/library/", "/tasks/", "/signals/")


@pytest.fixture
def database() -> Iterator[str]:
    """A database of its own in the suite's PostgreSQL: its URL."""
    name = f"pool_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def live(database: str) -> Iterator[LiveServer]:
    server = start_live_server(DATABASE_URL=database, DB_POOL_SIZE=str(SIZE), DB_POOL_TIMEOUT="5")
    try:
        yield server
    finally:
        server.stop()


def server_connections(monitor: psycopg.Connection, database: str) -> int:
    """Connections to ``database`` now (the live server's: nothing else uses it)."""
    row = monitor.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        (database.rsplit("/", 1)[1],),
    ).fetchone()
    return row[0]


def test_pages_answer_from_a_few_connections_that_the_process_keeps(
    live: LiveServer, database: str
) -> None:
    cookies = {"sessionid": live.session("pool-steward", "steward")}
    done = threading.Event()
    seen: list[int] = []

    def watch() -> None:
        with psycopg.connect(URL, autocommit=True) as monitor:
            while not done.is_set():
                seen.append(server_connections(monitor, database))

    def visit(client: int) -> list[int]:
        with httpx.Client(base_url=live.url, cookies=cookies, timeout=30) as http:
            return [http.get(PAGES[(client + i) % len(PAGES)]).status_code for i in range(10)]

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(CLIENTS) as clients:
            statuses = [s for answers in clients.map(visit, range(CLIENTS)) for s in answers]
    finally:
        done.set()
        watcher.join()

    assert statuses == [200] * CLIENTS * 10
    assert seen and max(seen) <= SIZE, max(seen)
    # kept for the next requests, not closed after each
    with psycopg.connect(URL, autocommit=True) as monitor:
        assert 1 <= server_connections(monitor, database) <= SIZE


def test_tool_calls_give_their_connections_back(live: LiveServer, database: str) -> None:
    """An MCP tool call runs in a pool thread that no request frames: what it takes from
    the database pool goes back when it ends, so more threads than connections share
    them (before, each thread kept the one it took, and the rest timed out)."""
    secret = live.credential("pool-agent", "observer")
    headers = {
        "Authorization": f"Bearer {secret}", "Accept": "application/json, text/event-stream",
    }  # fmt: skip

    def search(client: int) -> list[bool]:
        found = []
        with httpx.Client(base_url=live.url, headers=headers, timeout=30) as http:
            for i in range(10):
                rpc = {"jsonrpc": "2.0", "id": i, "method": "tools/call",
                       "params": {"name": "search_library", "arguments": {"q": "guard"}}}  # fmt: skip
                answer = http.post("/mcp", json=rpc)
                found.append(answer.status_code == 200 and not answer.json()["result"]["isError"])
        return found

    with ThreadPoolExecutor(CLIENTS) as clients:
        answered = [ok for answers in clients.map(search, range(CLIENTS)) for ok in answers]

    assert answered == [True] * CLIENTS * 10
    with psycopg.connect(URL, autocommit=True) as monitor:
        assert server_connections(monitor, database) <= SIZE
