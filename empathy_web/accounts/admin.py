"""The admin is for stewards only, whatever Django's staff flag or permissions say."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.http import HttpRequest

from memory import AccessTier

from .tiers import user_tier


def is_steward(request: HttpRequest) -> bool:
    return user_tier(request.user) == AccessTier.STEWARD


admin.site.has_permission = is_steward
admin.site.site_header = "Empathy Web administration"


class StewardAdmin(admin.ModelAdmin):
    """A ModelAdmin whose every permission is the steward tier."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_steward(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_steward(request)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return is_steward(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_steward(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_steward(request)


User = get_user_model()
admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class TieredUserAdmin(StewardAdmin, UserAdmin):
    list_display = ("username", "tier", "is_active", "is_superuser", "last_login")
    list_filter = ("groups", "is_active", "is_superuser")

    @admin.display(description="tier")
    def tier(self, user: Any) -> str:
        found = user_tier(user)
        return found.name.lower() if found else "-"


@admin.register(Group)
class TierGroupAdmin(StewardAdmin, GroupAdmin):
    pass
