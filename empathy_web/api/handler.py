"""The agent API's ASGI handler: Django's, made lean for agents.

- No thread per request. Django gives each request a thread of its own for its
  synchronous parts, kept until the request ends, so a long poll would hold one for its
  whole wait. Here every request runs whole in one hop to a small pool of threads, its
  middleware, view, database and Redis calls together, instead of hopping between the
  loop and a thread for each of them (each hop costs a few hundred microseconds). A
  long poll that finds nothing at once (``waiting.Wait``) then waits in the event loop,
  holding no thread, and tries again in the pool when an event says it may succeed.
- One middleware of its own instead of the site's list. The site's middleware serves
  people (sessions, CSRF, messages, htmx, lockouts); an agent's request needs only the
  host check and the security headers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from csp.middleware import CSPMiddleware
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.exception import convert_exception_to_response
from django.http import HttpRequest, HttpResponse
from django.middleware.security import SecurityMiddleware
from django.urls import set_script_prefix, set_urlconf
from django.utils.log import log_response

from .core import WAITS_IN_LOOP, api, error_response
from .waiting import Pending, outside_a_request


class AgentMiddleware:
    """The host check (``ALLOWED_HOSTS``: a bad host is a 400), the headers and HTTPS
    redirect of Django's ``SecurityMiddleware``, no user (sessions are for people), and
    for the one HTML page (the docs) the site's Content-Security-Policy."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.security = SecurityMiddleware(get_response)
        self.csp = CSPMiddleware(get_response)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.before(request) or self.after(request, self.get_response(request))

    def before(self, request: HttpRequest) -> HttpResponse | None:
        request.get_host()  # raises DisallowedHost for a host not in ALLOWED_HOSTS
        request.user = AnonymousUser()  # agents hold no session; pages render as nobody's
        return self.security.process_request(request)

    def after(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        response.headers.setdefault("Cache-Control", "no-store")
        if response.headers.get("Content-Type", "").startswith("text/html"):
            self.csp.process_request(request)
            response = self.csp.process_response(request, response)
        return self.security.process_response(request, response)


class AgentAPIHandler(ASGIHandler):
    """See the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self._middleware = AgentMiddleware(convert_exception_to_response(self._get_response))
        self._chain = convert_exception_to_response(self._middleware)
        self._pool = ThreadPoolExecutor(settings.API_THREADS, thread_name_prefix="agent-api")
        # (API responses are JSON, never streamed, so they may close before sending.)

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        self._middleware_chain = None  # requests go through ``_chain``, in the pool

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        loop = asyncio.get_running_loop()
        response = await loop.run_in_executor(self._pool, self._whole, scope, body_file)
        if isinstance(response, Pending):
            response = await self._waited(response)
        await self.send_response(response, send)

    def _whole(self, scope: Any, body_file: Any) -> HttpResponse:
        """One request, start to end, in this pool thread: the signals Django sends
        around a request (closing stale database connections), the request, the
        middleware and view, and the response's close."""
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            request.META[WAITS_IN_LOOP] = True
            set_urlconf(settings.ROOT_URLCONF)
            response = self._chain(request)
            response._resource_closers.append(request.close)
            _log(request, response)
        response.close()  # sends request_finished; the content stays to be sent
        body_file.close()
        return response

    async def _waited(self, pending: Pending) -> HttpResponse:
        """A long poll's answer, once it has waited in this loop (holding no thread);
        each later try runs in the pool."""
        request = pending.request
        loop = asyncio.get_running_loop()
        try:
            answer = await pending.wait.outcome(
                lambda f: loop.run_in_executor(self._pool, outside_a_request(f))
            )
            response = api.create_response(request, answer, status=200)
        except Exception as exc:
            response = error_response(request, exc)
        response = self._middleware.after(request, response)
        _log(request, response)
        return response


def _log(request: HttpRequest, response: HttpResponse) -> None:
    if response.status_code >= 400:
        log_response("%s: %s", response.reason_phrase, request.path,
                     response=response, request=request)  # fmt: skip
