"""Websockets are accepted only from this site's own pages."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import validate_host

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
PAGE_SCHEME = {"ws": "http", "wss": "https"}


def _origin(scheme: str, netloc: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of ``scheme://netloc``, or None when it is malformed."""
    try:
        parts = urlsplit(f"{scheme}://{netloc}")
        port = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    return scheme, parts.hostname, port


def same_origin(scope: dict[str, Any]) -> bool:
    """The Origin's scheme, host and port are those of the Host the socket was opened on
    (a ws:// socket from an http:// page, wss:// from https://), or one of
    ``CSRF_TRUSTED_ORIGINS``; and its host is one of ``ALLOWED_HOSTS``."""
    headers = dict(scope.get("headers", []))
    try:
        origin_text = headers[b"origin"].decode("latin1")
        host = headers[b"host"].decode("latin1")
    except KeyError:
        return False
    parts = urlsplit(origin_text)
    origin = _origin(parts.scheme, parts.netloc)
    if origin is None or not validate_host(origin[1], settings.ALLOWED_HOSTS):
        return False
    if origin_text in settings.CSRF_TRUSTED_ORIGINS:
        return True
    return origin == _origin(PAGE_SCHEME.get(scope.get("scheme", "ws"), "http"), host)


class SameOriginValidator:
    """Refuse a websocket whose page is not this site's (see ``same_origin``)."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if same_origin(scope):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)
