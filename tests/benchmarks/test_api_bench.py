"""The agent API and the MCP server against the library itself: per-call latency over
HTTP (httpx, keep-alive) and over MCP (the SDK's client, and plain JSON-RPC posts) next
to the same calls made directly and next to two floors: daphne's (a bare ASGI app), and
the MCP SDK's (its client calling its own server's tool that does nothing); throughput
with 1, 16 and 64 agents over HTTP with one worker and with one per core
(``manage.py serve``), and how soon a waiting ``receive`` returns after a signal is
sent. Everything is a real process on 127.0.0.1: a private redis-server and the web
server (``BENCH_API_SERVER``: uvicorn, the default, or daphne), with production
settings (no DEBUG). Targets (printed, not asserted): p50 <= 3
ms for one agent; at least 1,000 operations/s with 16 agents. Run with ``make bench``;
set ``BENCH_MARKDOWN`` to a path to append the tables there."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from empathy_web.dashboard.management.commands.serve import DEFAULT_SERVER
from memory import AgentCoordinator, AgentTask, EmpathyOS
from tests.benchmarks.report import markdown_table, text_table
from tests.live_server import DAPHNE, HOST, ROOT, LiveServer, free_port, start_live_server
from tests.live_server import PRODUCTION as LIVE_PRODUCTION

pytestmark = pytest.mark.benchmark

N = int(os.environ.get("BENCH_API_N", "400"))
SECONDS = float(os.environ.get("BENCH_API_SECONDS", "5"))
AGENTS = (1, 16, 64)
TEAM = "bench"
ISSUE = """
from empathy_web.library.credentials import issue
from memory.tiers import AccessTier
for n in range({n}):
    print(issue(f"bench-{{n}}", AccessTier.CONTRIBUTOR, all_teams=True)[1])
"""


# As deployed, with the rate limit out of the way.
PRODUCTION = {
    **LIVE_PRODUCTION, "API_REQUESTS_PER_MINUTE": "100000000", "DB_CONN_MAX_AGE": "60",
}  # fmt: skip
WORKERS = (1, os.cpu_count() or 1)
# The ASGI server (manage.py serve --server): uvicorn (the default) or daphne.
SERVER = os.environ.get("BENCH_API_SERVER", DEFAULT_SERVER)


@contextlib.contextmanager
def serving(workers: int) -> Iterator[LiveServer]:
    server = start_live_server(workers, SERVER, **PRODUCTION)
    try:
        yield server
    finally:
        server.stop()


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))]


def timed(call: Callable[[int], Any], n: int = N) -> list[float]:
    for i in range(20):  # warm-up
        call(-i - 1)
    samples = []
    for i in range(n):
        started = time.perf_counter()
        call(i)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


# A claim+complete in an agent's loop: each call completes a task and claims the next
# (``claim_next``), so a task costs one call.
ONE_CALL = "claim+complete, one call"
# The claim and the complete of each claim+complete, by way, in milliseconds.
HALVES: dict[str, list[tuple[float, float]]] = {}


def halves(way: str, started: float, claimed: float) -> None:
    now = time.perf_counter()
    HALVES.setdefault(way, []).append(((claimed - started) * 1000, (now - claimed) * 1000))


def direct_ops(live: LiveServer) -> dict[str, Callable[[int], Any]]:
    agent = EmpathyOS("bench-0", live.memory)
    team = AgentCoordinator(live.memory, TEAM, actor="bench-0")

    def claim_complete(i: int) -> None:
        started = time.perf_counter()
        task = team.claim_task("bench-0", "direct")
        claimed = time.perf_counter()
        team.complete_task(task.task_id, {"ok": i})
        halves("library", started, claimed)

    return {
        "stash": lambda i: agent.stash(f"k{i % 100}", {"i": i}),
        "retrieve": lambda i: agent.retrieve(f"k{i % 100}"),
        "claim+complete": claim_complete,
        "send_signal": lambda i: agent.send_signal("bench", {"i": i}, "bench-1"),
    }


def http_ops(http: httpx.Client) -> dict[str, Callable[[int], Any]]:
    def post(path: str, body: Any) -> Any:
        answer = http.post(f"/api/v1{path}", json=body)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def claim_complete(i: int) -> None:
        started = time.perf_counter()
        task = post(f"/teams/{TEAM}/tasks/claim", {"task_type": "http"})["task"]
        claimed = time.perf_counter()
        post(f"/teams/{TEAM}/tasks/{task['task_id']}/complete",
             {"fencing_token": task["fencing_token"], "result": {"ok": i}})  # fmt: skip
        halves("HTTP", started, claimed)

    held: list[dict[str, Any]] = []  # the task that the last call claimed next

    def in_one_call(i: int) -> None:
        if not held:
            held.append(post(f"/teams/{TEAM}/tasks/claim", {"task_type": "http-loop"})["task"])
        task = held.pop()
        body = {"fencing_token": task["fencing_token"], "result": {"ok": i},
                "claim_next": "http-loop"}  # fmt: skip
        held.append(post(f"/teams/{TEAM}/tasks/{task['task_id']}/complete", body)["next"])

    return {
        "stash": lambda i: post("/memory/stash", {"key": f"k{i % 100}", "value": {"i": i}}),
        "retrieve": lambda i: http.get("/api/v1/memory/retrieve", params={"key": f"k{i % 100}"}),
        "claim+complete": claim_complete,
        ONE_CALL: in_one_call,
        "send_signal": lambda i: post("/signals/send", {"signal_type": "bench", "data": {"i": i},
                                                        "target_agent": "bench-1"}),
    }  # fmt: skip


Call = Callable[..., Awaitable[Any]]


@contextlib.asynccontextmanager
async def sdk_session(url: str, headers: dict[str, str]) -> AsyncIterator[ClientSession]:
    """The SDK's client: an initialized session over Streamable HTTP to ``url``/mcp."""
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as client,
        streamable_http_client(f"{url}/mcp", http_client=client) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def mcp_samples(live: LiveServer, secret: str) -> dict[str, list[float]]:
    """The MCP calls with the SDK's client (a session over Streamable HTTP)."""
    async with sdk_session(live.url, {"Authorization": f"Bearer {secret}"}) as session:

        async def call(tool: str, **args: Any) -> Any:
            result = await session.call_tool(tool, args)
            assert not result.is_error, result.content
            if result.structured_content is None:
                return json.loads("".join(getattr(p, "text", "") for p in result.content))
            return result.structured_content.get("result", result.structured_content)

        return await mcp_timings(call, "MCP")


@contextlib.contextmanager
def lean_client(port: int, headers: dict[str, str]) -> Iterator[Call]:
    """``call(tool, **arguments)`` as plain JSON-RPC posts (what the SDK's client sends to
    a stateless server with JSON responses) over one keep-alive connection: the
    server's part of a call, without the SDK client's CPU, which shares the 2 cores."""
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    headers = {
        **headers, "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18",
    }  # fmt: skip
    ids = iter(range(1, 1 << 30))

    async def call(tool: str, **args: Any) -> Any:
        rpc = {"jsonrpc": "2.0", "id": next(ids), "method": "tools/call",
               "params": {"name": tool, "arguments": args}}  # fmt: skip
        connection.request("POST", "/mcp", json.dumps(rpc), headers)
        result = json.loads(connection.getresponse().read())["result"]
        assert not result.get("isError"), result
        if (structured := result.get("structuredContent")) is not None:
            return structured.get("result", structured)
        return json.loads("".join(part.get("text", "") for part in result["content"]))

    try:
        yield call
    finally:
        connection.close()


async def lean_mcp_samples(live: LiveServer, secret: str) -> dict[str, list[float]]:
    """The MCP calls with ``lean_client``."""
    with lean_client(live.port, {"Authorization": f"Bearer {secret}"}) as call:
        return await mcp_timings(call, "MCP, lean client")


async def mcp_timings(call: Call, way: str) -> dict[str, list[float]]:
    """Every op over MCP through ``call(tool, **arguments)``, timed."""

    async def claim_complete(i: int) -> None:
        started = time.perf_counter()
        task = (await call("claim_task", team=TEAM, task_type="mcp"))["task"]
        claimed = time.perf_counter()
        await call("complete_task", team=TEAM, task_id=task["task_id"],
                   fencing_token=task["fencing_token"], result={"ok": i})  # fmt: skip
        halves(way, started, claimed)

    held: list[dict[str, Any]] = []  # the task that the last call claimed next

    async def in_one_call(i: int) -> None:
        if not held:
            held.append((await call("claim_task", team=TEAM, task_type="mcp-loop"))["task"])
        task = held.pop()
        done = await call("complete_task", team=TEAM, task_id=task["task_id"],
                          fencing_token=task["fencing_token"], result={"ok": i},
                          claim_next="mcp-loop")  # fmt: skip
        held.append(done["next"])

    ops = {
        "stash": lambda i: call("stash", key=f"k{i % 100}", value={"i": i}),
        "retrieve": lambda i: call("retrieve", key=f"k{i % 100}"),
        "claim+complete": claim_complete,
        ONE_CALL: in_one_call,
        "send_signal": lambda i: call("send_signal", signal_type="bench", data={"i": i},
                                      target_agent="bench-1"),
    }  # fmt: skip
    return {name: await atimed(op) for name, op in ops.items()}


async def atimed(op: Callable[[int], Awaitable[Any]], n: int = N // 2) -> list[float]:
    """Milliseconds of ``n`` awaited calls of ``op``, after 10 untimed."""
    for i in range(10):
        await op(-i - 1)
    samples = []
    for i in range(n):
        started = time.perf_counter()
        await op(i)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def keepalive_stashes(port: int, secret: str, stop: float) -> int:
    """One agent stashing over one keep-alive HTTP/1.1 connection until ``stop``, with
    a client of a few lines (httpx would spend more of the two cores than the server
    under test); returns how many it made."""
    reader, writer = await asyncio.open_connection(HOST, port)
    done = 0
    while time.monotonic() < stop:
        body = json.dumps({"key": f"t{done % 50}", "value": done}).encode()
        writer.write(
            f"POST /api/v1/memory/stash HTTP/1.1\r\nHost: {HOST}\r\n"
            f"Authorization: Bearer {secret}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), head
        if b"transfer-encoding: chunked" in head.lower():
            while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
                await reader.readexactly(size + 2)
            await reader.readexactly(2)
        else:
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            await reader.readexactly(int(length[1]) if length else 0)
        done += 1
    writer.close()
    return done


async def throughput(live: LiveServer, secrets: list[str], agents: int) -> float:
    """Stashes per second with ``agents`` agents in parallel, each with its own
    credential and connection."""
    stop = time.monotonic() + SECONDS
    started = time.monotonic()
    done = await asyncio.gather(*(keepalive_stashes(live.port, s, stop) for s in secrets[:agents]))
    return sum(done) / (time.monotonic() - started)


@contextlib.contextmanager
def bare_server(command: list[str], port: int) -> Iterator[str]:
    """A server of no project (``command``, listening on ``port``), once it answers:
    its URL."""
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        url = f"http://{HOST}:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, f"{command[0]} did not answer"
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def floor_samples() -> list[float]:
    """Per-call milliseconds of a stash-sized POST to ``bare_asgi`` under daphne."""
    port = free_port()
    command = [DAPHNE, "-b", HOST, "-p", str(port), "tests.benchmarks.bare_asgi:application"]
    with bare_server(command, port) as url, httpx.Client(base_url=url, timeout=30) as http:
        return timed(lambda i: http.post("/api/v1/memory/stash", json={"key": "k", "value": i}))


# The MCP floors: a tool that does nothing on ``bare_mcp``'s server under uvicorn (with its
# lifespan, which the SDK's app needs), called once and twice a sample, by the SDK's
# client and by the lean one; and twice by the SDK's client on the stateful server.
MCP_FLOOR = "(the SDK's own server, a tool that does nothing)"
MCP_FLOOR_TWICE = "(the same, two calls)"
MCP_FLOOR_STATEFUL = "(the same, two calls, stateful)"


def mcp_floor_samples() -> dict[tuple[str, str], list[float]]:
    samples = {}
    for app, ways in (("application", ("MCP", "MCP, lean client")), ("stateful", ("MCP",))):
        port = free_port()
        command = [
            sys.executable, "-m", "uvicorn", f"tests.benchmarks.bare_mcp:{app}",
            "--host", HOST, "--port", str(port), "--loop", "uvloop", "--http", "httptools",
            "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        with bare_server(command, port) as url:
            for way in ways:
                found = asyncio.run(floor_calls(url, port, way))
                if app == "stateful":  # the pair is what a target is about
                    found = {MCP_FLOOR_STATEFUL: found[MCP_FLOOR_TWICE]}
                samples.update({(name, way): times for name, times in found.items()})
    return samples


async def floor_calls(url: str, port: int, way: str) -> dict[str, list[float]]:
    """The tool that does nothing, called once and twice a sample, by the SDK's client
    (``way`` "MCP") or the lean one."""
    async with contextlib.AsyncExitStack() as stack:
        if way == "MCP":
            session = await stack.enter_async_context(sdk_session(url, {}))

            async def nothing() -> None:
                assert not (await session.call_tool("nothing", {})).is_error

        else:
            call = stack.enter_context(lean_client(port, {}))

            async def nothing() -> None:
                await call("nothing")

        async def once(_: int) -> None:
            await nothing()

        async def twice(_: int) -> None:
            await nothing()
            await nothing()

        return {MCP_FLOOR: await atimed(once), MCP_FLOOR_TWICE: await atimed(twice)}


def add_tasks(live: LiveServer, task_type: str, count: int) -> None:
    """Pending tasks of ``task_type`` for the claims to come (added untimed)."""
    team = AgentCoordinator(live.memory, TEAM)
    for i in range(count):
        team.add_task(AgentTask(f"{task_type}-{i}", task_type))


def receive_latency(live: LiveServer, secret: str, rounds: int = 20) -> list[float]:
    """Milliseconds from a send to the waiting receive's answer."""
    samples = []
    with httpx.Client(base_url=live.url, timeout=30,
                      headers={"Authorization": f"Bearer {secret}"}) as http:  # fmt: skip
        http.post("/api/v1/signals/receive", json={})  # empty the inbox
        for _ in range(rounds):
            sent: list[float] = []

            def send(sent: list[float] = sent) -> None:
                time.sleep(0.3)  # the waiter is waiting by then; the figure is from the send
                sent.append(time.perf_counter())
                EmpathyOS("bench-sender", live.memory).send_signal("wake", 1, "bench-1")

            sender = threading.Thread(target=send)
            sender.start()
            answer = http.post("/api/v1/signals/receive", json={"wait": 10})
            arrived = time.perf_counter()
            sender.join()
            assert answer.json()["items"], "the waiting receive came back empty"
            samples.append((arrived - sent[0]) * 1000)
    return samples


def issue_secrets(live: LiveServer) -> list[str]:
    return live.manage("shell", "-v", "0", "-c", ISSUE.format(n=max(AGENTS))).split()


def test_api_and_mcp_against_the_library() -> None:
    rows = []
    rates: dict[tuple[int, int], float] = {}
    with serving(1) as live:
        secrets = issue_secrets(live)
        for task_type in ("direct", "http", "mcp", "http-loop", "mcp-loop"):
            add_tasks(live, task_type, 2 * N + 50)  # MCP's are claimed by two clients
        direct = {name: timed(op) for name, op in direct_ops(live).items()}
        with httpx.Client(base_url=live.url, timeout=30,
                          headers={"Authorization": f"Bearer {secrets[0]}"}) as client:  # fmt: skip
            over_http = {name: timed(op) for name, op in http_ops(client).items()}
        over_mcp = asyncio.run(mcp_samples(live, secrets[0]))
        over_lean_mcp = asyncio.run(lean_mcp_samples(live, secrets[0]))
        waits = receive_latency(live, secrets[1])
        rates.update({(1, n): asyncio.run(throughput(live, secrets, n)) for n in AGENTS})
    for workers in WORKERS[1:]:
        with serving(workers) as live:
            secrets = issue_secrets(live)
            rates.update({(workers, n): asyncio.run(throughput(live, secrets, n)) for n in AGENTS})
    timings = {
        "library": direct, "HTTP": over_http, "MCP": over_mcp, "MCP, lean client": over_lean_mcp,
    }  # fmt: skip
    for way, timed_way in timings.items():  # the halves of the timed pairs, not the warm-up
        pairs = HALVES[way][-len(timed_way["claim+complete"]) :]
        timed_way["(claim)"] = [claim for claim, _ in pairs]
        timed_way["(complete)"] = [complete for _, complete in pairs]
    floors = {("(a bare ASGI app)", "HTTP"): floor_samples()}
    floors.update(mcp_floor_samples())
    for (name, way), samples in floors.items():
        p50, p95 = percentiles(samples)
        rows.append([name, way, str(len(samples)), f"{p50:.2f}", f"{p95:.2f}", "-", "-"])
    names = (
        "stash",
        "retrieve",
        "claim+complete",
        "(claim)",
        "(complete)",
        ONE_CALL,
        "send_signal",
    )
    for name in names:
        for way, timed_way in timings.items():
            if name not in timed_way:  # the library has no call that does both
                continue
            samples = timed_way[name]
            p50, p95 = percentiles(samples)
            target = "p50 <= 3 ms" if way != "library" else "-"
            verdict = ("PASS" if p50 <= 3 else "FAIL") if way != "library" else "-"
            rows.append([name, way, str(len(samples)), f"{p50:.2f}", f"{p95:.2f}", target, verdict])

    header = ["call", "way", "n", "p50 ms", "p95 ms", "target", "verdict"]
    second_header = [f"{SERVER} workers", "agents", "ops/s", "target", "verdict"]
    second = [
        [str(w), str(n), f"{rate:,.0f}", ">= 1,000/s" if n == 16 else "-",
         ("PASS" if rate >= 1000 else "FAIL") if n == 16 else "-"]
        for (w, n), rate in rates.items()
    ]  # fmt: skip
    p50, p95 = percentiles(waits)
    third_header = ["n", "p50 ms", "p95 ms", "max ms"]
    third = [[str(len(waits)), f"{p50:.1f}", f"{p95:.1f}", f"{max(waits):.1f}"]]
    tables = [
        ("One agent, one call at a time (tasks added beforehand, untimed):", header, rows, {2, 3, 4}),
        (f"Stashes over HTTP, agents in parallel for {SECONDS:g} s:", second_header, second, {0, 1, 2}),
        ("A waiting receive, from the send to its answer:", third_header, third, {0, 1, 2, 3}),
    ]  # fmt: skip
    for title, head, body, right in tables:
        print()
        print(title)
        print(text_table(head, body, right=right))
    if path := os.environ.get("BENCH_MARKDOWN"):
        with Path(path).open("a") as out:
            for _, head, body, right in tables:
                out.write(markdown_table(head, body, right=right) + "\n\n")
