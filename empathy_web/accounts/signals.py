"""Only stewards are staff: keep ``is_staff`` in step with the tier groups."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models.signals import m2m_changed, post_delete, pre_delete, pre_save
from django.dispatch import receiver

from memory import AccessTier

from .live import announce_access_change
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


def _refresh_staff(users: Any) -> None:
    """Keep ``is_staff`` in step after a change of groups, and tell the users' open
    dashboards that their tier may have changed."""
    users = list(users)
    for user in users:
        staff = _is_steward(user)
        if user.is_staff != staff:
            User.objects.filter(pk=user.pk).update(is_staff=staff)
            user.is_staff = staff
    announce_access_change(user.pk for user in users)


@receiver(m2m_changed, sender=User.groups.through)
def _staff_on_groups(
    sender: type, instance: Any, action: str, reverse: bool, pk_set: set | None, **kwargs: Any
) -> None:
    if isinstance(instance, User):  # user.groups.add/remove/set/clear
        if action in {"post_add", "post_remove", "post_clear"}:
            _refresh_staff([instance])
        return
    # group.user_set...: the users touched are pk_set, or (for clear) whoever was in it.
    if action == "pre_clear":
        instance._members_before_clear = list(instance.user_set.values_list("pk", flat=True))
    elif action in {"post_add", "post_remove"}:
        _refresh_staff(User.objects.filter(pk__in=pk_set or ()))
    elif action == "post_clear":
        _refresh_staff(User.objects.filter(pk__in=instance._members_before_clear))


@receiver(pre_delete, sender=Group)
def _remember_members(sender: type, instance: Group, **kwargs: Any) -> None:
    instance._members_before_delete = list(instance.user_set.values_list("pk", flat=True))


@receiver(post_delete, sender=Group)
def _staff_after_group_delete(sender: type, instance: Group, **kwargs: Any) -> None:
    _refresh_staff(User.objects.filter(pk__in=getattr(instance, "_members_before_delete", ())))
