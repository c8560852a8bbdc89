"""A web process started while Redis is down comes up all the same: alive, not ready,
its pages saying Redis is unreachable; and ready as soon as Redis answers, with no
restart (the memory connects on first use, and again at each request until it can)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.live_server import HOST, ROOT, free_port, server_env, web_command
from tests.redis_server import start_redis_server


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


def until(condition, what: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert process.poll() is None, f"the web process exited:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"{what}:\n{log.read_text()[-3000:]}"
        time.sleep(0.1)


def answers(url: str) -> bool:
    try:
        get(url)
    except OSError:
        return False
    return True


def test_a_web_process_starts_while_redis_is_down_and_is_ready_once_it_is_up() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="no-redis-"))
    redis_port = free_port()  # nothing listens there yet
    env = server_env(workdir, f"redis://{HOST}:{redis_port}/0")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env,
                   check=True, timeout=120)  # fmt: skip
    port = free_port()
    url = f"http://{HOST}:{port}"
    log = workdir / "web.log"
    with log.open("wb") as out:
        web = subprocess.Popen(web_command(port, "uvicorn"), cwd=ROOT, env=env,
                               stdin=subprocess.DEVNULL, stdout=out, stderr=out)  # fmt: skip
    redis = None
    try:
        until(lambda: answers(f"{url}/healthz"), "the web process did not answer", web, log)
        assert get(f"{url}/healthz")[0] == 200
        status, body = get(f"{url}/readyz")
        assert status == 503 and "redis" in json.loads(body)["problems"], body

        redis = start_redis_server(port=redis_port)
        until(lambda: get(f"{url}/readyz")[0] == 200, "not ready with Redis up", web, log)
    finally:
        web.terminate()
        web.wait(timeout=10)
        if redis is not None:
            redis.stop()
        shutil.rmtree(workdir, ignore_errors=True)
