"""``manage.py agent_credential create|revoke|list``: agent credentials from a shell.

``create AGENT_ID --tier TIER [--team TEAM ...] [--all-teams] [--expires-in DAYS]``
prints what it issued, then the secret alone on the last line (``| tail -1`` takes
it). A steward credential also needs ``--confirm-steward``.
"""

from __future__ import annotations

import getpass
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from empathy_web.library.credentials import issue, revoke
from empathy_web.library.models import AgentCredential
from memory.tiers import AccessTier

TIERS = [t.name.lower() for t in AccessTier]


def _days(raw: str) -> float:
    days = float(raw)
    if not 0 < days <= 3650:
        raise ValueError
    return days


class Command(BaseCommand):
    help = "Issue, revoke and list the credentials agents use to reach the server."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="issue a credential; prints its secret")
        create.add_argument("agent_id")
        create.add_argument("--tier", required=True, choices=TIERS)
        create.add_argument("--team", action="append", default=[], help="repeat for more")
        create.add_argument("--all-teams", action="store_true", help="every team")
        create.add_argument(
            "--expires-in", type=_days, metavar="DAYS", help="days until it expires (to 3650)"
        )
        create.add_argument("--confirm-steward", action="store_true")
        remove = actions.add_parser("revoke", help="revoke every active credential of an agent")
        remove.add_argument("agent_id")
        listing = actions.add_parser("list", help="every credential, newest first")
        listing.add_argument("--all", action="store_true", help="revoked and expired ones too")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        getattr(self, f"_{action}")(**options)

    def _by(self) -> str:
        try:
            return f"shell:{getpass.getuser()}"
        except (KeyError, OSError):
            return "shell"

    def _create(self, agent_id: str, tier: str, team: list[str], all_teams: bool,
                expires_in: float | None, confirm_steward: bool, **_: Any) -> None:  # fmt: skip
        access = AccessTier[tier.upper()]
        if access is AccessTier.STEWARD and not confirm_steward:
            raise CommandError(
                "A steward credential lets the agent decide patterns, clear any agent's "
                "memory and requeue or cancel any task; add --confirm-steward to issue one."
            )
        if all_teams and team:
            raise CommandError("Give --team or --all-teams, not both.")
        expires_at = timezone.now() + timedelta(days=expires_in) if expires_in else None
        try:
            credential, secret = issue(
                agent_id, access, teams=team, all_teams=all_teams, expires_at=expires_at,
                by=self._by(),
            )  # fmt: skip
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stdout.write(f"Issued: {self._line(credential)}")
        self.stdout.write("The secret (shown once; only its hash is kept):")
        self.stdout.write(secret)

    def _revoke(self, agent_id: str, **_: Any) -> None:
        active = AgentCredential.objects.filter(agent_id=agent_id, revoked_at=None)
        count = revoke(active, by=self._by())
        if not count:
            raise CommandError(f"{agent_id} has no active credential.")
        self.stdout.write(f"Revoked {count} credential{'s' * (count != 1)} of {agent_id}.")

    def _list(self, all: bool, **_: Any) -> None:
        shown = 0
        for credential in AgentCredential.objects.order_by("-created").iterator():
            if all or credential.active:
                self.stdout.write(self._line(credential))
                shown += 1
        if not shown:
            self.stdout.write("No credentials." if all else "No active credentials.")

    @staticmethod
    def _line(credential: AgentCredential) -> str:
        teams = credential.access.describe()
        expires = f"{credential.expires_at:%Y-%m-%d %H:%M}" if credential.expires_at else "never"
        used = f"{credential.last_used_at:%Y-%m-%d %H:%M}" if credential.last_used_at else "never"
        return (
            f"{credential.agent_id}  {credential.tier.lower()}  {teams}  "
            f"expires {expires}  last used {used}  {credential.status}  #{credential.pk}"
        )
