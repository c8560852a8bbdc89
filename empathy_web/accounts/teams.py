"""Teams: the boundary of what a person or an agent may see and do.

A team is a memory team id. An agent's credential names the teams it may act in (or
every team); a person has a tier in a team through a membership (``Membership``), and
superusers and org-wide stewards act in every team. ``TeamAccess`` says which teams,
at which tier, for both: the one notion of team that the pages, the live updates and
the API share.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from memory import AccessTier
from memory.codec import check_id

from .tiers import user_tier

if TYPE_CHECKING:
    from empathy_web.library.models import AgentCredential


def check_team(team_id: object) -> str:
    """``team_id`` if the memory library takes it as a team id, else ``InvalidValue``."""
    return check_id(team_id, "team")


@dataclass(frozen=True)
class TeamAccess:
    """The teams someone may see and act in, with their tier in each: every team at
    ``every`` (unless None), and the teams of ``tiers`` at theirs."""

    every: AccessTier | None = None
    tiers: Mapping[str, AccessTier] = field(default_factory=dict)

    @classmethod
    def of(cls, tier: AccessTier, teams: Iterable[str], *, every: bool = False) -> TeamAccess:
        """``teams`` (or every team) at one ``tier``."""
        if every:
            return cls(every=tier)
        return cls(tiers=dict.fromkeys(teams, tier))

    def tier_in(self, team: str) -> AccessTier | None:
        """Their tier in ``team``; None for a team they are not in."""
        own = self.tiers.get(team)
        if self.every is None or (own is not None and own > self.every):
            return own
        return self.every

    def includes(self, team: str) -> bool:
        return self.tier_in(team) is not None

    @property
    def key(self) -> tuple[object, ...]:
        """Equal for accesses that see the same teams at the same tiers (what shared
        renderings are keyed by)."""
        return (self.every, tuple(sorted(self.tiers.items())))

    def describe(self) -> str:
        """``all teams``, the teams (``a, b``), or ``no team``."""
        if self.every is not None:
            return "all teams"
        return ", ".join(sorted(self.tiers)) or "no team"


def access_of_credential(credential: AgentCredential) -> TeamAccess:
    """An agent credential's teams, each at the credential's tier."""
    return TeamAccess.of(credential.access_tier, credential.teams, every=credential.all_teams)


def access_of_user(user: AbstractBaseUser | AnonymousUser) -> TeamAccess:
    """A person's teams: every team for superusers and org-wide stewards, else their
    memberships (none for anonymous or inactive users)."""
    tier = user_tier(user)
    if tier is None:
        return TeamAccess()
    if tier is AccessTier.STEWARD:
        return TeamAccess(every=AccessTier.STEWARD)
    memberships = user.memberships.values_list("team", "tier")  # type: ignore[union-attr]
    return TeamAccess(tiers={team: AccessTier[name] for team, name in memberships})
