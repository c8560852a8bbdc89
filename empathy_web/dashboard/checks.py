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


@register("redis")
def channel_layer_not_on_a_cluster(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """channels-redis cannot use a Redis Cluster (its Lua touches keys of several
    slots): under Cluster, the dashboards' channel layer needs a Redis of its own."""
    if not settings.SHARED_REDIS or settings.REDIS_SENTINELS:
        return []
    try:
        cluster = get_memory().cluster
    except UNAVAILABLE as exc:
        return [Warning(f"could not check Redis: {exc}", id="empathy.W002")]
    if cluster and settings.CHANNEL_LAYER_REDIS_URL == settings.REDIS_URL:
        return [
            Error(
                "REDIS_URL is a Redis Cluster, and the channel layer (channels-redis) cannot "
                "use one.",
                hint="Set CHANNEL_LAYER_REDIS_URL to a Redis that is not in cluster mode.",
                id="empathy.E002",
            )
        ]
    return []
