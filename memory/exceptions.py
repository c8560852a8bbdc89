"""The one exception hierarchy of the short-term memory library.

Every error says what went wrong and, where there is one, what to do about it.
Bad input raises the built-in ``TypeError`` / ``ValueError`` (through the subclasses
below), so callers that only know the standard library still catch it.
"""

from __future__ import annotations


class ShortTermMemoryError(Exception):
    """Base class of every error raised by ``memory``."""


class AccessDenied(ShortTermMemoryError, PermissionError):
    """The caller's access tier does not allow the operation."""


class Suspended(AccessDenied):
    """The caller's runs are suspended for now (``memory.limits.suspend``)."""


class MemoryConnectionError(ShortTermMemoryError, ConnectionError):
    """Redis could not be reached, or answered in a way the library cannot use.

    ``unreachable`` is False when a server answered but refused the connection (a wrong
    password, say), as opposed to nothing answering at all.
    """

    def __init__(self, message: str, *, unreachable: bool = True) -> None:
        super().__init__(message)
        self.unreachable = unreachable


class EvictionUnknown(ShortTermMemoryError):
    """The server would not say its ``maxmemory-policy`` (``CONFIG`` is disabled)."""


class RateLimited(ShortTermMemoryError):
    """The caller has used its allowance for now; ``retry_after`` says how many seconds
    until it may try again."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidValue(ShortTermMemoryError, ValueError):
    """An id, TTL, priority or value is out of range or malformed."""


class ValueTooLarge(InvalidValue):
    """A value is over the size limit for what it is stored as."""


class UnserialisableValue(ShortTermMemoryError, TypeError):
    """A value cannot be stored as strict JSON."""


class NotFound(ShortTermMemoryError, LookupError):
    """The pattern, task, session or conflict does not exist (or has expired)."""


class StateConflict(ShortTermMemoryError):
    """The operation lost a race or does not fit the object's current state."""


class AlreadyDecided(StateConflict):
    """A staged pattern (or a conflict) was already decided by someone else."""


class IdTaken(StateConflict):
    """The id already belongs to another agent's object."""


class LeaseLost(StateConflict):
    """The caller no longer holds the task's lease: it expired or was fenced off."""


# The stable code of each error, as the server's API and MCP tools name it and as
# ``memory.remote`` turns it back into the exception; most specific first.
ERROR_CODES: tuple[tuple[type[ShortTermMemoryError], str], ...] = (
    (ValueTooLarge, "too_large"),
    (UnserialisableValue, "bad_input"),
    (InvalidValue, "bad_input"),
    (AlreadyDecided, "already_decided"),
    (LeaseLost, "lease_lost"),
    (IdTaken, "id_taken"),
    (StateConflict, "state_conflict"),
    (NotFound, "not_found"),
    (AccessDenied, "forbidden"),
    (RateLimited, "rate_limited"),
    (MemoryConnectionError, "unavailable"),
)


def code_of(exc: BaseException) -> str | None:
    """The stable code of ``exc``, or None for an error the library does not name."""
    return next((code for kind, code in ERROR_CODES if isinstance(exc, kind)), None)
