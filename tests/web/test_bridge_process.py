"""The real ``manage.py run_bridge`` process, killed and restarted: the new one reads on
from the cursor the old one saved, so it announces what changed while no bridge ran and
nothing from before."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from channels_redis.core import RedisChannelLayer

from empathy_web.dashboard.panels import GROUP, panels_for
from memory import AgentCoordinator, AgentTask, EmpathyOS, RedisShortTermMemory, leadership
from tests.faultproxy import FaultProxy
from tests.live_server import free_port
from tests.redis_server import RedisServer, start_redis_server

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
WAIT = 15.0
PARTITION_NOTICED = 10.0  # the bridge's reads fail within block_ms + socket_timeout
LAYER_RECOVERY = 40.0


@pytest.fixture
def server() -> Iterator[RedisServer]:
    """A redis-server of this test's own: bridges started here never see another test's
    events, and other tests never see theirs."""
    server = start_redis_server([])
    yield server
    server.stop()


@pytest.fixture
def memory(server: RedisServer) -> Iterator[RedisShortTermMemory]:
    memory = RedisShortTermMemory(url=server.url)
    yield memory
    memory.close()


class BridgeProcesses:
    """Starts ``run_bridge`` processes and kills each one, by pid, at the end."""

    def __init__(self, url: str, workdir: Path) -> None:
        self.env = {
            **os.environ,
            "REDIS_URL": url,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "PYTHONUNBUFFERED": "1",
        }
        self.workdir = workdir
        self.started: list[subprocess.Popen] = []

    async def start(self, until: str = "bridge reading events after") -> subprocess.Popen:
        """A new bridge, once its log says ``until`` (by default: it leads and reads)."""
        log = self.workdir / f"bridge-{len(self.started)}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "manage.py", "run_bridge", "--coalesce", "0.05"],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
        self.started.append(process)
        await logged(process, log, until)
        return process

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGKILL)
                process.wait(10)


async def logged(process: subprocess.Popen, log: Path, text: str) -> None:
    """Wait until the bridge's log says ``text``."""
    deadline = time.monotonic() + WAIT
    while text not in log.read_text():
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"the bridge did not log {text!r}:\n{log.read_text()}"
        await asyncio.sleep(0.05)


@pytest.fixture
def bridges(server: RedisServer, tmp_path: Path) -> Iterator[BridgeProcesses]:
    processes = BridgeProcesses(server.url, tmp_path)
    yield processes
    processes.stop_all()


class FirstStreamRead:
    """Watches the server (MONITOR) for the first XREAD of the event stream and keeps
    the id it reads after."""

    def __init__(self, server: RedisServer, stream: str) -> None:
        self.client = server.client(socket_timeout=WAIT)
        self.monitor = self.client.monitor()
        self.monitor.__enter__()  # MONITOR is on before this returns
        self.stream = stream
        self.after: str | None = None
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        with contextlib.suppress(redis.RedisError):
            for command in self.monitor.listen():
                words = command["command"].split()
                if words[0].upper() == "XREAD" and self.stream in words:
                    self.after = words[words.index(self.stream) + 1]
                    return

    def result(self) -> str | None:
        self.thread.join(WAIT)
        with contextlib.suppress(redis.RedisError):
            self.monitor.__exit__(None, None, None)
        self.client.close()
        return self.after


async def listen(layer: RedisChannelLayer) -> str:
    channel = await layer.new_channel()
    await layer.group_add(GROUP, channel)
    return channel


async def next_hint(layer: RedisChannelLayer, channel: str, timeout: float = WAIT) -> set[str]:
    message = await asyncio.wait_for(layer.receive(channel), timeout)
    assert message["type"] == "memory.changed"
    return set(message["panels"])


async def saved_cursor(client: redis.Redis, key: str, wanted: str) -> str:
    """Wait until the bridge has saved ``wanted`` as its cursor."""
    deadline = time.monotonic() + WAIT
    while (saved := (client.get(key) or b"").decode()) != wanted:
        assert time.monotonic() < deadline, f"cursor is {saved!r}, expected {wanted!r}"
        await asyncio.sleep(0.05)
    return saved


async def test_a_bridge_started_after_a_kill_reads_on_from_the_saved_cursor(
    server: RedisServer, memory: RedisShortTermMemory, bridges: BridgeProcesses
) -> None:
    layer = RedisChannelLayer(hosts=[server.url])
    cursor_key = memory.keys.bridge_cursor
    agent = EmpathyOS("scanner", short_term_memory=memory)
    try:
        channel = await listen(layer)
        first = await bridges.start()
        for n in range(3):
            agent.send_signal("progress", {"text": f"before the kill {n}"})
        assert "signal-feed" in await next_hint(layer, channel)
        saved = await saved_cursor(memory.client, cursor_key, memory.latest_event_id())

        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        coordinator = AgentCoordinator(memory, "team")
        coordinator.add_task(AgentTask("while_down_1", "review", "queued while down", 5))
        coordinator.add_task(AgentTask("while_down_2", "review", "queued while down", 5))
        missed = memory.read_events(saved)
        assert missed and all(event.type.startswith("task.") for event in missed)

        channel = await listen(layer)  # hears the new bridge only
        first_read = FirstStreamRead(server, memory.keys.events)
        await bridges.start()
        hint = await next_hint(layer, channel)

        # It reads after the saved id: the missed task events are announced, and the
        # signals from before the kill are not announced again.
        assert first_read.result() == saved
        assert hint == panels_for({event.type for event in missed})
        assert "signal-feed" not in hint
        assert await saved_cursor(memory.client, cursor_key, missed[-1].id) > saved
    finally:
        await layer.close_pools()


def leader_pid(memory: RedisShortTermMemory) -> int | None:
    lead = leadership.leader(memory)
    return int(lead.holder.rsplit(":", 1)[1]) if lead else None


def check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "run_bridge", "--check"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


async def test_of_two_bridges_one_leads_and_the_other_takes_over_within_5_s_of_a_kill(
    server: RedisServer, memory: RedisShortTermMemory, bridges: BridgeProcesses
) -> None:
    layer = RedisChannelLayer(hosts=[server.url])
    agent = EmpathyOS("scanner", short_term_memory=memory)
    try:
        channel = await listen(layer)
        first = await bridges.start()
        second = await bridges.start(until="stands by")
        assert leader_pid(memory) == first.pid
        checked = check(bridges.env)
        assert checked.returncode == 0 and f":{first.pid} leads" in checked.stdout
        agent.send_signal("progress", {"text": "before the kill"})
        assert "signal-feed" in await next_hint(layer, channel)
        saved = await saved_cursor(
            memory.client, memory.keys.bridge_cursor, memory.latest_event_id()
        )
        old_token = leadership.leader(memory).token

        os.kill(first.pid, signal.SIGKILL)
        killed = time.monotonic()
        while leader_pid(memory) != second.pid:
            assert time.monotonic() - killed < 5, "no bridge took over within 5 s"
            await asyncio.sleep(0.02)
        took_over = time.monotonic() - killed
        agent.send_signal("progress", {"text": "after the kill"})
        while "signal-feed" not in await next_hint(layer, channel):
            pass  # a refresh of every panel may come first

        assert int(leadership.leader(memory).token) > int(old_token)
        assert (
            await saved_cursor(memory.client, memory.keys.bridge_cursor, memory.latest_event_id())
            > saved
        )
        print(f"\ntook over in {took_over:.2f} s")
    finally:
        await layer.close_pools()


async def test_with_no_bridge_running_the_check_says_none_leads(
    server: RedisServer, bridges: BridgeProcesses
) -> None:
    checked = check(bridges.env)

    assert checked.returncode == 1 and "No bridge leads" in checked.stderr


async def test_a_bridge_started_while_redis_is_down_waits_for_it_then_leads(
    tmp_path: Path,
) -> None:
    port = free_port()  # nothing listens there yet
    bridges = BridgeProcesses(f"redis://127.0.0.1:{port}/0", tmp_path)
    server = None
    try:
        bridge = await bridges.start(until="Bridge waiting for Redis: cannot reach Redis")
        checked = check(bridges.env)  # and the check says why, in one line
        assert checked.returncode == 1 and "Traceback" not in checked.stderr
        assert "CommandError: cannot reach Redis at 127.0.0.1:" in checked.stderr

        server = start_redis_server(port=port)
        await logged(bridge, tmp_path / "bridge-0.log", "bridge reading events after")
        assert check(bridges.env).returncode == 0  # it leads
        bridge.send_signal(signal.SIGTERM)
        assert bridge.wait(WAIT) == 0
    finally:
        bridges.stop_all()
        if server is not None:
            server.stop()


async def test_a_bridge_stopped_while_it_waits_for_redis_exits_cleanly(tmp_path: Path) -> None:
    bridges = BridgeProcesses(f"redis://127.0.0.1:{free_port()}/0", tmp_path)
    try:
        bridge = await bridges.start(until="Bridge waiting for Redis")
        bridge.send_signal(signal.SIGTERM)
        assert bridge.wait(WAIT) == 0
        assert "Bridge stopped." in (tmp_path / "bridge-0.log").read_text()
    finally:
        bridges.stop_all()


async def test_a_bridge_notices_a_silent_partition_in_seconds_and_reads_on_after_it(
    server: RedisServer, memory: RedisShortTermMemory, tmp_path: Path
) -> None:
    layer = RedisChannelLayer(hosts=[server.url])
    with FaultProxy(server.port) as proxy:
        bridges = BridgeProcesses(f"redis://127.0.0.1:{proxy.port}/0", tmp_path)
        try:
            channel = await listen(layer)
            await bridges.start()
            log = tmp_path / "bridge-0.log"
            proxy.blackhole()  # packets dropped, nothing reset
            started = time.monotonic()
            while "Redis unavailable" not in log.read_text():
                assert time.monotonic() - started < WAIT, log.read_text()
                await asyncio.sleep(0.05)
            noticed = time.monotonic() - started
            assert noticed < PARTITION_NOTICED, f"noticed after {noticed:.1f}s"
            proxy.heal()  # what TCP held back is delivered, as when a partition heals
            healed = time.monotonic()
            while "Redis is back" not in log.read_text():  # its reads resume first
                assert time.monotonic() - healed < WAIT, log.read_text()
                await asyncio.sleep(0.05)
            AgentCoordinator(memory, "team").add_task(AgentTask("after", "review"))
            # The hint also crosses the bridge's channel layer, whose own connections may
            # wait out their socket timeout (15 s) after the partition.
            while "task-board" not in await next_hint(layer, channel, LAYER_RECOVERY):
                pass
        finally:
            bridges.stop_all()
            await layer.close_pools()
