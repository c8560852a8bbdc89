"""Open dashboards follow their user's access: a logout, a deactivation, a deletion, a
change of tier or of teams reaches the user's sockets at once, and each one checks again
what it may show (``DashboardConsumer.access_changed``)."""

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

from .models import Membership
from .teams import Viewer, viewer_of

logger = logging.getLogger("empathy_web")
User = get_user_model()


def access_group(user_pk: Any) -> str:
    """The channel-layer group of one user's open dashboards."""
    return f"user-{user_pk}"


def viewer_now(user_pk: Any, session_key: str | None) -> Viewer | None:
    """Who a dashboard opened by ``user_pk`` in session ``session_key`` shows things to
    now; None when it must close: the user is gone or inactive, has no tier anywhere, or
    the session ended (logout, expiry)."""
    user = User.objects.filter(pk=user_pk, is_active=True).first()
    viewer = None if user is None else viewer_of(user)
    store = import_module(settings.SESSION_ENGINE).SessionStore
    if viewer is None or (session_key is not None and not store().exists(session_key)):
        return None
    return viewer


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


@receiver(post_save, sender=Membership)
@receiver(post_delete, sender=Membership)
def _on_membership_change(sender: Any, instance: Membership, **kwargs: Any) -> None:
    announce_access_change([instance.user_id])
