"""Live feed, end to end: from ``send_signal`` in an agent process to the websocket frame
that carries the signal, and the memory of the web and bridge processes under load.

Everything is a real process on 127.0.0.1: a private redis-server, the web server serving
``empathy_web.asgi:application`` (channel layer on that Redis, SQLite file database),
``manage.py run_bridge``, and an agent process that calls ``EmpathyOS.send_signal`` with
its wall-clock send time in the data (``{"i": n, "t": time.time()}``). N websocket
clients in this process open ``/ws/dashboard/?panels=signal-feed`` as a logged-in
observer, resume from the newest signal, and for every signal in every frame record
``receive time - t`` (one machine, one clock). Signals still undelivered when the drain
ends count as infinitely late, so a percentile that falls among them prints as ``>N``.

Beside the clients, a probe joins the channel-layer group ``dashboard`` itself and, for
each hint, reads the new signals from Redis without rendering anything. Its latency
("hint") is what an instantly reacting consumer would see (agent -> Redis -> bridge
window -> channel layer); the rest of the end-to-end figure is the web process (each
consumer re-reading Redis and rendering its own copy of the fragment) and the client.
The CPU used by each process during a run, the web server's CPU per delivered copy, and
the render cost of one consumer's fragment say where that rest goes.

Targets, printed as PASS or FAIL and not asserted: p95 <= 250 ms with 100 clients at 200
signals/s; web and bridge RSS flat after warm-up over 100,000 events (the last
sample within 10 % of the one at 20,000). The asserts only check sanity: signals
arrived, none twice, none out of order, none foreign. Refused handshakes are reported,
not asserted.

Knobs (environment): BENCH_LIVE_SECONDS (10), BENCH_LIVE_RATE (200), BENCH_LIVE_CLIENTS
("10,100,500"), BENCH_LIVE_COALESCE (the bridge's panel window, then 0.05), BENCH_MEMORY_EVENTS (100000),
BENCH_MEMORY_RATE (0 = as fast as the agent can), BENCH_MARKDOWN (append the tables),
BENCH_LIVE_SERVER (uvicorn, as ``manage.py serve``; or daphne, uvicorn-websockets, uvicorn-wsproto), BENCH_LIVE_WORKERS
(1; more runs ``manage.py serve``, whose workers share the clients) and BENCH_LIVE_BRIDGES
(1; the others stand by).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from channels_redis.core import RedisChannelLayer

from empathy_web.dashboard.bridge import PANEL_WINDOW
from empathy_web.dashboard.management.commands.serve import DEFAULT_SERVER
from memory import RedisShortTermMemory
from memory.signals import list_signals, signals_after
from memory.tiers import AccessTier, Caller
from tests.benchmarks.report import markdown_table, text_table
from tests.live_server import SESSION_SCRIPT, server_env
from tests.live_server import web_command as single_web_command
from tests.redis_server import RedisServer, start_redis_server

READER = Caller("reader", AccessTier.OBSERVER)  # the reads below read as an observer

pytestmark = pytest.mark.benchmark

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
HOST = "127.0.0.1"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _floats(name: str, default: str) -> list[float]:
    return [float(x) for x in os.environ.get(name, default).split(",") if x.strip()]


SECONDS = float(os.environ.get("BENCH_LIVE_SECONDS", "10"))
RATE = float(os.environ.get("BENCH_LIVE_RATE", "200"))
CLIENTS = [int(x) for x in _floats("BENCH_LIVE_CLIENTS", "10,100,500")]
COALESCE = _floats("BENCH_LIVE_COALESCE", f"{PANEL_WINDOW},0.05")
MEMORY_EVENTS = int(os.environ.get("BENCH_MEMORY_EVENTS", "100000"))
MEMORY_RATE = float(os.environ.get("BENCH_MEMORY_RATE", "0"))
WORKERS = int(os.environ.get("BENCH_LIVE_WORKERS", "1"))
BRIDGES = int(os.environ.get("BENCH_LIVE_BRIDGES", "1"))
MEMORY_CLIENTS = 10
MEMORY_EVERY = 10_000
TARGET_CLIENTS = (100, 1000)  # p95 of every page's clients, at 100 and at 1,000
TARGET_P95_MS = 250.0
FLAT_FROM = 20_000
FLAT_TOLERANCE = 0.10
CONNECT_AT_ONCE = 50
DRAIN_SECONDS = 20.0
CLK_TCK = os.sysconf("SC_CLK_TCK")

# One agent process: connects, says "ready", waits for a line on stdin, then sends
# ``count`` signals at ``rate`` per second (0: as fast as it can) on an absolute schedule,
# printing the number sent every ``every`` signals. With ``mix`` it also works on tasks
# and patterns beside the signals, each named with a marker (MARK) that says what it is,
# its number and when it was made: every 10th signal a task in the team "live", claimed
# and completed at once (the task board's newest completed); every 40th a task in a team
# of its own (the overview's most recently active team); every 20th a staged pattern, of
# a higher confidence than any before, in any run (the top of the pattern queue by
# confidence). The
# last line says how many of each it made.
AGENT = r"""
import sys, time
from memory import AgentCoordinator, AgentTask, EmpathyOS, RedisShortTermMemory, StagedPattern

url, rate, count, every = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
mix = sys.argv[5] == "1"
memory = RedisShortTermMemory(url=url)
agent = EmpathyOS("bench-agent", memory)
live = AgentCoordinator(memory, "live")
made = {"tk": 0, "tm": 0, "pt": 0}
print("ready", flush=True)
sys.stdin.readline()
start = time.perf_counter()
for i in range(count):
    if rate:
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    agent.send_signal("bench", {"i": i, "t": time.time()})
    if mix and i % 10 == 0:
        task = f"tk{i}at{time.time() * 1000:.0f}"
        live.add_task(AgentTask(task, "bench", "d", 5))
        claimed = live.claim_task("bench-agent", "bench")
        live.complete_task(claimed.task_id, {"ok": True})
        made["tk"] += 1
    if mix and i % 40 == 0:
        team = f"tm{i}at{time.time() * 1000:.0f}"
        AgentCoordinator(memory, team).add_task(AgentTask("t", "bench", "d", 5))
        made["tm"] += 1
    if mix and i % 20 == 0:
        pattern = f"pt{i}at{time.time() * 1000:.0f}"
        agent.stage_pattern(StagedPattern(
            pattern, "bench-agent", "bench", pattern, "d",
            confidence=0.5 + (time.time() - 1.7e9) / 1e10,
        ))
        made["pt"] += 1
    if every and (i + 1) % every == 0:
        print(i + 1, flush=True)
print("done", time.perf_counter() - start, made["tk"], made["tm"], made["pt"], flush=True)
"""

# The pages the clients open, in turn (BENCH_LIVE_PAGES): the feed alone, or with "mix"
# also the overview, the task board and the pattern queue, while the agent also works on
# tasks and patterns. Each page's query, and the kind of marker (AGENT) that it shows.
PAGES = {
    "feed": ("panels=signal-feed", None),
    "overview": ("panels=overview-panel", "tm"),
    "task board": ("panels=task-board&team=live", "tk"),
    "pattern queue": ("panels=pattern-queue&sort=confidence", "pt"),
}
MIX = os.environ.get("BENCH_LIVE_PAGES", "feed") == "mix"
# A marker of each kind (a literal prefix lets the scan skip ahead: the clients' CPU).
MARK = {kind: re.compile(kind.encode() + rb"(\d+)at(\d+)") for kind in ("tk", "tm", "pt")}

# The feed's fragment: each signal's id, and its data as escaped, indented JSON.
SIGNAL_ID = re.compile(rb'data-signal-id="([^"]+)"')
ACCESS_LINE = re.compile(r'\] "(WS|GET|POST)')
SIGNAL_DATA = re.compile(rb"&quot;i&quot;: (\d+),\s*&quot;t&quot;: ([0-9.eE+-]+)")


# processes -----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def tree_rss_mb(pid: int) -> float:
    """The resident memory of a process and its children (``manage.py serve``'s workers)."""
    total = rss_mb(pid)
    with contextlib.suppress(OSError):
        for kid in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            total += tree_rss_mb(int(kid))
    return total


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """The CPU a process has used; with ``children``, its children's too (``manage.py
    serve``'s workers)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    used = (int(fields[11]) + int(fields[12])) / CLK_TCK
    if children:
        with contextlib.suppress(OSError):
            kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            used += sum(cpu_seconds(int(kid), children=True) for kid in kids)
    return used


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def problems(self, lines: int = 40) -> str:
        """The end of the log without the access lines."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        kept = [line for line in text.splitlines() if not ACCESS_LINE.search(line)]
        return "\n".join(kept[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def web_command(port: int) -> list[str]:
    """The ASGI server to measure (BENCH_LIVE_SERVER): ``uvicorn`` or ``daphne`` as
    ``manage.py serve`` runs them (with BENCH_LIVE_WORKERS above 1, ``serve`` itself with
    that many workers on the port), or ``uvicorn-IMPL`` for another of uvicorn's websocket
    implementations (``websockets``, the legacy one; ``wsproto``, which needs that
    package), one worker, uncompressed as serve's."""
    server = os.environ.get("BENCH_LIVE_SERVER") or DEFAULT_SERVER
    if WORKERS > 1:
        assert server in ("daphne", "uvicorn"), "manage.py serve runs these two"
        return [PYTHON, "manage.py", "serve", "--host", HOST, "--port", str(port),
                "--workers", str(WORKERS), "--server", server]  # fmt: skip
    if server in ("daphne", "uvicorn"):  # one worker, as serve starts each
        return single_web_command(port, server)
    ws = server.partition("-")[2]
    return [
        PYTHON, "-m", "uvicorn", "empathy_web.asgi:application", "--host", HOST, "--port",
        str(port), "--ws", ws, "--ws-per-message-deflate", "false", "--lifespan", "off",
        "--no-access-log",
    ]  # fmt: skip


@dataclass
class Stack:
    """redis-server, the web server and run_bridge, all on loopback."""

    redis: RedisServer
    workdir: Path
    env: dict[str, str]
    session_key: str
    port: int = 0
    web: Proc | None = None
    bridge: Proc | None = None
    standby: list[Proc] = field(default_factory=list)  # bridges that stand by
    coalesce: float | None = None
    memory: RedisShortTermMemory = field(init=False)

    def __post_init__(self) -> None:
        self.memory = RedisShortTermMemory(url=self.redis.url)

    def _spawn(self, name: str, cmd: list[str]) -> Proc:
        log = self.workdir / f"{name}-{time.monotonic_ns()}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                cmd, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )
        return Proc(name, process, log)

    def start_web(self) -> None:
        self.stop_web()
        self.port = _free_port()
        self.web = self._spawn("web", web_command(self.port))
        deadline = time.monotonic() + 30
        while True:
            if self.web.process.poll() is not None:
                raise AssertionError(f"the web server exited:\n{self.web.tail()}")
            try:
                with urllib.request.urlopen(f"http://{HOST}:{self.port}/healthz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the web server did not answer /healthz:\n{self.web.tail()}")
            time.sleep(0.1)

    def start_bridge(self, coalesce: float) -> None:
        self.stop_bridge()
        self.coalesce = coalesce
        self.bridge = self._spawn(
            "bridge", [PYTHON, "manage.py", "run_bridge", "--coalesce", str(coalesce)]
        )
        self._wait_for(self.bridge, "bridge reading events after")
        for _ in range(BRIDGES - 1):
            command = [PYTHON, "manage.py", "run_bridge", "--coalesce", str(coalesce)]
            self.standby.append(self._spawn("bridge", command))
            self._wait_for(self.standby[-1], "stands by")

    @staticmethod
    def _wait_for(bridge: Proc, line: str) -> None:
        deadline = time.monotonic() + 30
        while line not in bridge.tail():
            if bridge.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the bridge did not start:\n{bridge.tail()}")
            time.sleep(0.05)

    def stop_web(self) -> None:
        if self.web is not None:
            self.web.stop()
            self.web = None

    def stop_bridge(self) -> None:
        if self.bridge is not None:
            self.bridge.stop()
            self.bridge = None
        for bridge in self.standby:
            bridge.stop()
        self.standby = []

    def newest_signal(self) -> str:
        page = list_signals(self.memory, READER, 1)
        return page[0]["id"] if page else ""


def _manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"manage.py {args[0]} failed:\n{result.stdout}{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    workdir = Path(tempfile.mkdtemp(prefix="live-bench-"))
    server = start_redis_server(["--save", "", "--appendonly", "no"])
    # Every client is the same observer: let it hold them all (20 a user by default).
    env = {**server_env(workdir, server.url), "DASHBOARD_SOCKETS_PER_USER": "5000"}
    built: Stack | None = None
    try:
        _manage(env, "migrate", "--noinput", "-v", "0")
        script = SESSION_SCRIPT.format(username="bench-observer", tier="observer")
        session_key = _manage(env, "shell", "-c", script).strip().splitlines()[-1]
        built = Stack(server, workdir, env, session_key)
        built.start_web()
        yield built
    finally:
        if built is not None:
            built.stop_bridge()
            built.stop_web()
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


class Agent:
    """The agent process; ``go()`` starts the sending, ``readline()`` follows its progress."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(
        cls, url: str, rate: float, count: int, every: int = 0, mix: bool = False
    ) -> Agent:
        process = await asyncio.create_subprocess_exec(
            PYTHON,
            "-c",
            AGENT,
            url,
            str(rate),
            str(count),
            str(every),
            "1" if mix else "0",
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        agent = cls(process)
        line = await asyncio.wait_for(agent.readline(), 30)
        assert line == "ready", f"agent said {line!r}"
        return agent

    async def readline(self) -> str:
        assert self.process.stdout is not None
        return (await self.process.stdout.readline()).decode().strip()

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"go\n")

    async def finish(self) -> tuple[float, dict[str, int]]:
        """Wait for the last line; returns the sending time in seconds, and how many
        markers of each kind the agent made."""
        while True:
            line = await self.readline()
            assert line, "the agent exited without finishing"
            if line.startswith("done"):
                await self.process.wait()
                _, seconds, *made = line.split()
                return float(seconds), dict(zip(("tk", "tm", "pt"), map(int, made), strict=True))

    def kill(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()


# clients ---------------------------------------------------------------------------


class Recorder:
    """What every client received during one run of ``expected`` signals."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.latencies = array("d")
        self.frames = 0
        self.signals = 0
        self.duplicates = 0
        self.disorder = 0
        self.foreign = 0
        self.refused = 0
        self.refusal = ""
        self.clients: list[FeedClient] = []
        # Other pages: latencies by marker kind, how many of each the agent made (known
        # once it is done), and the time before which markers are an earlier run's.
        self.marks: dict[str, array] = {kind: array("d") for _, kind in PAGES.values() if kind}
        self.made: dict[str, int] = {}
        self.since = math.inf
        self.page_frames: dict[str, int] = dict.fromkeys(PAGES, 0)  # by page: frames
        self.page_bytes: dict[str, int] = dict.fromkeys(PAGES, 0)  # and their bytes

    def frame(self, client: FeedClient, payload: bytes, now: float) -> None:
        self.frames += 1
        self.page_frames[client.page] += 1
        self.page_bytes[client.page] += len(payload)
        if client.kind is not None:
            self._marks(client, payload, now)
            return
        ids = SIGNAL_ID.findall(payload)
        data = SIGNAL_DATA.findall(payload)
        self.foreign += len(ids) - len(data)
        numbers = []
        for raw_i, raw_t in data:
            i = int(raw_i)
            if i >= self.expected:
                self.foreign += 1
                continue
            numbers.append(i)
            if client.seen[i]:
                self.duplicates += 1
                continue
            client.seen[i] = 1
            client.received += 1
            self.signals += 1
            self.latencies.append(now - float(raw_t))
        if numbers:
            if min(numbers) <= client.high:
                self.disorder += 1
            client.high = max(client.high, *numbers)

    def _marks(self, client: FeedClient, payload: bytes, now: float) -> None:
        # A page shows mostly markers it showed before: set arithmetic skips them.
        found = set(MARK[client.kind].findall(payload))
        for mark in found.difference(client.marks, client.earlier):
            at = int(mark[1]) / 1000
            if at < self.since:  # an earlier run's
                client.earlier.add(mark)
                continue
            client.marks.add(mark)
            self.marks[client.kind].append(now - at)

    def complete(self) -> bool:
        return all(
            c.received == self.expected
            if c.kind is None
            else len(c.marks) >= self.made.get(c.kind, math.inf)
            for c in self.clients
        )

    def on(self, page: str) -> list[FeedClient]:
        return [c for c in self.clients if c.page == page]


class FeedClient(asyncio.Protocol):
    """A minimal RFC 6455 client as an asyncio protocol: the handshake with the session
    cookie and an Origin, masked text frames out, unmasked frames in (pings answered).
    Frames are cut from the bytes as they arrive, with no await per frame, so that a
    thousand clients in one process take little of the machine from the servers.
    (autobahn's asyncio flavour cannot load here: daphne has set txaio to Twisted.)"""

    def __init__(self, recorder: Recorder, page: str = "feed") -> None:
        self.recorder = recorder
        self.page = page
        self.kind = PAGES[page][1]
        self.marks: set[tuple[bytes, bytes]] = set()  # (number, made at) seen
        self.earlier: set[tuple[bytes, bytes]] = set()  # markers of an earlier run
        self.seen = bytearray(recorder.expected)
        self.received = 0
        self.high = -1
        self.close_code: int | None = None
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.parts: list[bytes] = []
        self.head: asyncio.Future[bytes] | None = None  # the handshake's answer
        self.closed: asyncio.Future[None] | None = None

    async def open(self, stack: Stack) -> None:
        loop = asyncio.get_running_loop()
        self.head, self.closed = loop.create_future(), loop.create_future()
        await loop.create_connection(lambda: self, HOST, stack.port)
        assert self.transport is not None
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /ws/dashboard/?{PAGES[self.page][0]} HTTP/1.1\r\n"
            f"Host: {HOST}:{stack.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: http://{HOST}:{stack.port}\r\n"
            f"Cookie: sessionid={stack.session_key}\r\n\r\n"
        )
        self.transport.write(request.encode())
        head = await self.head
        status = head.split(b"\r\n", 1)[0]
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest())
        if b" 101 " not in status or accept not in head:
            raise ConnectionError(f"handshake refused: {head[:200]!r}")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.head is not None and not self.head.done():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            self.head.set_result(bytes(self.buffer[: end + 4]))
            del self.buffer[: end + 4]
        self._frames(time.time())

    def _frames(self, now: float) -> None:
        buffer = self.buffer
        while len(buffer) >= 2:
            first, second = buffer[0], buffer[1]
            size, at = second & 0x7F, 2
            if size == 126:
                if len(buffer) < 4:
                    return
                (size,), at = struct.unpack_from("!H", buffer, 2), 4
            elif size == 127:
                if len(buffer) < 10:
                    return
                (size,), at = struct.unpack_from("!Q", buffer, 2), 10
            if len(buffer) < at + size:
                return  # the rest is on its way (a server does not mask its frames)
            payload = bytes(buffer[at : at + size])
            del buffer[: at + size]
            opcode = first & 0x0F
            if opcode == 0x8:
                self.close_code = struct.unpack("!H", payload[:2])[0] if payload else 1005
                if self.transport is not None:
                    self.transport.close()
                return
            if opcode == 0x9:
                self.send_text(payload.decode(errors="replace"), opcode=0xA)
            elif opcode in (0x0, 0x1, 0x2):
                self.parts.append(payload)
                if first & 0x80:
                    self.recorder.frame(self, b"".join(self.parts), now)
                    self.parts = []

    def connection_lost(self, exc: Exception | None) -> None:
        if self.head is not None and not self.head.done():
            self.head.set_exception(ConnectionError(f"closed in the handshake: {exc!r}"))
        if self.closed is not None and not self.closed.done():
            self.closed.set_result(None)

    def send_text(self, text: str, opcode: int = 0x1) -> None:
        assert self.transport is not None
        payload = text.encode()
        mask = os.urandom(4)
        size = len(payload)
        if size < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
        elif size < 1 << 16:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(head + mask + masked)

    async def close(self) -> None:
        if self.transport is None:
            return
        with contextlib.suppress(Exception):
            if self.close_code is None:
                self.transport.write(b"\x88\x82" + b"\0\0\0\0" + struct.pack("!H", 1000))
            if self.closed is not None:
                await asyncio.wait_for(asyncio.shield(self.closed), 5)
        self.transport.abort()


async def connect(stack: Stack, n: int, recorder: Recorder, resume: str) -> list[FeedClient]:
    """Open ``n`` feed clients (CONNECT_AT_ONCE at a time) that resume after ``resume``.
    Refused handshakes are counted in ``recorder.refused``, with the server's last
    error, rather than failing the run: under load they are a finding."""
    gate = asyncio.Semaphore(CONNECT_AT_ONCE)
    hello = json.dumps({"resume": resume})
    pages = list(PAGES) if MIX else ["feed"]

    async def one(n: int) -> FeedClient:
        async with gate:
            client = FeedClient(recorder, pages[n % len(pages)])
            try:
                await asyncio.wait_for(client.open(stack), 30)
            except BaseException:
                await client.close()
                raise
            client.send_text(hello)
            return client

    results = await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)
    clients = [r for r in results if isinstance(r, FeedClient)]
    failures = [r for r in results if not isinstance(r, FeedClient)]
    recorder.clients = clients
    recorder.refused = len(failures)
    if failures:
        errors = (
            [line for line in stack.web.problems(400).splitlines() if "Error" in line]
            if stack.web
            else []
        )
        recorder.refusal = f"{failures[0]!r}; server: {errors[-1] if errors else '?'}"
    assert clients, f"no client could connect: {failures[0]!r}\n{stack.web.problems()}"
    return clients


async def disconnect(clients: Sequence[FeedClient]) -> None:
    await asyncio.gather(*(c.close() for c in clients))


class HintProbe:
    """A member of the dashboard group that reads new signals on each feed hint."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.layer = RedisChannelLayer(hosts=[{"address": stack.redis.url}])
        self.after: str | None = None
        self.latencies = array("d")
        self.hints = 0
        self.errors = 0
        self.stopping = False
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.channel = await self.layer.new_channel()
        await self.layer.group_add("dashboard", self.channel)
        self.task = asyncio.create_task(self._run())

    def reset(self, after: str) -> None:
        self.after = after or None
        self.latencies = array("d")
        self.hints = 0

    async def _run(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except Exception:  # a busy Redis timed the read out: keep listening
                if self.stopping:
                    return
                self.errors += 1
                await asyncio.sleep(0.01)
                continue
            now = time.time()
            if "signal-feed" not in message.get("panels", ()):
                continue
            self.hints += 1
            page = await asyncio.to_thread(
                signals_after, self.stack.memory, READER, self.after, 500
            )
            self.after = page.next_cursor
            for item in page:
                data = item.get("data")
                if isinstance(data, dict) and "t" in data:
                    self.latencies.append(now - data["t"])

    async def stop(self) -> None:
        self.stopping = True
        if self.task is not None:
            self.task.cancel()
            await asyncio.wait({self.task}, timeout=10)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.layer.group_discard("dashboard", self.channel), 10)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.layer.close_pools(), 10)


# statistics and tables -------------------------------------------------------------


def pct(values: Sequence[float], q: float, total: int | None = None) -> float:
    """Nearest-rank percentile in milliseconds. With ``total``, the samples missing from
    it count as slower than any received (infinite): a rank among them gives inf."""
    if not values:
        return math.inf if total else math.nan
    ordered = sorted(values)
    rank = max(0, math.ceil(q / 100 * (total or len(ordered))) - 1)
    return ordered[rank] * 1000 if rank < len(ordered) else math.inf


def ms(value: float, censored_at: float = math.inf) -> str:
    """A latency in ms; ``>N`` when the signal had not arrived N ms after it was due."""
    if math.isnan(value):
        return "-"
    if math.isinf(value):
        return f">{censored_at * 1000:,.0f}"
    return f"{value:,.0f}"


def render(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> tuple[str, str]:
    """The same table as aligned text and as Markdown, every column right-aligned."""
    right = range(len(header))
    rows = [[str(cell) for cell in row] for row in rows]
    return (
        f"{title}\n{text_table(header, rows, right)}",
        f"**{title}**\n\n{markdown_table(header, rows, right)}",
    )


def publish(tables: Sequence[tuple[str, str]], notes: Sequence[str] = ()) -> None:
    print()
    for text, _ in tables:
        print(text, end="\n\n")
    for note in notes:
        print(note)
    path = os.environ.get("BENCH_MARKDOWN")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            for _, md in tables:
                out.write("\n" + md + "\n")
            if notes:
                out.write("\n" + "\n".join(f"- {n}" for n in notes) + "\n")


# the latency benchmark -------------------------------------------------------------


@dataclass
class Run:
    coalesce: float
    clients: int
    sent: int
    send_seconds: float
    connect_seconds: float
    drain_seconds: float
    recorder: Recorder
    hint_latencies: array
    hints: int
    cpu: dict[str, float]
    load: float
    kib_per_connection: float  # the web processes' RSS growth while the clients connected

    def cpu_percent(self, name: str) -> float:
        return 100 * self.cpu[name] / self.cpu["wall"]

    @property
    def connected(self) -> int:
        """The feed's clients."""
        return len(self.recorder.on("feed"))

    def worst_p95(self) -> float:
        """The largest p95 of the feed's and the other pages' clients (ms)."""
        return max([self.e2e(95), *(self.panel(page, 95) for page in self.pages())])

    def pages(self) -> list[str]:
        """The pages other than the feed that clients opened."""
        return [page for page, (_, kind) in PAGES.items() if kind and self.recorder.on(page)]

    def panel(self, page: str, q: float) -> float:
        kind = PAGES[page][1]
        total = self.recorder.made.get(kind, 0) * len(self.recorder.on(page))
        return pct(self.recorder.marks[kind], q, total)

    def panel_ms(self, page: str, q: float) -> str:
        """Percentile q of the latency from the agent's change to the first frame that
        shows it, over every client of ``page`` and marker (unseen: infinitely late)."""
        return ms(self.panel(page, q), self.drain_seconds)

    def e2e(self, q: float) -> float:
        """Percentile q of the latency of every (connected client, signal) pair, those
        still undelivered at the end of the drain counting as infinitely late."""
        return pct(self.recorder.latencies, q, self.sent * self.connected)

    def e2e_ms(self, q: float) -> str:
        return ms(self.e2e(q), self.drain_seconds)


async def settle(pid: int, timeout: float = 90.0) -> None:
    """Wait until the process is nearly idle (under 10 % of a CPU for 0.5 s): a run must
    not inherit the rendering a previous run's consumers left queued."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = cpu_seconds(pid, children=True)
        await asyncio.sleep(0.5)
        if cpu_seconds(pid, children=True) - before < 0.05 * WORKERS:
            return


async def latency_run(stack: Stack, probe: HintProbe, clients: int) -> Run:
    await settle(stack.web.pid)
    count = int(RATE * SECONDS)
    load = os.getloadavg()[0]
    recorder = Recorder(count)
    newest = stack.newest_signal()
    rss_before = tree_rss_mb(stack.web.pid)
    started = time.monotonic()
    connected = await connect(stack, clients, recorder, newest)
    connect_seconds = time.monotonic() - started
    agent = await Agent.start(stack.redis.url, RATE, count, mix=MIX)
    try:
        await asyncio.sleep(1.0)  # every consumer has handled its resume
        grown = tree_rss_mb(stack.web.pid) - rss_before
        per_connection = 1024 * grown / max(len(connected), 1)
        probe.reset(newest)
        pids = {
            "web": stack.web.pid,
            "bridge": stack.bridge.pid,
            "clients": os.getpid(),
            "redis": stack.redis.pid,
        }
        cpu_before = {name: cpu_seconds(pid, children=name == "web") for name, pid in pids.items()}
        wall = time.monotonic()
        recorder.since = time.time()
        agent.go()
        send_seconds, recorder.made = await agent.finish()
        sent_at = time.monotonic()
        while not recorder.complete() and time.monotonic() - sent_at < DRAIN_SECONDS:
            await asyncio.sleep(0.05)
        drain_seconds = time.monotonic() - sent_at
        wall = time.monotonic() - wall
        cpu = {
            name: cpu_seconds(pid, children=name == "web") - cpu_before[name]
            for name, pid in pids.items()
        }
        cpu["wall"] = wall
        await asyncio.sleep(0.3)  # the probe's last hint
    finally:
        agent.kill()
        await disconnect(connected)
    return Run(
        stack.coalesce or 0.0,
        clients,
        count,
        send_seconds,
        connect_seconds,
        drain_seconds,
        recorder,
        probe.latencies,
        probe.hints,
        cpu,
        load,
        per_connection,
    )


def render_cost(
    stack: Stack, batches: Sequence[int]
) -> list[tuple[int, float, float, float, float, float]]:
    """One consumer's work per hint for a batch of new signals, timed in this process
    (median of 30, ms): the Redis reads alone (wall); the whole ``render_new_signals``
    with every signal's line rendered (wall, and CPU time of this thread, which other
    processes do not inflate), and with the lines already kept (CPU); and the
    fragment's size in KiB."""
    from empathy_web.dashboard import fragments
    from empathy_web.dashboard.agents_memory import use_memory

    rows = []
    use_memory(stack.memory)
    try:
        for batch in batches:
            after = list_signals(stack.memory, READER, batch + 1)[-1]["id"]
            reads, renders, cpu, kept = [], [], [], []
            for _ in range(30):
                start = time.perf_counter()
                page = signals_after(stack.memory, READER, after, 200)
                reads.append(time.perf_counter() - start)
                fragments._signal_lines.clear()
                start, start_cpu = time.perf_counter(), time.thread_time()
                html = fragments.render_new_signals(READER, after, {}).html
                renders.append(time.perf_counter() - start)
                cpu.append(time.thread_time() - start_cpu)
                start_cpu = time.thread_time()
                assert fragments.render_new_signals(READER, after, {}).html == html
                kept.append(time.thread_time() - start_cpu)
            assert len(page) == batch and html.count("data-signal-id=") == batch
            rows.append(
                (
                    batch,
                    statistics.median(reads) * 1000,
                    statistics.median(renders) * 1000,
                    statistics.median(cpu) * 1000,
                    statistics.median(kept) * 1000,
                    len(html) / 1024,
                )
            )
    finally:
        use_memory(None)
    return rows


def panels_table(runs: Sequence[Run]) -> list[tuple[str, str]]:
    """With BENCH_LIVE_PAGES=mix, the other pages' latencies (none without)."""
    rows = []
    for run in runs:
        for page in run.pages():
            kind, clients = PAGES[page][1], len(run.recorder.on(page))
            made, seen = run.recorder.made.get(kind, 0), len(run.recorder.marks[kind])
            frames = run.recorder.page_frames[page]
            rows.append(
                [
                    f"{run.coalesce:g}",
                    str(run.clients),
                    page,
                    str(clients),
                    str(made),
                    f"{100 * seen / max(made * clients, 1):.1f}%",
                    f"{frames:,}",
                    f"{run.recorder.page_bytes[page] / 1024 / max(frames, 1):.1f}",
                    *(run.panel_ms(page, q) for q in (50, 95, 99, 100)),
                ]
            )
    if not rows:
        return []
    header = ["coalesce s", "clients", "page", "its clients", "changes", "seen", "frames"]
    header += ["KiB/frame", "p50", "p95", "p99", "max"]
    title = "The other pages, ms from the agent's change to the first frame that shows it"
    return [render(title, header, rows)]


def test_live_feed_latency(stack: Stack) -> None:
    runs: list[Run] = []

    async def main() -> None:
        probe = HintProbe(stack)
        await probe.start()
        try:
            for coalesce in COALESCE:
                stack.start_bridge(coalesce)
                for clients in CLIENTS:
                    runs.append(await latency_run(stack, probe, clients))
                    print(
                        f"  coalesce {coalesce:g} s, {clients} clients: "
                        f"p95 {runs[-1].e2e_ms(95)} ms",
                        flush=True,
                    )
        finally:
            await probe.stop()
            stack.stop_bridge()

    asyncio.run(main())

    rows, notes = [], []
    for run in runs:
        rec = run.recorder
        verdict = "-"
        if run.clients in TARGET_CLIENTS:
            verdict = "PASS" if run.worst_p95() <= TARGET_P95_MS else "FAIL"
        rows.append(
            [
                f"{run.coalesce:g}",
                str(run.clients) if not rec.refused else f"{run.connected} of {run.clients}",
                f"{run.sent / run.send_seconds:,.0f}",
                f"{rec.frames:,}",
                f"{rec.signals:,} ({100 * rec.signals / (run.sent * run.connected):.1f}%)",
                f"{run.hints}",
                ms(pct(run.hint_latencies, 50)),
                ms(pct(run.hint_latencies, 95)),
                run.e2e_ms(50),
                run.e2e_ms(95),
                run.e2e_ms(99),
                run.e2e_ms(100),
                *(f"{run.cpu_percent(name):.0f}" for name in ("web", "bridge", "clients", "redis")),
                f"{1000 * run.cpu['web'] / max(rec.signals, 1):.3f}",
                f"{1e6 * run.cpu['web'] / max(rec.frames, 1):.0f}",
                f"{run.kib_per_connection:.0f}",
                f"{run.connect_seconds:.1f}",
                f"{run.drain_seconds:.1f}",
                f"{run.load:.1f}",
                verdict,
            ]
        )
    header = [
        "coalesce s",
        "clients",
        "sent/s",
        "frames",
        "signals received",
        "hints",
        "hint p50",
        "hint p95",
        "e2e p50",
        "e2e p95",
        "e2e p99",
        "e2e max",
        "web CPU%",
        "bridge CPU%",
        "clients CPU%",
        "redis CPU%",
        "web CPU ms/copy",
        "web CPU us/frame",
        "web KiB/connection",
        "connect s",
        "drain s",
        "load 1m",
        f"p95<={TARGET_P95_MS:g} ms @100, 1,000",
    ]
    latency = render(
        f"Live feed latency, ms ({RATE:g} signals/s for {SECONDS:g} s; "
        "hint = agent -> bridge -> channel layer, e2e = agent -> websocket frame)",
        header,
        rows,
    )
    tables = [latency, *panels_table(runs)]
    batches = sorted({max(1, round(RATE * c)) for c in COALESCE} | {200})
    costs = render_cost(stack, batches)
    cost = render(
        "One consumer's work per hint (median ms, in the benchmark process)",
        [
            "new signals",
            "Redis reads",
            "render_new_signals",
            "its CPU",
            "CPU, lines kept",
            "fragment KiB",
        ],
        [
            [str(b), f"{r:.2f}", f"{w:.2f}", f"{c:.2f}", f"{q:.2f}", f"{k:.1f}"]
            for b, r, w, c, q, k in costs
        ],  # fmt: skip
    )
    # Every consumer renders its own copy, under one GIL: a web process can serve about
    # 1 / (rate * per_signal + hints_per_s * per_hint) feed clients before it falls behind.
    (b0, _, _, t0, _, _), (b1, _, _, t1, _, _) = costs[0], costs[-1]
    per_signal = (t1 - t0) / (b1 - b0) if b1 > b0 else t1 / b1
    per_hint = max(t0 - b0 * per_signal, 0.0)
    notes.append(
        f"render CPU ~{per_signal:.3f} ms per signal line + ~{per_hint:.2f} ms per "
        "rendering; each line is rendered once per process (then kept), and viewers at the "
        "same place in the feed share one rendering per hint (were each to render every "
        "line itself, one web process could keep up with about "
        + ", ".join(
            f"{1000 / (RATE * per_signal + per_hint / c):.0f} clients at coalesce {c:g} s"
            for c in COALESCE
        )
        + f" at {RATE:g} signals/s, on an idle core)"
    )
    for run in runs:
        if run.recorder.refused:
            notes.append(
                f"coalesce {run.coalesce:g} s, {run.clients} clients: {run.recorder.refused} "
                f"handshakes refused: {run.recorder.refusal}"
            )
        starved = sum(1 for c in run.recorder.clients if c.received == 0 and not c.marks)
        if starved:
            notes.append(
                f"coalesce {run.coalesce:g} s, {run.clients} clients: {starved} clients "
                "received nothing before the drain ended"
            )
    notes.append(
        f"machine: {os.cpu_count()} CPUs, shared by the clients, probe and agent with "
        "the web server, the bridge and redis-server (and whatever else runs: see load 1m)"
    )
    publish([*tables, cost], notes)

    for run in runs:
        rec = run.recorder
        assert rec.signals > 0, "no signal reached any client"
        assert rec.duplicates == 0, f"{rec.duplicates} signals arrived twice"
        assert rec.disorder == 0, f"{rec.disorder} frames went back in time"
        assert rec.foreign == 0, f"{rec.foreign} signals not from this run"


# the memory benchmark --------------------------------------------------------------


def test_live_memory(stack: Stack) -> None:
    """RSS of a fresh daphne and bridge while an agent sends MEMORY_EVENTS signals."""
    samples: list[tuple[int, float, float, float]] = []
    recorder = Recorder(MEMORY_EVENTS)
    timing: dict[str, float] = {}

    def sample(events: int) -> None:
        samples.append(
            (events, rss_mb(stack.web.pid), rss_mb(stack.bridge.pid), rss_mb(stack.redis.pid))
        )

    async def main() -> None:
        stack.start_web()  # fresh processes: nothing left over from the latency runs
        stack.start_bridge(PANEL_WINDOW)
        clients = await connect(stack, MEMORY_CLIENTS, recorder, stack.newest_signal())
        agent = await Agent.start(stack.redis.url, MEMORY_RATE, MEMORY_EVENTS, MEMORY_EVERY)
        try:
            await asyncio.sleep(1.0)
            sample(0)
            started = time.monotonic()
            agent.go()
            while True:
                line = await agent.readline()
                assert line, "the agent exited early"
                if line.startswith("done"):
                    timing["send"] = float(line.split()[1])
                    break
                sample(int(line))
            await agent.process.wait()
            await asyncio.sleep(5.0)  # the feed is still catching up: keep it busy a while
            sample(-1)
            timing["wall"] = time.monotonic() - started
        finally:
            agent.kill()
            await disconnect(clients)

    try:
        asyncio.run(main())
    finally:
        stack.stop_bridge()

    rows = [
        [
            "+5 s" if events < 0 else f"{events:,}",
            f"{web:.1f}",
            f"{bridge:.1f}",
            f"{redis_mb:.1f}",
        ]
        for events, web, bridge, redis_mb in samples
    ]
    base = next(s for s in samples if s[0] == FLAT_FROM)
    last = next(s for s in reversed(samples) if s[0] > 0)
    verdicts = []
    for name, col in (("web", 1), ("bridge", 2)):
        growth = (last[col] - base[col]) / base[col]
        flat = abs(growth) <= FLAT_TOLERANCE
        verdicts.append(
            f"{name}: {base[col]:.1f} MB at {FLAT_FROM:,} -> {last[col]:.1f} MB at "
            f"{last[0]:,} events ({growth:+.1%}): {'PASS' if flat else 'FAIL'} "
            f"(flat within {FLAT_TOLERANCE:.0%})"
        )
    rate = MEMORY_EVENTS / timing["send"]
    delivered = recorder.signals / (MEMORY_CLIENTS * MEMORY_EVENTS)
    verdicts.append(
        f"agent sent {MEMORY_EVENTS:,} signals in {timing['send']:.1f} s ({rate:,.0f}/s); "
        f"{MEMORY_CLIENTS} feed clients had received {delivered:.1%} of them "
        f"{timing['wall'] - timing['send']:.1f} s after the last was sent "
        f"({recorder.frames:,} frames)"
    )
    table = render(
        f"Resident memory (VmRSS, MB) while one agent sends {MEMORY_EVENTS:,} signals, "
        f"{MEMORY_CLIENTS} feed clients connected",
        ["events sent", "web", "bridge", "redis-server"],
        rows,
    )
    publish([table], verdicts)

    assert len(samples) == MEMORY_EVENTS // MEMORY_EVERY + 2
    assert all(s[1] > 0 and s[2] > 0 for s in samples)
    assert recorder.signals > 0 and recorder.duplicates == 0 and recorder.disorder == 0
