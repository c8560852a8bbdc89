from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from memory import AccessTier

from .tiers import user_tier


def tier(request: HttpRequest) -> dict[str, Any]:
    """``tier`` (an AccessTier or None), and each tier by name (``STEWARD``...) for
    comparisons such as ``{% if tier >= CONTRIBUTOR %}``. (The enum class itself cannot
    go in: templates call callables, and calling it fails.)"""
    return {"tier": user_tier(request.user), **{t.name: t for t in AccessTier}}
