"""Pages on a Redis Cluster deployment: the agents' memory on a 3-master cluster, the
channel layer on a Redis of its own, a daphne worker and a bridge as processes, and
Chromium pages that update live as agents work."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from memory import AgentCoordinator, AgentTask, EmpathyOS, RedisShortTermMemory
from tests.e2e.test_live_failures import (  # noqa: F401 (open_page is a fixture)
    UPDATE_WAIT,
    Stack,
    assert_not_reloaded,
    deployment_env,
    open_page,
    start_one_worker_and_bridge,
)
from tests.redis_server import ClusterOfServers, start_cluster, start_redis_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ClusterOfServers, Stack]]:
    workdir: Path = tmp_path_factory.mktemp("cluster-pages")
    cluster = start_cluster(3)
    layer = start_redis_server([])
    env = deployment_env(workdir, REDIS_URL=cluster.url, CHANNEL_LAYER_REDIS_URL=layer.url)
    stack = Stack(redis=layer, workdir=workdir, env=env)
    try:
        start_one_worker_and_bridge(stack)
        yield cluster, stack
    finally:
        stack.close()
        cluster.stop()


def test_pages_follow_agents_working_on_a_cluster(
    deployment: tuple[ClusterOfServers, Stack],
    open_page: Callable[..., Page],  # noqa: F811
) -> None:
    cluster, stack = deployment
    memory = RedisShortTermMemory(url=cluster.url)
    assert memory.mode == "cluster"
    port = next(iter(stack.workers))
    board = open_page(port, "/tasks/?team=cluster-team")
    feed = open_page(port, "/signals/")
    overview = open_page(port, "/")

    team = AgentCoordinator(memory, "cluster-team")
    team.add_task(AgentTask("on_a_cluster", "review", "queued on a cluster", 5))
    sent = [
        EmpathyOS(f"agent-{n}", short_term_memory=memory).send_signal(
            "progress", {"n": n}, target_agent=f"agent-{n + 1}"
        )["id"]
        for n in range(5)
    ]
    expect(board.locator("#task-on_a_cluster")).to_be_visible(timeout=UPDATE_WAIT)
    for signal_id in sent:  # signals to five mailboxes, on several masters
        expect(feed.locator(f"[data-signal-id='{signal_id}']")).to_have_count(
            1, timeout=UPDATE_WAIT
        )
    expect(overview.get_by_text("cluster-team").first).to_be_visible(timeout=UPDATE_WAIT)
    assert_not_reloaded(board, feed, overview)
    memory.close()
