"""Timing and tables for the memory benchmarks.

``measure`` times operations, taking turns in blocks, with ``time.perf_counter_ns``; a ``Row``
turns the samples into median and p99 (nearest rank) in microseconds, compares the
median with a baseline and a target, and ``render_text`` / ``render_markdown`` print
the rows as one table.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Stat:
    """Latency samples of one operation, in nanoseconds."""

    samples: tuple[int, ...]

    @property
    def n(self) -> int:
        return len(self.samples)

    @property
    def median_us(self) -> float:
        return statistics.median(self.samples) / 1000

    @property
    def p99_us(self) -> float:
        ordered = sorted(self.samples)
        return ordered[math.ceil(0.99 * len(ordered)) - 1] / 1000


@dataclass(frozen=True)
class Op:
    """One operation to time. Iteration ``i`` calls ``run(setup(i))`` (``run(i)``
    without ``setup``); only ``run`` is timed. ``check`` sees each result outside the
    timed section, after which it is dropped, so results do not pile up and skew the
    garbage collector."""

    name: str
    run: Callable[[Any], Any]
    setup: Callable[[int], Any] | None = None
    check: Callable[[Any], None] | None = None


def measure(ops: Sequence[Op], *, n: int, warmup: int, block: int = 100) -> dict[str, Stat]:
    """Time ``warmup + n`` calls of each op and keep the last ``n`` timings of each.

    The ops take turns in blocks of ``block`` calls: ``block`` of the first, then of the
    second, and so on, round after round. Within a block the op runs warm, as in a tight
    loop; across blocks every op, baselines included, samples the same stretch of time,
    so when another process takes the CPU for a while they all slow down together and
    the ratios between them stay meaningful.
    """
    samples: dict[str, list[int]] = {op.name: [] for op in ops}
    calls = dict.fromkeys(samples, 0)
    clock = time.perf_counter_ns

    def run(op: Op, count: int, keep: bool) -> None:
        times = samples[op.name]
        for _ in range(count):
            i = calls[op.name]
            calls[op.name] = i + 1
            arg = op.setup(i) if op.setup is not None else i
            start = clock()
            result = op.run(arg)
            elapsed = clock() - start
            if op.check is not None:
                op.check(result)
            if keep:
                times.append(elapsed)

    # The heap built before timing (the filled test data, the test machinery) stays out
    # of the collector's reach, as the ASGI entry point keeps what it loads at startup.
    gc.collect()
    gc.freeze()
    for total, keep in ((warmup, False), (n, True)):
        for done in range(0, total, block):
            for op in ops:
                run(op, min(block, total - done), keep)
    return {name: Stat(tuple(times)) for name, times in samples.items()}


@dataclass(frozen=True)
class Row:
    """One line of the table. A target is either a maximum ratio of the median to the
    baseline's median, or a maximum median in microseconds (or neither)."""

    op: str
    stat: Stat
    baseline: Stat | None = None
    baseline_name: str = ""
    max_ratio: float | None = None
    max_median_us: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline is None:
            return None
        return self.stat.median_us / self.baseline.median_us

    @property
    def target(self) -> str:
        if self.max_ratio is not None:
            return f"<= {self.max_ratio:g}x {self.baseline_name}"
        if self.max_median_us is not None:
            return f"median <= {self.max_median_us / 1000:g} ms"
        return "-"

    @property
    def passed(self) -> bool | None:
        if self.max_ratio is not None:
            ratio = self.ratio
            return ratio is not None and ratio <= self.max_ratio
        if self.max_median_us is not None:
            return self.stat.median_us <= self.max_median_us
        return None

    @property
    def verdict(self) -> str:
        passed = self.passed
        return "-" if passed is None else ("PASS" if passed else "FAIL")

    def cells(self) -> list[str]:
        ratio = self.ratio
        return [
            self.op,
            str(self.stat.n),
            f"{self.stat.median_us:,.1f}",
            f"{self.stat.p99_us:,.1f}",
            "-" if ratio is None else f"{ratio:.2f}x {self.baseline_name}",
            self.target,
            self.verdict,
        ]


HEADER = ["op", "n", "median µs", "p99 µs", "ratio to baseline", "target", "verdict"]
# Numbers read best right-aligned.
RIGHT = {1, 2, 3}


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Collection[int]) -> str:
    """Aligned columns, the ``right`` ones (by index) right-aligned, under a rule."""
    table = [header, *rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        padded = (
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(header), rule, *(line(cells) for cells in rows)])


def markdown_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], right: Collection[int]
) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    align = ["---:" if i in right else "---" for i in range(len(header))]
    return "\n".join([line(header), line(align), *(line(cells) for cells in rows)])


def render_text(rows: Sequence[Row]) -> str:
    return text_table(HEADER, [row.cells() for row in rows], RIGHT)


def render_markdown(rows: Sequence[Row]) -> str:
    return markdown_table(HEADER, [row.cells() for row in rows], RIGHT)
