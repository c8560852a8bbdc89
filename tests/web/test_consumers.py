"""The live websocket, driven through the whole ASGI application (origin and auth
included), against a real redis-server."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client

from empathy_web.asgi import application
from empathy_web.dashboard import consumers, fragments
from empathy_web.dashboard.bridge import Bridge
from empathy_web.dashboard.consumers import CLOSE_FLOOD, REJOIN_EVERY, SOCKET_POOL
from empathy_web.dashboard.panels import GROUP
from memory import (
    AccessTier,
    AgentCoordinator,
    AgentTask,
    Caller,
    EmpathyOS,
    MemoryConnectionError,
)
from memory.limits import release_slot, take_slot
from tests.web.sockets import HOST, ORIGIN, signal_ids

pytestmark = pytest.mark.django_db(transaction=True)


async def test_anonymous_and_tierless_handshakes_are_refused(memory, connect):
    communicator = WebsocketCommunicator(
        application, "/ws/dashboard/?panels=overview-panel", headers=[ORIGIN, HOST]
    )
    connected, _ = await communicator.connect()
    assert not connected
    communicator, connected, _ = await connect("panels=overview-panel", tier=None)
    assert not connected


@pytest.mark.parametrize(
    "origin",
    [
        (b"origin", b"http://evil.example"),
        None,
        (b"origin", b"http://localhost:1"),  # another port of an allowed host
        (b"origin", b"https://localhost"),  # another scheme
    ],
)
async def test_foreign_or_missing_origins_are_refused(memory, connect, origin):
    communicator, connected, _ = await connect("panels=overview-panel", origin=origin)
    assert not connected


async def test_connect_sends_a_snapshot_of_the_pages_panels(memory, connect):
    AgentCoordinator(memory, "team").add_task(AgentTask("t1", "review", "d", 5))
    communicator, connected, _ = await connect("panels=overview-panel,task-board&team=team")
    assert connected
    html = await communicator.receive_from(timeout=5)
    assert 'id="overview-panel" hx-swap-oob="true"' in html
    assert 'id="task-board" hx-swap-oob="true"' in html
    assert 'id="task-t1"' in html
    await communicator.disconnect()


@pytest.mark.parametrize("cursor", ["%C2%B2", "99999999999999999999999"])
async def test_a_malformed_cursor_is_ignored_not_a_closed_socket(memory, connect, cursor):
    AgentCoordinator(memory, "team").add_task(AgentTask("t1", "review", "d", 5))
    query = f"panels=task-board&team=team&status=pending:review&cursor={cursor}"
    communicator, connected, _ = await connect(query)
    assert connected
    html = await communicator.receive_from(timeout=5)
    assert 'id="task-t1"' in html  # rendered as if the page had no query
    await communicator.disconnect()


@pytest.mark.parametrize(("tier", "buttons"), [("observer", False), ("steward", True)])
async def test_fragments_depend_on_the_viewers_tier(memory, connect, tier, buttons):
    AgentCoordinator(memory, "team").add_task(AgentTask("t1", "review", "d", 5))
    communicator, connected, _ = await connect("panels=task-board&team=team", tier=tier)
    html = await communicator.receive_from(timeout=5)
    assert ("Cancel</button>" in html) is buttons
    assert ('name="csrfmiddlewaretoken"' in html) is buttons
    await communicator.disconnect()


async def test_a_hint_rerenders_the_changed_panels_only(memory, connect):
    communicator, connected, _ = await connect("panels=overview-panel,pattern-queue")
    await communicator.receive_from(timeout=5)  # the snapshot
    coordinator = AgentCoordinator(memory, "team")
    await sync_to_async(coordinator.add_task)(AgentTask("t9", "review", "d", 5))
    await get_channel_layer().group_send(
        GROUP, {"type": "memory.changed", "panels": ["overview-panel", "task-board"]}
    )
    html = await communicator.receive_from(timeout=5)
    assert 'id="overview-panel"' in html and "team" in html
    assert 'id="pattern-queue"' not in html
    await communicator.disconnect()


async def test_the_signal_feed_resumes_after_the_last_signal_shown(memory, connect):
    sender = EmpathyOS("agent", short_term_memory=memory)
    sent = [(await sync_to_async(sender.send_signal)("n", i))["id"] for i in range(5)]
    communicator, connected, _ = await connect("panels=signal-feed")
    assert await communicator.receive_nothing(timeout=0.2)  # the feed waits for resume
    await communicator.send_to(text_data=json.dumps({"resume": sent[1]}))
    html = await communicator.receive_from(timeout=5)
    assert 'hx-swap-oob="afterbegin:#signal-items"' in html
    assert signal_ids(html) == list(reversed(sent[2:]))  # newest on top, once each

    later = (await sync_to_async(sender.send_signal)("n", 5))["id"]
    await get_channel_layer().group_send(
        GROUP, {"type": "memory.changed", "panels": ["signal-feed"]}
    )
    assert signal_ids(await communicator.receive_from(timeout=5)) == [later]
    await get_channel_layer().group_send(
        GROUP, {"type": "memory.changed", "panels": ["signal-feed"]}
    )
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_a_channel_layer_outage_shows_and_then_resends_everything(memory, connect):
    sender = EmpathyOS("agent", short_term_memory=memory)
    before = (await sync_to_async(sender.send_signal)("n", "before"))["id"]
    communicator, _, _ = await connect("panels=overview-panel,signal-feed")
    assert "outage-team" not in await communicator.receive_from(timeout=5)
    await communicator.send_to(text_data=json.dumps({"resume": before}))
    assert await communicator.receive_nothing(timeout=0.2)  # nothing newer to show

    layer = get_channel_layer()
    await layer.group_send(GROUP, {"type": "layer.lost"})
    status = await communicator.receive_from(timeout=5)
    assert 'id="live-status"' in status and 'data-state="unavailable"' in status
    assert "Redis unreachable" in status

    # What changed meanwhile reaches the page once the layer has Redis back, with no hint.
    coordinator = AgentCoordinator(memory, "outage-team")
    await sync_to_async(coordinator.add_task)(AgentTask("t2", "review", "d", 5))
    after = (await sync_to_async(sender.send_signal)("n", "after"))["id"]
    await layer.group_send(GROUP, {"type": "layer.restored"})
    overview, status, feed = [await communicator.receive_from(timeout=5) for _ in range(3)]
    assert 'id="overview-panel"' in overview and "outage-team" in overview
    assert 'data-state="live"' in status and ">live<" in status
    assert signal_ids(feed) == [after]
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_a_membership_redis_forgot_is_noticed_and_everything_resent(
    memory, connect, settings, redis_server
):
    layer_config = {"hosts": [{"address": redis_server.url}], "prefix": "forgot"}
    backend = "empathy_web.dashboard.layers.ResilientRedisChannelLayer"
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": backend, "CONFIG": layer_config}}
    communicator, _, _ = await connect("panels=overview-panel")
    assert "forgotten-team" not in await communicator.receive_from(timeout=5)
    # A restart too quick for any error: the group is gone, and so is every hint sent
    # before the consumer re-joins.
    layer = get_channel_layer()
    await layer.connection(layer.consistent_hash(GROUP)).delete(layer._group_key(GROUP))
    coordinator = AgentCoordinator(memory, "forgotten-team")
    await sync_to_async(coordinator.add_task)(AgentTask("t1", "review", "d", 5))

    overview = await communicator.receive_from(timeout=REJOIN_EVERY + 5)
    assert 'id="overview-panel"' in overview and "forgotten-team" in overview
    await communicator.disconnect()
    await layer.flush()


async def test_a_flooding_client_is_closed_without_affecting_others(memory, connect):
    flooder, _, _ = await connect("panels=overview-panel")
    calm, _, _ = await connect("panels=overview-panel")
    await flooder.receive_from(timeout=5)
    await calm.receive_from(timeout=5)
    for _ in range(50):
        await flooder.send_to(text_data="{}")
    closed = await flooder.receive_output(timeout=5)
    while closed["type"] != "websocket.close":
        closed = await flooder.receive_output(timeout=5)
    assert closed["code"] == CLOSE_FLOOD
    await get_channel_layer().group_send(
        GROUP, {"type": "memory.changed", "panels": ["overview-panel"]}
    )
    assert 'id="overview-panel"' in await calm.receive_from(timeout=5)
    await calm.disconnect()


async def test_the_bridge_turns_agent_activity_into_live_updates(memory, connect):
    stop = asyncio.Event()
    bridge = Bridge(memory, get_channel_layer(), coalesce=0.05, block_ms=100)
    task = asyncio.create_task(bridge.run(stop))
    try:
        communicator, _, _ = await connect("panels=task-board&team=team")
        await communicator.receive_from(timeout=5)
        await asyncio.sleep(0.3)  # the bridge has resolved its starting point
        coordinator = AgentCoordinator(memory, "team")
        await sync_to_async(coordinator.add_task)(AgentTask("live-1", "review", "d", 5))
        html = await communicator.receive_from(timeout=5)
        assert 'id="task-live-1"' in html
        await communicator.disconnect()
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    saved = memory.bridge_cursor()
    assert saved == bridge.last_id  # a restarted bridge resumes here


async def test_a_backlog_longer_than_one_read_arrives_whole(memory, connect):
    sender = EmpathyOS("agent", short_term_memory=memory)
    first = (await sync_to_async(sender.send_signal)("n", -1))["id"]
    for i in range(450):
        await sync_to_async(sender.send_signal)("n", i)
    communicator, _, _ = await connect("panels=signal-feed")
    await communicator.send_to(text_data=json.dumps({"resume": first}))
    received: list[str] = []
    while len(received) < 450:  # in bounded batches, newest first within each
        batch = signal_ids(await communicator.receive_from(timeout=10))
        assert 0 < len(batch) <= fragments.FEED_BATCH
        received += batch
    assert len(set(received)) == 450
    await communicator.disconnect()


async def test_panels_are_rendered_once_per_hint_for_viewers_who_see_the_same(
    memory, session_cookie
):
    AgentCoordinator(memory, "team").add_task(AgentTask("t1", "review", "d", 5))
    viewers = []
    for tier, secret in (("steward", "a" * 32), ("steward", "b" * 32), ("observer", "c" * 32)):
        cookie = await sync_to_async(session_cookie)(tier, secret)
        communicator = WebsocketCommunicator(
            application,
            "/ws/dashboard/?panels=task-board&team=team",
            headers=[(b"cookie", cookie), ORIGIN, HOST],
        )
        assert (await communicator.connect())[0]
        await communicator.receive_from(timeout=5)  # the snapshot
        viewers.append((communicator, secret))
    renders = []
    original = fragments._render_panels

    def counting(*args, **kwargs):
        renders.append(args[2].tier.name)
        return original(*args, **kwargs)

    fragments._render_panels = counting
    try:
        hint = {"type": "memory.changed", "panels": ["task-board"], "hint": "h-panels"}
        await get_channel_layer().group_send(GROUP, hint)
        pages = [await communicator.receive_from(timeout=5) for communicator, _ in viewers]
    finally:
        fragments._render_panels = original
    assert sorted(renders) == ["OBSERVER", "STEWARD"]  # one per tier, not one per viewer
    tokens = [re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', page) for page in pages]
    assert tokens[0] and tokens[1] and not tokens[2]  # only stewards get the buttons
    for (_, secret), page_tokens in zip(viewers[:2], tokens[:2], strict=True):
        # Each steward's buttons carry a token for its own CSRF cookie, none the other's.
        assert {_unmask(token) for token in page_tokens} == {secret}
    assert pages[0].replace(tokens[0][0], "") == pages[1].replace(tokens[1][0], "")
    for communicator, _ in viewers:
        await communicator.disconnect()


def _unmask(token: str) -> str:
    from django.middleware.csrf import _unmask_cipher_token

    return _unmask_cipher_token(token)


async def test_viewers_at_the_same_place_share_one_rendering_per_hint(memory, connect):
    sender = EmpathyOS("agent", short_term_memory=memory)
    start = (await sync_to_async(sender.send_signal)("n", 0))["id"]
    viewers = [(await connect("panels=signal-feed"))[0] for _ in range(3)]
    for viewer in viewers:
        await viewer.send_to(text_data=json.dumps({"resume": start}))
        assert await viewer.receive_nothing(timeout=0.2)
    await sync_to_async(sender.send_signal)("n", 1)
    renders = []
    original = fragments._render_new_signals

    def counting(*args, **kwargs):
        renders.append(args)
        return original(*args, **kwargs)

    fragments._render_new_signals = counting
    try:
        hint = {"type": "memory.changed", "panels": ["signal-feed"], "hint": "h-1"}
        await get_channel_layer().group_send(GROUP, hint)
        pages = [await viewer.receive_from(timeout=5) for viewer in viewers]
    finally:
        fragments._render_new_signals = original
    assert len(renders) == 1
    assert pages[0] == pages[1] == pages[2] and len(signal_ids(pages[0])) == 1
    for viewer in viewers:
        await viewer.disconnect()


async def test_viewers_waiting_for_a_shared_rendering_hold_no_thread(memory, connect):
    """Forty feed viewers wait for one slow rendering: meanwhile another viewer's panel
    still renders, which it could not if each waiter held one of the few worker threads
    (the default pool has min(32, cores + 4))."""
    sender = EmpathyOS("agent", short_term_memory=memory)
    start = (await sync_to_async(sender.send_signal)("n", 0))["id"]
    feeds = [(await connect("panels=signal-feed"))[0] for _ in range(40)]
    for feed in feeds:
        await feed.send_to(text_data=json.dumps({"resume": start}))
    for feed in feeds:
        assert await feed.receive_nothing(timeout=0.05)
    board, connected, _ = await connect("panels=task-board")
    assert connected
    await board.receive_from(timeout=5)  # its snapshot
    await sync_to_async(sender.send_signal)("n", 1)
    started, release = threading.Event(), threading.Event()
    original = fragments._render_new_signals

    def slow(*args, **kwargs):
        started.set()
        assert release.wait(30)
        return original(*args, **kwargs)

    fragments._render_new_signals = slow
    try:
        hint = {"type": "memory.changed", "panels": ["signal-feed", "task-board"], "hint": "h-slow"}
        await get_channel_layer().group_send(GROUP, hint)
        assert await asyncio.to_thread(started.wait, 10)
        await board.receive_from(timeout=10)  # rendered while the feed's rendering waits
        release.set()
        pages = [await feed.receive_from(timeout=10) for feed in feeds]
    finally:
        release.set()
        fragments._render_new_signals = original
    assert all(len(signal_ids(page)) == 1 for page in pages)
    for communicator in [*feeds, board]:
        await communicator.disconnect()


def _set_groups(user: User, *names: str) -> None:
    from django.contrib.auth.models import Group

    user.groups.set([Group.objects.get_or_create(name=name)[0] for name in names])


def _deactivate(user: User) -> None:
    user.is_active = False
    user.save()


def _log_out(client: Client) -> None:
    client.post("/accounts/logout/")


async def _steward_socket(client_for, make_user, memory) -> tuple[User, Client, Any]:
    """Sam, a steward, with the task board of a team that has a dead-lettered task open."""
    reviewers = AgentCoordinator(memory, "reviewers")
    await sync_to_async(reviewers.add_task)(AgentTask("flaky", "review"))
    user = await sync_to_async(make_user)("steward", "sam")
    client = await sync_to_async(client_for)(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}; csrftoken={'x' * 32}".encode()
    communicator = WebsocketCommunicator(
        application, "/ws/dashboard/?panels=task-board", headers=[(b"cookie", cookie), ORIGIN, HOST]
    )
    connected, _ = await communicator.connect()
    assert connected
    assert "flaky" in await communicator.receive_from(timeout=5)  # the snapshot
    return user, client, communicator


@pytest.mark.parametrize("change", ["deactivated", "logged out"])
async def test_an_open_socket_closes_when_its_user_may_no_longer_see_the_dashboard(
    memory, client_for, make_user, change
):
    user, client, communicator = await _steward_socket(client_for, make_user, memory)
    act = {"deactivated": lambda: _deactivate(user), "logged out": lambda: _log_out(client)}
    await sync_to_async(act[change])()
    closed = await communicator.receive_output(timeout=5)  # at once, not at the next check
    assert closed == {"type": "websocket.close", "code": 4403}


async def test_an_open_socket_shows_what_a_demoted_user_still_sees(memory, client_for, make_user):
    user, _, communicator = await _steward_socket(client_for, make_user, memory)
    await sync_to_async(_set_groups)(user, "observer")  # and a member of no team
    shown = await communicator.receive_from(timeout=5)  # at once, not at the next check
    assert 'id="task-board"' in shown and "flaky" not in shown and "reviewers" not in shown
    await communicator.disconnect()


async def test_resumes_are_served_once_per_interval_and_in_one_bounded_batch(
    memory, connect, monkeypatch
):
    sender = EmpathyOS("agent", short_term_memory=memory)
    for i in range(fragments.FEED_BATCH + 50):
        await sync_to_async(sender.send_signal)("n", i)
    renders = []
    original = fragments._render_new_signals

    def counting(*args, **kwargs):
        renders.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(fragments, "_render_new_signals", counting)
    communicator, _, _ = await connect("panels=signal-feed")
    for _ in range(10):  # under the flood limit, all at once
        await communicator.send_to(text_data=json.dumps({"resume": ""}))
    newest = signal_ids(await communicator.receive_from(timeout=5))
    assert len(newest) == fragments.FEED_BATCH  # the newest batch, not the whole window
    assert await communicator.receive_nothing(timeout=0.3)
    assert len(renders) == 1  # the other nine resumes cost nothing
    await communicator.disconnect()


async def test_a_user_has_a_cap_on_open_sockets(memory, client_for, make_user, settings):
    settings.DASHBOARD_SOCKETS_PER_USER = 2
    user = await sync_to_async(make_user)("observer", "olga")
    client = await sync_to_async(client_for)(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}; csrftoken={'x' * 32}".encode()

    def socket() -> WebsocketCommunicator:
        headers = [(b"cookie", cookie), ORIGIN, HOST]
        return WebsocketCommunicator(application, "/ws/dashboard/?panels=overview-panel", headers)

    first, second, third = socket(), socket(), socket()
    assert (await first.connect())[0] and (await second.connect())[0]
    assert await third.connect() == (False, 4429)
    await first.disconnect()  # a closed one makes room
    fourth = socket()
    assert (await fourth.connect())[0]
    await second.disconnect()
    await fourth.disconnect()


def user_socket(client: Client, path: str = "/ws/dashboard/?panels=overview-panel"):
    cookie = f"sessionid={client.cookies['sessionid'].value}; csrftoken={'x' * 32}".encode()
    return WebsocketCommunicator(application, path, [(b"cookie", cookie), ORIGIN, HOST])


async def test_the_socket_cap_counts_every_web_process(memory, client_for, make_user, settings):
    settings.DASHBOARD_SOCKETS_PER_USER = 2
    user = await sync_to_async(make_user)("observer", "olga")
    client = await sync_to_async(client_for)(user)
    # Another web process holds one of olga's dashboards: its slot is in Redis.
    other = Caller("olga", AccessTier.OBSERVER)
    assert await sync_to_async(take_slot)(memory, other, SOCKET_POOL, "elsewhere!1", 2, 90)

    here = user_socket(client)
    assert (await here.connect())[0]
    assert await user_socket(client).connect() == (False, 4429)
    await sync_to_async(release_slot)(memory, other, SOCKET_POOL, "elsewhere!1")
    again = user_socket(client)
    assert (await again.connect())[0]
    await here.disconnect()
    await again.disconnect()
    # Closed sockets give their slots back.
    slots = memory.keys.slots("olga", SOCKET_POOL)
    assert await sync_to_async(memory.client.zcard)(slots) == 0


async def test_a_socket_opens_while_redis_cannot_count_it(memory, client_for, monkeypatch):
    client = await sync_to_async(client_for)("observer")

    def down(*args, **kwargs):
        raise MemoryConnectionError("Redis at 127.0.0.1:1 is unreachable")

    monkeypatch.setattr(consumers, "take_slot", down)
    socket = user_socket(client)
    assert (await socket.connect())[0]
    await socket.disconnect()


FRAME_LIMIT = 1024 * 1024  # the server's largest websocket frame


@pytest.mark.slow
async def test_no_frame_grows_past_the_limit_with_huge_or_many_records(memory, connect, steward):
    from memory import StagedPattern

    big = "<" * 1_000_000
    agent = EmpathyOS("agent", short_term_memory=memory)
    await sync_to_async(agent.send_signal)("huge", {"text": big})
    for n in range(10):
        pattern = StagedPattern(f"p{n}", "agent", "kind", "name", "d", code=big, confidence=0.5)
        await sync_to_async(agent.stage_pattern)(pattern)
    for n in range(5000):
        await sync_to_async(agent.send_signal)("n", n)
    communicator, connected, _ = await connect(
        "panels=overview-panel,pattern-queue,signal-feed", tier="steward"
    )
    assert connected
    await communicator.send_to(text_data=json.dumps({"resume": ""}))
    frames = []
    while not await communicator.receive_nothing(timeout=1):
        frames.append(await communicator.receive_from(timeout=5))
    assert frames and max(len(frame.encode()) for frame in frames) < FRAME_LIMIT
    assert any('id="pattern-queue"' in frame for frame in frames)
    assert any("signal-items" in frame for frame in frames)
    await communicator.disconnect()
    for path in ("/signals/", "/patterns/"):
        page = await sync_to_async(steward.get)(path)
        assert page.status_code == 200 and len(page.content) < FRAME_LIMIT
