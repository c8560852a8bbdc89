"""A throwaway PostgreSQL on loopback for tests, from the system's packages.

``python -m tests.postgres_server COMMAND...`` starts one (``initdb`` in a temporary
directory, listening on 127.0.0.1 on a free port), runs COMMAND with ``DATABASE_URL``
pointing at it, stops it, and exits with COMMAND's status. PostgreSQL refuses to run as
root, so as root the server runs as the ``postgres`` user the package creates.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
DATABASE = "empathy"


class PostgresNotInstalled(RuntimeError):
    """No initdb was found (Debian's ``postgresql`` package puts it under
    /usr/lib/postgresql/<version>/bin)."""


def tool(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if found is None:
        raise PostgresNotInstalled(f"{name} not found: install the postgresql package")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@dataclass
class PostgresServer:
    directory: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgres://postgres@{HOST}:{self.port}/{DATABASE}"

    def stop(self) -> None:
        subprocess.run(
            as_server_user([tool("pg_ctl"), "-D", str(self.directory / "data"), "-m", "fast",
                            "-w", "stop"]),
            capture_output=True, check=False, timeout=60,
        )  # fmt: skip
        shutil.rmtree(self.directory, ignore_errors=True)


def start_postgres_server() -> PostgresServer:
    directory = Path(tempfile.mkdtemp(prefix="postgres-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    server = PostgresServer(directory, free_port())
    data = directory / "data"
    run = {"capture_output": True, "text": True, "timeout": 120, "check": True}
    try:
        subprocess.run(
            as_server_user([tool("initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                            "-E", "UTF8", "--no-sync"]), **run,
        )  # fmt: skip
        # Durability off: a test database lives as long as the run.
        options = f"-h {HOST} -p {server.port} -k {directory} -F -c full_page_writes=off"
        subprocess.run(
            as_server_user([tool("pg_ctl"), "-D", str(data), "-o", options, "-l",
                            str(directory / "log"), "-w", "-t", "60", "start"]), **run,
        )  # fmt: skip
        subprocess.run(
            [tool("createdb"), "-h", HOST, "-p", str(server.port), "-U", "postgres", DATABASE],
            **run,
        )  # fmt: skip
    except subprocess.CalledProcessError as exc:
        server.stop()
        raise RuntimeError(f"PostgreSQL did not start: {exc.stderr}") from None
    return server


def main(command: list[str]) -> int:
    if not command:
        print(__doc__, file=sys.stderr)
        return 2
    server = start_postgres_server()
    try:
        return subprocess.run(command, env={**os.environ, "DATABASE_URL": server.url}).returncode
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
