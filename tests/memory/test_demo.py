from __future__ import annotations

import os
import subprocess
import sys


def test_the_library_demo_runs_a_team_on_the_mock():
    env = {**os.environ, "REDIS_URL": ""}
    done = subprocess.run(
        [sys.executable, "-m", "memory.demo", "--seconds", "4", "--pace", "0.2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "short-term memory: mock" in done.stdout
    for kind in ("agent.registered", "task.added", "task.claimed", "task.completed", "signal.sent"):
        assert kind in done.stdout
