from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

KINDS = ("agent.registered", "task.added", "task.claimed", "task.completed", "signal.sent")


def test_the_library_demo_runs_a_team_on_the_mock():
    env = {**os.environ, "REDIS_URL": "", "PYTHONUNBUFFERED": "1"}
    demo = subprocess.Popen(
        [sys.executable, "-m", "memory.demo", "--pace", "0.2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[str] = []
    deadline = time.monotonic() + 60
    try:
        assert demo.stdout is not None
        first = demo.stdout.readline()
        # Watch until every kind of event has been printed, then stop it as Ctrl-C would.
        for line in demo.stdout:
            seen.extend(kind for kind in KINDS if kind in line and kind not in seen)
            if len(seen) == len(KINDS) or time.monotonic() > deadline:
                break
        demo.send_signal(signal.SIGINT)
        rest, errors = demo.communicate(timeout=30)
    finally:
        demo.kill()
    assert demo.returncode == 0, errors
    assert "short-term memory: mock" in first
    assert sorted(seen) == sorted(KINDS)
    assert "tasks: {" in rest
