from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from memory import AccessTier

from .tiers import user_tier


def tier(request: HttpRequest) -> dict[str, Any]:
    """``tier`` (an AccessTier or None) and ``AccessTier`` for every template."""
    return {"tier": user_tier(request.user), "AccessTier": AccessTier}
