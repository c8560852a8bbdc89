"""The management commands, run as real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import redis

from memory import AgentCoordinator, RedisShortTermMemory

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE"}}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_demo_refuses_without_debug(tmp_path):
    env = {"DJANGO_DEBUG": "false", "SECRET_KEY": "x" * 50, "ALLOWED_HOSTS": "localhost"}
    done = manage("demo", "--no-serve", env={**env, "DATABASE_URL": f"sqlite:///{tmp_path}/d.db"})
    assert done.returncode != 0
    assert "DJANGO_DEBUG=true" in done.stderr


def test_the_demo_sets_up_and_prints_one_login_per_tier(tmp_path):
    env = {"DJANGO_DEBUG": "true", "REDIS_URL": "", "DATABASE_URL": f"sqlite:///{tmp_path}/d.db"}
    done = manage("demo", "--no-serve", env=env)
    assert done.returncode == 0, done.stderr
    assert "Short-term memory: mock" in done.stdout
    logins = dict(line.split() for line in done.stdout.splitlines() if line.startswith("  "))
    assert set(logins) == {"observer", "contributor", "validator", "steward"}
    assert all(len(password) >= 12 for password in logins.values())
    again = manage("demo", "--no-serve", env=env)  # a second run gives fresh passwords
    assert (
        dict(line.split() for line in again.stdout.splitlines() if line.startswith("  ")) != logins
    )


def test_simulate_agents_runs_a_team_on_the_configured_redis(redis_server):
    redis.Redis.from_url(redis_server.url).flushall()
    env = {"DJANGO_DEBUG": "true", "REDIS_URL": redis_server.url}
    done = manage("simulate_agents", "--seconds", "4", "--pace", "0.1", env=env)
    assert done.returncode == 0, done.stderr
    assert "Simulated team stopped." in done.stdout
    memory = RedisShortTermMemory(url=redis_server.url)
    coordinator = AgentCoordinator(memory, "code_review_team")
    agents = {agent.agent_id for agent in coordinator.get_agents()}
    assert {"security_agent", "performance_agent", "lead_reviewer"} <= agents
    counts = coordinator.counts()
    assert counts["pending"] + counts["claimed"] + counts["completed"] + counts["dead"] > 0


def test_the_demo_serves_the_dashboard_live_and_stops_on_ctrl_c(tmp_path):
    """``make demo``: one process with the mock memory, the simulated team and the
    embedded bridge; a login sees the team's work arrive over the websocket."""
    import re
    import signal
    import time

    import httpx
    from websockets.sync.client import connect

    from tests.live_server import HOST, free_port

    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
        "DJANGO_DEBUG": "true", "REDIS_URL": "", "PYTHONUNBUFFERED": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path}/demo.db",
    }  # fmt: skip
    demo = subprocess.Popen(
        [sys.executable, "manage.py", "demo", "--addrport", f"{HOST}:{port}", "--pace", "0.2"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        lines = []
        while not any(line.startswith("  steward") for line in lines):
            line = demo.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        password = next(line.split()[1] for line in lines if line.startswith("  observer"))
        url = f"http://{HOST}:{port}"
        with httpx.Client(base_url=url, timeout=10) as client:
            for _ in range(300):  # until it serves
                try:
                    page = client.get("/accounts/login/")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]
            form = {"username": "observer", "password": password, "csrfmiddlewaretoken": token}
            client.post("/accounts/login/", data=form, headers={"Referer": f"{url}/"})
            cookie = f"sessionid={client.cookies['sessionid']}"
        socket_url = f"ws://{HOST}:{port}/ws/dashboard/?panels=task-board"
        headers = {"Origin": url, "Cookie": cookie}
        with connect(socket_url, additional_headers=headers) as dashboard:
            first = dashboard.recv(timeout=10)
            assert 'id="task-board"' in first
            deadline, latest = time.monotonic() + 30, first
            while latest == first and time.monotonic() < deadline:
                latest = dashboard.recv(timeout=30)
            assert latest != first  # the team's work, live
        demo.send_signal(signal.SIGINT)  # Ctrl-C
        assert demo.wait(timeout=15) == 0
        assert "Traceback" not in demo.stdout.read()
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(10)
