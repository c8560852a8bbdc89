"""Staged patterns belong to a team (or to the whole org), decided when they are staged,
and every listing of them can be restricted to some teams: the per-team orderings hold
exactly what the global indexes hold, whatever happens to the patterns."""

from __future__ import annotations

import random
import time

import pytest

from memory import (
    AgentCoordinator,
    AlreadyDecided,
    InvalidValue,
    NotFound,
    StagedPattern,
    StateConflict,
    TTLStrategy,
)
from memory import patterns as staged
from memory.codec import decode
from memory.formats import (
    MINUTE_MS,
    SERIES_MINUTES,
    parse_pattern_member,
    parse_team_entry,
    sort_part,
    team_member,
    team_minute,
)
from memory.keys import PatternShard
from memory.tiers import AccessTier, Caller

READER = Caller("reader", AccessTier.OBSERVER)
VERA = Caller("vera", AccessTier.VALIDATOR)
TEAMS = ("red", "blue", "green")
# Ties included, so that restricted listings must break them as the global ones do.
CONFIDENCES = (0.3, 0.9, 0.5, 0.9, 0.1, 0.5, 0.75)


def stage(memory, pattern_id: str, team: str | None = None, agent: str = "finder", **fields):
    defaults = {"pattern_type": "security", "name": "JWT refresh", "description": "d"}
    pattern = StagedPattern(pattern_id, agent, team=team, **{**defaults, **fields})
    return staged.stage(memory, Caller(agent, AccessTier.CONTRIBUTOR), pattern)


def register(memory, team: str, agent: str = "finder") -> None:
    AgentCoordinator(memory, team).register_agent(agent)


# --- where the team comes from ------------------------------------------------------


def test_a_given_team_is_the_patterns_team(memory):
    register(memory, "green")
    got = stage(memory, "p1", team="red", context={"team": "blue"})
    assert got.team == "red"
    assert staged.get_staged(memory, READER, "p1").team == "red"


def test_else_the_team_its_context_names_when_that_is_a_team_id(memory):
    register(memory, "green")
    assert stage(memory, "p1", context={"team": "blue"}).team == "blue"
    assert staged.get_staged(memory, READER, "p1").team == "blue"
    for i, not_an_id in enumerate([5, "", "  ", "a/b", "x\x01", None, ["red"]]):
        assert stage(memory, f"q{i}", context={"team": not_an_id}).team == "green"


def test_else_the_one_team_its_agent_is_registered_in(memory):
    register(memory, "other", agent="someone-else")
    register(memory, "green")
    assert stage(memory, "p1").team == "green"
    assert staged.get_staged(memory, READER, "p1").team == "green"


def test_a_team_left_over_in_the_agents_own_index_is_not_one_it_is_registered_in(memory):
    register(memory, "green")
    memory.client.sadd(memory.keys.agent_teams("finder"), "ghost")
    assert stage(memory, "p1").team == "green"


def test_else_the_whole_orgs_in_no_team_or_in_several(memory):
    assert stage(memory, "p0").team is None
    register(memory, "green")
    register(memory, "blue")
    assert stage(memory, "p1").team is None
    assert staged.get_staged(memory, READER, "p1").team is None
    assert "team" not in decode(memory.client.hget(memory.keys.pattern("p1"), "json"))
    AgentCoordinator(memory, "blue").unregister_agent("finder")
    assert stage(memory, "p2").team == "green"


def test_a_decision_and_its_undo_keep_the_team(memory):
    register(memory, "green")
    stage(memory, "p1")
    staged.decide(memory, VERA, "p1", "promoted")
    record = staged.decision(memory, READER, "p1")
    assert record["pattern"]["team"] == "green"
    assert set(record) == {"decision", "by", "reason", "at", "pattern", "expires", "agent"}
    back, _ = staged.restore(memory, VERA, "p1")
    assert back.team == "green"
    assert ids(staged.list_staged(memory, READER, teams=["green"])) == ["p1"]
    assert_orderings_match(memory)


def test_deciding_for_a_team_decides_only_a_pattern_still_of_that_team(memory):
    stage(memory, "p1", team="red")
    stage(memory, "p2")
    with pytest.raises(NotFound, match="not staged in team blue"):
        staged.decide(memory, VERA, "p1", "promoted", team="blue")
    with pytest.raises(NotFound, match="org-wide"):
        staged.decide(memory, VERA, "p1", "promoted", team=None)
    with pytest.raises(NotFound):
        staged.decide(memory, VERA, "p2", "promoted", team="red")
    with pytest.raises(InvalidValue):
        staged.decide(memory, VERA, "p1", "promoted", team="a/b")
    assert staged.decide(memory, VERA, "p1", "promoted", team="red").team == "red"
    assert staged.decide(memory, VERA, "p2", "promoted", team=None).team is None
    assert_orderings_match(memory)


def test_restaging_in_another_team_moves_the_pattern(memory):
    stage(memory, "p1", team="red", confidence=0.2)
    stage(memory, "p1", team="blue", confidence=0.9)
    for order, listing in LISTINGS.items():
        assert every(listing(memory, ["red"])) == [], order
        assert every(listing(memory, ["blue"])) == ["p1"], order
    assert_orderings_match(memory)


# --- restricted listings ------------------------------------------------------------


def ids(page) -> list[str]:
    return [item[0].pattern_id if isinstance(item, tuple) else item.pattern_id for item in page]


def lister(read):
    """A listing as ``every`` pages it: read(memory, cursor, teams) -> Page."""
    return lambda memory, teams: lambda cursor: read(memory, cursor, teams)


LISTINGS = {
    "newest": lister(lambda m, c, t: staged.list_staged(m, READER, 4, c, teams=t)),
    "expiry": lister(lambda m, c, t: staged.list_by_expiry(m, READER, 4, c, teams=t)),
    "confidence": lister(lambda m, c, t: staged.list_sorted(m, READER, "confidence", 4, c, teams=t)),
    "staged_at": lister(lambda m, c, t: staged.list_sorted(m, READER, "staged_at", 4, c, teams=t)),
}  # fmt: skip


def every(list_page) -> list[str]:
    """Every pattern a listing pages through, checking no page repeats one."""
    found, cursor = [], None
    while True:
        page = list_page(cursor)
        found += ids(page)
        if page.next_cursor is None:
            assert len(found) == len(set(found)), found
            return found
        cursor = page.next_cursor


def populate(memory, count: int = 40) -> dict[str, str | None]:
    """Patterns of every team and org-wide ones; their teams by id."""
    teams = {}
    for i in range(count):
        team = (None, *TEAMS)[i % 4]
        stage(memory, f"p{i:02}", team=team, confidence=CONFIDENCES[i % len(CONFIDENCES)])
        teams[f"p{i:02}"] = team
    return teams


@pytest.mark.parametrize("order", LISTINGS)
def test_a_restricted_listing_is_the_full_one_cut_to_those_teams(memory, order):
    team_of = populate(memory)
    listing = LISTINGS[order]
    full = every(listing(memory, None))
    assert sorted(full) == sorted(team_of)
    for teams in (["red"], ["red", "blue"], [], ["nobody"], list(TEAMS), ("red", "red")):
        wanted = {None, *teams}
        expected = [pattern_id for pattern_id in full if team_of[pattern_id] in wanted]
        assert every(listing(memory, teams)) == expected, teams
        assert staged.count_staged(memory, READER, teams=teams) == len(expected)
        if order in ("confidence", "staged_at"):
            page = staged.list_sorted(memory, READER, order, 4, teams=teams)
            assert page.total == len(expected)


@pytest.mark.parametrize("order", ["expiry", "confidence", "staged_at"])
def test_a_restricted_scan_resumes_right_after_any_pattern_it_yielded(memory, order):
    team_of = populate(memory, 20)
    teams = ["red", "green"]
    full = [p.pattern_id for p, _, _ in staged.scan_staged(memory, READER, order, batch=3)]
    whole = list(staged.scan_staged(memory, READER, order, batch=3, teams=teams))
    found = [p.pattern_id for p, _, _ in whole]
    assert found == [i for i in full if team_of[i] in {None, *teams}]
    for k, (_, _, after) in enumerate(whole):
        rest = staged.scan_staged(memory, READER, order, after, 2, teams=teams)
        assert [p.pattern_id for p, _, _ in rest] == found[k + 1 :]
    scan = staged.scan_staged(
        memory, READER, order, predicate=lambda p: p.team is None, budget=5, teams=teams
    )
    assert [p.pattern_id for p, _, _ in scan] == [i for i in found[:5] if team_of[i] is None]
    assert (scan.read, scan.out_of_budget) == (5, True)


def test_restricted_cursors_and_teams_are_checked(memory):
    populate(memory, 12)
    keyset = staged.list_sorted(memory, READER, "confidence", 2, teams=["red"]).next_cursor
    offset = staged.list_sorted(memory, READER, "confidence", 2).next_cursor
    with pytest.raises(InvalidValue):
        staged.list_sorted(memory, READER, "confidence", 2, offset, teams=["red"])
    with pytest.raises(InvalidValue):
        staged.list_sorted(memory, READER, "confidence", 2, keyset)
    with pytest.raises(InvalidValue):
        staged.list_sorted(memory, READER, "staged_at", 2, keyset, teams=["red"])
    with pytest.raises(InvalidValue):
        staged.list_sorted(memory, READER, "expiry", 2, teams=["red"])
    for bad in ("red", b"red", [""], ["a/b"], [5]):
        with pytest.raises(InvalidValue):
            staged.list_staged(memory, READER, teams=bad)
    with pytest.raises(InvalidValue):
        next(staged.scan_staged(memory, READER, "staged_at", "12", teams=["red"]))
    # By expiry, restricted or not, cursors are index members: either takes the other's.
    page = staged.list_by_expiry(memory, READER, 3, teams=["red"])
    after = every(lambda c: staged.list_by_expiry(memory, READER, 5, c or page.next_cursor))
    full = every(lambda c: staged.list_by_expiry(memory, READER, 5, c))
    assert after == full[full.index(ids(page)[-1]) + 1 :]


def test_counts_of_what_expires_soon_are_restricted_too(make_memory):
    soon = make_memory(ttls={TTLStrategy.STAGED_PATTERNS: 5})
    memory = make_memory()
    for i, team in enumerate(["red", "blue", None]):
        stage(soon, f"soon-{i}", team=team)
        stage(memory, f"late-{i}", team=team)
    assert staged.count_staged(memory, READER, 10_000, teams=["red"]) == 2
    assert staged.count_staged(memory, READER, 10_000, teams=[]) == 1
    assert staged.count_staged(memory, READER, teams=["red"]) == 4
    assert staged.count_staged(memory, READER, 10_000) == 3


# --- patterns that expire undecided -------------------------------------------------


def test_expired_patterns_are_counted_and_logged_by_team(make_memory):
    # Long enough that none expires while the others are staged on a busy machine (a
    # staging sweeps the expired ones), then waited out.
    short = make_memory(ttls={TTLStrategy.STAGED_PATTERNS: 1})
    memory = make_memory()
    gone = {"g0": "red", "g1": "red", "g2": "blue", "g3": None, "g4": "t1", "g5": "t2"}
    for pattern_id, team in gone.items():
        stage(short, pattern_id, team=team)
    stage(memory, "kept", team="red")
    time.sleep(1.1)

    assert staged.prune_expired(memory, VERA) == 6
    assert staged.expired_count(memory, READER) == 6
    assert staged.expired_count(memory, READER, teams=["red"]) == 3  # with the org-wide one
    assert staged.expired_count(memory, READER, 60_000, teams=["red"]) == 3  # fields read
    assert staged.expired_count(memory, READER, teams=["blue", "t1"]) == 3
    assert staged.expired_count(memory, READER, teams=[]) == 1
    assert staged.expired_count(memory, READER, teams=["green"]) == 1
    recent = staged.recent_expired(memory, READER, teams=["blue"])
    assert sorted((e["pattern_id"], e["team"]) for e in recent) == [("g2", "blue"), ("g3", None)]
    every_one = staged.recent_expired(memory, READER)
    assert {e["pattern_id"]: e["team"] for e in every_one} == gone
    assert len(staged.recent_expired(memory, READER, 1, teams=["red"])) == 1
    assert staged.count_staged(memory, READER, teams=["red"]) == 1
    assert every(LISTINGS["confidence"](memory, ["red", "blue"])) == ["kept"]
    assert_orderings_match(memory)


def test_restaging_an_expired_pattern_counts_it_in_its_old_team(make_memory):
    short = make_memory(ttls={TTLStrategy.STAGED_PATTERNS: 0.2})
    stage(short, "p1", team="red")
    time.sleep(0.3)
    memory = make_memory()
    stage(memory, "p1", team="blue")  # staging sweeps the pattern's shard first
    assert staged.expired_count(memory, READER, teams=["red"]) == 1
    assert staged.expired_count(memory, READER, teams=["blue"]) == 0
    assert [e["team"] for e in staged.recent_expired(memory, READER)] == ["red"]
    assert every(LISTINGS["newest"](memory, ["blue"])) == ["p1"]
    assert every(LISTINGS["staged_at"](memory, ["red"])) == []
    assert_orderings_match(memory)


def test_old_counts_of_expired_patterns_by_team_leave(make_memory):
    memory = make_memory()
    stage(make_memory(ttls={TTLStrategy.STAGED_PATTERNS: 0.1}), "p1", team="red")
    shard = memory.keys.pattern_shard("p1")
    minute = memory.server_time_ms() // MINUTE_MS
    gone_at, kept_at = minute - SERIES_MINUTES - 100, minute - SERIES_MINUTES + 100
    old, kept = team_minute("red", gone_at), team_minute(None, kept_at)
    for field, at in ((old, gone_at), (kept, kept_at)):
        memory.client.hset(shard.patterns_expired_team_minute, field, 1)
        memory.client.zadd(shard.patterns_expired_team_fields, {field: at})
    time.sleep(0.2)
    assert staged.prune_expired(memory, VERA) == 1
    fields = {f.decode() for f in memory.client.hkeys(shard.patterns_expired_team_minute)}
    assert kept in fields and old not in fields and len(fields) == 3  # with red's minute and hour
    assert memory.client.zcard(shard.patterns_expired_team_fields) == 3


# --- the per-team orderings hold what the global ones hold --------------------------


def assert_orderings_match(memory) -> None:
    for shard in memory.keys.pattern_shards:
        assert_shard_orderings_match(memory.client, shard)


def assert_shard_orderings_match(client, shard: PatternShard) -> None:
    """Each per-team ordering holds a member for each member of the global index,
    built from its team entry, and every entry agrees with the global scores."""

    def scored(key: str) -> dict[str, float]:
        return {m.decode(): s for m, s in client.zrange(key, 0, -1, withscores=True)}

    members = set(scored(shard.patterns_staged))
    confidence, staged_at = (
        scored(shard.patterns_by_confidence),
        scored(shard.patterns_by_staged_at),
    )
    assert set(confidence) == set(staged_at) == members
    entries = {k.decode(): parse_team_entry(v) for k, v in client.hgetall(shard.patterns_team_of).items()}  # fmt: skip
    assert set(entries) == {parse_pattern_member(m)[1] for m in members}
    team = {m: entries[parse_pattern_member(m)[1]][0] for m in members}
    expected = {
        shard.patterns_team_expiry: {team_member(team[m], m) for m in members},
        shard.patterns_team_confidence: {
            team_member(team[m], sort_part("confidence", m, confidence=confidence[m]))
            for m in members
        },
        shard.patterns_team_staged_at: {
            team_member(team[m], sort_part("staged_at", m, staged_ms=int(staged_at[m])))
            for m in members
        },
    }
    for key, wanted in expected.items():
        assert set(scored(key)) == wanted, key
        assert set(scored(key).values()) <= {0.0}
    for member in members:
        record = client.hget(shard.pattern(parse_pattern_member(member)[1]), "json")
        if record is not None:  # (gone once it expired, until a sweep)
            assert decode(record).get("team") == team[member]


def test_the_team_orderings_always_hold_what_the_global_ones_hold(make_memory):
    rng = random.Random(20240611)
    memory = make_memory()
    short = make_memory(ttls={TTLStrategy.STAGED_PATTERNS: 0.05})
    pattern_ids = [f"p{i}" for i in range(30)]
    done = {"stage": 0, "decide": 0, "restore": 0, "expire": 0, "prune": 0}
    decided: list[str] = []
    for _ in range(150):
        op = rng.choice(["stage", "stage", "stage", "decide", "restore", "expire", "prune"])
        pattern_id = rng.choice(pattern_ids)
        if op == "decide":
            pattern_id = rng.choice(ids(staged.list_staged(memory, READER, 100)) or ["none"])
        elif op == "restore":
            pattern_id = rng.choice(decided or ["none"])
        try:
            if op == "stage":
                stage(
                    rng.choice([memory, memory, short]),
                    pattern_id,
                    team=rng.choice([None, *TEAMS]),
                    confidence=rng.choice([0.1, 0.5, 0.5, 0.9, 1.0, 0.0]),
                )
            elif op == "decide":
                staged.decide(memory, VERA, pattern_id, rng.choice(["promoted", "rejected"]), "r")
                decided.append(pattern_id)
            elif op == "restore":
                staged.restore(memory, VERA, pattern_id)
                decided.remove(pattern_id)
            elif op == "expire":
                time.sleep(0.06)
            else:
                staged.prune_expired(memory, VERA)
        except (NotFound, AlreadyDecided, StateConflict):
            continue
        done[op] += 1
        assert_orderings_match(memory)
    assert min(done.values()) > 0, done
    staged.prune_expired(memory, VERA)
    assert_orderings_match(memory)


# --- what a restricted page costs ---------------------------------------------------


def fill_teams(memory, first: int, teams: int, per_team: int) -> None:
    """``per_team`` patterns in each of ``teams`` teams from team number ``first``, and
    as many org-wide ones."""
    agent = Caller("finder", AccessTier.CONTRIBUTOR)
    for t in range(first, first + teams):
        for i in range(per_team):
            team = f"t{t:03}"
            pattern = StagedPattern(f"{team}-{i}", "finder", "fix", "n", "d", team=team)
            staged.stage(memory, agent, pattern)
    for i in range(per_team):
        staged.stage(memory, agent, StagedPattern(f"org-{first}-{i}", "finder", "fix", "n", "d"))


def cost(memory, read) -> tuple[dict[str, int], int, list[list[str]]]:
    """The commands ``read`` sent (by name), the keys they read, and each ZRANGE's
    arguments (from the slow log, which logs every command while this runs)."""
    client = memory.client
    client.config_set("slowlog-log-slower-than", 0)
    client.slowlog_reset()
    client.config_resetstat()
    try:
        read()
        stats = client.info("stats")
        calls = {
            name.removeprefix("cmdstat_"): v["calls"]
            for name, v in client.info("commandstats").items()
        }
        logged = client.slowlog_get(10_000)
    finally:
        client.config_set("slowlog-log-slower-than", 10_000)
    for name in ("config|resetstat", "info", "config|set", "slowlog|reset"):
        calls.pop(name, None)
    ranges = [
        entry["command"].decode(errors="replace").split()
        for entry in logged
        if entry["command"].upper().startswith(b"ZRANGE ")
    ]
    return calls, stats["keyspace_hits"] + stats["keyspace_misses"], ranges


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
def test_a_restricted_page_costs_its_teams_times_a_page(memory):
    fill_teams(memory, 0, 100, 30)  # 3,030 patterns in 100 teams and org-wide
    two = ["t007", "t042"]

    def page_of(teams, limit=10):
        return lambda: staged.list_sorted(memory, READER, "confidence", limit, teams=teams)

    small = cost(memory, page_of(two))
    every_team = cost(memory, page_of([f"t{t:03}" for t in range(100)]))
    fill_teams(memory, 100, 100, 30)  # 3,030 more, in other teams
    grown = cost(memory, page_of(two))
    counted = cost(memory, lambda: staged.count_staged(memory, READER, teams=two))

    calls, keys_read, ranges = small
    # One ZRANGE per listed team and the org-wide patterns, LIMIT page + 1, one ZLEXCOUNT
    # each for the total, one HGET per pattern shown, and the clock.
    assert calls == {"zrange": 3, "zlexcount": 3, "hget": 10, "time": 1}
    assert keys_read == 3 + 3 + 10
    assert all(args[-3:] == ["LIMIT", "0", "11"] for args in ranges) and len(ranges) == 3
    assert grown[:2] == small[:2]  # the same work with twice as many patterns staged
    assert every_team[0]["zrange"] == every_team[0]["zlexcount"] == 101
    assert every_team[0]["hget"] == 10
    assert counted[0] == {"zlexcount": 3, "time": 1}
