"""The server-rendered charts: points on one scale, and the table of the same figures for
each range."""

from __future__ import annotations

import pytest

from empathy_web.dashboard.charts import HEIGHT, PAD, Line, chart

MINUTE, HOUR = 60_000, 3_600_000
START = 1_767_225_600_000  # 2026-01-01 00:00 UTC


def _series(count: int, step: int, value) -> list[tuple[int, int]]:
    return [(START + i * step, value(i)) for i in range(count)]


@pytest.mark.parametrize(
    "range_name, count, step, drawn, rows, first_row",
    [
        ("1h", 60, MINUTE, 60, 12, "00:00"),
        ("24h", 288, 5 * MINUTE, 288, 24, "00:00"),
        ("7d", 168, HOUR, 168, 7, "Thu 01 Jan"),
    ],
)
def test_each_range_draws_and_tabulates_the_same_totals(
    range_name, count, step, drawn, rows, first_row
):
    done = Line("completed", "completed", _series(count, step, lambda i: i % 7))
    failed = Line("failed", "failed", _series(count, step, lambda i: 1 if i % 10 == 0 else 0))

    shown = chart([done, failed], range_name)

    assert [len(line["points"].split()) for line in shown["lines"]] == [drawn, drawn]
    assert len(shown["table"]) == rows and shown["table"][0][0] == first_row
    assert (
        shown["point_label"]
        == {"1h": "a minute", "24h": "per 5 minutes", "7d": "an hour"}[range_name]
    )
    for column, line in enumerate((done, failed)):
        total = sum(n for _, n in line.points)
        assert shown["lines"][column]["total"] == total
        assert sum(counts[column] for _, counts in shown["table"]) == total


def test_rows_are_whole_periods_from_the_epoch_and_the_ends_may_be_partial():
    # 288 points of 5 minutes from 10:35: rows from 10:00 (5 points) to 10:00 the next day
    start = START + 10 * HOUR + 35 * MINUTE
    points = [(start + i * 5 * MINUTE, 1) for i in range(288)]

    table = chart([Line("completed", "completed", points)], "24h")["table"]

    assert [table[0], table[1], table[-1]] == [("10:00", [5]), ("11:00", [12]), ("10:00", [7])]
    assert len(table) == 25 and sum(counts[0] for _, counts in table) == 288


def test_the_highest_point_touches_the_top_and_zero_the_bottom():
    shown = chart([Line("completed", "completed", [(START, 0), (START + MINUTE, 4)])], "1h")
    (low, high) = [float(p.split(",")[1]) for p in shown["lines"][0]["points"].split()]
    assert (low, high) == (HEIGHT - PAD, PAD) and shown["peak"] == 4


def test_no_figures_draw_a_flat_chart():
    shown = chart([Line("completed", "completed", _series(60, MINUTE, lambda i: 0))], "1h")
    assert shown["peak"] == 0 and {
        p.split(",")[1] for p in shown["lines"][0]["points"].split()
    } == {f"{HEIGHT - PAD:.1f}"}
