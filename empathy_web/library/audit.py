from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from empathy_web.accounts.tiers import user_tier

from .models import AuditEntry


def record(request: HttpRequest, action: str, target: str, **details: Any) -> AuditEntry:
    """Write down an action ``request.user`` took (after it succeeded)."""
    tier = user_tier(request.user)
    return AuditEntry.objects.create(
        actor=request.user,
        actor_name=request.user.get_username(),
        tier=tier.name if tier else "",
        action=action,
        target=target[:500],
        details=details,
    )
