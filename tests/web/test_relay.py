"""The relay: one member of the bridge's group per web process, however many dashboards
it serves, and a dashboard that falls behind renders the newest state once."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from empathy_web.dashboard import consumers, fragments
from empathy_web.dashboard.panels import GROUP
from empathy_web.dashboard.relay import REJOIN_EVERY
from memory import AgentCoordinator, AgentTask, EmpathyOS
from tests.redis_server import start_redis_server
from tests.web.sockets import signal_ids

pytestmark = pytest.mark.django_db(transaction=True)
BACKEND = "empathy_web.dashboard.layers.ResilientRedisChannelLayer"


@pytest.fixture
def redis_layer(settings, redis_server):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": BACKEND,
            "CONFIG": {"hosts": [{"address": redis_server.url}], "prefix": "relay"},
        }
    }


async def _members(layer) -> list[bytes]:
    connection = layer.connection(layer.consistent_hash(GROUP))
    return await connection.zrange(layer._group_key(GROUP), 0, -1)


async def test_a_process_is_one_member_of_the_group_however_many_pages_it_serves(
    memory, connect, redis_layer
):
    AgentCoordinator(memory, "team").add_task(AgentTask("t1", "review", "d", 5))
    pages = [(await connect("panels=overview-panel"))[0] for _ in range(5)]
    for page in pages:
        await page.receive_from(timeout=5)  # the snapshot
    layer = get_channel_layer()
    assert len(await _members(layer)) == 1

    await sync_to_async(AgentCoordinator(memory, "later").add_task)(AgentTask("t2", "r", "d", 5))
    await layer.group_send(GROUP, {"type": "memory.changed", "panels": ["overview-panel"]})
    for page in pages:
        assert "later" in await page.receive_from(timeout=5)
    for page in pages:
        await page.disconnect()
    # The last page out ends the membership.
    for _ in range(100):
        if not await _members(layer):
            break
        await asyncio.sleep(0.05)
    assert await _members(layer) == []
    await layer.flush()


async def test_a_page_that_falls_behind_renders_the_newest_state_once(memory, connect):
    """While the rendering for one hint is under way, three more hints arrive: the page
    then renders once more, for the newest hint and every panel the four named, and
    sends that newest state once (not four times, nor the first hint's older state)."""
    board, _, _ = await connect("panels=task-board,overview-panel&team=team")
    await board.receive_from(timeout=5)  # the snapshot
    started, release = threading.Event(), threading.Event()
    renders: list[tuple[str, ...]] = []
    original = fragments._render_panels

    def slow(names, *args, **kwargs):
        renders.append(tuple(names))
        if len(renders) == 1:
            started.set()
            assert release.wait(30)
        return original(names, *args, **kwargs)

    fragments._render_panels = slow
    layer = get_channel_layer()
    try:
        await layer.group_send(
            GROUP, {"type": "memory.changed", "panels": ["task-board"], "hint": "h1"}
        )
        assert await asyncio.to_thread(started.wait, 10)
        for n, panel in ((2, "task-board"), (3, "overview-panel"), (4, "task-board")):
            hint = {"type": "memory.changed", "panels": [panel], "hint": f"h{n}"}
            await layer.group_send(GROUP, hint)
        await asyncio.sleep(0.2)  # the relay has handed them over
        release.set()
        update = await board.receive_from(timeout=5)
        assert await board.receive_nothing(timeout=0.3)
    finally:
        release.set()
        fragments._render_panels = original
    assert renders == [("task-board",), ("task-board", "overview-panel")]
    assert 'id="task-board"' in update and 'id="overview-panel"' in update
    await board.disconnect()


async def test_pages_wake_once_their_shared_rendering_is_done(memory, connect, monkeypatch):
    """Idle pages that show the same view start (or join) its one rendering when the hint
    arrives, and wake when it is done: none waits for it in the event loop."""
    pages = [(await connect("panels=overview-panel"))[0] for _ in range(5)]
    for page in pages:
        await page.receive_from(timeout=5)  # the snapshot
    started, release = threading.Event(), threading.Event()
    original = fragments._render_panels
    renders, woken = [], []

    def slow(*args, **kwargs):
        renders.append(args[0])
        started.set()
        assert release.wait(30)
        return original(*args, **kwargs)

    async def counting(names, params, viewer, csrf_token, hint):
        woken.append(
            fragments.rendering(hint, *fragments.panels_view(names, params, viewer)).done()
        )
        return await fragments.panels_for_hint(names, params, viewer, csrf_token, hint)

    monkeypatch.setattr(fragments, "_render_panels", slow)
    monkeypatch.setattr(consumers, "panels_for_hint", counting)
    try:
        hint = {"type": "memory.changed", "panels": ["overview-panel"], "hint": "h-wake"}
        await get_channel_layer().group_send(GROUP, hint)
        assert await asyncio.to_thread(started.wait, 10)
        await asyncio.sleep(0.2)
        assert woken == []  # the rendering is under way: every page still sleeps
    finally:
        release.set()
    for page in pages:
        assert 'id="overview-panel"' in await page.receive_from(timeout=5)
    assert len(renders) == 1
    assert woken == [True] * len(pages)
    for page in pages:
        await page.disconnect()


async def test_a_hint_during_a_resume_neither_repeats_nor_skips_a_signal(memory, connect):
    """A page's resume and a hint for the same signals meet: the feed sends each once,
    whichever starts first."""
    sender = EmpathyOS("agent", short_term_memory=memory)
    sent = [(await sync_to_async(sender.send_signal)("n", i))["id"] for i in range(4)]
    feed, _, _ = await connect("panels=signal-feed")
    started, release = threading.Event(), threading.Event()
    original = fragments._render_new_signals

    def slow(*args, **kwargs):
        if not started.is_set():
            started.set()
            assert release.wait(30)
        return original(*args, **kwargs)

    fragments._render_new_signals = slow
    try:
        await feed.send_to(text_data=json.dumps({"resume": sent[0]}))
        assert await asyncio.to_thread(started.wait, 10)
        later = (await sync_to_async(sender.send_signal)("n", 4))["id"]
        hint = {"type": "memory.changed", "panels": ["signal-feed"], "hint": "h-resume"}
        await get_channel_layer().group_send(GROUP, hint)
        await asyncio.sleep(0.2)  # the hint is being handled too
        release.set()
        shown: list[str] = []
        while len(shown) < 4:
            shown += signal_ids(await feed.receive_from(timeout=5))
        assert await feed.receive_nothing(timeout=0.3)
    finally:
        release.set()
        fragments._render_new_signals = original
    assert sorted(shown) == sorted([*sent[1:], later])
    await feed.disconnect()


async def test_after_an_outage_each_page_resends_once_from_one_shared_rendering(
    memory, connect, settings
):
    """The channel layer's Redis stops and comes back (without persistence): every
    channel of the process sees the outage, but the relay alone decides when to re-send,
    so each page gets its panels once, and pages that show the same share a rendering."""
    layer_redis = start_redis_server([])
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": BACKEND,
            "CONFIG": {"hosts": [{"address": layer_redis.url}], "prefix": "outage"},
        }
    }
    pages = [(await connect("panels=overview-panel"))[0] for _ in range(3)]
    for page in pages:
        await page.receive_from(timeout=5)  # the snapshot
    renders: list[object] = []
    original = fragments._render_panels

    def counting(*args, **kwargs):
        renders.append(args[0])
        return original(*args, **kwargs)

    port = layer_redis.port
    layer_redis.stop()
    for page in pages:
        assert 'data-state="unavailable"' in await page.receive_from(timeout=10)
    fragments._render_panels = counting
    restarted = start_redis_server([], port=port)
    try:
        for page in pages:
            assert 'id="overview-panel"' in await page.receive_from(timeout=10)
            assert 'data-state="live"' in await page.receive_from(timeout=5)
        for page in pages:
            extra = (
                []
                if await page.receive_nothing(timeout=REJOIN_EVERY + 0.5)
                else [await page.receive_from()]
            )
            assert not extra, extra[0][:300]
        assert len(renders) == 1
    finally:
        fragments._render_panels = original
        for page in pages:
            await page.disconnect()
        restarted.stop()
