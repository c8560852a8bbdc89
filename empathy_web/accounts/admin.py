"""The admin is for stewards only, whatever Django's staff flag or permissions say: org-wide
stewards see all of it; a steward of some teams sees only those teams' rows of the
models that have a team (``TeamStewardAdmin``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.db.models import QuerySet
from django.http import HttpRequest

from memory import AccessTier

from .teams import viewer_of
from .tiers import user_tier


def is_steward(request: HttpRequest) -> bool:
    """An org-wide steward (or a superuser)."""
    return user_tier(request.user) == AccessTier.STEWARD


@dataclass(frozen=True)
class StewardScope:
    """The rows of team models someone stewards: every row (org-wide stewards), every
    team's but no org-wide ones (``every_team``), or those of ``teams``."""

    org: bool = False
    every_team: bool = False
    teams: frozenset[str] = frozenset()

    def covers(self, team: str) -> bool:
        """Whether a row of ``team`` ("": org-wide) is theirs."""
        return self.org or (bool(team) and (self.every_team or team in self.teams))

    def rows(self, queryset: QuerySet, field: str = "team") -> QuerySet:
        if self.org:
            return queryset
        if self.every_team:
            return queryset.exclude(**{field: ""})
        return queryset.filter(**{f"{field}__in": self.teams})

    @property
    def anything(self) -> bool:
        return self.org or self.every_team or bool(self.teams)


def steward_scope(request: HttpRequest) -> StewardScope:
    if is_steward(request):
        return StewardScope(org=True)
    viewer = viewer_of(request.user)
    if viewer is None:
        return StewardScope()
    access = viewer.access
    teams = frozenset(team for team, tier in access.tiers.items() if tier is AccessTier.STEWARD)
    return StewardScope(every_team=access.every is AccessTier.STEWARD, teams=teams)


def may_enter(request: HttpRequest) -> bool:
    """Org-wide stewards, and stewards of some team (who see only their teams' rows)."""
    return steward_scope(request).anything


admin.site.has_permission = may_enter
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


class TeamStewardAdmin(StewardAdmin):
    """A ModelAdmin of rows with a team: stewards of a team see and manage that team's
    rows only; org-wide stewards, every row."""

    team_field = "team"

    def has_module_permission(self, request: HttpRequest) -> bool:
        return steward_scope(request).anything

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._covers(request, obj)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return steward_scope(request).anything

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._covers(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._covers(request, obj)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return steward_scope(request).rows(super().get_queryset(request), self.team_field)

    def _covers(self, request: HttpRequest, obj: Any) -> bool:
        scope = steward_scope(request)
        return scope.anything if obj is None else scope.covers(getattr(obj, self.team_field))


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
