"""Redis ACL users for the library: one per tier, for trusted agents that use the library
directly (defence in depth: Redis 7 applies a user's ACL to the commands inside
functions too), one for the server, and one for the dashboards' channel layer.

- ``observer``: read-only on every key the library builds; of the library's functions,
  only those that only read (``FCALL_RO``, which Redis refuses for any other).
- ``contributor``: reads and writes, and function calls, on every key but the pattern
  decisions, which it may only read.
- ``validator`` and ``steward``: every key of the library.
- ``server`` (the web processes and the bridge): every key under the prefix, plus
  loading the function library and reading the eviction policy.
- ``channels`` (the channel layer): only its own keys (``asgi:`` by default), so no
  memory user can put a message before a dashboard.

The key patterns come from ``KeySchema.families``, the one list of what keys exist.
The rules name the library's functions, whose names carry a digest of its source: print
them again (``manage.py redis_acl``) after an upgrade.
"""

from __future__ import annotations

import secrets

from . import scripts
from .keys import KeySchema
from .scripts import CLUSTER_LIBRARY, LIBRARY

USER_PREFIX = "empathy-"
TIERS = ("observer", "contributor", "validator", "steward")
CHANNEL_PREFIX = "asgi"
_BASE = ["on", "resetkeys", "resetchannels", "-@all"]
_READ = ["+@read", "+@connection", "+time", "+multi", "+exec", "+discard", "+watch", "+unwatch",
         "+fcall_ro"]  # fmt: skip
_WRITE = [*_READ, "+@write", "+fcall", "-@dangerous"]
_AGENT_KEYS_EXCEPT = ("pattern decisions", "bridges")
# The functions a contributor calls that declare a decision key (only to read it).
_STAGING = (scripts.STAGE_PATTERN,)


def rules(keys: KeySchema, channel_prefix: str = CHANNEL_PREFIX) -> dict[str, list[str]]:
    """The ``ACL SETUSER`` rules of each user, by its name without the prefix (no
    password: ``setuser_commands`` adds one)."""
    families = keys.families()
    read_all = [f"%R~{pattern}" for pattern in families.values()]
    agent_writes = [
        f"%RW~{pattern}" for name, pattern in families.items() if name not in _AGENT_KEYS_EXCEPT
    ]
    decisions = families["pattern decisions"]
    deciding = [*agent_writes, f"%RW~{decisions}", f"%R~{families['bridges']}"]
    # Redis checks a function's declared keys as written; staging declares the pattern's
    # decision key (to refuse an id already decided), so a selector lets that one
    # function declare it. Inside, every command is still checked against the rules
    # above: staging only reads the decision key, and no other rule writes it.
    functions = [
        f"+fcall|{library.function(s)}" for library in (LIBRARY, CLUSTER_LIBRARY) for s in _STAGING
    ]
    staging = f"({' '.join([*functions, *agent_writes, f'%RW~{decisions}'])})"
    return {
        "observer": [*_BASE, *_READ, *read_all],
        "contributor": [*_BASE, *_WRITE, *agent_writes, f"%R~{decisions}", staging],
        "validator": [*_BASE, *_WRITE, *deciding],
        "steward": [*_BASE, *_WRITE, *deciding],
        "server": [
            *_BASE,
            "+@all",
            "-@dangerous",
            "+info",
            "+config|get",
            "+function|load",
            "+function|list",
            f"~{keys.prefix}*",
        ],  # fmt: skip
        "channels": [
            *_BASE,
            *_WRITE,
            "+@blocking",
            "+@scripting",
            "-function",
            f"~{channel_prefix}*",
        ],  # fmt: skip
    }


def setuser_commands(
    keys: KeySchema, channel_prefix: str = CHANNEL_PREFIX
) -> list[tuple[str, str, list[str]]]:
    """``(user, password, ACL SETUSER arguments)`` for every user, each with a new
    random password."""
    made = []
    for name, user_rules in rules(keys, channel_prefix).items():
        password = secrets.token_urlsafe(24)
        user = USER_PREFIX + name
        made.append((user, password, [user, *user_rules, f">{password}"]))
    return made
