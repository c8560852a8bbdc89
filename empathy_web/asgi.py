"""ASGI entry point (`empathy_web.asgi:application`), which `manage.py serve` runs in uvicorn
or daphne workers."""

from __future__ import annotations

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "empathy_web.settings")

# Build the Django app first: it sets up the app registry before anything imports models.
django_asgi_app = get_asgi_application()

from asgiref.typing import ASGIReceiveCallable, ASGISendCallable, Scope  # noqa: E402
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from empathy_web.api.core import PREFIX as API_PREFIX  # noqa: E402
from empathy_web.api.handler import AgentAPIHandler  # noqa: E402
from empathy_web.api.mcp import PATH as MCP_PATH  # noqa: E402
from empathy_web.api.mcp import mcp_app  # noqa: E402
from empathy_web.dashboard.bridge import ensure_embedded_bridge  # noqa: E402
from empathy_web.dashboard.origin import SameOriginValidator  # noqa: E402
from empathy_web.dashboard.routing import websocket_urlpatterns  # noqa: E402


class Router(ProtocolTypeRouter):
    """Routes by protocol; with ``EMBEDDED_BRIDGE`` (the one-process demo) it also starts
    the bridge, on the first call: the bridge must run in the server's event loop, and
    that loop runs only once the server calls us. The setting is read per call because
    ``manage.py demo`` turns it on at run time."""

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if settings.EMBEDDED_BRIDGE:
            ensure_embedded_bridge()
        await super().__call__(scope, receive, send)


agent_api_app = AgentAPIHandler()


async def http(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
    """``/mcp`` to the MCP server, the agent API to its handler, the rest to Django."""
    path = scope["path"]
    if path == MCP_PATH or path.startswith(MCP_PATH + "/"):
        await mcp_app(scope, receive, send)
    elif path.startswith(API_PREFIX):
        await agent_api_app(scope, receive, send)
    else:
        await django_asgi_app(scope, receive, send)


application = Router(
    {
        "http": http,
        "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

# Everything loaded so far lives as long as the process. Moving it out of the collector's
# reach keeps full collections short: without this, a collection scans every module,
# template and URL pattern, a pause of tens of milliseconds in whichever request
# triggers it.
gc.collect()
gc.freeze()
