"""Agent credentials: issued by stewards (in the admin or with ``manage.py
agent_credential``), presented by agents as ``Authorization: Bearer <secret>``.

A credential names the agent, its tier and the teams it may act in; whatever a request
says, those are who acts. Only a SHA-256 of each secret is stored (secrets are 256
random bits, so a slow hash would add nothing). A revocation takes effect on the next
request: this module reads the database each time, and the agent API's cache of
credentials (``empathy_web/api/admission.py``) is told of each one.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Protocol

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.dispatch import Signal
from django.http import HttpRequest
from django.utils import timezone

from empathy_web.accounts.teams import Viewer
from memory.codec import check_id
from memory.exceptions import InvalidValue
from memory.tiers import AccessTier

from .audit import write
from .models import AgentCredential

PREFIX = "ewt_"
MAX_SECRET_LENGTH = 200
# How stale "last used" may get: one database write per credential per this long.
LAST_USED_EVERY = timedelta(minutes=1)


# Sent once revocations are committed (with ``credentials``, those revoked), for
# whatever keeps credentials it has read.
credentials_revoked = Signal()


class SecretRefused(Exception):
    """Why a request's credential was refused: ``reason`` is ``missing``, ``unknown``,
    ``revoked`` or ``expired``."""

    def __init__(self, reason: str, credential: AgentCredential | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.credential = credential


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def check_teams(teams: Iterable[str]) -> list[str]:
    """Team ids as the library accepts them, in order, each once."""
    checked: list[str] = []
    for team in teams:
        try:
            check_id(team, "team")
        except InvalidValue as exc:
            raise ValidationError(str(exc)) from None
        if team not in checked:
            checked.append(team)
    return checked


@transaction.atomic
def issue(
    agent_id: str,
    tier: AccessTier,
    *,
    teams: Iterable[str] = (),
    all_teams: bool = False,
    expires_at: datetime | None = None,
    created_by: AbstractBaseUser | None = None,
    by: str = "",
) -> tuple[AgentCredential, str]:
    """A new credential: the stored record, and its secret (to show once, never again).
    ``by`` names who issued it in the audit log when there is no user (a shell)."""
    secret = new_secret()
    credential = AgentCredential(
        agent_id=agent_id,
        tier=AccessTier(tier).name,
        teams=check_teams(teams),
        all_teams=all_teams,
        expires_at=expires_at,
        secret_hash=hash_secret(secret),
        created_by=created_by,
    )
    credential.full_clean()
    credential.save()
    audit(credential, "credential.issue", created_by, by)
    return credential, secret


@transaction.atomic
def revoke(
    credentials: Iterable[AgentCredential], user: AbstractBaseUser | None = None, by: str = ""
) -> int:
    """Revoke the active ones of ``credentials``; returns how many."""
    now = timezone.now()
    revoked = []
    for credential in credentials:
        if credential.revoked_at is None:
            credential.revoked_at = now
            credential.save(update_fields=["revoked_at"])
            audit(credential, "credential.revoke", user, by)
            revoked.append(credential)
    if revoked:
        transaction.on_commit(
            lambda: credentials_revoked.send(sender=AgentCredential, credentials=revoked)
        )
    return len(revoked)


def audit(
    credential: AgentCredential, action: str, user: AbstractBaseUser | None, by: str = ""
) -> None:
    """Write an issue or a revocation down, by ``user`` (or ``by`` from a shell)."""
    name = user.get_username() if user is not None else by
    tier = "STEWARD" if user is not None else ""
    # (a credential of several teams, or of every team, is audited as org-wide)
    team = credential.teams[0] if len(credential.teams) == 1 and not credential.all_teams else None
    write(user, name, tier, action, credential.agent_id, describe(credential), team=team)


def describe(credential: AgentCredential) -> dict[str, Any]:
    return {
        "credential": credential.pk,
        "tier": credential.tier,
        "teams": "all" if credential.all_teams else credential.teams,
        "expires_at": credential.expires_at.isoformat() if credential.expires_at else None,
    }


class Where(Protocol):
    """Where a credential is used, for the audit log: an ``HttpRequest``, or an MCP
    tool call."""

    path: str
    method: str


def bearer_secret(authorization: str | None) -> str | None:
    """The secret of an ``Authorization: Bearer <secret>`` header value, if any."""
    scheme, _, secret = (authorization or "").strip().partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        return None
    return secret


def authenticate(request: HttpRequest) -> AgentCredential:
    """The live credential the request carries; see ``authenticate_header``."""
    return authenticate_header(request.headers.get("Authorization"), request)


def authenticate_header(authorization: str | None, where: Where) -> AgentCredential:
    """The live credential an ``Authorization`` header carries; raises
    ``SecretRefused`` (and audits the refusal) when there is none, or it is unknown,
    revoked or expired."""
    digest = secret_digest(authorization)
    return live(lookup(digest), where)


def secret_digest(authorization: str | None) -> str:
    """The hash of the secret an ``Authorization`` header carries (``""`` for one too
    long to be a secret issued here); raises ``SecretRefused`` when it carries none."""
    secret = bearer_secret(authorization)
    if secret is None:
        raise SecretRefused("missing")
    return hash_secret(secret) if len(secret) <= MAX_SECRET_LENGTH else ""


def lookup(digest: str) -> AgentCredential | None:
    """The credential with this secret hash, if any, as the database has it now."""
    if not digest:
        return None
    return AgentCredential.objects.filter(secret_hash=digest).first()


def live(credential: AgentCredential | None, where: Where) -> AgentCredential:
    """``credential`` if it is active (noting its use); else ``SecretRefused``, audited."""
    if credential is None or not credential.active:
        reason = "unknown" if credential is None else credential.status
        refused(where, reason, credential)
        raise SecretRefused(reason, credential)
    now = timezone.now()
    if credential.last_used_at is None or now - credential.last_used_at >= LAST_USED_EVERY:
        AgentCredential.objects.filter(pk=credential.pk).update(last_used_at=now)
        credential.last_used_at = now
    return credential


def refused(where: Where, reason: str, credential: AgentCredential | None, **details: Any) -> None:
    """Audit a refused use of the API: a bad credential, or one asking past its rights."""
    agent = credential.agent_id if credential is not None else ""
    tier = credential.tier if credential is not None else ""
    details = {"reason": reason, "method": where.method, **details}
    write(None, agent or "(no credential)", tier, "credential.refused", where.path, details)


def caller_for_credential(credential: AgentCredential) -> Viewer:
    """Who the library sees acting: the credential's agent, with its tier, org-wide and
    in each of its teams (and no other team)."""
    tier = credential.access_tier
    return Viewer(credential.agent_id, tier, tier, credential.access)
