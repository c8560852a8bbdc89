"""Pages on PostgreSQL, with each process's pool of connections and without: a private
PostgreSQL and redis-server on 127.0.0.1, one uvicorn web process with production
settings (no DEBUG), and a steward's session GETting three pages over keep-alive,
``BENCH_DB_N`` (default 100) timed times each, after 10 untimed. Without the pool, once
as the settings were before it (a connection per request) and once with persistent
connections (``DB_CONN_MAX_AGE``), which under ASGI stay with threads that later
requests do not get. Run with ``make bench``; set ``BENCH_MARKDOWN`` to a path to
append the table there."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import httpx
import pytest

from tests.benchmarks.report import markdown_table, text_table
from tests.live_server import PRODUCTION, start_live_server
from tests.postgres_server import start_postgres_server

pytestmark = pytest.mark.benchmark

N = int(os.environ.get("BENCH_DB_N", "100"))
PAGES = ("/", "/patterns/", "/library/")
WAYS = {
    "a pool of 10 (the default)": {},
    "no pool: a connection per request": {"DB_POOL_SIZE": "0"},
    "no pool, DB_CONN_MAX_AGE=60": {"DB_POOL_SIZE": "0", "DB_CONN_MAX_AGE": "60"},
}


def page_times(database: str, settings: dict[str, str], user: str) -> dict[str, list[float]]:
    live = start_live_server(DATABASE_URL=database, **PRODUCTION, **settings)
    try:
        cookies = {"sessionid": live.session(user, "steward")}
        times: dict[str, list[float]] = {}
        with httpx.Client(base_url=live.url, cookies=cookies, timeout=30) as http:
            for page in PAGES:
                for _ in range(10):
                    assert http.get(page).status_code == 200, page
                samples = times[page] = []
                for _ in range(N):
                    started = time.perf_counter()
                    http.get(page)
                    samples.append((time.perf_counter() - started) * 1000)
        return times
    finally:
        live.stop()


def test_pages_with_and_without_the_pool() -> None:
    postgres = start_postgres_server()
    try:
        found = {
            way: page_times(postgres.url, settings, f"steward-{i}")
            for i, (way, settings) in enumerate(WAYS.items())
        }
    finally:
        postgres.stop()
    rows = []
    for page in PAGES:
        for way, times in found.items():
            ordered = sorted(times[page])
            p95 = ordered[int(0.95 * (len(ordered) - 1))]
            rows.append([page, way, str(N), f"{statistics.median(ordered):.1f}", f"{p95:.1f}"])
    header = ["page", "connections", "n", "p50 ms", "p95 ms"]
    print()
    print(text_table(header, rows, right={2, 3, 4}))
    if path := os.environ.get("BENCH_MARKDOWN"):
        with Path(path).open("a") as out:
            out.write(markdown_table(header, rows, right={2, 3, 4}) + "\n\n")
