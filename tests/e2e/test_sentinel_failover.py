"""A Redis Sentinel failover under open dashboards: a master, a replica and three
sentinels on loopback; a daphne worker and a bridge that find the master through the
sentinels; agents writing through the library. The master is killed with SIGKILL, and
the agents, the bridge and the pages carry on with the promoted replica, with no
restart of anything."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from playwright.sync_api import Page, expect

from memory import AgentCoordinator, AgentTask, MemoryConnectionError, RedisShortTermMemory
from tests.e2e.test_live_failures import (  # noqa: F401 (open_page is a fixture)
    Stack,
    agent_says,
    assert_not_reloaded,
    deployment_env,
    open_page,
    start_one_worker_and_bridge,
)
from tests.redis_server import HOST, MASTER, Replicated

pytestmark = pytest.mark.e2e
WITHIN = 10.0  # seconds from the kill for everything to carry on


@pytest.fixture(scope="module")
def failover(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Replicated, Stack]]:
    workdir: Path = tmp_path_factory.mktemp("sentinel-failover")
    servers = Replicated()
    env = deployment_env(workdir, **servers.env)
    stack = Stack(redis=servers.master, workdir=workdir, env=env)
    try:
        start_one_worker_and_bridge(stack)
        yield servers, stack
    finally:
        stack.close()
        servers.stop()


def write_until_it_lands(write: Callable[[], object], since: float) -> float:
    """Retry ``write`` while the master is gone; seconds from ``since`` to success."""
    while True:
        try:
            write()
            return time.monotonic() - since
        except MemoryConnectionError:
            assert time.monotonic() - since < WITHIN, "no write landed within 10 s"
            time.sleep(0.05)


def test_agents_the_bridge_and_pages_carry_on_after_the_master_dies(
    failover: tuple[Replicated, Stack],
    open_page: Callable[..., Page],  # noqa: F811
) -> None:
    servers, stack = failover
    memory = RedisShortTermMemory(sentinels=servers.addresses, sentinel_master=MASTER)
    team = AgentCoordinator(memory, "failover-team")
    team.add_task(AgentTask("before", "review", "queued before the failover", 5))
    port = next(iter(stack.workers))
    board = open_page(port, "/tasks/?team=failover-team")
    feed = open_page(port, "/signals/")
    expect(board.locator("#task-before")).to_be_visible()

    servers.master.kill()
    killed = time.monotonic()
    landed = write_until_it_lands(
        lambda: team.add_task(AgentTask("after", "review", "queued after it", 5)), killed
    )
    # Another agent, in its own process, through the sentinels too.
    (signal_id,) = agent_says(stack, "survivor", "after the failover")
    left = max(0.5, WITHIN - (time.monotonic() - killed))
    expect(board.locator("#task-after")).to_be_visible(timeout=left * 1000)
    expect(feed.locator(f"[data-signal-id='{signal_id}']")).to_have_count(1, timeout=left * 1000)
    shown = time.monotonic() - killed
    expect(board.locator("#task-before")).to_be_visible()
    for page in (board, feed):
        expect(page.locator("#live-status")).to_have_text("live", timeout=WITHIN * 1000)

    promoted = redis.Redis(host=HOST, port=servers.replica.port).info("replication")
    assert promoted["role"] == "master"
    for process in stack.processes[-2:]:  # the worker and the bridge were not restarted
        assert process.poll() is None
    assert_not_reloaded(board, feed)
    print(f"\nfailover: a write landed {landed:.2f} s after the kill; the pages showed the "
          f"new task and signal {shown:.2f} s after it")  # fmt: skip
    memory.close()
