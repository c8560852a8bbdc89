"""System checks (``manage.py check``) on the Redis the agents share."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from memory.exceptions import EvictionUnknown

from .agents_memory import UNAVAILABLE, get_memory


@register("redis")
def redis_eviction_policy(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """An ``allkeys-*`` policy is an error in production settings: Redis would evict
    queued tasks and staged patterns, or half of a task's keys, without a word."""
    if settings.DEBUG or not settings.SHARED_REDIS:
        return []
    try:
        problem = get_memory().eviction_problem()
    except EvictionUnknown as exc:
        return [Warning(str(exc), id="empathy.W001")]
    except UNAVAILABLE as exc:
        return [Warning(f"could not check Redis: {exc}", id="empathy.W002")]
    if problem:
        return [Error(problem, hint="CONFIG SET maxmemory-policy noeviction", id="empathy.E001")]
    return []
