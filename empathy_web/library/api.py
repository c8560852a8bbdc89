"""The library's read-only JSON API, for agents to reuse validated patterns.

Access is by an agent credential (``Authorization: Bearer <secret>``) that stewards
issue and revoke; any tier may read. Sessions do not count. A missing, unknown, revoked
or expired credential gets 401.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.paginator import EmptyPage, Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from .credentials import SecretRefused, authenticate
from .models import PromotedPattern

PAGE_SIZE = 25
MAX_PAGE_SIZE = 100


def _error(status: int, message: str, **headers: str) -> JsonResponse:
    response = JsonResponse({"error": message}, status=status)
    for name, value in headers.items():
        response[name] = value
    return response


def token_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            request.agent_credential = authenticate(request)
        except SecretRefused as exc:
            return _error(
                401,
                f"A valid agent credential is needed ({exc.reason}): send "
                "'Authorization: Bearer <secret>'. Stewards issue credentials in the admin.",
                **{"WWW-Authenticate": 'Bearer realm="library"'},
            )
        return view(request, *args, **kwargs)

    return wrapper


def serialise(pattern: PromotedPattern) -> dict[str, Any]:
    return {
        "pattern_id": pattern.pattern_id,
        "name": pattern.name,
        "pattern_type": pattern.pattern_type,
        "description": pattern.description,
        "code": pattern.code,
        "context": pattern.context,
        "confidence": pattern.confidence,
        "interests": pattern.interests,
        "agent_id": pattern.agent_id,
        "team": pattern.team or None,
        "session_id": pattern.session_id or None,
        "staged_at": pattern.staged_at.isoformat() if pattern.staged_at else None,
        "promoted_by": pattern.promoted_by.get_username() if pattern.promoted_by else None,
        "promoted_by_agent": pattern.promoted_by_agent or None,
        "promoted_at": pattern.promoted_at.isoformat(),
        "note": pattern.note,
        "url": reverse("api_library_detail", args=[pattern.pattern_id]),
    }


@require_GET
@token_required
def library_list(request: HttpRequest) -> HttpResponse:
    """``?q=`` text, ``?type=``, ``?team=``, ``?page=`` (from 1), ``?page_size=`` (1 to
    100)."""
    try:
        size = int(request.GET.get("page_size") or PAGE_SIZE)
        number = int(request.GET.get("page") or 1)
    except ValueError:
        return _error(400, "page and page_size must be whole numbers")
    if not 1 <= size <= MAX_PAGE_SIZE:
        return _error(400, f"page_size must be from 1 to {MAX_PAGE_SIZE}")
    found = PromotedPattern.objects.select_related("promoted_by").search(
        (request.GET.get("q") or "").strip(),
        (request.GET.get("type") or "").strip(),
        (request.GET.get("team") or "").strip(),
    )
    paginator = Paginator(found, size)
    try:
        page = paginator.page(number)
    except EmptyPage:
        return _error(404, f"there is no page {number}; the last is {paginator.num_pages}")

    def link(n: int) -> str:
        query = {k: v for k, v in request.GET.items() if k in ("q", "type", "team", "page_size")}
        return f"{request.path}?{urlencode({**query, 'page': n})}"

    return JsonResponse(
        {
            "count": paginator.count,
            "page": page.number,
            "pages": paginator.num_pages,
            "page_size": size,
            "next": link(page.next_page_number()) if page.has_next() else None,
            "previous": link(page.previous_page_number()) if page.has_previous() else None,
            "results": [serialise(p) for p in page],
        }
    )


@require_GET
@token_required
def library_detail(request: HttpRequest, pattern_id: str) -> HttpResponse:
    pattern = (
        PromotedPattern.objects.select_related("promoted_by").filter(pattern_id=pattern_id).first()
    )
    if pattern is None:
        return _error(404, f"no promoted pattern {pattern_id!r}")
    return JsonResponse(serialise(pattern))
