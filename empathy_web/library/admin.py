from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.cache import add_never_cache_headers

from empathy_web.accounts.admin import StewardAdmin, TeamStewardAdmin, steward_scope
from empathy_web.accounts.models import Membership
from empathy_web.accounts.teams import EVERY_TEAM
from memory.tiers import AccessTier

from . import memberships
from .credentials import check_teams, issue, revoke
from .export import stream
from .models import AgentCredential, AuditEntry, PromotedPattern


@admin.register(PromotedPattern)
class PromotedPatternAdmin(StewardAdmin):
    list_display = ("name", "pattern_type", "confidence", "agent_id", "promoted_by", "promoted_at")
    list_filter = ("pattern_type",)
    search_fields = ("name", "pattern_id", "description", "code")


@admin.register(AuditEntry)
class AuditEntryAdmin(TeamStewardAdmin):
    """The audit trail can be read and exported, never edited; a steward of some teams
    reads and exports those teams' entries only."""

    list_display = ("created", "actor_name", "tier", "team", "action", "target")
    list_filter = ("action", "tier", "team", "actor_name")
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


class CredentialForm(forms.ModelForm):
    """A new credential: who, which tier, which teams, until when."""

    team_list = forms.CharField(
        label="Teams",
        required=False,
        help_text="the teams it may act in, separated by commas (or tick all teams)",
    )
    confirm_steward = forms.BooleanField(
        label="Yes, this agent may act as a steward",
        required=False,
        help_text="a steward agent may decide patterns, clear any agent's memory and "
        "requeue or cancel any task",
    )

    class Meta:
        model = AgentCredential
        fields = ("agent_id", "tier", "all_teams", "expires_at")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("tier") == AccessTier.STEWARD.name and not data.get("confirm_steward"):
            self.add_error("confirm_steward", "Confirm that this agent may act as a steward.")
        raw = data.get("team_list") or ""
        try:
            data["teams"] = check_teams(t.strip() for t in raw.split(",") if t.strip())
        except ValidationError as exc:
            self.add_error("team_list", exc)
        return data


@admin.register(AgentCredential)
class AgentCredentialAdmin(StewardAdmin):
    """Stewards issue credentials (the secret is shown once, on creation), see when
    each was last used, and revoke them here."""

    form = CredentialForm
    list_display = ("agent_id", "tier", "team_scope", "status", "expires_at", "last_used_at",
                    "created_by", "created")  # fmt: skip
    list_filter = ("tier", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("agent_id",)
    readonly_fields = ("team_scope", "status", "created_by", "created", "revoked_at",
                       "last_used_at")  # fmt: skip
    actions = ("revoke",)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return ["agent_id", "tier", "team_list", "all_teams", "expires_at", "confirm_steward"]
        return ["agent_id", "tier", "team_scope", "expires_at", *self.readonly_fields[1:]]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        return ("agent_id", "tier", "expires_at", *self.readonly_fields)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a credential is issued and revoked, never edited

    @admin.display(description="teams")
    def team_scope(self, credential: AgentCredential) -> str:
        return credential.access.describe()

    @admin.display(description="status")
    def status(self, credential: AgentCredential) -> str:
        return credential.status

    def save_model(
        self, request: HttpRequest, obj: AgentCredential, form: Any, change: bool
    ) -> None:
        data = form.cleaned_data
        issued, secret = issue(
            data["agent_id"],
            AccessTier[data["tier"]],
            teams=data["teams"],
            all_teams=data["all_teams"],
            expires_at=data["expires_at"],
            created_by=request.user,
        )
        obj.pk = issued.pk
        request._issued_secret = secret  # type: ignore[attr-defined]  # for response_add

    def response_add(
        self, request: HttpRequest, obj: AgentCredential, post_url_continue: str | None = None
    ) -> HttpResponse:
        """The new secret, on this response's page only: never in a cookie (the
        messages cookie is signed, not encrypted), never cached, never shown again."""
        context = {
            **self.admin_site.each_context(request),
            "credential": AgentCredential.objects.get(pk=obj.pk),
            "secret": request._issued_secret,  # type: ignore[attr-defined]
            "list_url": reverse("admin:library_agentcredential_changelist"),
        }
        response = TemplateResponse(request, "library/credential_issued.html", context)
        add_never_cache_headers(response)
        return response

    @admin.action(description="Revoke the selected credentials")
    def revoke(self, request: HttpRequest, queryset: QuerySet[AgentCredential]) -> None:
        count = revoke(queryset, request.user)
        messages.success(request, f"Revoked {count}. Agents using them now get 401.")


@admin.register(Membership)
class MembershipAdmin(TeamStewardAdmin):
    """People's tiers in teams; every change is audited (``memberships``). A steward of
    some teams manages those teams' memberships only."""

    list_display = ("team", "user", "tier", "created")
    list_filter = ("tier",)
    search_fields = ("team", "user__username")
    raw_id_fields = ("user",)

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, **kwargs)
        scope = steward_scope(request)

        class ScopedForm(form):  # a team they steward, and no other
            def clean_team(self) -> str:
                team = self.cleaned_data["team"]
                if not scope.covers("" if team == EVERY_TEAM else team):
                    raise ValidationError(f"You are not a steward of {team}.")
                return team

        return ScopedForm

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        before = form.initial.get("tier") if change else None
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            action = "membership.change" if change else "membership.add"
            memberships.audit(obj, action, request.user, "", before=before)

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        with transaction.atomic():
            super().delete_model(request, obj)
            memberships.audit(obj, "membership.remove", request.user, "")

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        for membership in queryset.select_related("user"):
            self.delete_model(request, membership)
