"""Validators triage staged patterns: the queue, a pattern's detail, approving,
rejecting, racing, undoing, bulk decisions, and the audit trail with its exports."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from django.test import Client

from empathy_web.dashboard.fragments import render_panels
from empathy_web.library.models import AuditEntry, PromotedPattern
from empathy_web.triage import queue
from memory import AccessTier, EmpathyOS, RedisShortTermMemory, StagedPattern, TTLStrategy
from memory import patterns as staged
from memory.tiers import Caller
from tests.redis_server import RedisServer
from tests.web.pages import everywhere

READER = Caller("reader", AccessTier.OBSERVER)  # the reads below read as an observer

pytestmark = pytest.mark.django_db

FINDER = "security_agent"


def words(markup: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def pattern(pattern_id: str, **fields: Any) -> StagedPattern:
    defaults: dict[str, Any] = {
        "agent_id": FINDER,
        "pattern_type": "security",
        "name": f"Pattern {pattern_id}",
        "description": "Refresh tokens before expiry",
        "confidence": 0.5,
    }
    return StagedPattern(pattern_id=pattern_id, **{**defaults, **fields})


@pytest.fixture
def finder(memory: RedisShortTermMemory) -> EmpathyOS:
    return EmpathyOS(FINDER, short_term_memory=memory)


@pytest.fixture
def validator(client_for: Callable[..., Client]) -> Client:
    return client_for("validator", username="vera")


def stage(redis_server: RedisServer, p: StagedPattern, ttl: float | None = None) -> StagedPattern:
    """Stage ``p`` as its agent, optionally with a TTL of ``ttl`` seconds."""
    options = {"ttls": {TTLStrategy.STAGED_PATTERNS: ttl}} if ttl else {}
    mem = RedisShortTermMemory(url=redis_server.url, **options)
    try:
        return EmpathyOS(p.agent_id, short_term_memory=mem).stage_pattern(p)
    finally:
        mem.close()


def queue_ids(client: Client, query: str = "") -> list[str]:
    page = client.get(f"/patterns/{query}")
    assert page.status_code == 200
    return re.findall(r'<tr id="pattern-[^"]+" data-pattern-id="([^"]+)"', page.content.decode())


def decided_signals(finder: EmpathyOS) -> list[dict[str, Any]]:
    return [s["data"] for s in finder.receive_signals("pattern_decided")]


# --- the queue -----------------------------------------------------------------------


def test_the_queue_sorts_by_ttl_by_default_and_by_confidence_age_or_type(
    memory, redis_server, validator
):
    stage(redis_server, pattern("late", confidence=0.9, pattern_type="style"))
    time.sleep(0.01)
    stage(redis_server, pattern("soon", confidence=0.2, pattern_type="security"), ttl=1800)
    time.sleep(0.01)
    stage(redis_server, pattern("mid", confidence=0.5, pattern_type="perf"), ttl=7200)

    assert queue_ids(validator) == ["soon", "mid", "late"]
    assert queue_ids(validator, "?sort=confidence") == ["late", "mid", "soon"]
    assert queue_ids(validator, "?sort=age") == ["late", "soon", "mid"]
    assert queue_ids(validator, "?sort=type") == ["mid", "soon", "late"]


def test_sorting_by_confidence_or_age_reads_every_staged_pattern(
    memory, redis_server, validator, monkeypatch
):
    monkeypatch.setattr(queue, "SCAN_LIMIT", 3)  # as if thousands were staged
    for i, confidence in enumerate((0.2, 0.4, 0.3, 0.1, 0.5)):
        # Each one expires later than the last: the best is the last to expire.
        stage(redis_server, pattern(f"p{i}", confidence=confidence), ttl=3600 + i)
        time.sleep(0.002)

    page = validator.get("/patterns/?sort=confidence")
    assert queue_ids(validator, "?sort=confidence") == ["p4", "p1", "p2", "p0", "p3"]
    assert "looked at the first" not in words(page.content.decode())
    assert queue_ids(validator, "?sort=age") == ["p0", "p1", "p2", "p3", "p4"]
    # Filtered, they still reach every pattern; only the order by type reads at most
    # SCAN_LIMIT, and says so.
    filtered = validator.get("/patterns/?sort=confidence&type=security")
    assert queue_ids(validator, "?sort=confidence&type=security") == ["p4", "p1", "p2", "p0", "p3"]
    assert "looked at the first" not in words(filtered.content.decode())
    by_type = validator.get("/patterns/?sort=type")
    assert len(queue_ids(validator, "?sort=type")) == 3
    assert "this view looked at the first 3 staged patterns in its order (expiring soonest)" in (
        words(by_type.content.decode())
    )


def follow(client: Client, query: str) -> list[tuple[list[str], str]]:
    """Every page from ``query`` on, following "Next page": each page's ids and text."""
    pages = []
    url = f"/patterns/{query}"
    while url:
        body = client.get(url).content.decode()
        ids = re.findall(r'<tr id="pattern-[^"]+" data-pattern-id="([^"]+)"', body)
        pages.append((ids, words(body)))
        more = re.search(r'<a class="more" href="([^"]+)"', body)
        url = "/patterns/" + html.unescape(more.group(1)) if more else None
    return pages


@pytest.mark.parametrize("sort", ["ttl", "confidence", "age"])
def test_filtered_pages_reach_every_match_a_search_budget_at_a_time(
    memory, redis_server, validator, monkeypatch, sort
):
    monkeypatch.setattr(queue, "PAGE", 2)
    monkeypatch.setattr(queue, "SCAN_BUDGET", 3)  # as if a match were rare among thousands
    for i in range(8):  # later ones expire later, are more confident, were staged later
        kind = "security" if i % 2 == 0 else "style"
        stage(redis_server, pattern(f"p{i}", pattern_type=kind, confidence=0.1 + i / 10), 3600 + i)
        time.sleep(0.002)

    pages = follow(validator, f"?sort={sort}&type=security")
    progress = "This page searched 3 staged patterns and stopped there"
    found = [(ids, progress in text) for ids, text in pages]
    if sort == "confidence":  # p7 p6 p5 | p4 p3 p2 | p1 p0
        assert found == [(["p6"], True), (["p4", "p2"], False), (["p0"], False)]
    else:  # p0 p1 p2 | p3 p4 p5 | p6 p7
        assert found == [(["p0", "p2"], False), (["p4"], True), (["p6"], False)]


def test_the_queue_filters_by_type_agent_team_and_text(memory, redis_server, validator):
    stage(redis_server, pattern("a1", pattern_type="security", team="red"))
    stage(redis_server, pattern("a2", pattern_type="style", description="tabs not spaces"))
    stage(redis_server, pattern("b1", agent_id="other_agent", team="blue"))

    assert queue_ids(validator, "?type=style") == ["a2"]
    assert sorted(queue_ids(validator, "?agent=other_agent")) == ["b1"]
    assert queue_ids(validator, "?team=red") == ["a1"]
    assert queue_ids(validator, "?q=TABS") == ["a2"]
    assert "No staged pattern matches these filters." in words(
        validator.get("/patterns/?type=nothing").content.decode()
    )


def test_each_row_counts_down_and_is_urgent_under_an_hour(memory, redis_server, validator):
    stage(redis_server, pattern("soon"), ttl=1800)
    stage(redis_server, pattern("later"))
    page = validator.get("/patterns/").content.decode()
    soon = re.search(r'<tr id="pattern-soon"[^>]*>.*?</tr>', page, re.S).group(0)
    later = re.search(r'<tr id="pattern-later"[^>]*>.*?</tr>', page, re.S).group(0)
    assert 'class="urgent"' in soon and 'class="urgent"' not in later
    assert 0 < int(re.search(r'data-ttl-ms="(\d+)"', soon).group(1)) <= 1800 * 1000
    assert "js/patterns.js" in page  # the countdown and keyboard


def test_a_pattern_that_expires_undecided_leaves_with_a_note(memory, redis_server, validator):
    stage(redis_server, pattern("fleeting"), ttl=0.3)
    stage(redis_server, pattern("staying"))
    time.sleep(0.45)
    page = validator.get("/patterns/").content.decode()
    assert queue_ids(validator) == ["staying"]
    assert "Pattern fleeting expired before anyone decided" in words(page)
    assert "1 expired undecided in the last 24 h" in words(page)


def test_the_live_panel_is_rebuilt_from_the_same_query(memory, redis_server):
    stage(redis_server, pattern("x1", pattern_type="style"))
    stage(redis_server, pattern("x2", pattern_type="security"))
    fragment = render_panels(
        ["pattern-queue"], {"type": "style"}, everywhere("vera", AccessTier.VALIDATOR), "tok"
    )
    assert fragment.strip().startswith('<section id="pattern-queue" hx-swap-oob="true">')
    assert "pattern-x1" in fragment and "pattern-x2" not in fragment
    assert "/patterns/x1/approve/" in fragment
    observer = render_panels(["pattern-queue"], {}, everywhere("olga", AccessTier.OBSERVER), "tok")
    assert "pattern-x1" in observer and "/approve/" not in observer


def test_the_page_shows_the_keys(memory, validator):
    page = words(validator.get("/patterns/").content.decode())
    for key in ("j / k", "a approve", "r reject", "u undo", "? show the keys"):
        assert key in page


# --- detail --------------------------------------------------------------------------


def test_the_detail_shows_the_pattern_highlighted_with_its_provenance(
    memory, redis_server, client_for
):
    observer = client_for("observer")
    stage(
        redis_server,
        pattern(
            "jwt",
            name="JWT refresh",
            code="def refresh(token):\n    return token.renew()\n",
            context={"language": "python", "file": "auth.py"},
            confidence=0.85,
            team="red",
            session_id="s-42",
        ),
    )
    page = observer.get("/patterns/jwt/").content.decode()
    text = words(page)
    assert "JWT refresh" in text
    assert "Refresh tokens before expiry" in text
    assert '<span style="' in page and "refresh" in text  # Pygments' markup
    assert "auth.py" in text and "0.85" in text
    for provenance in ("Agent security_agent", "Team red", "Session s-42", "Staged at"):
        assert provenance in text
    assert "/patterns/jwt/approve/" not in page  # observers only look


def test_the_detail_shows_the_nearest_library_patterns_and_flags_a_duplicate(
    memory, redis_server, validator
):
    code = "def refresh(token):\n    return token.renew()\n"
    for i, (name, body) in enumerate(
        [("JWT refresh", code), ("Other", "print(1)\n"), ("Third", "x = 2\n"), ("Far", "y\n")]
    ):
        PromotedPattern.objects.create(
            pattern_id=f"lib-{i}",
            name=name,
            pattern_type="security",
            description="Refresh tokens before expiry",
            code=body,
            confidence=0.9,
            agent_id=FINDER,
        )
    stage(redis_server, pattern("jwt", name="JWT refresh", code=code.replace("renew", "renew2")))
    page = validator.get("/patterns/jwt/").content.decode()
    assert page.count('class="match"') == 3
    assert "Likely duplicate" in words(page)
    assert re.search(r'id="match-1".*?lib-0.*?class="score">0\.9\d', page, re.S)
    assert "library/lib-0" in html.unescape(words(page))  # the unified diff's header

    stage(redis_server, pattern("fresh", name="Something else", description="unrelated"))
    assert "Likely duplicate" not in words(validator.get("/patterns/fresh/").content.decode())


def test_the_detail_of_a_decided_pattern_says_who_decided(memory, redis_server, validator):
    stage(redis_server, pattern("p1"))
    validator.post("/patterns/p1/reject/", {"reason": "too vague"})
    text = words(validator.get("/patterns/p1/").content.decode())
    assert "already rejected by vera" in text and "too vague" in text


# --- deciding ------------------------------------------------------------------------


def test_approving_promotes_into_the_library_and_tells_the_agent(
    memory, redis_server, validator, finder
):
    stage(
        redis_server,
        pattern(
            "p1",
            code="x = 1",
            context={"file": "a.py"},
            confidence=0.8,
            interests=["auth"],
            team="red",
            session_id="s-1",
        ),
    )
    response = validator.post("/patterns/p1/approve/", {"note": "solid"})

    assert (response.status_code, response["Location"]) == (302, "/patterns/")
    row = PromotedPattern.objects.get(pattern_id="p1")
    assert (row.name, row.pattern_type, row.code, row.confidence) == (
        "Pattern p1",
        "security",
        "x = 1",
        0.8,
    )
    assert (row.context, row.interests, row.team, row.session_id) == (
        {"file": "a.py"},
        ["auth"],
        "red",
        "s-1",
    )
    assert (row.agent_id, row.promoted_by.username, row.note) == (FINDER, "vera", "solid")
    assert row.staged_at is not None and row.promoted_at is not None
    assert staged.get_staged(memory, Caller("x", AccessTier.OBSERVER), "p1") is None
    assert queue_ids(validator) == []
    assert decided_signals(finder) == [
        {"pattern_id": "p1", "outcome": "promoted", "reason": "solid", "by": "vera"}
    ]
    library = words(validator.get("/library/").content.decode())
    assert "Pattern p1" in library and "promoted by vera" in library


def test_rejecting_needs_a_reason_and_tells_the_agent_why(memory, redis_server, validator, finder):
    stage(redis_server, pattern("p1"))

    refused = validator.post("/patterns/p1/reject/", {"reason": "   "})
    assert refused.status_code == 400
    assert "needs a reason" in words(refused.content.decode())
    assert queue_ids(validator) == ["p1"]
    assert AuditEntry.objects.count() == 0

    response = validator.post("/patterns/p1/reject/", {"reason": "duplicate of lib-3"})
    assert response.status_code == 302
    assert queue_ids(validator) == []
    assert not PromotedPattern.objects.exists()
    assert decided_signals(finder) == [
        {"pattern_id": "p1", "outcome": "rejected", "reason": "duplicate of lib-3", "by": "vera"}
    ]


@pytest.mark.parametrize("tier", ["observer", "contributor"])
@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/patterns/p1/approve/", {"note": "sneaky"}),
        ("/patterns/p1/reject/", {"reason": "sneaky"}),
        ("/patterns/p1/undo/", {}),
        ("/patterns/bulk/", {"action": "approve", "pattern_id": "p1"}),
    ],
)
def test_crafted_posts_below_validator_get_403_and_change_nothing(
    memory, redis_server, finder, client_for, tier, path, data
):
    client = client_for(tier)
    stage(redis_server, pattern("p1"))
    assert client.post(path, data).status_code == 403
    assert staged.get_staged(memory, Caller("x", AccessTier.OBSERVER), "p1") is not None
    assert staged.decision(memory, READER, "p1") is None
    assert not PromotedPattern.objects.exists() and not AuditEntry.objects.exists()
    assert decided_signals(finder) == []


@pytest.mark.parametrize("tier", ["validator", "steward"])
def test_validators_and_stewards_decide(memory, redis_server, client_for, tier):
    client = client_for(tier)
    stage(redis_server, pattern("p1"))
    assert client.post("/patterns/p1/approve/").status_code == 302
    assert PromotedPattern.objects.get().promoted_by.username == tier


def test_of_two_validators_deciding_at_once_exactly_one_decision_is_kept(
    memory, redis_server, monkeypatch, client_for
):
    """Bob's whole request lands between Vera's last look and her atomic decision: both
    passed every check in the web, and the library's script picks one."""
    vera, bob = client_for("validator", username="vera"), client_for("validator", username="bob")
    stage(redis_server, pattern("p1"))
    real_decide = staged.decide
    answers = {}

    def racing(memory, caller, pattern_id, decision, reason="", **options):
        if caller.user_id == "vera" and "bob" not in answers:
            answers["bob"] = bob.post("/patterns/p1/reject/", {"reason": "not general"})
        return real_decide(memory, caller, pattern_id, decision, reason, **options)

    monkeypatch.setattr(staged, "decide", racing)
    answers["vera"] = vera.post("/patterns/p1/approve/", {"note": "ship it"})

    assert answers["bob"].status_code == 302
    assert answers["vera"].status_code == 409
    said = words(answers["vera"].content.decode())
    assert "Pattern p1 was already rejected by bob" in said and "not general" in said
    assert not PromotedPattern.objects.exists()
    assert list(AuditEntry.objects.values_list("actor_name", "action")) == [
        ("bob", "pattern.reject")
    ]
    assert staged.decision(memory, READER, "p1")["by"] == "bob"


def test_deciding_a_decided_pattern_again_says_who_decided_and_what(
    memory, redis_server, validator, client_for
):
    stage(redis_server, pattern("p1"))
    other = client_for("steward", username="stella")
    assert other.post("/patterns/p1/approve/", {"note": "good"}).status_code == 302
    late = validator.post("/patterns/p1/reject/", {"reason": "meh"})
    assert late.status_code == 409
    assert "already approved by stella" in words(late.content.decode())
    assert PromotedPattern.objects.count() == 1
    assert AuditEntry.objects.count() == 1


# --- undo ----------------------------------------------------------------------------


def test_undoing_an_approval_restages_it_with_its_remaining_ttl(
    memory, redis_server, validator, finder
):
    stage(redis_server, pattern("p1"), ttl=1800)
    [before] = staged.staged_ttl_ms(memory, READER, ["p1"])
    validator.post("/patterns/p1/approve/")
    page = validator.get("/patterns/").content.decode()
    assert 'id="undo-form"' in page and "/patterns/p1/undo/" in page

    response = validator.post("/patterns/p1/undo/")

    assert response.status_code == 302
    assert queue_ids(validator) == ["p1"]
    assert not PromotedPattern.objects.exists()
    [after] = staged.staged_ttl_ms(memory, READER, ["p1"])
    assert 0 < after <= before
    assert staged.decision(memory, READER, "p1") is None
    undo = AuditEntry.objects.get(action="pattern.undo")
    assert undo.details["before"]["state"] == "promoted"
    assert undo.details["after"]["state"] == "staged"
    assert [s["outcome"] for s in decided_signals(finder)] == ["promoted", "undone"]
    assert 'id="undo-form"' not in validator.get("/patterns/").content.decode()
    # it can be decided again
    assert validator.post("/patterns/p1/reject/", {"reason": "second look"}).status_code == 302


def test_undoing_a_rejection_restages_it(memory, redis_server, validator):
    stage(redis_server, pattern("p1"))
    validator.post("/patterns/p1/reject/", {"reason": "hasty"})
    assert validator.post("/patterns/p1/undo/").status_code == 302
    assert queue_ids(validator) == ["p1"]


def test_only_the_validator_who_decided_can_undo(memory, redis_server, validator, client_for):
    stage(redis_server, pattern("p1"))
    validator.post("/patterns/p1/approve/")
    bob = client_for("validator", username="bob")
    response = bob.post("/patterns/p1/undo/")
    assert response.status_code == 409
    assert "only vera can undo that" in words(response.content.decode())
    assert PromotedPattern.objects.count() == 1
    assert 'id="undo-form"' not in bob.get("/patterns/").content.decode()


# --- bulk ----------------------------------------------------------------------------


def test_bulk_decides_each_atomically_and_says_which_succeeded(
    memory, redis_server, validator, finder, client_for
):
    for pattern_id in ("b1", "b2", "b3"):
        stage(redis_server, pattern(pattern_id))
    client_for("steward", username="stella").post("/patterns/b2/approve/")

    response = validator.post(
        "/patterns/bulk/",
        {"action": "reject", "pattern_id": ["b1", "b2", "b3"], "reason": "out of scope"},
        follow=True,
    )

    text = words(response.content.decode())
    assert "Rejected 2 of 3: b1, b3." in text
    assert "Not rejected: Pattern b2 was already approved by stella" in text
    assert queue_ids(validator) == []
    rows = AuditEntry.objects.filter(action="pattern.bulk_reject")
    assert sorted(rows.values_list("target", flat=True)) == ["b1", "b3"]
    assert len({row.details["batch"] for row in rows}) == 1
    assert all(row.details["reason"] == "out of scope" for row in rows)
    assert sorted(s["pattern_id"] for s in decided_signals(finder)) == ["b1", "b2", "b3"]


def test_bulk_approve_promotes_each(memory, redis_server, validator):
    for pattern_id in ("b1", "b2"):
        stage(redis_server, pattern(pattern_id))
    validator.post("/patterns/bulk/", {"action": "approve", "pattern_id": ["b1", "b2"]})
    assert sorted(PromotedPattern.objects.values_list("pattern_id", flat=True)) == ["b1", "b2"]


def test_bulk_reject_without_a_reason_changes_nothing(memory, redis_server, validator):
    stage(redis_server, pattern("b1"))
    response = validator.post("/patterns/bulk/", {"action": "reject", "pattern_id": ["b1"]})
    assert response.status_code == 400
    assert queue_ids(validator) == ["b1"]
    assert not AuditEntry.objects.exists()


# --- audit ---------------------------------------------------------------------------


def test_every_decision_is_audited_with_before_and_after(memory, redis_server, validator):
    stage(redis_server, pattern("p1", team="red"))
    stage(redis_server, pattern("p2"))
    validator.post("/patterns/p1/approve/", {"note": "good"})
    validator.post("/patterns/p2/reject/", {"reason": "bad"})

    approve, reject = AuditEntry.objects.order_by("pk")
    assert (approve.actor_name, approve.tier, approve.action, approve.target) == (
        "vera",
        "VALIDATOR",
        "pattern.approve",
        "p1",
    )
    assert approve.details["reason"] == "good"
    assert approve.details["before"]["state"] == "staged"
    assert approve.details["before"]["pattern"]["team"] == "red"
    assert approve.details["after"]["state"] == "promoted"
    assert (reject.action, reject.details["reason"], reject.details["after"]["state"]) == (
        "pattern.reject",
        "bad",
        "rejected",
    )
    redis.Redis.from_url(redis_server.url).flushall()  # every TTL'd record is gone
    assert AuditEntry.objects.count() == 2


@pytest.fixture
def audited(memory, redis_server, validator, client_for: Callable[..., Client]) -> Client:
    stage(redis_server, pattern("p1"))
    stage(redis_server, pattern("p2"))
    validator.post("/patterns/p1/approve/", {"note": "good, with a comma"})
    validator.post("/patterns/p2/reject/", {"reason": 'says "no"\non two lines'})
    return client_for("steward", username="stella")


def test_stewards_export_the_audit_as_csv(audited):
    response = audited.get("/admin/library/auditentry/export.csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(r["actor"], r["tier"], r["action"], r["target"]) for r in rows] == [
        ("vera", "VALIDATOR", "pattern.approve", "p1"),
        ("vera", "VALIDATOR", "pattern.reject", "p2"),
    ]
    assert rows[0]["reason"] == "good, with a comma"
    assert rows[1]["reason"] == 'says "no"\non two lines'
    assert json.loads(rows[0]["before"])["state"] == "staged"
    assert json.loads(rows[0]["after"])["state"] == "promoted"


@pytest.mark.parametrize("start", ["=", "+", "-", "@"])
def test_the_csv_export_neutralises_cells_a_spreadsheet_would_run(
    memory, redis_server, validator, client_for, start
):
    stage(redis_server, pattern("p1"))
    reason = f'{start}HYPERLINK("http://example.invalid","x")'
    validator.post("/patterns/p1/reject/", {"reason": reason})
    response = client_for("steward", username="stella").get("/admin/library/auditentry/export.csv")
    [row] = csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))
    assert row["reason"] == "'" + reason


def test_cells_that_begin_with_a_tab_or_return_are_neutralised_too():
    from empathy_web.library.export import spreadsheet_safe

    assert spreadsheet_safe("\t=1") == "'\t=1"
    assert spreadsheet_safe("\r=1") == "'\r=1"
    assert spreadsheet_safe("plain -1") == "plain -1"


def test_stewards_export_the_filtered_audit_as_json_lines(audited):
    response = audited.get("/admin/library/auditentry/export.jsonl?action=pattern.reject")
    assert response.status_code == 200
    lines = b"".join(response.streaming_content).decode().splitlines()
    records = [json.loads(line) for line in lines]
    assert [(r["action"], r["target"], r["reason"]) for r in records] == [
        ("pattern.reject", "p2", 'says "no"\non two lines')
    ]
    assert records[0]["after"] == {"state": "rejected", "reason": 'says "no"\non two lines'}


def test_stewards_browse_and_filter_the_audit_in_the_admin(audited):
    page = audited.get("/admin/library/auditentry/?action=pattern.approve")
    assert page.status_code == 200
    text = words(page.content.decode())
    assert "pattern.approve" in text and "Export CSV" in text and "Export JSON lines" in text


@pytest.mark.parametrize("tier", ["observer", "contributor", "validator"])
def test_only_stewards_export_the_audit(audited, client_for, tier):
    client = client_for(tier, username=f"{tier}-2")
    for fmt in ("csv", "jsonl"):
        response = client.get(f"/admin/library/auditentry/export.{fmt}")
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
