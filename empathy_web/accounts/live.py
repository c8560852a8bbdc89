"""Open dashboards follow their user's access: a logout, a deactivation, a deletion or a
change of tier reaches the user's sockets at once, and each one checks again whether
it may stay open (``DashboardConsumer.access_changed``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from importlib import import_module
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from memory import AccessTier

from .tiers import user_tier

logger = logging.getLogger("empathy_web")
User = get_user_model()


def access_group(user_pk: Any) -> str:
    """The channel-layer group of one user's open dashboards."""
    return f"user-{user_pk}"


def still_allowed(user_pk: Any, tier: AccessTier, session_key: str | None) -> bool:
    """Whether a dashboard opened by ``user_pk`` with ``tier`` in session
    ``session_key`` may stay open: the user is active, has that tier still, and the
    session was not ended (logout, expiry)."""
    user = User.objects.filter(pk=user_pk, is_active=True).first()
    if user is None or user_tier(user) != tier:
        return False
    store = import_module(settings.SESSION_ENGINE).SessionStore
    return session_key is None or store().exists(session_key)


def announce_access_change(user_pks: Iterable[Any]) -> None:
    """Tell the users' open dashboards to check their access again. When the layer is
    down they miss it, and find out at their next periodic check."""
    layer = get_channel_layer()
    if layer is None:
        return
    for pk in user_pks:
        try:
            async_to_sync(layer.group_send)(access_group(pk), {"type": "access.changed"})
        except Exception as exc:  # the layer's Redis is down: the periodic check covers it
            logger.warning("could not tell user %s's dashboards of an access change: %s", pk, exc)


@receiver(user_logged_out)
def _on_logout(sender: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:
        announce_access_change([user.pk])


@receiver(post_save, sender=User)
@receiver(post_delete, sender=User)
def _on_user_change(sender: Any, instance: Any, **kwargs: Any) -> None:
    if kwargs.get("update_fields") == frozenset({"last_login"}):  # every login does this
        return
    announce_access_change([instance.pk])
