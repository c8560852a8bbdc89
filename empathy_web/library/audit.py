from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest

from empathy_web.accounts.tiers import user_tier

from .models import AuditEntry


def record(request: HttpRequest, action: str, target: str, **details: Any) -> AuditEntry:
    """Write down an action ``request.user`` took (after it succeeded)."""
    tier = user_tier(request.user)
    name = tier.name if tier else ""
    return write(request.user, request.user.get_username(), name, action, target, details)


def write(
    user: AbstractBaseUser | None,
    actor_name: str,
    tier: str,
    action: str,
    target: str,
    details: dict[str, Any],
) -> AuditEntry:
    """Write down an action by ``user`` (None for an agent or a shell: ``actor_name``
    then says who)."""
    return AuditEntry.objects.create(
        actor=user,
        actor_name=actor_name[:150],
        tier=tier,
        action=action,
        target=target[:500],
        details=details,
    )
