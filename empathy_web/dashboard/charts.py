"""Server-rendered charts: a few series drawn as one SVG, with a table of the same figures
for screen readers (and anyone who wants the numbers)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

# Each range: how many of the library's buckets (minutes; hours over 7 days) make one
# drawn point (the SVG stays a few hundred points wide; the library sums them), and the
# period (ms, from the epoch: UTC) of one row of the table, labelled by its start;
# ``point`` says what one point counts, after the peak.
RANGES = {
    "1h": {"label": "last hour", "per_point": 1, "point": "a minute", "row_ms": 300_000,
           "row": "%H:%M"},
    "24h": {"label": "last 24 hours", "per_point": 5, "point": "per 5 minutes",
            "row_ms": 3_600_000, "row": "%H:00"},
    "7d": {"label": "last 7 days", "per_point": 1, "point": "an hour", "row_ms": 86_400_000,
           "row": "%a %d %b"},
}  # fmt: skip
WIDTH, HEIGHT, PAD = 600, 140, 4


@dataclass(frozen=True)
class Line:
    """One series of a chart: its name, CSS class, and (start ms, count) points."""

    name: str
    css: str
    points: Sequence[tuple[int, int]]


def _rows(points: Sequence[tuple[int, int]], row_ms: int) -> list[tuple[int, int]]:
    """Sums of the points in each period of ``row_ms`` (the first and last may be
    partial), each at the period's start."""
    sums: dict[int, int] = {}
    for at, count in points:
        start = at - at % row_ms
        sums[start] = sums.get(start, 0) + count
    return list(sums.items())


def chart(lines: Sequence[Line], range_name: str) -> dict[str, object]:
    """What ``dashboard/_chart.html`` draws: each line's points (``per_point`` of the
    library's buckets each) as SVG on one scale, and the table rows (the start of each
    row's period, then each line's count in it)."""
    shape = RANGES[range_name]
    drawn = [line.points for line in lines]
    peak = max((count for points in drawn for _, count in points), default=0)
    top = peak or 1
    length = max((len(points) for points in drawn), default=0)
    step = (WIDTH - 2 * PAD) / max(length - 1, 1)
    polylines = []
    for line, points in zip(lines, drawn, strict=True):
        xy = " ".join(
            f"{PAD + i * step:.1f},{HEIGHT - PAD - count / top * (HEIGHT - 2 * PAD):.1f}"
            for i, (_, count) in enumerate(points)
        )
        total = sum(count for _, count in line.points)
        polylines.append({"name": line.name, "css": line.css, "points": xy, "total": total})
    rows = [_rows(line.points, shape["row_ms"]) for line in lines]
    table = [
        (_when(row[0][0], shape["row"]), [count for _, count in row])
        for row in zip(*rows, strict=True)
    ]
    return {
        "range": range_name,
        "range_label": shape["label"],
        "point_label": shape["point"],
        "ranges": list(RANGES),
        "lines": polylines,
        "peak": peak,
        "table": table,
        "width": WIDTH,
        "height": HEIGHT,
    }


def _when(ms: int, fmt: str) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime(fmt)
