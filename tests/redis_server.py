"""Start throwaway redis-server processes on loopback for tests.

Each server listens on 127.0.0.1 only, on a free port, with persistence off, and is
stopped by its pid. Nothing here talks to an address outside 127.0.0.0/8.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import redis

HOST = "127.0.0.1"
START_TIMEOUT = 10.0
PORT_ATTEMPTS = 5


class RedisServerNotInstalled(RuntimeError):
    """redis-server is not on PATH."""


class RedisServerStartError(RuntimeError):
    """redis-server did not come up."""


@dataclass
class RedisServer:
    """A running redis-server started by :func:`start_redis_server`."""

    port: int
    pid: int
    password: str | None
    process: subprocess.Popen[bytes] = field(repr=False)
    workdir: Path = field(repr=False)
    host: str = HOST

    @property
    def url(self) -> str:
        """URL for `redis.Redis.from_url`, with the password when the server needs one."""
        if self.password is None:
            return self.bare_url
        return f"redis://:{quote(self.password, safe='')}@{self.host}:{self.port}/0"

    @property
    def bare_url(self) -> str:
        """URL without credentials (for testing that authentication is enforced)."""
        return f"redis://{self.host}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def client(self, **kwargs) -> redis.Redis:
        kwargs.setdefault("socket_timeout", 10)
        kwargs.setdefault("socket_connect_timeout", 5)
        return redis.Redis.from_url(self.url, **kwargs)

    def kill(self) -> None:
        """Stop the server at once with SIGKILL, as a crash would."""
        self._signal_and_wait(signal.SIGKILL, timeout=5)
        self._cleanup()

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL if it lingers). Safe to call twice."""
        if self.running:
            try:
                self._signal_and_wait(signal.SIGTERM, timeout=5)
            except subprocess.TimeoutExpired:
                self._signal_and_wait(signal.SIGKILL, timeout=5)
        self._cleanup()

    def log(self) -> str:
        try:
            return (self.workdir / "redis.log").read_text(errors="replace")
        except OSError:
            return ""

    def _signal_and_wait(self, sig: signal.Signals, timeout: float) -> None:
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)
        self.process.wait(timeout=timeout)

    def _cleanup(self) -> None:
        _live_servers.discard(self)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __hash__(self) -> int:
        return hash(self.pid)


_live_servers: set[RedisServer] = set()


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_live_servers):
        with contextlib.suppress(Exception):
            server.kill()


def redis_server_binary() -> str:
    path = shutil.which("redis-server")
    if path is None:
        raise RedisServerNotInstalled(
            "redis-server is not installed (not found on PATH). The tests need a real "
            "redis-server on loopback: run `make redis` (or "
            "`apt-get install -y redis-server`)."
        )
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _password_from(args: list[str]) -> str | None:
    password = None
    for i, arg in enumerate(args):
        if arg == "--requirepass" and i + 1 < len(args):
            password = args[i + 1]
    return password


def _wait_until_ready(server: RedisServer, deadline: float) -> bool:
    """Poll PING until it answers (True) or the process dies (False)."""
    client = redis.Redis(
        host=server.host,
        port=server.port,
        password=server.password,
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
    )
    try:
        while time.monotonic() < deadline:
            if not server.running:
                return False
            try:
                if client.ping():
                    return True
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                pass
            time.sleep(0.005)
    finally:
        client.close()
    raise RedisServerStartError(
        f"redis-server on port {server.port} did not answer PING within {START_TIMEOUT}s.\n"
        f"{server.log()}"
    )


def start_redis_server(extra_args: list[str] | None = None, port: int | None = None) -> RedisServer:
    """Start a redis-server on a free loopback port (or on ``port``, to restart one in
    place) and wait until it answers PING.

    `extra_args` are appended to the command line, e.g. `["--requirepass", "secret"]`.
    The caller must call `.stop()` (or `.kill()`) on the result.
    """
    binary = redis_server_binary()
    extra = list(extra_args or [])
    password = _password_from(extra)
    last_log = ""
    wanted = port
    for _ in range(PORT_ATTEMPTS if wanted is None else 1):
        port = wanted or _free_port()
        workdir = Path(tempfile.mkdtemp(prefix=f"redis-test-{port}-"))
        log_path = workdir / "redis.log"
        cmd = [
            binary,
            "--port", str(port),
            "--bind", HOST,
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(workdir),
            *extra,
        ]  # fmt: skip
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        server = RedisServer(
            port=port, pid=process.pid, password=password, process=process, workdir=workdir
        )
        _live_servers.add(server)
        try:
            ready = _wait_until_ready(server, time.monotonic() + START_TIMEOUT)
        except BaseException:
            server.kill()
            raise
        if ready:
            return server
        # The process exited: most likely another process grabbed the port. Try another.
        last_log = server.log()
        server.stop()
        if "Address already in use" not in last_log:
            break
    raise RedisServerStartError(f"redis-server failed to start: {' '.join(cmd)}\n{last_log}")


def start_sentinel(master_port: int, master: str = "mymaster", quorum: int = 2) -> RedisServer:
    """Start a Redis Sentinel on a free loopback port that monitors the master on
    ``master_port`` as ``master``, and declares it down after 1 s of silence."""
    port = _free_port()
    workdir = Path(tempfile.mkdtemp(prefix=f"redis-sentinel-{port}-"))
    config = workdir / "sentinel.conf"  # Sentinel rewrites its own config file
    config.write_text(
        f"port {port}\nbind {HOST}\ndir {workdir}\n"
        f"sentinel monitor {master} {HOST} {master_port} {quorum}\n"
        f"sentinel down-after-milliseconds {master} 1000\n"
        f"sentinel failover-timeout {master} 5000\n"
    )
    with open(workdir / "redis.log", "wb") as log:
        process = subprocess.Popen(
            [redis_server_binary(), str(config), "--sentinel"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = RedisServer(port=port, pid=process.pid, password=None, process=process,
                         workdir=workdir)  # fmt: skip
    _live_servers.add(server)
    if not _wait_until_ready(server, time.monotonic() + START_TIMEOUT):
        log_text = server.log()
        server.kill()
        raise RedisServerStartError(f"redis-sentinel failed to start:\n{log_text}")
    return server


@dataclass
class ClusterOfServers:
    """A Redis Cluster of masters (no replicas) started by :func:`start_cluster`."""

    nodes: list[RedisServer]

    @property
    def url(self) -> str:
        """The first node's URL: the library finds the rest from any node."""
        return self.nodes[0].url

    def client(self, **kwargs) -> redis.RedisCluster:
        kwargs.setdefault("socket_timeout", 10)
        kwargs.setdefault("socket_connect_timeout", 5)
        return redis.RedisCluster(host=HOST, port=self.nodes[0].port, **kwargs)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def start_cluster(masters: int = 3) -> ClusterOfServers:
    """Start ``masters`` cluster-enabled redis-servers on loopback, join them into one
    Redis Cluster with ``redis-cli --cluster create`` (the slots split evenly), and wait
    until every node says the cluster is ok."""
    options = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
               "--cluster-node-timeout", "2000"]  # fmt: skip
    nodes: list[RedisServer] = []
    try:
        for _ in range(masters):
            # The bus port defaults to the port + 10000, which may be taken or too high.
            nodes.append(start_redis_server([*options, "--cluster-port", str(_free_port())]))
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RedisServerNotInstalled("redis-cli is not installed (it comes with redis-server)")
        addresses = [f"{HOST}:{node.port}" for node in nodes]
        created = subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        if created.returncode != 0:
            raise RedisServerStartError(f"redis-cli --cluster create failed:\n{created.stdout}")
        deadline = time.monotonic() + START_TIMEOUT
        for node in nodes:
            client = node.client()
            try:
                while b"cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
                    if time.monotonic() > deadline:
                        raise RedisServerStartError(f"the cluster is not ok on port {node.port}")
                    time.sleep(0.02)
            finally:
                client.close()
    except BaseException:
        for node in nodes:
            node.kill()
        raise
    return ClusterOfServers(nodes)


MASTER = "mymaster"
SETTLE = 20.0  # seconds for replication and the sentinels to find each other


def until(condition, what: str, seconds: float = SETTLE) -> None:
    """Wait until ``condition()`` holds, failing with ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


class Replicated:
    """A master, a replica and three sentinels on loopback, in sync (``stop`` ends them)."""

    def __init__(self) -> None:
        self.master = start_redis_server([])
        self.replica = start_redis_server(["--replicaof", HOST, str(self.master.port)])
        self.sentinels: list[RedisServer] = []
        replica = self.replica.client()
        until(lambda: replica.info("replication")["master_link_status"] == "up", "no sync")
        self.sentinels = [start_sentinel(self.master.port, MASTER) for _ in range(3)]
        for sentinel in self.sentinels:
            client = sentinel.client()
            until(lambda c=client: c.sentinel_slaves(MASTER), "a sentinel found no replica")
            until(lambda c=client: len(c.sentinel_sentinels(MASTER)) == 2, "sentinels apart")

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [(HOST, s.port) for s in self.sentinels]

    def stop(self) -> None:
        for server in [*self.sentinels, self.replica, self.master]:
            server.stop()

    @property
    def env(self) -> dict[str, str]:
        """The settings' environment for this set."""
        sentinels = ",".join(f"{host}:{port}" for host, port in self.addresses)
        return {"REDIS_SENTINELS": sentinels, "REDIS_SENTINEL_MASTER": MASTER}
