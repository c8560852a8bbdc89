"""``manage.py demo``: the whole product on one machine, with a simulated agent team.

With no ``REDIS_URL`` everything runs in this one process: the in-process mock memory,
the in-memory channel layer and the team. With ``REDIS_URL`` the team runs as a separate
``simulate_agents`` process against that Redis, as real agents would.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from empathy_web.accounts.tiers import TIER_GROUPS
from empathy_web.dashboard.agents_memory import get_memory
from empathy_web.dashboard.management.commands.serve import listening_sockets
from empathy_web.dashboard.uvicorn_worker import serve
from empathy_web.library import memberships
from memory import AccessTier
from memory.simulation import SimulatedTeam


class Command(BaseCommand):
    help = "Migrate, create one demo user per tier, start a simulated team and serve."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--addrport", default="127.0.0.1:8000", help="HOST:PORT to serve on")
        parser.add_argument("--pace", type=float, default=1.0)
        parser.add_argument("--no-serve", action="store_true", help="set up, then exit")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError(
                "The demo creates users whose passwords it prints; it only runs with "
                "DJANGO_DEBUG=true."
            )
        host, port = _address(options["addrport"])
        call_command("migrate", interactive=False, verbosity=0)
        logins = self._demo_users()
        memory = get_memory()
        self.stdout.write(f"Short-term memory: {memory.mode} ({memory.address})")
        self.stdout.write(f"Log in at http://{options['addrport']}/ as:")
        for username, password in logins:
            self.stdout.write(f"  {username:<12} {password}")
        if options["no_serve"]:
            return
        team, process = None, None
        settings.EMBEDDED_BRIDGE = True
        if memory.mode == "mock":
            team = SimulatedTeam(memory, pace=options["pace"])
            team.start()
        else:
            command = [
                sys.executable,
                "manage.py",
                "simulate_agents",
                "--pace",
                str(options["pace"]),
            ]
            process = subprocess.Popen(command, cwd=settings.BASE_DIR)
        try:
            # One uvicorn worker, as ``manage.py serve`` runs each, in this process: the
            # mock memory and the embedded bridge live here.
            serve(listening_sockets(host, port, 1))
        except KeyboardInterrupt:  # Ctrl-C: the server has shut down; so does the team
            pass
        finally:
            if team is not None:
                team.stop()
            if process is not None:
                process.terminate()
                process.wait(10)

    def _demo_users(self) -> list[tuple[str, str]]:
        User = get_user_model()
        logins = []
        for group_name in TIER_GROUPS:
            username = group_name
            password = secrets.token_urlsafe(9)
            user, _ = User.objects.get_or_create(username=username)
            user.set_password(password)
            user.save()
            user.groups.set([Group.objects.get(name=group_name)])
            if TIER_GROUPS[group_name] is not AccessTier.STEWARD:  # stewards see every team
                tier = TIER_GROUPS[group_name]
                memberships.add(username, SimulatedTeam.team_id, tier, by=None, by_name="demo")
            logins.append((username, password))
        return logins


def _address(addrport: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) as a host and a port."""
    host, _, port = addrport.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise CommandError(f"--addrport: {addrport!r} is not HOST:PORT")
    return host.strip("[]"), int(port)
