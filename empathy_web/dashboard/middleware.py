from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .agents_memory import UNAVAILABLE

logger = logging.getLogger("empathy_web")


class MemoryUnavailableMiddleware:
    """When Redis is down, every page says so in a banner instead of failing with a 500."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, UNAVAILABLE):
            return None
        logger.warning("short-term memory unavailable for %s: %s", request.path, exception)
        context = {"memory_error": str(exception)}
        return render(request, "dashboard/unavailable.html", context, status=503)
