"""Sessions that end: after SESSION_IDLE_MINUTES without a request (Django's cookie
age, renewed by every request) and SESSION_MAX_HOURS after the login, whatever."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse

STARTED = "empathy_login_at"


@receiver(user_logged_in)
def _note_the_login(sender: Any, request: HttpRequest, **kwargs: Any) -> None:
    request.session[STARTED] = int(time.time())


class SessionLifetimeMiddleware:
    """Log out a session older than ``SESSION_MAX_SECONDS`` since its login."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            # A session from before this rule counts from its first request since.
            started = request.session.setdefault(STARTED, int(time.time()))
            if time.time() - started > settings.SESSION_MAX_SECONDS:
                logout(request)
        return self.get_response(request)
