from __future__ import annotations

from typing import Any

from django import template

from .. import undo

register = template.Library()


@register.simple_tag(takes_context=True)
def undo_offer(context: template.Context) -> dict[str, Any] | None:
    """The viewer's last single decision while it can still be undone, or None."""
    return undo.offer(context.get("request"))
