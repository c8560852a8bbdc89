"""``manage.py run_bridge``: carry agents' events to every open dashboard."""

from __future__ import annotations

import asyncio
import gc
import signal
from typing import Any

from channels.layers import get_channel_layer
from django.core.management.base import BaseCommand, CommandError

from empathy_web.dashboard.agents_memory import UNAVAILABLE, get_memory
from empathy_web.dashboard.bridge import FEED_WINDOW, PANEL_WINDOW, Bridge
from memory import RedisShortTermMemory, leadership

RETRY_FIRST = 0.25  # seconds before the first retry to reach Redis at startup
RETRY_AT_MOST = 5.0


class Command(BaseCommand):
    help = (
        "Tail the short-term memory's event stream and notify dashboards (stops on "
        "SIGTERM). Several may run: one leads, the others stand by to take over."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--coalesce",
            type=float,
            default=PANEL_WINDOW,
            help="least seconds between panel updates",
        )
        parser.add_argument(
            "--feed-coalesce",
            type=float,
            default=FEED_WINDOW,
            help="the same for the signal feed",
        )
        parser.add_argument(
            "--check", action="store_true",
            help="say which bridge leads, and exit 1 if none does (start nothing)",
        )  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        if options["check"]:
            self._check()
            return
        asyncio.run(self._run(options["coalesce"], options["feed_coalesce"]))
        self.stdout.write("Bridge stopped.")

    def _check(self) -> None:
        try:
            leader = leadership.leader(get_memory())
        except UNAVAILABLE as exc:
            raise CommandError(str(exc)) from None
        if leader is None:
            raise CommandError("No bridge leads: dashboards get no live updates.")
        self.stdout.write(
            f"Bridge {leader.holder} leads (token {leader.token}; its lease has "
            f"{leader.ttl_ms} ms left)."
        )

    async def _run(self, coalesce: float, feed_coalesce: float) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        memory = await self._memory(stop)
        if memory is None:  # stopped before Redis answered
            return
        self.stdout.write(f"Bridge running on {memory.address}.")
        bridge = Bridge(memory, get_channel_layer(), coalesce=coalesce, feed_coalesce=feed_coalesce)
        gc.collect()
        gc.freeze()  # as the ASGI entry point does: keep full collections short
        await bridge.run(stop)

    async def _memory(self, stop: asyncio.Event) -> RedisShortTermMemory | None:
        """The memory once Redis answers, or None if stopped first: a bridge started
        before Redis (or while it is down) says so once and waits, trying again at
        growing intervals (at most ``RETRY_AT_MOST`` seconds apart)."""
        delay = RETRY_FIRST
        while True:
            try:
                return await asyncio.to_thread(get_memory)
            except UNAVAILABLE as exc:
                if delay == RETRY_FIRST:
                    self.stderr.write(f"Bridge waiting for Redis: {exc}")
            try:
                await asyncio.wait_for(stop.wait(), delay)
                return None
            except TimeoutError:
                delay = min(2 * delay, RETRY_AT_MOST)
