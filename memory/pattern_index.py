"""The staged patterns' indexes, read over every pattern shard (one on one server, eight
under Redis Cluster: ``KeySchema.pattern_shard``). Each read asks every shard for its
share of a page in one pipeline and merges the answers; index members are ordered alike
in every shard and unique across them (``memory.formats.pattern_member``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .connection import RedisConnection, queue_time, redis_errors, time_ms
from .exceptions import InvalidValue
from .formats import member_bound, parse_pattern_member
from .keys import PatternShard

SORTED_ORDERS = {"confidence": "highest confidence first", "staged_at": "staged longest ago first"}


@redis_errors
def per_shard(memory: RedisConnection, read: Callable[[Any, PatternShard], Any]) -> list[Any]:
    """``read(pipe, shard)`` for every pattern shard, in one pipeline; the answers."""
    with memory.client.pipeline(transaction=False) as pipe:
        for shard in memory.keys.pattern_shards:
            read(pipe, shard)
        return pipe.execute()


def first_members(answers: Sequence[list[bytes]], count: int, *, rev: bool = False) -> list[str]:
    """The first ``count`` index members of the shards' answers, merged in index order
    (members are ordered alike in every shard, and unique across them)."""
    merged = sorted((m for members in answers for m in members), reverse=rev)
    return [m.decode() for m in merged[:count]]


def check_cursor(cursor: object) -> str:
    """A cursor of the listings by expiry is an index member."""
    try:
        if isinstance(cursor, str):
            parse_pattern_member(cursor)
            return cursor
    except InvalidValue:
        pass
    raise InvalidValue(f"cursor {cursor!r} is not one this listing handed out")


@redis_errors
def expiry_members(
    memory: RedisConnection, cursor: str | None, now: int, limit: int
) -> tuple[list[str], str | None]:
    """Up to ``limit`` index members after ``cursor`` that expire after ``now``, and the
    cursor for the next ones (``None`` when there are none)."""
    low = member_bound(now)  # expired ones are gone
    if cursor is not None:
        low = max(low, "(" + check_cursor(cursor))
    members = staged_range(memory, low, "+", limit + 1)
    shown = members[:limit]
    return shown, shown[-1] if len(members) > limit else None


@redis_errors
def staged_range(
    memory: RedisConnection, start: str, stop: str, count: int, *, rev: bool = False
) -> list[str]:
    """The first ``count`` members of the staged index from ``start`` to ``stop`` (lex
    bounds, in Redis's ``ZRANGE ... BYLEX`` form; ``rev``: from the end), over every
    shard."""
    answers = per_shard(
        memory,
        lambda pipe, shard: pipe.execute_command(
            "ZRANGE",
            shard.patterns_staged,
            start,
            stop,
            "BYLEX",
            *(["REV"] if rev else []),
            "LIMIT",
            0,
            count,
        ),  # fmt: skip
    )
    return first_members(answers, count, rev=rev)


@redis_errors
def bodies(memory: RedisConnection, members: list[str]) -> list[bytes | None]:
    """The stored JSON behind each index member, ``None`` where the pattern is gone."""
    with memory.client.pipeline(transaction=False) as pipe:
        for member in members:
            pipe.hget(memory.keys.pattern(parse_pattern_member(member)[1]), "json")
        return pipe.execute()


@redis_errors
def sorted_members(
    memory: RedisConnection, order: str, start: int, count: int
) -> tuple[int, int, list[str]]:
    """Server time (ms), how many are staged, and ``count`` index members of ``order``
    from position ``start``."""
    if order not in SORTED_ORDERS:
        raise InvalidValue(f"order must be one of {', '.join(SORTED_ORDERS)}, not {order!r}")
    index = "patterns_by_confidence" if order == "confidence" else "patterns_by_staged_at"
    desc = order == "confidence"
    shards = memory.keys.pattern_shards
    # One shard: the page itself. Several: each shard's first start + count, merged by
    # (score, member) as Redis orders one sorted set, then the page cut from that.
    first = start if len(shards) == 1 else 0
    with memory.client.pipeline(transaction=False) as pipe:
        queue_time(pipe)
        for shard in shards:
            pipe.zcard(getattr(shard, index))
            pipe.zrange(getattr(shard, index), first, start + count - 1, desc=desc, withscores=True)
        clock, *answers = pipe.execute()
    total = sum(answers[0::2])
    scored = sorted(
        ((score, member) for ranged in answers[1::2] for member, score in ranged), reverse=desc
    )
    return time_ms(clock), total, [member.decode() for _, member in scored[start - first :][:count]]
