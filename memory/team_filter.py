"""Listings restricted to some teams: a viewer of those teams sees their records and
the org-wide ones (records of no team). ``teams=None`` means no restriction; an empty
collection, org-wide records only."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from .codec import check_id
from .exceptions import InvalidValue


def check_teams(teams: Collection[str] | None) -> frozenset[str] | None:
    """``teams`` as a set of checked team ids; None (no restriction) stays None."""
    if teams is None:
        return None
    if isinstance(teams, str | bytes):
        raise InvalidValue("teams must be a collection of team ids, not one string")
    return frozenset(check_id(team, "team") for team in teams)


def shows(teams: frozenset[str] | None, team: str | None) -> bool:
    """Whether a listing restricted to ``teams`` shows a record of ``team`` (None or
    "": org-wide)."""
    return teams is None or not team or team in teams


def shows_any(teams: frozenset[str] | None, its_teams: Iterable[str]) -> bool:
    """Whether a listing restricted to ``teams`` shows something of all of
    ``its_teams`` (none: org-wide): of any of them, when it has some."""
    if teams is None:
        return True
    its_teams = list(its_teams)
    return not its_teams or any(team in teams for team in its_teams)
