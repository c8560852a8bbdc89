from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from memory import AccessTier

from .teams import viewer_of


def tier(request: HttpRequest) -> dict[str, Any]:
    """``viewer`` (a ``teams.Viewer`` or None), ``tier`` (their org-wide tier, or
    OBSERVER for a member of teams only; None for no tier), and each tier by name
    (``STEWARD``...) for comparisons such as ``{% if tier >= CONTRIBUTOR %}``. (The enum
    class itself cannot go in: templates call callables, and calling it fails.)"""
    viewer = viewer_of(request.user)
    return {
        "viewer": viewer,
        "tier": viewer.tier if viewer else None,
        **{t.name: t for t in AccessTier},
    }
