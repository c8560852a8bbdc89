"""Who a request is, fast: the credential a bearer secret names, read from the database
once and then kept, and its rate limit, which also says when it was revoked.

Every agent request needs its credential, and reading it through the ORM costs more
than most calls it authorizes. So each process keeps the credentials it has read, by
secret hash, for up to ``KEEP_SECONDS``, and every request counts against its
credential's rate limit in Redis (``memory.limits.count_run``). Revoking a credential
suspends that count for longer than anything is kept (``memory.limits.suspend``), so
the next request anywhere finds it suspended, reads the database again, and is refused:
a revocation takes effect at once in every process, at no cost to other requests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from django.conf import settings

from empathy_web.dashboard.agents_memory import UNAVAILABLE, get_memory
from empathy_web.library.credentials import Where, live, lookup, secret_digest
from empathy_web.library.models import AgentCredential
from memory import Suspended
from memory.limits import count_run, suspend
from memory.tiers import AccessTier, Caller

KEEP_SECONDS = 10.0
KEEP_AT_MOST = 4096  # credentials per process; the least recently used go first
SUSPEND_SECONDS = 6 * KEEP_SECONDS
RATE_WINDOW = 60.0
SERVER = Caller("agent-api", AccessTier.STEWARD)
logger = logging.getLogger("empathy_web.api")


class Kept:
    """Credentials read from the database, by secret hash, with when they were read."""

    def __init__(self, size: int = KEEP_AT_MOST, seconds: float = KEEP_SECONDS) -> None:
        self.size = size
        self.seconds = seconds
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[float, AgentCredential]] = OrderedDict()

    def get(self, digest: str) -> AgentCredential | None:
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return None
            read_at, credential = entry
            if time.monotonic() - read_at >= self.seconds:
                del self._entries[digest]
                return None
            self._entries.move_to_end(digest)
            return credential

    def put(self, digest: str, credential: AgentCredential) -> None:
        with self._lock:
            self._entries[digest] = (time.monotonic(), credential)
            self._entries.move_to_end(digest)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def drop(self, digest: str) -> None:
        with self._lock:
            self._entries.pop(digest, None)


kept = Kept()


def credential_for(authorization: str | None, where: Where) -> AgentCredential:
    """The live credential of an ``Authorization`` header, kept or read from the
    database; ``SecretRefused`` (audited) for none, or an unknown, revoked or expired
    one. Only ``admit`` sees a revocation another process has just made."""
    return _credential(secret_digest(authorization), where)


def _credential(digest: str, where: Where) -> AgentCredential:
    credential = kept.get(digest)
    if credential is None:
        credential = lookup(digest)
        if credential is not None and credential.active:
            kept.put(digest, credential)
    return live(credential, where)


def admit(authorization: str | None, where: Where) -> AgentCredential:
    """The credential of a request or tool call, counted against its rate limit:
    ``SecretRefused`` for a bad one (a revoked one at once), ``RateLimited`` past the
    limit."""
    digest = secret_digest(authorization)
    credential = _credential(digest, where)
    try:
        _count(credential)
    except Suspended:  # revoked, maybe after this process read it: read it again
        kept.drop(digest)
        credential = _credential(digest, where)
    return credential


def _count(credential: AgentCredential) -> None:
    limiter = Caller(limiter_id(credential.pk), credential.access_tier)
    count_run(get_memory(), limiter, settings.API_REQUESTS_PER_MINUTE, RATE_WINDOW)


def limiter_id(pk: int) -> str:
    """Whose runs a credential's requests count as (its rate limit's owner)."""
    return f"credential-{pk}"


def suspend_revoked(credentials: Iterable[AgentCredential], **_: Any) -> None:
    """After revocations: refuse their next request in every process. If Redis is
    unreachable, processes that keep one refuse it within ``KEEP_SECONDS`` instead
    (meanwhile the API answers nothing but 503 anyway)."""
    for credential in credentials:
        kept.drop(credential.secret_hash)
        try:
            suspend(get_memory(), SERVER, limiter_id(credential.pk), SUSPEND_SECONDS)
        except UNAVAILABLE:
            logger.warning(
                "credentials: Redis is unreachable, so processes that keep credential %s "
                "refuse it within %g s rather than at once",
                credential.pk,
                KEEP_SECONDS,
            )
