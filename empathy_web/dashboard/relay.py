"""One member of the dashboards' group per web process, handing each hint to that
process's open dashboards in memory.

The bridge sends its hints to the channel-layer group ``GROUP``. If every open dashboard
were a member, each hint would be one message per dashboard through Redis, each popped
and decoded on its own by the dashboard's process: with 1,000 dashboards open that was
most of what a hint cost. Here a process joins the group once, through its relay, and
the relay hands each message to the process's dashboards (``Listener.deliver``).

Memberships live in Redis and vanish if it restarts without persistence, and hints sent
meanwhile reach nobody; so the relay re-joins now and then (joining is idempotent), and
sooner while it knows it is out. The relay, not each dashboard, follows the layer's
state: it passes on ``LOST`` when its channel loses Redis, and when it gets back into
the group after an outage, or finds its membership lost, it tells every dashboard once
to re-send everything (``RESTORED``), with a fresh hint id, so that dashboards showing
the same thing share one rendering of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any, Protocol

from .agents_memory import UNAVAILABLE
from .layers import LOST, RESTORED
from .panels import GROUP

logger = logging.getLogger("empathy_web.live")

HINT = "memory.changed"
REJOIN_EVERY = 2.0
RETRY_JOIN_EVERY = 0.5


class Listener(Protocol):
    def deliver(self, message: dict[str, Any]) -> None:
        """Take ``message`` without waiting (the relay serves every listener in turn)."""


class Relay:
    """The process's member of ``GROUP`` on one channel layer, in one event loop."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.listeners: set[Listener] = set()
        self.channel: str | None = None
        self.joined = False
        self._joining = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []

    async def join(self, listener: Listener) -> None:
        """Hand ``listener`` the group's messages from now on; returns once the process
        is a member. Raises the layer's error if Redis cannot be reached (the listener
        stays registered, and is told ``RESTORED`` when the relay gets in)."""
        self.listeners.add(listener)
        await self._ensure_joined()

    def leave(self, listener: Listener) -> None:
        """Stop handing ``listener`` messages; the last one out ends the membership."""
        self.listeners.discard(listener)
        if self.listeners or not self._tasks:
            return
        for task in self._tasks:
            task.cancel()
        self._tasks, self.joined = [], False
        channel, self.channel = self.channel, None
        asyncio.create_task(self._discard(channel))

    async def _discard(self, channel: str | None) -> None:
        with contextlib.suppress(Exception):  # Redis may be why everyone left
            await self.layer.group_discard(GROUP, channel)

    async def _ensure_joined(self) -> bool:
        """Be in the group; True when this call got it in (it was out)."""
        async with self._joining:  # (one channel and one pair of tasks, whoever asks)
            if not self._tasks:
                self.channel = await self.layer.new_channel()
                self._tasks = [
                    asyncio.create_task(self._receive_forever()),
                    asyncio.create_task(self._rejoin_forever()),
                ]
            if self.joined:
                return False
            await self.layer.group_add(GROUP, self.channel)
            self.joined = True
            return True

    def _tell_everyone(self, message: dict[str, Any]) -> None:
        for listener in list(self.listeners):
            listener.deliver(message)

    def _resend_everything(self) -> None:
        logger.info("dashboard relay: back in the group; pages re-send everything")
        self._tell_everyone({"type": RESTORED, "hint": f"restored-{uuid.uuid4().hex}"})

    async def _receive_forever(self) -> None:
        while True:
            message = await self.layer.receive(self.channel)
            kind = message.get("type")
            if kind == HINT:
                self._tell_everyone(message)
            elif kind == LOST:
                self.joined = False
                self._tell_everyone(message)
            elif kind == RESTORED:
                with contextlib.suppress(*UNAVAILABLE):  # else the rejoin loop gets in
                    if await self._ensure_joined():
                        self._resend_everything()

    async def _rejoin_forever(self) -> None:
        while True:
            await asyncio.sleep(REJOIN_EVERY if self.joined else RETRY_JOIN_EVERY)
            try:
                if self.joined:
                    lost = await self._rejoin()
                else:
                    # While Redis is out, wait on the layer's one ping loop.
                    until_reachable = getattr(self.layer, "until_reachable", None)
                    if until_reachable is not None:
                        await until_reachable(self.channel)
                    lost = await self._ensure_joined()
            except UNAVAILABLE:
                self.joined = False
                continue
            if lost:
                self._resend_everything()

    async def _rejoin(self) -> bool:
        """Join the group again; True when the membership had been lost."""
        rejoin = getattr(self.layer, "rejoin", None)
        if rejoin is None:  # a layer that never loses memberships
            await self.layer.group_add(GROUP, self.channel)
            return False
        return await rejoin(GROUP, self.channel)


# event loop -> id of a channel layer -> its relay
_relays: dict[asyncio.AbstractEventLoop, dict[int, Relay]] = {}


def relay_for(layer: Any) -> Relay:
    """This process's relay on ``layer`` (in the running event loop)."""
    loop = asyncio.get_running_loop()
    for old in [old for old in _relays if old.is_closed()]:
        del _relays[old]
    relays = _relays.setdefault(loop, {})
    relay = relays.get(id(layer))
    if relay is None or relay.layer is not layer:
        relay = relays[id(layer)] = Relay(layer)
    return relay
