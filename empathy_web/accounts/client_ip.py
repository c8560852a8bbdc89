"""The address a request came from, for login lockout."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """``REMOTE_ADDR``; or, when ``TRUSTED_PROXY_HEADER`` names the header that the
    proxy in front of this site sets (``HTTP_X_FORWARDED_FOR``), the last address in
    it: the one that proxy appended. Earlier ones came from the client, who can forge
    them. Off by default: without a proxy that sets it, the header is the client's."""
    header = settings.TRUSTED_PROXY_HEADER
    if header:
        last = request.META.get(header, "").split(",")[-1].strip()
        if last:
            return last
    return request.META.get("REMOTE_ADDR", "")
