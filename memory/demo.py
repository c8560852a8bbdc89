"""``python -m memory.demo``: a simulated team on short-term memory, its events printed.

Uses ``get_redis_memory()``: ``REDIS_URL`` when set, else a local Redis, else the
in-process mock. Stops after ``--seconds`` (default: on Ctrl-C).
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time

from .redis_memory import get_redis_memory
from .simulation import SimulatedTeam


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long")
    parser.add_argument("--pace", type=float, default=0.5, help="pause scale (smaller: busier)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    memory = get_redis_memory()
    print(f"short-term memory: {memory.get_stats()['mode']} ({memory.address})")
    team = SimulatedTeam(memory, pace=args.pace)
    last = memory.latest_event_id()
    team.start()
    deadline = None if args.seconds is None else time.monotonic() + args.seconds
    # Ctrl-C stops the loop between reads (within the 500 ms a read may block), rather
    # than raising in the middle of one: the in-process mock's blocking read does not
    # survive an exception thrown into it.
    stopping = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    try:
        while not stopping.is_set() and (deadline is None or time.monotonic() < deadline):
            for event in memory.read_events(last, block_ms=500):
                last = event.cursor
                ids = " ".join(f"{k}={v}" for k, v in event.ids.items())
                print(f"{event.timestamp:%H:%M:%S} {event.type:<22} {event.actor:<20} {ids}")
    finally:
        team.stop()
    stats = memory.get_stats()
    print(f"tasks: {stats['tasks']}  staged patterns: {stats['staged_patterns']}")


if __name__ == "__main__":
    main()
