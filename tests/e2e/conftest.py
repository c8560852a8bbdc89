"""Browser tests: Debian's Chromium driven by Playwright against a live ASGI server.

They run as their own pytest invocation (``pytest -m e2e``): once Playwright's sync API
runs, the test thread may not use the ORM or ``async_to_sync`` without
DJANGO_ALLOW_ASYNC_UNSAFE, and the live server must be started with ``spawn``.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_configure(config: pytest.Config) -> None:
    multiprocessing.set_start_method("spawn", force=True)
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    if not os.path.exists(CHROMIUM):
        pytest.fail("Chromium is not installed: run `make system-deps` (apt-get install chromium)")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}
