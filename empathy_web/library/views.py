from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from empathy_web.accounts.teams import tier_required
from memory.tiers import READ

from .models import PromotedPattern


@require_GET
@tier_required(READ)
def library(request: HttpRequest) -> HttpResponse:
    """Promoted patterns (org-wide knowledge), searchable by text, type and the team
    they were found in."""
    query = request.GET.get("q", "").strip()
    pattern_type = request.GET.get("type", "").strip()
    team = request.GET.get("team", "").strip()
    found = PromotedPattern.objects.select_related("promoted_by").search(query, pattern_type, team)
    page = Paginator(found, 25).get_page(request.GET.get("page"))
    types = PromotedPattern.objects.order_by().values_list("pattern_type", flat=True).distinct()
    context = {
        "page": page,
        "q": query,
        "type": pattern_type,
        "types": sorted(types),
        "team": team,
    }
    return render(request, "library/library.html", context)


@require_GET
@tier_required(READ)
def library_pattern(request: HttpRequest, pattern_id: str) -> HttpResponse:
    """One promoted pattern, whole."""
    pattern = get_object_or_404(
        PromotedPattern.objects.select_related("promoted_by"), pattern_id=pattern_id
    )
    return render(request, "library/pattern.html", {"pattern": pattern})
