"""People's tiers in teams. A person's tier group applies to org-wide records (those
of no team); in a team, their membership's tier does (``teams.access_of_user``)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from memory import InvalidValue
from memory.codec import MAX_ID_LENGTH

from .teams import EVERY_TEAM, check_team
from .tiers import TIER_CHOICES


def _check_team(value: str) -> None:
    if value == EVERY_TEAM:
        return
    try:
        check_team(value)
    except InvalidValue as exc:
        raise ValidationError(str(exc)) from None


class Membership(models.Model):
    """A person's tier in one team (``EVERY_TEAM``: in every team)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    team = models.CharField(max_length=MAX_ID_LENGTH, validators=[_check_team])
    tier = models.CharField(max_length=20, choices=TIER_CHOICES)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["team", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["user", "team"], name="one_membership_per_team")
        ]

    def __str__(self) -> str:
        return f"{self.user.get_username()} in {self.team} ({self.tier.lower()})"
