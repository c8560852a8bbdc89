from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.deprecation import MiddlewareMixin

from memory import InvalidValue

from .agents_memory import UNAVAILABLE

logger = logging.getLogger("empathy_web")


class MemoryUnavailableMiddleware(MiddlewareMixin):
    """When Redis is down, every page says so in a banner instead of failing with a 500;
    an id or cursor the library refuses is a 400 that says what is wrong with it."""

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, InvalidValue):
            # An id or cursor in the URL that the library refuses: the request is bad.
            context = {"problem": str(exception)}
            return render(request, "dashboard/bad_request.html", context, status=400)
        if not isinstance(exception, UNAVAILABLE):
            return None
        logger.warning("short-term memory unavailable for %s: %s", request.path, exception)
        context = {"memory_error": str(exception)}
        return render(request, "dashboard/unavailable.html", context, status=503)
