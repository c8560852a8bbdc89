"""The two compact formats the library stores in Redis, each with its encoder beside its
decoder. Their Lua halves are ``lua/includes/task_state.lua`` and
``lua/includes/pattern_member.lua``; a change to one side is a change to both.
"""

from __future__ import annotations

import re
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


# Per-minute counters: a hash of <minutes since the epoch> -> count, written by
# ``count_per_minute`` in lua/includes/per_minute.lua.

MINUTE_MS = 60_000


def decode_per_minute(raw: dict[bytes, bytes]) -> dict[int, int]:
    """A per-minute hash as read from Redis, as {minute: count}."""
    return {int(minute): int(count) for minute, count in raw.items()}


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
