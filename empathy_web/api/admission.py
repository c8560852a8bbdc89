"""Who a request is, fast: the credential a bearer secret names, read from the database
once and then kept while nothing says it changed, and its rate limit.

Every agent request needs its credential, and reading it through the ORM costs more
than most calls it authorizes. So each process keeps the credentials it has read, by
secret hash, and uses a kept one only while both hold:
- the credentials stamp in Redis is the one it was read under (revoking renews the
  stamp, so every process reads again on its next request);
- it was read less than ``KEEP_SECONDS`` ago: the bound for changes made to the database
  by other means, or a revocation made while Redis was unreachable.
When the stamp cannot be read, nothing kept is used.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any

from django.conf import settings

from empathy_web.dashboard.agents_memory import UNAVAILABLE, get_memory
from empathy_web.library.credentials import Where, live, lookup, secret_digest
from empathy_web.library.models import AgentCredential
from memory.limits import count_run
from memory.tiers import Caller

KEEP_SECONDS = 10.0
KEEP_AT_MOST = 4096  # credentials per process; the least recently used go first
RATE_WINDOW = 60.0
logger = logging.getLogger("empathy_web.api")


class Kept:
    """Credentials read from the database, by secret hash, with the stamp and the
    time of their reading."""

    def __init__(self, size: int = KEEP_AT_MOST, seconds: float = KEEP_SECONDS) -> None:
        self.size = size
        self.seconds = seconds
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[str, float, AgentCredential]] = OrderedDict()

    def get(self, digest: str, stamp: str) -> AgentCredential | None:
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return None
            kept_stamp, read_at, credential = entry
            if kept_stamp != stamp or time.monotonic() - read_at >= self.seconds:
                del self._entries[digest]
                return None
            self._entries.move_to_end(digest)
            return credential

    def put(self, digest: str, stamp: str, credential: AgentCredential) -> None:
        with self._lock:
            self._entries[digest] = (stamp, time.monotonic(), credential)
            self._entries.move_to_end(digest)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


kept = Kept()


def credential_for(authorization: str | None, where: Where) -> AgentCredential:
    """The live credential of an ``Authorization`` header: kept, or read from the
    database; ``SecretRefused`` (audited) for none, or an unknown, revoked or expired
    one."""
    digest = secret_digest(authorization)
    try:
        stamp: str | None = get_memory().credentials_stamp()
    except UNAVAILABLE:
        stamp = None  # the call itself will say Redis is down; read the database
        kept.clear()
    credential = kept.get(digest, stamp) if stamp is not None else None
    if credential is None:
        credential = lookup(digest)  # read after the stamp: a revocation between renews it
        if credential is not None and credential.active and stamp is not None:
            kept.put(digest, stamp, credential)
    return live(credential, where)


def admit(authorization: str | None, where: Where) -> AgentCredential:
    """The credential of a request or tool call, counted against its rate limit:
    ``SecretRefused`` for a bad one, ``RateLimited`` past the limit."""
    credential = credential_for(authorization, where)
    limiter = Caller(f"credential-{credential.pk}", credential.access_tier)
    count_run(get_memory(), limiter, settings.API_REQUESTS_PER_MINUTE, RATE_WINDOW)
    return credential


def renew_stamp(**_: Any) -> None:
    """After revocations: every process drops the credentials it keeps. If Redis is
    unreachable, they are dropped within ``KEEP_SECONDS`` instead (and meanwhile the
    API answers nothing but 503 anyway)."""
    kept.clear()
    try:
        get_memory().renew_credentials_stamp()
    except UNAVAILABLE:
        logger.warning(
            "credentials: Redis is unreachable, so other processes drop their kept "
            "credentials within %g s rather than at once",
            KEEP_SECONDS,
        )
