"""The dashboard's websocket as the tests open it: a logged-in user's cookies, the
page's origin, and the signal ids a feed fragment carries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client

from empathy_web.asgi import application

ORIGIN = (b"origin", b"http://localhost")
HOST = (b"host", b"localhost")  # what a browser sends with the page's origin


@pytest.fixture
def session_cookie(client_for: Callable[..., Client]) -> Callable[..., bytes]:
    """``session_cookie(tier, csrf_secret)``: the cookies of a new user of ``tier`` (None:
    in no group); each call is another user."""

    def session_cookie(tier: str | None, csrf_secret: str = "x" * 32) -> bytes:
        client = client_for(tier, username=f"user-{tier}-{User.objects.count()}")
        return f"sessionid={client.cookies['sessionid'].value}; csrftoken={csrf_secret}".encode()

    return session_cookie


@pytest.fixture
def connect(session_cookie: Callable[..., bytes]) -> Callable[..., Any]:
    """``await connect(query, tier, origin)``: the dashboard's websocket, opened by a new
    user of ``tier``; returns the communicator, whether it connected, and the close code."""

    async def connect(query: str, tier: str | None = "observer", origin=ORIGIN):
        cookie = await sync_to_async(session_cookie)(tier)
        headers = [(b"cookie", cookie), HOST] + ([origin] if origin else [])
        communicator = WebsocketCommunicator(
            application, f"/ws/dashboard/?{query}", headers=headers
        )
        connected, code = await communicator.connect()
        return communicator, connected, code

    return connect


def signal_ids(html: str) -> list[str]:
    """The ids of the signals in a feed fragment, in the order it shows them."""
    return [part.split('"')[0] for part in html.split('data-signal-id="')[1:]]
