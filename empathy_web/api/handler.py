"""The agent API's ASGI handler: Django's, made lean for agents.

- No thread per request. Django gives each request a thread of its own for its
  synchronous parts, kept until the request ends, so a long poll would hold one for its
  whole wait. Here a long poll (an async view) runs in the event loop and holds no
  thread, and any other request runs whole in one hop to a small pool of threads, its
  middleware, view, database and Redis calls together, instead of hopping between the
  loop and a thread for each of them (each hop costs a few hundred microseconds).
- One middleware of its own instead of the site's list. The site's middleware serves
  people (sessions, CSRF, messages, htmx, lockouts); an agent's request needs only the
  host check and the security headers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponse
from django.middleware.security import SecurityMiddleware
from django.urls import Resolver404, resolve, set_urlconf


class _Security:
    """The host check (``ALLOWED_HOSTS``: a bad host is a 400) and the headers and
    HTTPS redirect of Django's ``SecurityMiddleware``."""

    def __init__(self, get_response: Any) -> None:
        self.security = SecurityMiddleware(get_response)

    def before(self, request: HttpRequest) -> HttpResponse | None:
        request.get_host()  # raises DisallowedHost for a host not in ALLOWED_HOSTS
        return self.security.process_request(request)

    def after(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        response.headers.setdefault("Cache-Control", "no-store")
        return self.security.process_response(request, response)


class AsyncAgentMiddleware(_Security):
    def __init__(self, get_response: Any) -> None:
        super().__init__(get_response)
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.before(request) or self.after(request, await self.get_response(request))


class SyncAgentMiddleware(_Security):
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        super().__init__(get_response)
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.before(request) or self.after(request, self.get_response(request))


class AgentAPIHandler(ASGIHandler):
    """See the module docstring."""

    def __init__(self) -> None:
        super().__init__()  # the async chain, for long polls
        self._sync_chain = convert_exception_to_response(
            SyncAgentMiddleware(convert_exception_to_response(self._get_response))
        )
        self._pool = ThreadPoolExecutor(settings.API_THREADS, thread_name_prefix="agent-api")

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        inner = convert_exception_to_response(self._get_response_async)
        self._middleware_chain = convert_exception_to_response(AsyncAgentMiddleware(inner))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.handle(scope, receive, send)

    async def get_response_async(self, request: HttpRequest) -> HttpResponse:
        try:
            waits = iscoroutinefunction(resolve(request.path_info).func)
        except Resolver404:
            waits = False
        if waits:
            return await super().get_response_async(request)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._whole, request)

    def _whole(self, request: HttpRequest) -> HttpResponse:
        """One request, start to end, in this pool thread."""
        close_old_connections()
        try:
            set_urlconf(settings.ROOT_URLCONF)
            response = self._sync_chain(request)
            response._resource_closers.append(request.close)
            return response
        finally:
            close_old_connections()
