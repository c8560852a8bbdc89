from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers

from empathy_web.accounts.admin import StewardAdmin

from .audit import record
from .export import stream
from .models import AgentToken, AuditEntry, PromotedPattern
from .tokens import hash_token, new_token


@admin.register(PromotedPattern)
class PromotedPatternAdmin(StewardAdmin):
    list_display = ("name", "pattern_type", "confidence", "agent_id", "promoted_by", "promoted_at")
    list_filter = ("pattern_type",)
    search_fields = ("name", "pattern_id", "description", "code")


@admin.register(AuditEntry)
class AuditEntryAdmin(StewardAdmin):
    """The audit trail can be read and exported, never edited."""

    list_display = ("created", "actor_name", "tier", "action", "target")
    list_filter = ("action", "tier", "actor_name")
    search_fields = ("actor_name", "target", "action")
    date_hierarchy = "created"
    change_list_template = "library/admin/audit_change_list.html"
    actions = ("export_csv", "export_jsonl")

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        export = [
            path(
                f"export.{fmt}",
                self.admin_site.admin_view(self.export_view),
                {"fmt": fmt},
                name=f"library_auditentry_export_{fmt}",
            )
            for fmt in ("csv", "jsonl")
        ]
        return export + super().get_urls()

    def export_view(self, request: HttpRequest, fmt: str) -> HttpResponse:
        """The change list's entries, as filtered and searched there, as a download."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        changelist = self.get_changelist_instance(request)
        return stream(changelist.get_queryset(request), fmt)

    @admin.action(description="Export the selected entries as CSV")
    def export_csv(self, request: HttpRequest, queryset: QuerySet[AuditEntry]) -> HttpResponse:
        return stream(queryset, "csv")

    @admin.action(description="Export the selected entries as JSON lines")
    def export_jsonl(self, request: HttpRequest, queryset: QuerySet[AuditEntry]) -> HttpResponse:
        return stream(queryset, "jsonl")


@admin.register(AgentToken)
class AgentTokenAdmin(StewardAdmin):
    """Stewards issue a token per agent (shown once, on creation) and revoke it here."""

    list_display = ("name", "active", "created_by", "created", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name",)
    fields = ("name", "created_by", "created", "revoked_at")
    readonly_fields = ("created_by", "created", "revoked_at")
    actions = ("revoke",)

    @admin.display(boolean=True)
    def active(self, token: AgentToken) -> bool:
        return token.active

    def save_model(self, request: HttpRequest, obj: AgentToken, form: Any, change: bool) -> None:
        token = None
        if not change:
            token = new_token()
            obj.token_hash = hash_token(token)
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        if token is not None:
            record(request, "token.issue", obj.name, token_id=obj.pk)
            request._issued_token = token  # type: ignore[attr-defined]  # for response_add

    def response_add(
        self, request: HttpRequest, obj: AgentToken, post_url_continue: str | None = None
    ) -> HttpResponse:
        """The new token, on this response's page only: never in a cookie (the
        messages cookie is signed, not encrypted), never cached, never shown again."""
        token = getattr(request, "_issued_token", None)
        if token is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "name": obj.name,
            "token": token,
            "list_url": reverse("admin:library_agenttoken_changelist"),
        }
        response = TemplateResponse(request, "library/token_issued.html", context)
        add_never_cache_headers(response)
        return response

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[AgentToken]) -> None:
        now = timezone.now()
        for token in queryset.filter(revoked_at=None):
            token.revoked_at = now
            token.save(update_fields=["revoked_at"])
            record(request, "token.revoke", token.name, token_id=token.pk)
        messages.success(request, "Revoked. Agents using those tokens now get 401.")
