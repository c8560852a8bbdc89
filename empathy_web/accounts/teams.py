"""Teams: the boundary of what a person or an agent may see and do.

A team is a memory team id. An agent's credential names the teams it may act in (or
every team); a person has a tier in a team through a membership (``Membership``), and
superusers and org-wide stewards act in every team. ``TeamAccess`` says which teams,
at which tier, for both: the one notion of team that the pages, the live updates and
the API share.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import wraps
from typing import TYPE_CHECKING, Any

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse

from memory import AccessTier
from memory.codec import check_id
from memory.tiers import Caller

from .tiers import user_tier

if TYPE_CHECKING:
    from empathy_web.library.models import AgentCredential


# A membership in this "team" is a membership in every team, at its tier (say, for
# someone who observes all the teams without being an org-wide steward).
EVERY_TEAM = "*"
NOT_YOURS = "No such record in your teams."


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
    def teams(self) -> frozenset[str] | None:
        """The teams it includes, for the library's ``teams=`` (None: every team)."""
        return None if self.every is not None else frozenset(self.tiers)

    @property
    def highest(self) -> AccessTier | None:
        """Its highest tier in any team."""
        return max([*self.tiers.values(), *([self.every] if self.every else [])], default=None)

    def __hash__(self) -> int:
        return hash(self.key)

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
    if not user.is_authenticated or not user.is_active:
        return TeamAccess()
    if user_tier(user) is AccessTier.STEWARD:
        return TeamAccess(every=AccessTier.STEWARD)
    tiers = {team: AccessTier[name] for team, name in user.memberships.values_list("team", "tier")}
    return TeamAccess(every=tiers.pop(EVERY_TEAM, None), tiers=tiers)


@dataclass(frozen=True)
class Viewer(Caller):
    """A person as the pages and the library know them. As a ``Caller`` they read with
    ``tier``: their org-wide tier, or OBSERVER for a member of teams in no tier group
    (every tier may read org-wide records). Acting on a team's record takes their tier
    in that team (``acting_in``), so a higher tier elsewhere never carries over.
    ``org`` is their org-wide tier (None: none), ``access`` their teams."""

    org: AccessTier | None = None
    access: TeamAccess = field(default_factory=TeamAccess)

    @property
    def teams(self) -> frozenset[str] | None:
        """What the library's listings take as ``teams=``: None for every team."""
        return self.access.teams

    @property
    def highest(self) -> AccessTier:
        """Their highest tier anywhere: what a page's tier check gates on."""
        return max(self.tier, self.access.highest or self.tier)

    @property
    def key(self) -> tuple[object, ...]:
        """Equal for viewers who see the same records with the same tiers."""
        return (self.tier, self.org, self.access.key)

    def within(self, team: str) -> Viewer:
        """Themselves, seeing ``team`` alone (and org-wide records): nothing of a team
        they are not in."""
        tier = self.access.tier_in(team)
        access = TeamAccess(tiers={team: tier}) if tier is not None else TeamAccess()
        return replace(self, access=access)

    def sees(self, owner: Owner) -> bool:
        """Whether they may see a record of ``owner``: a team, the teams of an agent
        registered in several, or None (or no team) for an org-wide record."""
        teams = _teams(owner)
        return not teams or any(self.access.includes(team) for team in teams)

    def tier_for(self, owner: Owner) -> AccessTier | None:
        """Their tier for a record of ``owner``: their highest in its teams, or for an
        org-wide record their org-wide tier; None when they have none there."""
        teams = _teams(owner)
        if not teams:
            return self.org
        return max(filter(None, map(self.access.tier_in, teams)), default=None)

    def may(self, needed: AccessTier, owner: Owner) -> bool:
        tier = self.tier_for(owner)
        return tier is not None and tier >= needed

    def seeing(self, owner: Owner) -> Viewer:
        """Themselves, when they may see records of ``owner``; else 404 (a team they
        are not in is not there for them)."""
        if not self.sees(owner):
            raise Http404(NOT_YOURS)
        return self

    def acting_in(self, owner: Owner, needed: AccessTier, action: str) -> Caller:
        """Who they act as on a record of ``owner``: their tier there. 404 for a team
        they are not in, 403 below ``needed``."""
        self.seeing(owner)
        tier = self.tier_for(owner)
        if tier is None or tier < needed:
            teams = _teams(owner)
            where = f"in team {', '.join(teams)}" if teams else "for org-wide records"
            raise PermissionDenied(f"{action} needs the {needed.name.lower()} tier {where}.")
        return Caller(self.user_id, tier)


# Whose a record is: one team, the teams of an agent registered in several, or None
# (or "", or no teams) for an org-wide record.
Owner = str | Collection[str] | None


def _teams(owner: Owner) -> tuple[str, ...]:
    if not owner:
        return ()
    return (owner,) if isinstance(owner, str) else tuple(owner)


def viewer_of(user: AbstractBaseUser | AnonymousUser) -> Viewer | None:
    """``user`` as a ``Viewer``; None for anyone with no tier anywhere (anonymous,
    inactive, in no tier group and no team)."""
    cached = getattr(user, "_empathy_viewer", False)
    if cached is not False:
        return cached
    org, access = user_tier(user), access_of_user(user)
    base = org or (AccessTier.OBSERVER if access.highest else None)
    viewer = None if base is None else Viewer(user.get_username(), base, org, access)
    user._empathy_viewer = viewer
    return viewer


def caller_for(request: HttpRequest) -> Viewer:
    """The person behind ``request``. Only for requests that passed ``tier_required``,
    which sets ``request.viewer``."""
    return request.viewer


def tier_required(needed: AccessTier) -> Callable:
    """View decorator: log in first, then 403 unless the user has at least ``needed``
    in some team or org-wide. Sets ``request.viewer``; each record's own team then
    decides what they may do with it (``Viewer.acting_in``)."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            viewer = viewer_of(request.user)
            if viewer is None or viewer.highest < needed:
                raise PermissionDenied(f"This needs the {needed.name.lower()} tier.")
            request.viewer = viewer
            return view(request, *args, **kwargs)

        wrapper.required_tier = needed
        return wrapper

    return decorate
