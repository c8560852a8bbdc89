"""The dashboard's websocket: a snapshot of the page's panels on connect, then fresh
fragments whenever the bridge says the agents changed something.

Delivery: pushes are hints. Whatever a hint says, the consumer re-reads Redis, so a lost
or merged hint costs freshness, not correctness; the bridge also sends a periodic
refresh. The signal feed is the exception that must not skip or repeat: the browser
tells us the last signal it shows, and we send exactly the signals after it, in order.

Redis outages: the socket stays open. While Redis is unreachable the page keeps what it
shows and its status says so; when Redis answers again the consumer re-joins its group
(a restart without persistence forgets memberships) and re-sends everything the page
shows, so it converges on the new truth without a reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any
from urllib.parse import parse_qsl

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.http import Http404
from django.template.loader import render_to_string

from empathy_web.accounts.live import access_group, viewer_now
from empathy_web.accounts.teams import viewer_of
from memory import InvalidValue
from memory.limits import release_slot, take_slot

from .agents_memory import UNAVAILABLE, get_memory
from .fragments import (
    feed_view,
    masked_csrf_token,
    new_signals_for_hint,
    panels_for_hint,
    panels_view,
    rendering,
)
from .layers import LOST
from .panels import PANELS
from .prometheus import OPEN_WEBSOCKETS
from .relay import HINT, REJOIN_EVERY, RETRY_JOIN_EVERY, relay_for

logger = logging.getLogger("empathy_web.live")

# A client may send a few messages a second (resume, pings); a flood closes it alone.
MAX_MESSAGES = 20
PER_SECONDS = 1.0
# While a consumer knows Redis is out, it tries to join again this often (REJOIN_EVERY,
# RETRY_JOIN_EVERY: relay.py, which keeps the process in the bridge's group).
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_TOO_MANY = 4429
# Each open dashboard holds a slot among its user's, counted in Redis across every web
# process (at most DASHBOARD_SOCKETS_PER_USER), renewed at each access check; a process
# that dies without closing its sockets frees their slots when SLOT_SECONDS pass.
SOCKET_POOL = "dashboards"
# How often an open dashboard checks its user's access even without an announcement
# (one may be lost while the layer's Redis is down).
ACCESS_CHECK_EVERY = 30.0
SLOT_SECONDS = 3 * ACCESS_CHECK_EVERY
# A page resumes its feed when it connects; one resume per this many seconds is served.
RESUME_EVERY = 5.0
MAX_RESUME_ID = 100
CLOSE_FLOOD = 4429


class DashboardConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        viewer = await database_sync_to_async(viewer_of)(user) if user is not None else None
        if viewer is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.viewer = viewer
        if await self._hold_slot() is False:
            await self.close(code=CLOSE_TOO_MANY)
            return
        params = dict(parse_qsl(self.scope.get("query_string", b"").decode()))
        wanted = params.pop("panels", "").split(",")
        self.panels = [name for name in wanted if name in PANELS]
        self.shown = frozenset(self.panels)
        self.params = params
        # Who opened it, to check again when their access changes (accounts/live.py).
        self.user_pk = user.pk
        self.session_key = getattr(self.scope.get("session"), "session_key", None)
        self.access_group = access_group(user.pk)
        self.access_checked = time.monotonic()
        self.csrf_token = masked_csrf_token(self.scope.get("cookies", {}).get("csrftoken", ""))
        self.feed = "signal-feed" in self.panels
        self.last_signal: str | None = None
        self.resumed = False
        self.recent: list[float] = []
        self.last_resume = -RESUME_EVERY
        self.joined = False
        self.unavailable = False  # the page's status says Redis is unreachable
        # What the relay handed over and this consumer has not handled yet: the panels
        # its hints named, merged, the newest hint, and the layer's newest state.
        self.hinted: set[str] = set()
        self.hint: str | None = None
        self.layer_state: dict[str, Any] | None = None
        self.woken = asyncio.Event()
        self.idle = False  # waiting to be woken
        self.preparing = 0  # shared renderings to wait for before waking
        self.sending = asyncio.Lock()  # one page update at a time, in order
        self.relay = relay_for(self.channel_layer)
        await self.accept()
        OPEN_WEBSOCKETS.inc()
        self.follower = asyncio.create_task(self._follow_relay())
        await self.resync()
        self.rejoin = asyncio.create_task(self._rejoin_forever())

    async def _hold_slot(self) -> bool | None:
        """Take (or renew) this socket's slot among its user's open dashboards: False
        when they hold them all, None when Redis did not answer (the socket stays open,
        and tries again at its next access check)."""
        try:
            return await sync_to_async(take_slot, thread_sensitive=False)(
                get_memory(),
                self.viewer,
                SOCKET_POOL,
                self.channel_name,
                settings.DASHBOARD_SOCKETS_PER_USER,
                SLOT_SECONDS,
            )
        except UNAVAILABLE:
            logger.info("dashboard: Redis did not answer; the socket's slot waits")
            return None

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "viewer"):
            with contextlib.suppress(*UNAVAILABLE):  # else it frees itself in time
                await sync_to_async(release_slot, thread_sensitive=False)(
                    get_memory(), self.viewer, SOCKET_POOL, self.channel_name
                )
        if hasattr(self, "follower"):
            OPEN_WEBSOCKETS.dec()
            self.relay.leave(self)
            self.follower.cancel()
        if hasattr(self, "rejoin"):
            self.rejoin.cancel()
            with contextlib.suppress(Exception):  # Redis may be the reason we are leaving
                await self.channel_layer.group_discard(self.access_group, self.channel_name)

    async def access_changed(self, event: dict[str, Any] | None = None) -> bool:
        """The user logged out, was deactivated or deleted, changed tier or teams, or
        it is time to look again: close unless the socket may stay open; when what they
        may see changed, show the page as they now see it. Returns whether it stays
        open."""
        self.access_checked = time.monotonic()
        viewer = await database_sync_to_async(viewer_now)(self.user_pk, self.session_key)
        if viewer is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return False
        if viewer != self.viewer:
            self.viewer = viewer
            await self.resync()
        return True

    async def _rejoin_forever(self) -> None:
        while True:
            await asyncio.sleep(REJOIN_EVERY if self.joined else RETRY_JOIN_EVERY)
            if time.monotonic() - self.access_checked >= ACCESS_CHECK_EVERY:
                if not await self.access_changed():  # in case the announcement was missed
                    return
                if await self._hold_slot() is False:
                    await self.close(code=CLOSE_TOO_MANY)  # others took it while it lapsed
                    return
            if not self.joined:
                # While Redis is out, wait on the layer's one ping loop rather than have
                # every dashboard in the process retry its own connection.
                until_reachable = getattr(self.channel_layer, "until_reachable", None)
                if until_reachable is not None:
                    await until_reachable(self.channel_name)
                await self.resync()

    def deliver(self, message: dict[str, Any]) -> None:
        """A message from the process's relay. Hints merge with those not yet handled,
        so a page that falls behind renders the newest state once, not every one.

        A page with nothing under way first starts (or joins) the shared renderings that
        the hint asks of it, and wakes when they are done: its update then finds them
        ready. (Were it to wake first and wait for them, then wake again, the waiting of
        hundreds of pages on one view would cost more than the view's rendering.)"""
        if message["type"] == HINT:
            named = self.shown.intersection(message.get("panels", ()))
            if not named:
                return  # about panels this page does not show
            self.hinted |= named
            self.hint = message.get("hint")
        else:
            self.layer_state = message
        if self.preparing:
            return  # it wakes when they are done, and handles this message then too
        if self.idle and self.layer_state is None and self.hint is not None:
            pending = [shared for shared in self._renderings() if not shared.done()]
            if pending:
                self.preparing = len(pending)
                for shared in pending:
                    shared.add_done_callback(self._prepared)
                return
        self.woken.set()

    def _renderings(self) -> list[asyncio.Future[Any]]:
        """The shared renderings that the panels hinted so far ask of this page (those
        ``memory_changed`` then finds ready)."""
        assert self.hint is not None
        views = []
        panels, feed = self._to_update(self.hinted)
        if panels:
            views.append(panels_view(panels, self.params, self.viewer))
        if feed:
            views.append(feed_view(self.viewer, self.last_signal, self.params))
        return [rendering(self.hint, key, render) for key, render in views]

    def _prepared(self, shared: asyncio.Future[Any]) -> None:
        self.preparing -= 1
        if not self.preparing:
            self.woken.set()

    async def _follow_relay(self) -> None:
        try:
            while True:
                self.idle = True
                await self.woken.wait()
                self.idle = False
                self.woken.clear()
                state, self.layer_state = self.layer_state, None
                if state is not None and state["type"] == LOST:
                    await self.send_status(unavailable=True)  # the page keeps what it shows
                elif state is not None:  # back: re-send it all, shared as one hint
                    await self.resync(state.get("hint"))
                if self.hinted:
                    panels, self.hinted = sorted(self.hinted), set()
                    await self.memory_changed({"panels": panels, "hint": self.hint})
        except Exception:
            # As an error in a handler does: the page reconnects and starts afresh.
            logger.exception("dashboard: a live update failed; closing the socket")
            await self.close(code=1011)

    async def resync(self, hint: str | None = None) -> None:
        """Join the groups and send everything the page shows, or say Redis is out.
        Pages resending for the same ``hint`` share their renderings."""
        try:
            await self.channel_layer.group_add(self.access_group, self.channel_name)
            await self.relay.join(self)
        except UNAVAILABLE:
            self.joined = False
            await self.send_status(unavailable=True)
            return
        sent = await self.send_panels([n for n in self.panels if n != "signal-feed"], hint)
        if sent and self.feed and self.resumed:
            sent = await self.send_new_signals(hint)
        self.joined = sent  # if Redis went away meanwhile, try it all again soon

    async def layer_lost(self, event: dict[str, Any]) -> None:
        """This socket's channel lost Redis: say so (the relay also tells, and then
        tells when to re-send everything)."""
        await self.send_status(unavailable=True)

    async def layer_restored(self, event: dict[str, Any]) -> None:
        """This socket's channel has Redis back: nothing to do here; the process's relay
        re-joins the group and tells every page of the process to re-send, once."""

    async def send_status(self, *, unavailable: bool) -> None:
        """Tell the page whether Redis is reachable, when that changes."""
        if unavailable == self.unavailable:
            return
        self.unavailable = unavailable
        state, text = (
            ("unavailable", "Redis unreachable, retrying…") if unavailable else ("live", "live")
        )
        await self.send(
            text_data=render_to_string(
                "dashboard/live_status.html", {"state": state, "text": text, "oob": True}
            )
        )

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        now = time.monotonic()
        self.recent = [t for t in self.recent if now - t < PER_SECONDS] + [now]
        if len(self.recent) > MAX_MESSAGES:
            await self.close(code=CLOSE_FLOOD)
            return
        try:
            message = json.loads(text_data or "")
        except json.JSONDecodeError:
            return
        if isinstance(message, dict) and message.get("resume") is not None and self.feed:
            # A page resumes once, when it (re)connects: more often is ignored, so that
            # resumes cannot make the server re-read the feed again and again.
            if now - self.last_resume < RESUME_EVERY:
                return
            self.last_resume = now
            # The id of the newest signal the page shows ("" when it shows none).
            self.last_signal = str(message["resume"])[:MAX_RESUME_ID] or None
            self.resumed = True
            await self.send_new_signals(hint=None)

    async def memory_changed(self, event: dict[str, Any]) -> None:
        """A hint from the bridge, through the relay: these panels may have changed."""
        panels, feed = self._to_update(set(event.get("panels", ())))
        await self.send_panels(panels, event.get("hint"))
        if feed:
            await self.send_new_signals(hint=event.get("hint"))

    def _to_update(self, changed: set[str]) -> tuple[list[str], bool]:
        """What a hint about ``changed`` panels re-sends: the page's panels among them
        (but the feed), and whether the feed's new signals."""
        panels = [n for n in self.panels if n in changed and n != "signal-feed"]
        return panels, self.feed and self.resumed and "signal-feed" in changed

    async def send_panels(self, names: list[str], hint: str | None = None) -> bool:
        """Send fresh renderings of ``names``; False when Redis could not be read."""
        if not names:
            return True
        async with self.sending:
            return await self._send_panels(names, hint)

    async def _send_panels(self, names: list[str], hint: str | None) -> bool:
        render = panels_for_hint
        try:
            try:
                html = await render(names, self.params, self.viewer, self.csrf_token, hint)
            except InvalidValue:
                # The page's query has a parameter the library refuses (the page itself
                # answered 400): ignore the query rather than close the socket.
                self.params = {}
                html = await render(names, self.params, self.viewer, self.csrf_token, hint)
        except UNAVAILABLE:
            await self.send_status(unavailable=True)  # the page keeps what it shows
            return False
        except Http404:  # what the page shows is gone, or no longer theirs to see
            await self.close(code=CLOSE_NOT_FOUND)
            return False
        await self.send(text_data=html)
        if self.unavailable:
            await self.send_status(unavailable=False)
        return True

    async def send_new_signals(self, hint: str | None) -> bool:
        """Send what the feed has not shown, one bounded batch per message, until it is
        caught up; False when Redis could not be read."""
        async with self.sending:  # each batch starts where the one before it ended
            return await self._send_new_signals(hint)

    async def _send_new_signals(self, hint: str | None) -> bool:
        render = new_signals_for_hint
        more = True
        while more:
            try:
                try:
                    html, self.last_signal, more = await render(
                        self.viewer, self.last_signal, self.params, hint
                    )
                except InvalidValue:  # a refused filter or resume id: ignore them
                    self.params, self.last_signal = {}, None
                    html, self.last_signal, more = await render(
                        self.viewer, self.last_signal, self.params, hint
                    )
            except UNAVAILABLE:
                await self.send_status(unavailable=True)
                return False
            if html:
                await self.send(text_data=html)
            hint = None  # a next batch is this socket's own
        await self.send_status(unavailable=False)
        return True
