from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from empathy_web.accounts.admin import StewardAdmin

from .models import AuditEntry, PromotedPattern


@admin.register(PromotedPattern)
class PromotedPatternAdmin(StewardAdmin):
    list_display = ("name", "pattern_type", "confidence", "agent_id", "promoted_by", "promoted_at")
    list_filter = ("pattern_type",)
    search_fields = ("name", "pattern_id", "description", "code")


@admin.register(AuditEntry)
class AuditEntryAdmin(StewardAdmin):
    """The audit trail can be read, never edited."""

    list_display = ("created", "actor_name", "tier", "action", "target")
    list_filter = ("action", "tier")
    search_fields = ("actor_name", "target", "action")
    date_hierarchy = "created"

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
