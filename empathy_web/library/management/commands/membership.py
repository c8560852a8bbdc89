"""``manage.py membership add|remove|list``: people's tiers in teams from a shell.

``add USERNAME TEAM_ID --tier TIER`` gives (or changes) a tier in a team; ``*`` as the
team means every team. ``remove USERNAME TEAM_ID`` ends a membership. ``list
[USERNAME]`` shows memberships, by team. Every change is audited.
"""

from __future__ import annotations

import getpass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from empathy_web.accounts.models import Membership
from empathy_web.accounts.teams import EVERY_TEAM
from empathy_web.library import memberships
from memory.tiers import AccessTier

TIERS = [t.name.lower() for t in AccessTier]


class Command(BaseCommand):
    help = "Add, remove and list people's memberships of teams (their tier in each)."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        add = actions.add_parser("add", help="give a person a tier in a team ('*': every team)")
        add.add_argument("username")
        add.add_argument("team_id")
        add.add_argument("--tier", required=True, choices=TIERS)
        remove = actions.add_parser("remove", help="end a person's membership of a team")
        remove.add_argument("username")
        remove.add_argument("team_id")
        listing = actions.add_parser("list", help="memberships, by team")
        listing.add_argument("username", nargs="?")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        try:
            getattr(self, f"_{action}")(**options)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None

    def _by(self) -> str:
        try:
            return f"shell:{getpass.getuser()}"
        except (KeyError, OSError):
            return "shell"

    def _add(self, username: str, team_id: str, tier: str, **_: Any) -> None:
        membership, changed = memberships.add(
            username, team_id, AccessTier[tier.upper()], by=None, by_name=self._by()
        )
        said = "Now" if changed else "Already"
        self.stdout.write(f"{said}: {self._line(membership)}")

    def _remove(self, username: str, team_id: str, **_: Any) -> None:
        if not memberships.remove(username, team_id, by=None, by_name=self._by()):
            raise CommandError(f"{username} is not a member of {team_id}.")
        self.stdout.write(f"Removed {username} from {team_id}.")

    def _list(self, username: str | None, **_: Any) -> None:
        found = Membership.objects.select_related("user").order_by("team", "user__username")
        if username is not None:
            found = found.filter(user__username=username)
        shown = 0
        for membership in found.iterator():
            self.stdout.write(self._line(membership))
            shown += 1
        if not shown:
            self.stdout.write(f"{username} is in no team." if username else "No memberships.")

    @staticmethod
    def _line(membership: Membership) -> str:
        team = "every team" if membership.team == EVERY_TEAM else membership.team
        return f"{team}  {membership.user.get_username()}  {membership.tier.lower()}"
