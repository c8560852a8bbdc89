"""A live server as agents meet it: the project's ASGI server (uvicorn by default, as
``manage.py serve``) on loopback, with its own redis-server and SQLite file database, and credentials issued the way a steward
issues them from a shell (``manage.py agent_credential create``)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from empathy_web.dashboard.management.commands.serve import DEFAULT_SERVER
from memory import RedisShortTermMemory
from tests.redis_server import RedisServer, start_redis_server

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
DAPHNE = str(Path(sys.executable).with_name("daphne"))
# A live server's settings as deployed: no DEBUG (which records every query), a key of
# its own, and plain HTTP on loopback.
PRODUCTION = {
    "DJANGO_DEBUG": "false", "SECRET_KEY": "live-server-only-" + "x" * 40,
    "ALLOWED_HOSTS": HOST, "SECURE_SSL_REDIRECT": "false",
}  # fmt: skip


def web_command(port: int, server: str = DEFAULT_SERVER) -> list[str]:
    """One web process of ``server`` (uvicorn or daphne) serving the project on
    ``HOST:port``, as ``manage.py serve`` starts each of its workers."""
    if server == "daphne":
        return [DAPHNE, "-b", HOST, "-p", str(port), "empathy_web.asgi:application"]
    return [sys.executable, "-m", "empathy_web.dashboard.uvicorn_worker", HOST, str(port)]


# ``manage.py shell -c`` script: a user in a tier's group and a logged-in session for it,
# whose key it prints last (format it with ``username`` and ``tier``).
SESSION_SCRIPT = """
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.sessions.backends.db import SessionStore

user = get_user_model().objects.create_user({username!r}, password=None)
user.groups.add(Group.objects.get(name={tier!r}))
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
print(session.session_key)
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    redis: RedisServer
    workdir: Path
    env: dict[str, str]
    workers: int = 1
    server: str = DEFAULT_SERVER  # or daphne
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    memory: RedisShortTermMemory = field(init=False)

    def __post_init__(self) -> None:
        self.memory = RedisShortTermMemory(url=self.redis.url)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def log(self) -> str:
        path = self.workdir / "web.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env,
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    def credential(self, agent_id: str, tier: str, *teams: str) -> str:
        """A new credential's secret, from the last line of the shell command."""
        scope = [a for t in teams for a in ("--team", t)] or ["--all-teams"]
        args = ["agent_credential", "create", agent_id, "--tier", tier, *scope]
        if tier == "steward":
            args.append("--confirm-steward")
        return self.manage(*args).strip().splitlines()[-1]

    def session(self, username: str, tier: str) -> str:
        """The key of a logged-in session of a new user of ``tier``."""
        script = SESSION_SCRIPT.format(username=username, tier=tier)
        return self.manage("shell", "-c", script).strip().splitlines()[-1]

    def start(self) -> None:
        self.port = free_port()
        command = web_command(self.port, self.server)
        if self.workers > 1:  # workers on the port (serve)
            command = [sys.executable, "manage.py", "serve", "--host", HOST, "--port",
                       str(self.port), "--workers", str(self.workers),
                       "--server", self.server]  # fmt: skip
        with open(self.workdir / "web.log", "wb") as out:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, f"the web process exited:\n{self.log}"
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            assert time.monotonic() < deadline, f"the web process did not answer:\n{self.log}"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.memory.close()
        self.redis.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def server_env(workdir: Path, redis_url: str) -> dict[str, str]:
    """The environment of a web or bridge process: the project's settings on that Redis,
    with a SQLite file database in ``workdir``."""
    return {
        **os.environ,
        "REDIS_URL": redis_url,
        "DJANGO_DEBUG": "true",
        "DJANGO_SETTINGS_MODULE": "empathy_web.settings",
        "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
        "EMBEDDED_BRIDGE": "false",
        "PYTHONUNBUFFERED": "1",
    }


def start_live_server(
    workers: int = 1, server: str = DEFAULT_SERVER, **settings: str
) -> LiveServer:
    """A live server of ``workers`` processes of ``server`` (uvicorn or daphne);
    ``settings`` are more environment variables for it."""
    workdir = Path(tempfile.mkdtemp(prefix="live-server-"))
    redis = start_redis_server(["--save", "", "--appendonly", "no"])
    env = {**server_env(workdir, redis.url), **settings}
    live = LiveServer(redis, workdir, env, workers, server)
    try:
        live.manage("migrate", "--noinput", "-v", "0")
        live.start()
    except BaseException:
        live.stop()
        raise
    return live
