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
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.exception import convert_exception_to_response
from django.http import HttpRequest, HttpResponse
from django.middleware.security import SecurityMiddleware
from django.urls import Resolver404, resolve, set_script_prefix, set_urlconf
from django.utils.log import log_response


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
        # (API responses are JSON, never streamed, so they may close before sending.)

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        inner = convert_exception_to_response(self._get_response_async)
        self._middleware_chain = convert_exception_to_response(AsyncAgentMiddleware(inner))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._waits(scope["path"]):
            await self.handle(scope, receive, send)  # Django's own path, in the loop
            return
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        loop = asyncio.get_running_loop()
        response = await loop.run_in_executor(self._pool, self._whole, scope, body_file)
        await self.send_response(response, send)

    @staticmethod
    @functools.lru_cache(maxsize=4096)
    def _waits(path: str) -> bool:
        """Whether ``path`` is a long poll (an async view); remembered per path, as
        resolving costs as much as a small call."""
        try:
            return iscoroutinefunction(resolve(path).func)
        except Resolver404:
            return False

    def _whole(self, scope: Any, body_file: Any) -> HttpResponse:
        """One request, start to end, in this pool thread: the signals Django sends
        around a request (closing stale database connections), the request, the
        middleware and view, and the response's close."""
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            set_urlconf(settings.ROOT_URLCONF)
            response = self._sync_chain(request)
            response._resource_closers.append(request.close)
            if response.status_code >= 400:
                log_response("%s: %s", response.reason_phrase, request.path,
                             response=response, request=request)  # fmt: skip
        response.close()  # sends request_finished; the content stays to be sent
        body_file.close()
        return response
