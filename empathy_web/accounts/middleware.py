"""Sessions that end: after SESSION_IDLE_MINUTES without a request (Django's cookie
age, renewed by every request) and SESSION_MAX_HOURS after the login, whatever."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils.deprecation import MiddlewareMixin

STARTED = "empathy_login_at"


@receiver(user_logged_in)
def _note_the_login(sender: Any, request: HttpRequest, **kwargs: Any) -> None:
    request.session[STARTED] = int(time.time())


class SessionLifetimeMiddleware(MiddlewareMixin):
    """Log out a session older than ``SESSION_MAX_SECONDS`` since its login. (A
    ``MiddlewareMixin``, so async views run without a thread held around them.)"""

    def process_request(self, request: HttpRequest) -> None:
        if request.user.is_authenticated:
            # A session from before this rule counts from its first request since.
            started = request.session.setdefault(STARTED, int(time.time()))
            if time.time() - started > settings.SESSION_MAX_SECONDS:
                logout(request)
