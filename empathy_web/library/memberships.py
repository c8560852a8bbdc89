"""Memberships: a person's tier in a team, set by stewards (in the admin or with
``manage.py membership``), each change written to the audit trail in the same
transaction."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from empathy_web.accounts.models import Membership
from empathy_web.accounts.teams import EVERY_TEAM
from memory.tiers import AccessTier

from .audit import write


def clean_team(team: str) -> str:
    """``team`` as a membership takes it: a team id, or ``EVERY_TEAM``."""
    Membership._meta.get_field("team").run_validators(team)
    return team


@transaction.atomic
def add(
    username: str, team: str, tier: AccessTier, *, by: AbstractBaseUser | None, by_name: str
) -> tuple[Membership, bool]:
    """Give ``username`` ``tier`` in ``team`` (or change the tier they have there).
    Returns the membership and whether it changed anything."""
    user = _user(username)
    team = clean_team(team)
    membership = Membership.objects.select_for_update().filter(user=user, team=team).first()
    if membership is not None and membership.tier == tier.name:
        return membership, False
    before = membership.tier if membership is not None else None
    if membership is None:
        membership = Membership(user=user, team=team, tier=tier.name)
    else:
        membership.tier = tier.name
    membership.full_clean()
    membership.save()
    action = "membership.add" if before is None else "membership.change"
    audit(membership, action, by, by_name, before=before)
    return membership, True


@transaction.atomic
def remove(username: str, team: str, *, by: AbstractBaseUser | None, by_name: str) -> bool:
    """End ``username``'s membership of ``team``; False when they had none."""
    membership = Membership.objects.filter(user=_user(username), team=clean_team(team)).first()
    if membership is None:
        return False
    membership.delete()
    audit(membership, "membership.remove", by, by_name)
    return True


def audit(
    membership: Membership,
    action: str,
    by: AbstractBaseUser | None,
    by_name: str,
    **details: Any,
) -> None:
    """Write a change of ``membership`` down, by ``by`` (or ``by_name`` from a shell)."""
    name = by.get_username() if by is not None else by_name
    tier = "STEWARD" if by is not None else ""
    details = {
        "user": membership.user.get_username(),
        "team": membership.team,
        "tier": membership.tier,
        **details,
    }
    team = None if membership.team == EVERY_TEAM else membership.team  # else org-wide
    write(by, name, tier, action, f"{details['user']} in {membership.team}", details, team=team)


def _user(username: str) -> AbstractBaseUser:
    found = get_user_model().objects.filter(username=username).first()
    if found is None:
        raise ValidationError(f"No user {username!r}.")
    return found
