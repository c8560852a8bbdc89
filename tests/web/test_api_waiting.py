"""Long polls on a live daphne: 200 agents wait on ``receive`` at once without a thread
each, and a broadcast wakes every one of them."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import httpx

from memory import EmpathyOS
from tests.live_server import LiveServer

WAITERS = int(__import__("os").environ.get("WAITERS", "200"))
ISSUE = """
from empathy_web.library.credentials import issue
from memory.tiers import AccessTier
for n in range({n}):
    print(issue(f"waiter-{{n}}", AccessTier.OBSERVER, all_teams=True)[1])
"""


def threads(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))


async def test_waiting_agents_hold_no_thread_each_and_wake_together(live):
    secrets = live.manage("shell", "-v", "0", "-c", ISSUE.format(n=WAITERS)).split()
    assert len(secrets) == WAITERS
    limits = httpx.Limits(max_connections=WAITERS + 10)
    async with httpx.AsyncClient(base_url=live.url, timeout=60, limits=limits) as http:

        async def wait(secret: str) -> list:
            answer = await http.post(
                "/api/v1/signals/receive", json={"wait": 30},
                headers={"Authorization": f"Bearer {secret}"},
            )  # fmt: skip
            assert answer.status_code == 200, answer.text
            return answer.json()["items"]

        waiting = [asyncio.create_task(wait(s)) for s in secrets]
        # Every waiter is in: the server has admitted them all (each credential's
        # last use is recorded as it is authenticated).
        deadline = time.monotonic() + 60
        while await asyncio.to_thread(admitted, live) < WAITERS:
            assert time.monotonic() < deadline, "the waiters did not all arrive"
            assert not any(t.done() for t in waiting), "a waiter returned early"
            await asyncio.sleep(0.05)
        held = threads(live.process.pid)

        sent_at = time.monotonic()
        EmpathyOS("announcer", live.memory).send_signal("wake", {"n": 1})
        got = await asyncio.gather(*waiting)
        woke_in = time.monotonic() - sent_at

    print(f"\n{WAITERS} agents waiting: daphne had {held} threads; woken in {woke_in:.3f} s")
    assert held <= 20, f"daphne held {held} threads for {WAITERS} waiting agents"
    assert all([s["signal_type"] for s in items] == ["wake"] for items in got)
    assert woke_in < 25  # woken by the signal, well before their 30 s wait ran out


def admitted(live: LiveServer) -> int:
    """How many waiters the server has authenticated (it records each one's use)."""
    with sqlite3.connect(live.workdir / "db.sqlite3", timeout=10) as db:
        query = (
            "SELECT count(*) FROM library_agentcredential "
            "WHERE agent_id LIKE 'waiter-%' AND last_used_at IS NOT NULL"
        )
        return db.execute(query).fetchone()[0]
