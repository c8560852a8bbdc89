from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest

from empathy_web.accounts.teams import viewer_of

from .models import AuditEntry


def record(
    request: HttpRequest, action: str, target: str, *, team: str | None = None, **details: Any
) -> AuditEntry:
    """Write down an action ``request.user`` took (after it succeeded) on a record of
    ``team`` (None: an org-wide one), with the tier they had there."""
    viewer = viewer_of(request.user)
    tier = viewer.tier_for(team) if viewer is not None else None
    name = tier.name if tier else ""
    user = request.user
    return write(user, user.get_username(), name, action, target, details, team=team)


def write(
    user: AbstractBaseUser | None,
    actor_name: str,
    tier: str,
    action: str,
    target: str,
    details: dict[str, Any],
    *,
    team: str | None = None,
) -> AuditEntry:
    """Write down an action by ``user`` (None for an agent or a shell: ``actor_name``
    then says who) on a record of ``team`` (None: an org-wide one)."""
    return AuditEntry.objects.create(
        actor=user,
        actor_name=actor_name[:150],
        tier=tier,
        team=team or "",
        action=action,
        target=target[:500],
        details=details,
    )
