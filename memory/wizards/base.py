"""``BaseWizard``: an analysis that runs as an agent of short-term memory.

A wizard is an agent: it has its own id and access tier, and every write it makes goes
through an ``EmpathyOS`` with that identity, so tier checks and events apply as they do
for any agent. On top of that it caches its analyses in working memory, shares context
with other wizards, and stages the patterns it discovers for a validator.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from .. import limits
from ..codec import check_id
from ..empathy_os import EmpathyOS
from ..exceptions import InvalidValue, UnserialisableValue
from ..patterns import StagedPattern
from ..redis_memory import RedisShortTermMemory
from ..sessions import TeamSession
from ..tiers import AccessTier, Caller

logger = logging.getLogger("memory")

#: The team session through which wizards share context with one another.
SHARED_SESSION_ID = "wizards"

_CACHE_KEY_PREFIX = "analysis:"


def _snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class BaseWizard:
    """An analysis wizard that acts as an agent of short-term memory.

    ``short_term_memory`` is the memory to cache, share and stage in. Without one (the
    default) the wizard still analyses, but it remembers nothing: ``analyze_with_cache``
    runs the analysis every time, ``share_context`` does nothing, ``get_shared_context``
    returns None and ``stage_discovered_pattern`` checks the pattern and returns None.
    Unlike ``EmpathyOS``, a wizard never connects to Redis on its own.

    ``wizard_id`` is the wizard's agent id (default: the class name in snake case, so
    every ``SecurityAnalysisWizard`` is ``security_analysis_wizard`` and instances in
    different processes share one cache). ``access_tier`` is CONTRIBUTOR by default.
    ``max_runs_per_minute`` limits the analyses ``analyze_with_cache`` runs for this
    wizard id (across processes, counted in Redis; cache hits are free): one over the
    limit raises ``RateLimited``. None (the default) sets no limit.

    Subclasses implement ``analyze``; they may override ``prepare_context`` to check
    and normalise their input, and ``cache_identity`` to say what, besides the input,
    a cached result depends on.
    """

    #: Bump in a subclass when its results change shape, so old cache entries are unused.
    version = "1"

    def __init__(
        self,
        short_term_memory: RedisShortTermMemory | None = None,
        *,
        wizard_id: str | None = None,
        access_tier: AccessTier = AccessTier.CONTRIBUTOR,
        shared_session_id: str = SHARED_SESSION_ID,
        max_runs_per_minute: int | None = None,
    ) -> None:
        if max_runs_per_minute is not None and (
            isinstance(max_runs_per_minute, bool)
            or not isinstance(max_runs_per_minute, int)
            or max_runs_per_minute < 1
        ):
            raise InvalidValue(
                f"max_runs_per_minute must be a positive integer or None, "
                f"not {max_runs_per_minute!r}"
            )
        self.max_runs_per_minute = max_runs_per_minute
        self.wizard_id = check_id(wizard_id or _snake_case(type(self).__name__), "wizard_id")
        self.access_tier = AccessTier(access_tier)
        self.shared_session_id = check_id(shared_session_id, "shared_session_id")
        self.short_term_memory = short_term_memory
        self.agent: EmpathyOS | None = None
        if short_term_memory is not None:
            self.agent = EmpathyOS(self.wizard_id, short_term_memory, self.access_tier)
        self._stats = {"analyses_run": 0, "cache_hits": 0, "cache_misses": 0}

    @property
    def has_memory(self) -> bool:
        """True when the wizard has a short-term memory to cache, share and stage in."""
        return self.agent is not None

    @property
    def stats(self) -> dict[str, int]:
        """Counts for ``analyze_with_cache`` calls on this instance: ``analyses_run``
        (the analysis actually ran), ``cache_hits`` and ``cache_misses``. Direct
        ``analyze`` calls bypass the cache and are not counted."""
        return dict(self._stats)

    # analysis ----------------------------------------------------------------------

    async def analyze(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """The wizard's own analysis of ``context``; subclasses implement it."""
        raise NotImplementedError(f"{type(self).__name__} does not implement analyze()")

    def prepare_context(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """Check ``context`` and return the normalised input the analysis depends on.

        Raises ``ValueError`` / ``TypeError`` for input the wizard refuses. The cache
        key is a hash of what this returns, so inputs that differ only in what it drops
        or normalises share one cache entry.
        """
        if not isinstance(context, Mapping):
            raise InvalidValue(f"context must be a mapping, not {type(context).__name__}")
        return dict(context)

    def cache_identity(self) -> dict[str, Any]:
        """What a cached result depends on besides the input: class, version, options."""
        cls = type(self)
        return {"wizard": f"{cls.__module__}.{cls.__qualname__}", "version": self.version}

    def cache_key(self, context: Mapping[str, Any]) -> str:
        """The working-memory key of the cached result for ``context``."""
        prepared = self.prepare_context(context)
        try:
            canonical = json.dumps(
                {"identity": self.cache_identity(), "context": prepared},
                sort_keys=True,
                separators=(",", ":"),
                ensure_ascii=False,
                allow_nan=False,
            )
        except (TypeError, ValueError) as exc:
            raise UnserialisableValue(f"context cannot be hashed as JSON: {exc}") from None
        # surrogatepass: a lone surrogate in the input must hash, not crash.
        digest = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
        return _CACHE_KEY_PREFIX + digest

    async def analyze_with_cache(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """``analyze(context)``, cached in the wizard's working memory.

        The key is a hash of the wizard (``cache_identity``) and its prepared input; the
        entry lives for the memory's WORKING_RESULTS TTL (1 hour by default). A second
        call with the same input returns a result equal to the first without running
        the analysis. Results go through JSON on the way in, so both calls return plain
        JSON types. A result too large to store is returned uncached, with a warning.
        A run past ``max_runs_per_minute`` raises ``RateLimited`` and does not run.
        """
        prepared = self.prepare_context(context)
        if self.agent is None:
            self._stats["analyses_run"] += 1
            return await self.analyze(prepared)

        key = self.cache_key(prepared)
        cached = self.agent.retrieve(key)
        if cached is not None:
            self._stats["cache_hits"] += 1
            return cached

        self._stats["cache_misses"] += 1
        if self.max_runs_per_minute is not None:
            limits.count_run(
                self.agent.short_term_memory,
                Caller(self.wizard_id, self.access_tier),
                self.max_runs_per_minute,
            )
        self._stats["analyses_run"] += 1
        result = await self.analyze(prepared)
        try:
            # The round trip makes the first answer equal to what later hits decode.
            result = json.loads(json.dumps(result, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise UnserialisableValue(
                f"{type(self).__name__}.analyze returned a result that is not JSON: {exc}"
            ) from None
        # An observer may read the cache other instances fill, but may not write it.
        if self.access_tier.can_write:
            try:
                self.agent.stash(key, result)
            except InvalidValue as exc:
                logger.warning("%s: result not cached: %s", self.wizard_id, exc)
        return result

    # sharing -----------------------------------------------------------------------

    def _shared_session(self, create: bool) -> TeamSession:
        assert self.short_term_memory is not None
        return TeamSession(
            self.short_term_memory,
            self.shared_session_id,
            purpose="Context shared between wizards",
            actor=self.wizard_id,
            access_tier=self.access_tier,
            create=create,
        )

    def share_context(self, key: str, value: Any) -> None:
        """Share ``value`` (JSON) under ``key`` with every other wizard.

        Shared context lives in the team session ``shared_session_id`` ("wizards" by
        default), which this wizard joins; the session, and with it the shared values,
        expires after the SESSION TTL (30 minutes) without a write. Does nothing
        without a memory. Needs the CONTRIBUTOR tier.
        """
        if self.agent is None:
            return
        # Constructing the session creates it when it has expired, so a share never
        # lands on a session that no longer exists.
        session = self._shared_session(create=True)
        session.add_agent(self.wizard_id)
        session.share(key, value)

    def get_shared_context(self, key: str) -> Any:
        """The value any wizard shared under ``key``, or None (also without a memory)."""
        if self.agent is None:
            return None
        return self._shared_session(create=False).get(key)

    # staging -----------------------------------------------------------------------

    def stage_discovered_pattern(
        self,
        pattern_id: str,
        pattern_type: str,
        name: str,
        description: str,
        confidence: float,
        code: str = "",
        context: dict[str, Any] | None = None,
    ) -> StagedPattern | None:
        """Stage a pattern this wizard discovered, for a validator to promote or reject.

        Returns the staged pattern (with ``staged_at``). Without a memory the pattern is
        still checked (bad input raises) but nothing is staged, and the result is None.
        """
        pattern = StagedPattern(
            pattern_id=pattern_id,
            agent_id=self.wizard_id,
            pattern_type=pattern_type,
            name=name,
            description=description,
            code=code,
            context={} if context is None else context,
            confidence=confidence,
        )
        if self.agent is None:
            pattern.validate()
            return None
        return self.agent.stage_pattern(pattern)

    def __repr__(self) -> str:
        where = "no memory" if self.short_term_memory is None else self.short_term_memory.mode
        return f"<{type(self).__name__} {self.wizard_id} {self.access_tier.name} {where}>"
