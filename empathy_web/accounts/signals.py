"""Only stewards are staff: keep ``is_staff`` in step with the tier groups."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models.signals import m2m_changed, pre_save
from django.dispatch import receiver

from memory import AccessTier

from .tiers import TIER_GROUPS

User = get_user_model()


def _is_steward(user: Any) -> bool:
    if user.is_superuser:
        return True
    if user.pk is None:
        return False
    names = set(user.groups.values_list("name", flat=True))
    return any(TIER_GROUPS.get(name) == AccessTier.STEWARD for name in names)


@receiver(pre_save, sender=User)
def _staff_on_save(sender: type, instance: Any, **kwargs: Any) -> None:
    instance.is_staff = _is_steward(instance)


@receiver(m2m_changed, sender=User.groups.through)
def _staff_on_groups(sender: type, instance: Any, action: str, **kwargs: Any) -> None:
    if action not in {"post_add", "post_remove", "post_clear"}:
        return
    users = [instance] if isinstance(instance, User) else User.objects.filter(groups=instance)
    for user in users:
        staff = _is_steward(user)
        if user.is_staff != staff:
            User.objects.filter(pk=user.pk).update(is_staff=staff)
            user.is_staff = staff
