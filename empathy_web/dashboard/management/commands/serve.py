"""``manage.py serve``: several ASGI workers on one port, one per core by default:
uvicorn with the ``websockets`` implementation, or daphne (``--server daphne``).

One worker process runs Python on one core at a time. To use every core of a machine,
this opens one listening socket per worker on the same address with ``SO_REUSEPORT``
and starts a worker on each (``--fd``), so the kernel spreads new connections over the
workers evenly (a single shared socket would let the first worker to wake take most of
them). Everything a worker holds that others must see (rate limits, socket slots, the
suspended credentials, the channel layer) is in Redis, so workers need nothing else in
common.

The workers' own figures for ``/metrics`` (open websockets, request timings) go to files
in a directory this makes for the set and removes when it stops
(``SHARED_DIR_VARIABLE``), so any worker a scrape reaches reports them all.

It stops every worker on SIGTERM or SIGINT. If one worker exits on its own, it stops
the others and exits with an error, for the service manager to restart the whole set.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

APPLICATION = "empathy_web.asgi:application"
STOP_SECONDS = 10.0
# Where the workers of a set keep their own figures for /metrics (prometheus_client's
# multiprocess mode, which it turns on from this variable when it is imported).
SHARED_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# How each server is started on an inherited listening socket (uvicorn through
# uvicorn_worker.py, which keeps the socket a TCP one), and whether it takes the options
# passed after ``--``.
SERVERS = {
    "daphne": (["-m", "daphne", "--fd", "{fd}"], True),
    "uvicorn": (["-m", "empathy_web.dashboard.uvicorn_worker", "{fd}"], False),
}
# uvicorn by the numbers: lower latency per API call and per live update than daphne
# (README, Benchmarks).
DEFAULT_SERVER = "uvicorn"


class Stopping(Exception):
    """SIGTERM or SIGINT came."""


def _stopping(signum: int, frame: Any) -> None:
    raise Stopping


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` sockets listening on one address, each with its own accept queue."""
    if count > 1 and not hasattr(socket, "SO_REUSEPORT"):
        raise CommandError("several workers need SO_REUSEPORT, which this system lacks")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if count > 1:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]  # port 0: the first socket's, for the others
            sock.listen(1024)
            sock.set_inheritable(True)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sockets


class Command(BaseCommand):
    help = "Serve the site with several ASGI workers on one port (stops on SIGTERM)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
        parser.add_argument("--port", type=int, default=8000, help="0 picks a free one")
        parser.add_argument(
            "--workers", type=int, default=os.cpu_count() or 1,
            help="worker processes (default: one per core)",
        )  # fmt: skip
        parser.add_argument("--server", choices=sorted(SERVERS), default=DEFAULT_SERVER)
        parser.add_argument(
            "server_args", nargs="*",
            help="more options for the server, after --, e.g. -- --proxy-headers",
        )  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        count = options["workers"]
        if count < 1:
            raise CommandError("--workers must be at least 1")
        if count > 1 and not settings.SHARED_REDIS:
            raise CommandError(
                "several workers share the memory and the dashboards' channel layer "
                "through Redis: set REDIS_URL or REDIS_SENTINELS (without, each worker has "
                "its own)"
            )
        server, more = options["server"], options["server_args"]
        if more and not SERVERS[server][1]:
            raise CommandError(f"options after -- are daphne's; {server} takes none")
        sockets = listening_sockets(options["host"], options["port"], count)
        port = sockets[0].getsockname()[1]
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, _stopping)  # before the workers start: none is orphaned
        workers: list[subprocess.Popen[bytes]] = []
        failed = ""
        figures = tempfile.mkdtemp(prefix="empathy-metrics-")  # the set's, for /metrics
        try:
            workers = [self._start(server, sock, more, figures) for sock in sockets]
            for sock in sockets:
                sock.close()  # the workers hold them now
            pids = " ".join(str(w.pid) for w in workers)
            self.stdout.write(f"Serving on {options['host']}:{port} with {count} {server} "
                              f"worker{'s' * (count != 1)}: pids {pids}")  # fmt: skip
            self.stdout.flush()
            pid, status = os.wait()  # until a worker exits, or a signal comes
            failed = f"worker {pid} exited with code {os.waitstatus_to_exitcode(status)}"
        except Stopping:
            pass
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_IGN)  # stopping already
            self._stop(workers)
            shutil.rmtree(figures, ignore_errors=True)
        if failed:
            raise CommandError(failed + "; stopped the others")
        self.stdout.write("Stopped.")

    def _start(
        self, server: str, sock: socket.socket, more: list[str], figures: str
    ) -> subprocess.Popen[bytes]:
        start, takes_options = SERVERS[server]
        command = [sys.executable, *(part.format(fd=sock.fileno()) for part in start)]
        if takes_options:
            command += [*more, APPLICATION]
        env = {**os.environ, SHARED_DIR_VARIABLE: figures}
        return subprocess.Popen(command, pass_fds=(sock.fileno(),), env=env)

    @staticmethod
    def _stop(workers: list[subprocess.Popen[bytes]]) -> None:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
        deadline = time.monotonic() + STOP_SECONDS
        for worker in workers:
            try:
                worker.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
