"""``manage.py redis_acl``: the ``ACL SETUSER`` lines for the library's Redis users (one
per tier, the server's and the channel layer's; see ``memory.acl``), each with a new
password, and the URL each user connects with. Pipe the ACL lines to ``redis-cli``;
give each process the URL of its user."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from memory.acl import CHANNEL_PREFIX, USER_PREFIX, setuser_commands
from memory.keys import KeySchema

WHO = {
    "observer": "agents that only watch",
    "contributor": "trusted agents that use the library directly",
    "validator": "trusted validator agents",
    "steward": "trusted steward agents",
    "server": "the web processes and the bridge (REDIS_URL)",
    "channels": "the dashboards' channel layer (CHANNEL_LAYER_REDIS_URL)",
}


class Command(BaseCommand):
    help = "Print ACL SETUSER lines (with new passwords) for the library's Redis users."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--prefix", default="empathy:", help="the memory's key prefix")
        parser.add_argument("--channel-prefix", default=CHANNEL_PREFIX)
        parser.add_argument(
            "--url", default=settings.REDIS_URL or "redis://localhost:6379/0",
            help="the Redis the URLs point at (default: REDIS_URL)",
        )  # fmt: skip

    def handle(self, *args: Any, prefix: str, channel_prefix: str, url: str, **_: Any) -> None:
        where = urlsplit(url)
        netloc = where.hostname or "localhost"
        if where.port:
            netloc += f":{where.port}"
        path = where.path or "/0"
        for user, password, arguments in setuser_commands(KeySchema(prefix), channel_prefix):
            name = user.removeprefix(USER_PREFIX)
            self.stdout.write(f"# {user}: {WHO[name]}")
            self.stdout.write(f"#   {where.scheme or 'redis'}://{user}:{password}@{netloc}{path}")
            self.stdout.write(" ".join(["ACL", "SETUSER", *(_quoted(a) for a in arguments)]))


def _quoted(argument: str) -> str:
    """One argument as redis-cli reads it: quoted when it holds a space."""
    return f'"{argument}"' if " " in argument else argument
