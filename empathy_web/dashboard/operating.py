"""What operators watch on the dashboard's pages: how long queues wait (their latency,
coloured past ``QUEUE_LATENCY_WARN_SECONDS``), and tasks completed and failed over time
(a chart per range)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from django.conf import settings

from memory import RedisShortTermMemory
from memory.series import series
from memory.tiers import Caller

from .charts import RANGES, Line, chart

# The chart's lines: its name, CSS class, and the library's series summed into it.
THROUGHPUT = (
    ("completed", "completed", ("tasks_completed",)),
    ("failed", "failed", ("tasks_failed", "tasks_dead_lettered")),
)


def chart_range(params: Mapping[str, str]) -> str:
    """The chart range a page's query asks for (``range``), else the last hour."""
    wanted = params.get("range", "")
    return wanted if wanted in RANGES else "1h"


def throughput(
    memory: RedisShortTermMemory, viewer: Caller, teams: Collection[str], range_name: str
) -> dict[str, Any]:
    """Tasks of ``teams`` completed and failed (failures that retry, and tasks
    dead-lettered) per minute, per 5 minutes over 24 hours, or per hour over 7 days
    (the chart's points, summed in Redis), as a chart."""
    lines, now = [], memory.server_time_ms()
    for name, css, kinds in THROUGHPUT:
        summed: list[tuple[int, int]] = []
        for kind in kinds:
            points = series(
                memory, viewer, kind, teams=list(teams), range=range_name, now_ms=now,
                group=RANGES[range_name]["per_point"],
            )  # fmt: skip
            summed = (
                points
                if not summed
                else [(at, n + m) for (at, n), (_, m) in zip(summed, points, strict=True)]
            )
        lines.append(Line(name, css, summed))
    return chart(lines, range_name)


def latency_rows(by_type: Mapping[str, int]) -> list[dict[str, Any]]:
    """Each queue's wait, longest first: task type, ms, and whether it is over the
    warning threshold."""
    warn_ms = settings.QUEUE_LATENCY_WARN_SECONDS * 1000
    return [
        {"task_type": task_type, "ms": ms, "over": ms > warn_ms}
        for task_type, ms in sorted(by_type.items(), key=lambda item: -item[1])
    ]


def oldest(by_type: Mapping[str, int]) -> dict[str, Any] | None:
    """A team's longest wait over its queues, as ``latency_rows`` gives it; None when
    nothing waits."""
    rows = latency_rows(by_type)
    return rows[0] if rows else None
