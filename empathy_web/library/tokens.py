"""Bearer tokens for the library's read-only API: one per agent, issued and revoked by
stewards in the admin. Only a SHA-256 of each token is stored."""

from __future__ import annotations

import hashlib
import secrets

from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest

from .models import AgentToken

PREFIX = "ewt_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def issue(name: str, created_by: AbstractBaseUser | None) -> tuple[AgentToken, str]:
    """A new token for ``name``: the stored record, and the token itself (shown once)."""
    token = new_token()
    record = AgentToken.objects.create(
        name=name, token_hash=hash_token(token), created_by=created_by
    )
    return record, token


def bearer_token(request: HttpRequest) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if there is one."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def authenticate(request: HttpRequest) -> AgentToken | None:
    """The live token the request carries, or None (missing, unknown or revoked)."""
    token = bearer_token(request)
    if token is None or len(token) > 200:
        return None
    return AgentToken.objects.filter(token_hash=hash_token(token), revoked_at=None).first()
