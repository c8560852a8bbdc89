"""The audit trail as CSV or JSON lines, streamed row by row (it can be long)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

from .models import AuditEntry

COLUMNS = (
    "id",
    "created",
    "actor",
    "tier",
    "action",
    "target",
    "reason",
    "before",
    "after",
    "details",
)


def as_record(entry: AuditEntry) -> dict[str, Any]:
    """One audit entry as plain data: who, with which tier, did what to what, why, and
    the state before and after (for pattern decisions)."""
    details = dict(entry.details or {})
    return {
        "id": entry.pk,
        "created": entry.created.isoformat(),
        "actor": entry.actor_name,
        "tier": entry.tier,
        "action": entry.action,
        "target": entry.target,
        "reason": details.pop("reason", ""),
        "before": details.pop("before", None),
        "after": details.pop("after", None),
        "details": details,
    }


class _Echo:
    """A file-like object whose write returns what it was given (for csv.writer)."""

    def write(self, value: str) -> str:
        return value


def _json(value: Any) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


# A spreadsheet runs a cell that begins with one of these as a formula
# (=HYPERLINK(...) and the like), so such a cell gets a leading apostrophe.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: object) -> str:
    text = str(cell)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_rows(entries: Iterable[AuditEntry]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(COLUMNS)
    for entry in entries:
        row = as_record(entry)
        cells = [
            row["id"],
            row["created"],
            row["actor"],
            row["tier"],
            row["action"],
            row["target"],
            row["reason"],
            _json(row["before"]),
            _json(row["after"]),
            _json(row["details"]),
        ]
        yield writer.writerow([spreadsheet_safe(cell) for cell in cells])


def jsonl_rows(entries: Iterable[AuditEntry]) -> Iterator[str]:
    for entry in entries:
        yield json.dumps(as_record(entry), ensure_ascii=False, sort_keys=True) + "\n"


def stream(entries: QuerySet[AuditEntry], fmt: str) -> StreamingHttpResponse:
    """``entries`` (oldest first) as an attachment in ``fmt``: ``csv`` or ``jsonl``."""
    rows = entries.order_by("created", "pk").iterator(chunk_size=500)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    if fmt == "csv":
        response = StreamingHttpResponse(csv_rows(rows), content_type="text/csv; charset=utf-8")
    else:
        response = StreamingHttpResponse(
            jsonl_rows(rows), content_type="application/x-ndjson; charset=utf-8"
        )
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.{fmt}"'
    return response
