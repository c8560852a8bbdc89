"""Access tiers, and the one place where they are checked."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from .exceptions import AccessDenied


class AccessTier(IntEnum):
    """Who may do what. Each tier can do everything the tiers below it can."""

    OBSERVER = 1
    CONTRIBUTOR = 2
    VALIDATOR = 3
    STEWARD = 4

    @property
    def can_read(self) -> bool:
        return self >= AccessTier.OBSERVER

    @property
    def can_write(self) -> bool:
        return self >= AccessTier.CONTRIBUTOR

    @property
    def can_validate(self) -> bool:
        return self >= AccessTier.VALIDATOR

    @property
    def can_admin(self) -> bool:
        return self >= AccessTier.STEWARD


READ = AccessTier.OBSERVER
WRITE = AccessTier.CONTRIBUTOR
VALIDATE = AccessTier.VALIDATOR
ADMIN = AccessTier.STEWARD


@dataclass(frozen=True)
class Caller:
    """The identity every operation is performed as: who, and with which tier."""

    user_id: str
    tier: AccessTier
    tier_name: str = field(init=False, repr=False, compare=False)  # for event records

    def __post_init__(self) -> None:
        object.__setattr__(self, "tier_name", AccessTier(self.tier).name)

    def require(self, needed: AccessTier, action: str) -> None:
        """Raise ``AccessDenied`` unless this caller's tier is at least ``needed``."""
        if self.tier < needed:
            raise AccessDenied(
                f"{action} needs the {needed.name} tier or higher; "
                f"{self.user_id!r} is {AccessTier(self.tier).name}"
            )
