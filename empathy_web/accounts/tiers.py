"""Logins and access tiers: a user's tier is their highest tier group.

This is the web side's one place for tier decisions; the library checks the same tier
again on every call, so a view that forgot its check would still be refused there.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from memory import AccessTier
from memory.tiers import Caller

TIER_GROUPS = {
    "observer": AccessTier.OBSERVER,
    "contributor": AccessTier.CONTRIBUTOR,
    "validator": AccessTier.VALIDATOR,
    "steward": AccessTier.STEWARD,
}
# A tier as a model field stores it: its name (``AccessTier[name]`` reads it back).
TIER_CHOICES = [(tier.name, tier.name.lower()) for tier in AccessTier]


# The security wizard acts for a person as the agent "<prefix><username>"; what it keeps
# (the code pasted in, its results) is that person's.
WIZARD_ID_PREFIX = "security_analysis_wizard:"


def may_read_memory_of(viewer: Caller, agent_id: str) -> bool:
    """Whether ``viewer`` may see the values in ``agent_id``'s working memory: every
    agent's, except a person's wizard, which only that person and stewards may see."""
    if not agent_id.startswith(WIZARD_ID_PREFIX):
        return True
    return viewer.tier >= AccessTier.STEWARD or agent_id == WIZARD_ID_PREFIX + viewer.user_id


def user_tier(user: AbstractBaseUser | AnonymousUser) -> AccessTier | None:
    """The user's tier, or None for anonymous users and users in no tier group."""
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return AccessTier.STEWARD
    cached = getattr(user, "_empathy_tier", False)
    if cached is not False:
        return cached
    names = user.groups.filter(name__in=TIER_GROUPS).values_list("name", flat=True)
    tier = max((TIER_GROUPS[name] for name in names), default=None)
    user._empathy_tier = tier
    return tier
