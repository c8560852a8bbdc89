"""``make demo-cluster``: the product as it runs past one machine, all on loopback.

Starts, from the system's packages:

- a 3-master Redis Cluster for the agents' memory, and a plain redis-server for the
  dashboards' channel layer (channels-redis cannot use a cluster);
- PostgreSQL for the database;
- two web workers (uvicorn, ports 8000 and 8001 by default) and two bridges (one leads);
- the simulated team, as two processes of agents (two teams).

It prints the logins, then waits; Ctrl-C (or SIGTERM) stops everything, as does any of
its processes dying (it says which). Every process is stopped by its pid.

``python -m tests.demo_cluster [--port 8000]``: the workers take PORT and PORT + 1.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from tests.live_server import web_command
from tests.postgres_server import start_postgres_server
from tests.redis_server import HOST, start_cluster, start_redis_server

ROOT = Path(__file__).resolve().parents[1]
TEAMS = ("code_review_team", "release_team")
START_TIMEOUT = 60.0


class Demo:
    def __init__(self, port: int, logs: Path) -> None:
        self.port, self.logs = port, logs
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.servers: list = []
        self.env: dict[str, str] = {}

    def start(self) -> None:
        for port in (self.port, self.port + 1):
            with socket.socket() as sock:
                if sock.connect_ex((HOST, port)) == 0:
                    raise SystemExit(f"port {port} is taken: pass --port for another pair")
        print("Starting a 3-master Redis Cluster, a Redis for the channel layer and PostgreSQL...")
        cluster = start_cluster(3)
        self.servers.append(cluster)
        layer = start_redis_server([])
        self.servers.append(layer)
        database = start_postgres_server()
        self.servers.append(database)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "DJANGO_"))},
            "REDIS_URL": cluster.url,
            "CHANNEL_LAYER_REDIS_URL": layer.url,
            "DATABASE_URL": database.url,
            "DJANGO_SETTINGS_MODULE": "empathy_web.settings",
            "DJANGO_DEBUG": "true",
            "EMBEDDED_BRIDGE": "false",
            "PYTHONUNBUFFERED": "1",
        }
        # Migrates, and creates one login per tier with a new password (printed last).
        logins = subprocess.run(
            [sys.executable, "manage.py", "demo", "--no-serve",
             "--addrport", f"{HOST}:{self.port}"],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=300, check=True,
        ).stdout  # fmt: skip
        for port in (self.port, self.port + 1):
            self._spawn(f"web-{port}", web_command(port))
        for n in (1, 2):
            self._spawn(f"bridge-{n}", [sys.executable, "manage.py", "run_bridge"])
        for team in TEAMS:
            self._spawn(f"agents-{team}", [sys.executable, "manage.py", "simulate_agents",
                                           "--team", team, "--pace", "0.5"])  # fmt: skip
        self._wait_until_served()
        print(logins.strip())
        print(f"Agents' memory: the Redis Cluster at {cluster.url} (3 masters); channel "
              f"layer: {layer.url}; database: {database.url}")  # fmt: skip
        print(f"The same site is on http://{HOST}:{self.port + 1}/ (the second worker).")
        for name, child in self.children.items():
            print(f"  {name:<28} pid {child.pid:<7} log {self.logs / (name + '.log')}")
        print("Ready. Ctrl-C stops everything.", flush=True)

    def _spawn(self, name: str, command: list[str]) -> None:
        with open(self.logs / f"{name}.log", "wb") as log:
            self.children[name] = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip

    def _wait_until_served(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        for port in (self.port, self.port + 1):
            while not _answers(f"http://{HOST}:{port}/readyz"):
                if self.dead() or time.monotonic() > deadline:
                    raise SystemExit(f"the worker on port {port} did not start{self.why_dead()}")
                time.sleep(0.1)

    def dead(self) -> str | None:
        """The name of a process that has exited, if one has."""
        return next((n for n, c in self.children.items() if c.poll() is not None), None)

    def why_dead(self) -> str:
        name = self.dead()
        if name is None:
            return ""
        log = (self.logs / f"{name}.log").read_text(errors="replace")[-2000:]
        return f": {name} exited with {self.children[name].returncode}:\n{log}"

    def stop(self) -> None:
        for child in self.children.values():
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGTERM)
        for child in self.children.values():
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(child.pid, signal.SIGKILL)
                child.wait(10)
        for server in reversed(self.servers):
            server.stop()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000, help="the first worker's port")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    demo = Demo(args.port, Path(tempfile.mkdtemp(prefix="empathy-demo-cluster-")))
    status = 0
    try:
        demo.start()
        while not stop.wait(0.5):
            if name := demo.dead():
                print(f"{name} stopped{demo.why_dead()}", file=sys.stderr)
                status = 1
                break
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        status = 1
    finally:
        print("Stopping everything...", flush=True)
        demo.stop()
        print("Stopped.", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
