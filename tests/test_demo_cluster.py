"""``make demo-cluster``, as a user runs it: everything starts on loopback, the two
workers serve, one of the two bridges leads, both simulated teams work in the cluster,
and Ctrl-C stops every process it started."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from memory import RedisShortTermMemory, leadership
from memory.registry import list_teams
from memory.tiers import AccessTier, Caller
from tests.live_server import free_port

ROOT = Path(__file__).resolve().parents[1]
READY_WITHIN = 240.0

pytestmark = pytest.mark.slow


def free_pair() -> int:
    """A free port whose next port is free too (the demo's workers take both)."""
    while True:
        port = free_port()
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port


def test_the_cluster_demo_runs_everything_and_stops_it_on_ctrl_c():
    port = free_pair()
    demo = subprocess.Popen(
        [sys.executable, "-m", "tests.demo_cluster", "--port", str(port)],
        cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    output: list[str] = []
    try:
        deadline = time.monotonic() + READY_WITHIN
        assert demo.stdout is not None
        for line in demo.stdout:
            output.append(line)
            if line.startswith("Ready.") or time.monotonic() > deadline:
                break
        text = "".join(output)
        assert "Ready." in text, text
        for tier in ("observer", "contributor", "validator", "steward"):
            assert re.search(rf"^\s+{tier}\s+\S+$", text, re.MULTILINE), text
        for worker in (port, port + 1):
            with urllib.request.urlopen(f"http://127.0.0.1:{worker}/readyz", timeout=5) as r:
                assert r.status == 200
        pids = [int(p) for p in re.findall(r"pid (\d+)", text)]
        assert len(pids) == 6  # 2 workers, 2 bridges, 2 teams

        url = re.search(r"the Redis Cluster at (\S+) ", text).group(1)
        memory = RedisShortTermMemory(url=url)
        try:
            assert memory.mode == "cluster"
            reader = Caller("reader", AccessTier.OBSERVER)
            until = time.monotonic() + 30
            while set(list_teams(memory, reader)) < {"code_review_team", "release_team"}:
                assert time.monotonic() < until, list_teams(memory, reader)
                time.sleep(0.2)
            assert leadership.leader(memory) is not None
        finally:
            memory.close()

        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=120)
        assert demo.returncode == 0, text + rest
        assert "Stopped." in rest
        for pid in pids:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(30)
