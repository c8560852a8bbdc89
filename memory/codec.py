"""Validation and JSON encoding: bad input fails here, before anything is written."""

from __future__ import annotations

import json
import math
import re
from datetime import timedelta
from json.encoder import c_make_encoder, encode_basestring
from typing import Any

from .exceptions import InvalidValue, UnserialisableValue, ValueTooLarge

MAX_ID_LENGTH = 200
MAX_ACTOR_LENGTH = 256  # an actor may be a derived name such as "coordinator:<team id>"
MAX_KEY_LENGTH = 512
# Redis would keep a key with a huge PX forever; a year is far past any short-term use.
MAX_TTL_SECONDS = 366 * 24 * 60 * 60
DEFAULT_MAX_VALUE_BYTES = 1024 * 1024

_CONTROL = re.compile("[\x00-\x1f\x7f]")
_BRACE_OR_SLASH = re.compile("[{}/]")
# One encoder for every value, built once: ``JSONEncoder.encode`` builds a new C encoder
# on every call, which took 40% of encoding a small value. It is CPython's own, the one
# ``json.dumps(allow_nan=False, separators=(",", ":"), ensure_ascii=False)`` builds,
# without the shared table of values being encoded (which could not be shared between
# threads), so a circular value raises RecursionError rather than ValueError.
if c_make_encoder is None:  # pragma: no cover - CPython always has it
    raise ImportError("memory needs the C accelerator of CPython's json module")
# Its arguments, in order: markers, default, encoder, indent, key separator, item
# separator, sort_keys, skipkeys, allow_nan.
_ENCODER = c_make_encoder(
    None, json.JSONEncoder().default, encode_basestring, None, ":", ",", False, False, False
)
_DECODER = json.JSONDecoder()


def check_id(
    value: object, what: str = "id", *, max_length: int = MAX_ID_LENGTH, braces: bool = False
) -> str:
    """Return ``value`` if it is a usable id for agents, tasks, sessions, patterns...

    Ids become parts of Redis key names, so they may not hold control characters, nor
    braces, which would change the key's Cluster hash tag; and parts of URL paths, so
    they may not hold slashes.
    """
    if not isinstance(value, str):
        raise InvalidValue(f"{what} must be a string, not {type(value).__name__}")
    if not value.strip():
        raise InvalidValue(f"{what} must not be empty or only spaces")
    if len(value) > max_length:
        raise InvalidValue(f"{what} is {len(value)} characters long; the limit is {max_length}")
    if _CONTROL.search(value):
        raise InvalidValue(f"{what} {value!r} contains a control character")
    if not braces and _BRACE_OR_SLASH.search(value):
        raise InvalidValue(f"{what} {value!r} must not contain '{{', '}}' or '/'")
    return value


def check_key(value: object) -> str:
    """Working-memory keys are free text (braces allowed), up to ``MAX_KEY_LENGTH``."""
    return check_id(value, "key", max_length=MAX_KEY_LENGTH, braces=True)


def ttl_ms(ttl: object, what: str = "ttl") -> int:
    """Convert a TTL (seconds as int/float, or a ``timedelta``) to whole milliseconds."""
    if isinstance(ttl, timedelta):
        seconds = ttl.total_seconds()
    elif isinstance(ttl, bool) or not isinstance(ttl, int | float):
        raise InvalidValue(f"{what} must be a number of seconds, not {type(ttl).__name__}")
    else:
        seconds = float(ttl)
    if not math.isfinite(seconds) or seconds <= 0:
        raise InvalidValue(f"{what} must be a positive number of seconds, got {ttl!r}")
    if seconds > MAX_TTL_SECONDS:
        raise InvalidValue(f"{what} of {seconds:g}s is over the {MAX_TTL_SECONDS}s limit")
    return max(1, round(seconds * 1000))


def check_priority(priority: object) -> int:
    """Task priorities are whole numbers from 1 (lowest) to 10 (highest)."""
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise InvalidValue(f"priority must be an integer from 1 to 10, got {priority!r}")
    if not 1 <= priority <= 10:
        raise InvalidValue(f"priority must be from 1 to 10, got {priority}")
    return priority


def check_confidence(confidence: object) -> float:
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        raise InvalidValue(f"confidence must be a number from 0 to 1, got {confidence!r}")
    if not (math.isfinite(confidence) and 0.0 <= confidence <= 1.0):
        raise InvalidValue(f"confidence must be from 0 to 1, got {confidence!r}")
    return float(confidence)


def encode(value: Any, limit: int = DEFAULT_MAX_VALUE_BYTES, what: str = "value") -> bytes:
    """Encode ``value`` as strict JSON in UTF-8 (no NaN or Infinity, no lone surrogates),
    refusing it over ``limit`` bytes."""
    try:
        data = "".join(_ENCODER(value, 0)).encode()
    except (ValueError, TypeError) as exc:
        # NaN / Infinity, a lone surrogate (a UnicodeEncodeError is a ValueError), or a
        # type JSON has no form for.
        raise UnserialisableValue(f"{what} cannot be stored as JSON: {exc}") from None
    except RecursionError:
        raise UnserialisableValue(
            f"{what} cannot be stored as JSON: it refers to itself, or nests too deeply"
        ) from None
    if len(data) > limit:
        raise ValueTooLarge(f"{what} is {len(data)} bytes as JSON; the limit is {limit} bytes")
    return data


def decode(raw: bytes | str | None) -> Any:
    """Decode a stored JSON value; ``None`` stays ``None``."""
    if raw is None:
        return None
    text = raw.decode() if isinstance(raw, bytes) else raw
    try:
        # What ``encode`` wrote has no surrounding whitespace, so the decoder's own
        # entry point does; ``json.loads`` costs twice as much for its checks.
        value, end = _DECODER.raw_decode(text)
        if end == len(text):
            return value
    except json.JSONDecodeError:
        pass
    return json.loads(text)  # surrounding whitespace, or the error to raise


def holds_nul(value: Any) -> bool:
    """Whether a NUL character is anywhere in ``value``'s strings (keys included), which
    a PostgreSQL text or JSON column cannot store."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(holds_nul(k) or holds_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(holds_nul(item) for item in value)
    return False
