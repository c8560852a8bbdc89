"""What operators watch on the pages: each queue's wait (coloured past the threshold)
and the chart of tasks completed and failed, for each range, live with its panel."""

from __future__ import annotations

import re

import pytest

from memory import AgentCoordinator, AgentTask, RedisShortTermMemory
from tests.web.pages import element, words

pytestmark = pytest.mark.django_db


@pytest.fixture
def worked(memory: RedisShortTermMemory) -> AgentCoordinator:
    """Team "ops": 2 reviews completed, 1 dead-lettered, 1 fix and 1 review waiting."""
    ops = AgentCoordinator(memory, "ops", max_attempts=1)
    for i in range(3):
        ops.add_task(AgentTask(f"r-{i}", "review"))
    for _ in range(2):
        ops.complete_task(ops.claim_task("bot", "review").task_id, {"ok": 1})
    ops.fail_task(ops.claim_task("bot", "review").task_id, "boom", retry=False)
    ops.add_task(AgentTask("f-1", "fix"))
    ops.add_task(AgentTask("r-9", "review"))
    return ops


def _chart_label(html: str) -> str:
    return re.search(r'<figure class="chart" id="throughput">.*?aria-label="([^"]+)"', html, re.S)[
        1
    ]


@pytest.mark.parametrize(
    "asked, label, rows",
    [
        ("", "last hour", 12),
        ("24h", "last 24 hours", 24),
        ("7d", "last 7 days", 7),
        ("1y", "last hour", 12),
    ],
)
def test_the_task_board_charts_each_range_with_its_table(worked, observer, asked, label, rows):
    html = observer.get(f"/tasks/?team=ops&range={asked}").content.decode()

    assert _chart_label(html).startswith(
        f"Tasks completed and failed, {label}: completed 2, failed 1"
    )
    table = html.split('<table class="chart-table">')[1].split("</table>")[0]
    # Whole periods from the epoch: unless the range starts at one, its first row and
    # its last are partial.
    assert table.count('<th scope="row">') in (rows, rows + 1)


def test_the_chart_comes_with_its_panel_live(worked, observer):
    html = observer.get("/live/?panels=task-board&team=ops&range=24h").content.decode()
    assert _chart_label(html).startswith("Tasks completed and failed, last 24 hours")


def test_queues_say_how_long_their_oldest_task_has_waited(worked, observer, settings):
    board = observer.get("/tasks/?team=ops").content.decode()
    assert 'class="latency"' in board and "latency over" not in board
    assert re.search(r"Queued: fix.*?Oldest waiting: \d+s", words(board))

    settings.QUEUE_LATENCY_WARN_SECONDS = -1  # every wait is past it
    board = observer.get("/tasks/?team=ops").content.decode()
    overview = observer.get("/").content.decode()
    assert board.count('class="latency over"') == 2  # fix, review
    assert 'class="latency over"' in element_html(overview, "overview-panel")


def element_html(html: str, element_id: str) -> str:
    return html[html.find(f'id="{element_id}"') :]


def test_an_empty_queue_has_no_wait(memory, observer):
    ops = AgentCoordinator(memory, "ops")
    ops.add_task(AgentTask("only", "review"))
    ops.claim_task("bot", "review")
    table = element(observer.get("/"), "overview-panel")
    assert re.search(r"ops 0 - 1 0 0", table)
