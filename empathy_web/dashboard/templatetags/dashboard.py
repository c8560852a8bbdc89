from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from django import template

register = template.Library()


@register.filter
def duration_ms(value: int | None) -> str:
    """A remaining time in ms as ``1h 02m``, ``4m 05s`` or ``12s``."""
    if value is None or value < 0:
        return "-"
    seconds = int(value) // 1000
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {seconds:02d}s"
    return f"{seconds}s"


@register.filter
def took_ms(value: float | None) -> str:
    """A time taken, in ms: ``230 ms`` under a second, else as ``duration_ms``."""
    if value is None or value < 0:
        return "-"
    return f"{value:.0f} ms" if value < 1000 else duration_ms(int(value))


@register.filter
def id_part(value: object) -> str:
    """``value`` as part of an HTML id that needs no escaping in a CSS selector (the hex
    of its UTF-8): htmx finds a preserved element again by ``#`` and its raw id."""
    return str(value).encode().hex()


@register.filter
def epoch_ms(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value / 1000, tz=UTC)


@register.filter
def epoch_s(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


@register.filter
def as_json(value: Any) -> str:
    """Pretty JSON for a <pre>; the template's autoescaping still applies."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


# What a list shows of one value (code, a description, signal data, a stored value):
# agents can write values of up to a MiB, and a page or live frame lists many of them.
EXCERPT_CHARS = 2000


@register.filter
def excerpt(text: Any, limit: int = EXCERPT_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how much more there is."""
    text = "" if text is None else str(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"


@register.filter
def is_cut(text: Any) -> bool:
    """Whether ``excerpt`` would cut ``text``."""
    return len("" if text is None else str(text)) > EXCERPT_CHARS


@register.filter
def json_excerpt(value: Any) -> str:
    """``as_json`` of ``value``, cut like ``excerpt``."""
    return excerpt(as_json(value))


@register.inclusion_tag("dashboard/_excerpt.html")
def excerpt_of(value: Any, url: str, plain: bool = False, key: str | None = None) -> dict[str, Any]:
    """``value`` in a <pre>, cut like ``excerpt`` (as JSON, or as text if ``plain``),
    with a "Show all" link to ``url`` (``?key=`` added when given) when it was cut."""
    text = ("" if value is None else str(value)) if plain else as_json(value)
    if key is not None:
        url = f"{url}?{urlencode({'key': key})}"
    return {"text": excerpt(text), "cut": is_cut(text), "url": url}


@register.inclusion_tag("dashboard/sparkline.html")
def sparkline(values: list[int], label: str, width: int = 240, height: int = 40) -> dict:
    """An inline SVG polyline of ``values`` (oldest first), scaled to the box."""
    top = max(values, default=0) or 1
    step = width / max(len(values) - 1, 1)
    points = " ".join(
        f"{i * step:.1f},{height - 2 - (v / top) * (height - 4):.1f}" for i, v in enumerate(values)
    )
    return {
        "points": points,
        "label": label,
        "width": width,
        "height": height,
        "latest": values[-1] if values else 0,
        "peak": max(values, default=0),
    }
