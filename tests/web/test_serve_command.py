"""``manage.py serve``: uvicorn (or daphne) workers on one port, connections spread over them, and
the set stopped together, on a signal or when one worker dies."""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live_server import HOST, ROOT, SESSION_SCRIPT, server_env, start_live_server
from tests.redis_server import RedisServer, start_redis_server
from tests.web.test_metrics import samples

PIDFD_GETFD = 438  # the system call's number on Linux


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    server = start_redis_server(["--save", "", "--appendonly", "no"])
    try:
        yield server
    finally:
        server.stop()


class Served:
    def __init__(
        self, redis_url: str, workers: int, server: str = "daphne", **settings: str
    ) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="serve-"))
        env = self.env = {**server_env(self.workdir, redis_url), **settings}
        subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env,
                       check=True, timeout=120)  # fmt: skip
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--host", HOST, "--port", "0",
             "--workers", str(workers), "--server", server,
             *(["--", "--access-log", os.devnull] if server == "daphne" else [])],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
            stderr=(self.workdir / "stderr").open("w"),
        )  # fmt: skip
        line = self.process.stdout.readline()  # type: ignore[union-attr]
        found = re.search(rf":(\d+) with \d+ {server} workers?: pids ([\d ]+)$", line.strip())
        assert found, line
        self.port = int(found[1])
        self.pids = [int(p) for p in found[2].split()]

    def finish(self, timeout: float = 30) -> tuple[int, str, str]:
        out, _ = self.process.communicate(timeout=timeout)
        err = (self.workdir / "stderr").read_text()
        shutil.rmtree(self.workdir, ignore_errors=True)
        return self.process.returncode, out, err


def ask(
    port: int, sock: socket.socket | None = None, path: str = "/healthz", headers: str = ""
) -> tuple[socket.socket, bytes]:
    """A keep-alive GET of ``path`` (``headers``: more header lines, each ending in CRLF),
    on ``sock`` or a new connection (the sockets listen before the workers start, so a
    request waits for its worker)."""
    sock = sock or socket.create_connection((HOST, port), timeout=60)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n{headers}\r\n".encode())
    answer = b""  # the whole response, which may come in several segments
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(65536)
    head, _, body = answer.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head)[1])
    while len(body) < length:
        body += sock.recv(65536)
    return sock, head + b"\r\n\r\n" + body


def holder(sock: socket.socket, port: int, pids: list[int]) -> int:
    """Which worker holds the server side of this client connection."""
    return server_side(sock, port, pids)[0]


def server_side(sock: socket.socket, port: int, pids: list[int]) -> tuple[int, int]:
    """The worker holding the server side of this client connection, and its fd there."""
    client_port = sock.getsockname()[1]
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = (int(a.split(":")[1], 16) for a in fields[1:3])
        if (local, remote) == (port, client_port):
            inode = fields[9]
    assert inode is not None
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid, int(fd.name)
            except OSError:
                continue
    raise AssertionError(f"no worker holds connection {client_port}")


def nodelay_on_server_side(sock: socket.socket, port: int, pids: list[int]) -> bool:
    """Whether the worker's end of this connection has TCP_NODELAY (read through a copy
    of its file descriptor: pidfd_getfd, Linux 5.6 or later)."""
    pid, fd = server_side(sock, port, pids)
    pidfd = os.pidfd_open(pid)
    try:
        copy = ctypes.CDLL(None, use_errno=True).syscall(PIDFD_GETFD, pidfd, fd, 0)
        assert copy >= 0, os.strerror(ctypes.get_errno())
    finally:
        os.close(pidfd)
    with socket.socket(fileno=copy) as theirs:
        return bool(theirs.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()


@pytest.mark.parametrize("server", ["daphne", "uvicorn"])
def test_connections_spread_over_the_workers_and_sigterm_stops_them(redis, server):
    served = Served(redis.url, workers=2, server=server)
    try:
        connections = []
        for _ in range(16):
            sock, answer = ask(served.port)
            assert answer.startswith(b"HTTP/1.1 200")
            connections.append(sock)
        held = {holder(sock, served.port, served.pids) for sock in connections}
        # A response in two writes must not wait for the client's delayed ACK.
        assert all(nodelay_on_server_side(s, served.port, served.pids) for s in connections)
        _, again = ask(served.port, connections[0])  # keep-alive
        for sock in connections:
            sock.close()
    finally:
        served.process.send_signal(signal.SIGTERM)
        code, out, _ = served.finish()

    assert held == set(served.pids)  # 16 connections on one worker: a 1 in 32,768 chance
    assert again.startswith(b"HTTP/1.1 200")
    assert code == 0 and out.strip().endswith("Stopped.")
    assert not any(alive(pid) for pid in served.pids)


def test_a_worker_that_dies_stops_the_set_with_an_error(redis):
    served = Served(redis.url, workers=2)
    ask(served.port)
    os.kill(served.pids[0], signal.SIGKILL)

    code, _, err = served.finish()

    assert code != 0
    assert f"worker {served.pids[0]} exited with code -9; stopped the others" in err
    assert not alive(served.pids[1])


def test_several_workers_need_redis():
    workdir = Path(tempfile.mkdtemp(prefix="serve-"))
    env = {**server_env(workdir, ""), "REDIS_URL": ""}
    done = subprocess.run(
        [sys.executable, "manage.py", "serve", "--port", "0", "--workers", "2"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    shutil.rmtree(workdir, ignore_errors=True)
    assert done.returncode != 0 and "set REDIS_URL" in done.stderr


USER = """
from django.contrib.auth import get_user_model
get_user_model().objects.create_user("alice", password="right-password-1")
"""


def test_the_worker_takes_the_clients_address_from_the_connection_not_a_header():
    """Behind no proxy, ``X-Forwarded-For`` is the client's to forge: a uvicorn worker
    must not take the address from it (uvicorn trusts it from loopback by default), or
    an attacker could give every failed login a new address and never be locked out.
    Trusting a proxy's header is the project's own setting (``TRUSTED_PROXY_HEADER``)."""
    import httpx

    live = start_live_server()
    try:
        live.manage("shell", "-c", USER)
        with httpx.Client(base_url=live.url) as client:

            def fail(n: int) -> int:
                page = client.get("/accounts/login/").text
                token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
                form = {"username": "alice", "password": f"guess {n}", "csrfmiddlewaretoken": token}
                headers = {"X-Forwarded-For": f"192.0.2.{n}", "Referer": f"{live.url}/"}
                return client.post("/accounts/login/", data=form, headers=headers).status_code

            codes = [fail(n) for n in range(6)]
        assert codes == [200, 200, 200, 200, 429, 429]  # one address: locked at the 5th
    finally:
        live.stop()


def test_the_worker_does_not_compress_the_dashboards_frames():
    """A browser offers ``permessage-deflate``; the worker declines it, so that no frame
    is compressed per viewer, nor together with the viewer's CSRF token."""
    from websockets.sync.client import connect

    live = start_live_server()
    try:
        session_key = live.session("watcher", "observer")
        url = f"ws://{HOST}:{live.port}/ws/dashboard/?panels=overview-panel"
        headers = {"Origin": live.url, "Cookie": f"sessionid={session_key}"}
        with connect(url, additional_headers=headers, compression="deflate") as socket_:
            assert "permessage-deflate" in socket_.request.headers["Sec-WebSocket-Extensions"]
            assert "Sec-WebSocket-Extensions" not in socket_.response.headers
            assert 'id="overview-panel"' in socket_.recv(timeout=10)  # it is open, and live
    finally:
        live.stop()


SCRAPER = "scrape-token-for-the-test"


def scraped(port: int, sock: socket.socket) -> dict[str, dict[tuple, float]]:
    """``/metrics`` over ``sock`` (keep-alive), parsed."""
    _, answer = ask(port, sock, "/metrics", f"Authorization: Bearer {SCRAPER}\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return samples(body.decode())


def on_each_worker(port: int, pids: list[int], open_one) -> dict[int, list]:
    """What ``open_one()`` opens (each with its client socket as ``[0]``), by the worker that
    holds it, until every worker holds one."""
    held: dict[int, list] = {}
    while len(held) < len(pids):
        assert sum(map(len, held.values())) < 64, "the kernel put every connection on one worker"
        opened = open_one()
        held.setdefault(holder(opened[0], port, pids), []).append(opened)
    return held


def test_any_worker_reports_the_whole_sets_figures(redis):
    """Open websockets and request timings are each worker's own, and a scrape reaches
    one worker: it reports every worker's."""
    from websockets.sync.client import connect

    served = Served(redis.url, workers=2, server="uvicorn", METRICS_TOKEN=SCRAPER)
    try:
        with contextlib.ExitStack() as opened:
            done = subprocess.run(
                [sys.executable, "manage.py", "shell", "-c",
                 SESSION_SCRIPT.format(username="watcher", tier="observer")],
                cwd=ROOT, env=served.env, capture_output=True, text=True, timeout=120, check=True,
            )  # fmt: skip
            headers = {"Origin": f"http://{HOST}:{served.port}",
                       "Cookie": f"sessionid={done.stdout.strip().splitlines()[-1]}"}  # fmt: skip
            url = f"ws://{HOST}:{served.port}/ws/dashboard/?panels=overview-panel"

            def dashboard() -> tuple[socket.socket]:
                viewer = opened.enter_context(
                    connect(url, additional_headers=headers, compression=None)
                )
                assert 'id="overview-panel"' in viewer.recv(timeout=30)  # open, and counted
                return (viewer.socket,)

            def page() -> tuple[socket.socket]:
                return (opened.enter_context(ask(served.port)[0]),)

            viewers = on_each_worker(served.port, served.pids, dashboard)
            pages = on_each_worker(served.port, served.pids, page)
            # then a scrape on a connection of each worker's (a keep-alive one, answered:
            # a connection only just made may still wait for its worker to accept it)
            figures = {pid: scraped(served.port, held[0][0]) for pid, held in pages.items()}
    finally:
        served.process.send_signal(signal.SIGTERM)
        served.finish()

    open_now = sum(map(len, viewers.values()))
    asked = sum(map(len, pages.values()))
    for pid, found in figures.items():
        assert sum(found["empathy_open_websockets"].values()) == open_now, pid
        timed = found["empathy_request_seconds_count"]
        healthz = [n for labels, n in timed.items() if ("view", "healthz") in labels]
        assert sum(healthz) == asked, pid
