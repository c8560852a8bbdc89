"""The two compact formats the library stores in Redis, each with its encoder beside its
decoder. Their Lua halves are ``lua/includes/task_state.lua`` and
``lua/includes/pattern_member.lua``; a change to one side is a change to both.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass

from .exceptions import InvalidValue

# A task's state: one field per task in its team's ``state`` hash, six fields joined by
# tabs (ids hold no control characters).


@dataclass(frozen=True)
class TaskState:
    status: str
    attempts: int
    holder: str  # "" when nobody holds it
    token: str  # the fencing token of the current claim, "" when none
    score: str  # its place in the queue
    task_type: str

    def encode(self) -> str:
        return "\t".join(
            (self.status, str(self.attempts), self.holder, self.token, self.score, self.task_type)
        )

    @classmethod
    def decode(cls, raw: bytes | str) -> TaskState:
        text = raw.decode() if isinstance(raw, bytes) else raw
        status, attempts, holder, token, score, task_type = text.split("\t", 5)
        return cls(status, int(attempts), holder, token, score, task_type)


# A member of the staged-pattern index: "<expiry in ms, 13 digits>|<pattern id>", all
# with score 0, so lexicographic order is expiry order; a member is also the cursor of
# the listing by expiry.

MEMBER_DIGITS = 13


def pattern_member(expires_ms: int, pattern_id: str) -> str:
    return f"{expires_ms:0{MEMBER_DIGITS}d}|{pattern_id}"


def parse_pattern_member(member: bytes | str) -> tuple[int, str]:
    """(expiry in ms, pattern id); ``InvalidValue`` for anything else, such as a
    cursor that no listing handed out."""
    text = member.decode() if isinstance(member, bytes) else member
    digits, bar, pattern_id = (
        text[:MEMBER_DIGITS],
        text[MEMBER_DIGITS : MEMBER_DIGITS + 1],
        text[MEMBER_DIGITS + 1 :],
    )
    if (
        not (digits.isascii() and digits.isdigit() and len(digits) == MEMBER_DIGITS)
        or bar != "|"
        or not pattern_id
    ):
        raise InvalidValue(f"{text!r} is not a staged-pattern index member")
    return int(digits), pattern_id


def member_bound(ms: int) -> str:
    """The exclusive lexicographic bound of members expiring before (or after) ``ms``."""
    return f"({ms:0{MEMBER_DIGITS}d}"


def expiry_part(ms: int) -> str:
    """What index members expiring at ``ms`` start with; a sort part bound of the
    orderings by expiry."""
    return f"{ms:0{MEMBER_DIGITS}d}"


# Staged patterns by team (the Lua half is lua/includes/pattern_teams.lua). Each pattern
# shard has three sorted sets, all with score 0, whose members are "<team>\x00<sort
# part>": org-wide patterns have the empty team, and team ids hold no control
# characters, so one team's members are the range from "<team>\x00" to "<team>\x01".
# Every sort part ends with the pattern's index member (``pattern_member``); by expiry
# it is that member, by staging time "<staged ms, 13 digits><member>", and by confidence
# "<confidence key><member>", read from the end (highest first, ties broken by member,
# from the end, as the global index by confidence breaks them). A sort part is also the
# cursor of a restricted listing.
# Beside them: each staged pattern's entry "<team>\x00<confidence key><staged ms>" by
# id; the expired log's entries "<member>\x00<team>" (entries without a team are from
# before teams were kept: org-wide); and per-minute counts of expired ones by team,
# fields "<team>\x00<minute>".

ORG_WIDE = ""  # the team of org-wide records in the formats below
CONFIDENCE_KEY_DIGITS = 16
SORT_PREFIX_DIGITS = {"expiry": 0, "confidence": CONFIDENCE_KEY_DIGITS, "staged_at": 13}


def confidence_key(confidence: float) -> str:
    """16 hex digits that sort as ``confidence`` (from 0 to 1) does: its IEEE 754 bits."""
    (bits,) = struct.unpack(">Q", struct.pack(">d", float(confidence) + 0.0))  # no -0.0
    return f"{bits:016x}"


def team_member(team: str | None, sort_part: str) -> str:
    return f"{team or ORG_WIDE}\x00{sort_part}"


def split_team_member(member: bytes | str) -> tuple[str | None, str]:
    """(team, None when org-wide; sort part)."""
    text = member.decode() if isinstance(member, bytes) else member
    team, _, sort_part = text.partition("\x00")
    return team or None, sort_part


def team_range(team: str | None) -> tuple[str, str]:
    """The lexicographic bounds of every member of ``team`` (None: org-wide)."""
    return f"[{team or ORG_WIDE}\x00", f"({team or ORG_WIDE}\x01"


def team_bound(team: str | None, sort_part: str) -> str:
    """The exclusive lexicographic bound of ``team``'s members at ``sort_part``."""
    return f"({team or ORG_WIDE}\x00{sort_part}"


def sort_part(order: str, member: str, confidence: float = 0.0, staged_ms: int = 0) -> str:
    """The sort part of an index member in ``order`` (``SORT_PREFIX_DIGITS``)."""
    if order == "confidence":
        return confidence_key(confidence) + member
    if order == "staged_at":
        return f"{staged_ms:013d}{member}"
    return member


def sort_part_member(order: str, part: str) -> str:
    """The index member a sort part of ``order`` ends with; ``InvalidValue`` for
    anything else, such as a cursor that no listing in ``order`` handed out."""
    digits = SORT_PREFIX_DIGITS[order]
    prefix, member = part[:digits], part[digits:]
    allowed = "0123456789abcdef" if order == "confidence" else "0123456789"
    if len(prefix) != digits or not set(prefix) <= set(allowed):
        raise InvalidValue(f"{part!r} is not a cursor of the listing by {order}")
    parse_pattern_member(member)
    return member


def team_entry(team: str | None, confidence: str, staged_ms: int) -> str:
    """A staged pattern's entry: its team, confidence key and staging time (ms)."""
    return f"{team or ORG_WIDE}\x00{confidence}{staged_ms:013d}"


def parse_team_entry(entry: bytes | str) -> tuple[str | None, str, int]:
    """(team, None when org-wide; confidence key; staged ms)."""
    team, rest = split_team_member(entry)
    return team, rest[:CONFIDENCE_KEY_DIGITS], int(rest[CONFIDENCE_KEY_DIGITS:])


def expired_entry(member: str, team: str | None) -> str:
    return f"{member}\x00{team or ORG_WIDE}"


def parse_expired_entry(entry: bytes | str) -> tuple[int, str, str | None]:
    """(expiry in ms, pattern id, team: None when org-wide)."""
    text = entry.decode() if isinstance(entry, bytes) else entry
    member, _, team = text.partition("\x00")
    expires, pattern_id = parse_pattern_member(member)
    return expires, pattern_id, team or None


def team_minute(team: str | None, minute: int) -> str:
    return f"{team or ORG_WIDE}\x00{minute}"


def parse_team_minute(field: bytes | str) -> tuple[str | None, int]:
    """(team, None when org-wide; minute since the epoch)."""
    team, minute = split_team_member(field)
    return team, int(minute)


# Per-minute counters: a hash of <minutes since the epoch> -> count, written by
# ``count_per_minute`` in lua/includes/per_minute.lua.

MINUTE_MS = 60_000


def decode_per_minute(raw: dict[bytes, bytes]) -> dict[int, int]:
    """A per-minute hash as read from Redis, as {minute: count}."""
    return {int(minute): int(count) for minute, count in raw.items()}


# Series of counts by minute and by hour (memory/series.py; the Lua half is
# lua/includes/series.lua). In a series hash, the field "<prefix><minute>" counts what
# happened in that minute since the epoch, and "<prefix>h<hour>" in that hour. The
# prefix is "<kind>\x00" in a team's own series; "<team>\x00" in a hash of one kind that
# teams share (signals sent, patterns expired), whose minute fields are so
# ``team_minute``; and "<team>\x00<kind>\x00" in a pattern shard's series. Beside each
# hash, a sorted set of when its fields leave: of the fields, or in a team's own series
# of the buckets ("<minute>", "h<hour>"). All-time totals: "<kind>\x00<task type>" in a
# team's own, "<team>\x00<kind>" in those teams share.

HOUR_MS = 3_600_000
HOUR_MARK = "h"
# A team's own series also counts by 5 minutes, "<prefix>f<5-minute>", kept as minutes are.
FIVE_MINUTES = 5
FIVE_MARK = "f"
SERIES_MINUTES = 10_080  # minute fields are kept 7 days
SERIES_HOURS = 2_160  # hour fields 90 days


def own_series(kind: str) -> str:
    return f"{kind}\x00"


def team_series(team: str | None, kind: str | None = None) -> str:
    """The prefix of ``team``'s series (None: org-wide) in a shared hash; ``kind`` when
    the hash holds several."""
    return f"{team or ORG_WIDE}\x00" if kind is None else f"{team or ORG_WIDE}\x00{kind}\x00"


def minute_field(prefix: str, minute: int) -> str:
    return f"{prefix}{minute}"


def hour_field(prefix: str, hour: int) -> str:
    return f"{prefix}{HOUR_MARK}{hour}"


def five_minute_field(prefix: str, five: int) -> str:
    return f"{prefix}{FIVE_MARK}{five}"


def series_bucket(field: bytes | str) -> tuple[bool, int]:
    """(whether it counts an hour, rather than a minute; that hour or minute)."""
    text = field.decode() if isinstance(field, bytes) else field
    bucket = text.rpartition("\x00")[2]
    if bucket.startswith(HOUR_MARK):
        return True, int(bucket[len(HOUR_MARK) :])
    return False, int(bucket)


def task_total(kind: str, task_type: str) -> str:
    return f"{kind}\x00{task_type}"


def parse_task_total(field: bytes | str) -> tuple[str, str]:
    """(kind, task type)."""
    text = field.decode() if isinstance(field, bytes) else field
    kind, _, task_type = text.partition("\x00")
    return kind, task_type


def team_total(team: str | None, kind: str) -> str:
    return f"{team or ORG_WIDE}\x00{kind}"


# Task timings (memory/timings.py; the Lua half is lua/includes/timings.lua). A timings
# hash holds two rings of slots: "m" of TIMING_FINE_MS each, TIMING_FINE_SLOTS of them,
# and "h" of an hour each, TIMING_HOUR_SLOTS of them. Slot number n (since the epoch) is
# held at index n % slots; its fields are "<ring><index>:<name>": "at" (n), "max" (the
# longest time, ms), "failed" (failures) and, per bucket b, "<b>" (how many times fell in
# it). Bucket 0 holds 0 ms; bucket b from 1 to TIMING_TOP - 1 holds the times from
# 2^((b-1)/TIMING_STEPS) ms up to 2^(b/TIMING_STEPS) ms; TIMING_TOP, the longer ones.

TIMING_STEPS = 8  # buckets per doubling: a bucket's middle is within 4.4% of its times
TIMING_TOP = 225  # 2^28 ms (3.1 days) and longer
TIMING_FINE_MS = 300_000
TIMING_FINE_SLOTS = 14
TIMING_HOUR_SLOTS = 26
TIMING_RINGS = {"m": (TIMING_FINE_MS, TIMING_FINE_SLOTS), "h": (HOUR_MS, TIMING_HOUR_SLOTS)}


def timing_bucket(ms: int) -> int:
    """The bucket of a time of ``ms`` milliseconds."""
    if ms < 1:
        return 0
    return min(TIMING_TOP, 1 + math.floor(math.log(ms) / math.log(2) * TIMING_STEPS))


def bucket_ms(bucket: int) -> float:
    """What a bucket's times are reported as: its geometric middle (0 for bucket 0)."""
    return 0.0 if bucket == 0 else 2 ** ((bucket - 0.5) / TIMING_STEPS)


def parse_timing_field(field: bytes | str) -> tuple[str, int, str]:
    """(ring, index, name)."""
    text = field.decode() if isinstance(field, bytes) else field
    slot, _, name = text.partition(":")
    return slot[:1], int(slot[1:]), name


# Signals: an id is "<server ms, 13 digits>-<microseconds within it, 12 digits>-<sender's
# token>", so ids sort in the order signals were sent; inboxes, the broadcast index and
# session logs hold "<id>|<signal type>", and the recent feed "<id>" or, for a signal
# whose record is in an agent's mailbox, "<id>|<agent>" (ids never contain "|", and all
# have one length). The Lua half is lua/includes/signal_member.lua.


_SIGNAL_ID = re.compile(r"[0-9]{13}-[0-9]{12}-[0-9a-f]{16}")


def is_signal_id(text: object) -> bool:
    """Whether ``text`` has the form of a signal id."""
    return isinstance(text, str) and _SIGNAL_ID.fullmatch(text) is not None


def signal_member_id(member: bytes | str) -> str:
    """The signal id of an index member (of any signal index)."""
    text = member.decode() if isinstance(member, bytes) else member
    return text.partition("|")[0]


def feed_entry(member: bytes | str) -> tuple[str, str | None]:
    """A recent-feed member's signal id, and the agent whose mailbox holds its record
    (None: it is with the shared signals)."""
    text = member.decode() if isinstance(member, bytes) else member
    signal_id, bar, mailbox = text.partition("|")
    return signal_id, mailbox if bar else None


def members_after(signal_id: str) -> str:
    """The lexicographic bound of index members of signals after ``signal_id``: "}"
    sorts after the "|" that follows the id in its own members."""
    return f"[{signal_id}}}"


def signal_token(signal_id: str) -> str:
    """The token that names the signal's record."""
    return signal_id.rpartition("-")[2]


def signal_bound(ms: int) -> str:
    """The exclusive lexicographic bound of signals sent before (or after) ``ms``."""
    return f"({ms:013d}"
