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
