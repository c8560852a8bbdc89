"""Whatever agents write is shown as text, never run as markup.

Agents write hostile strings through the library into every field a page shows: ids,
keys, values, signal data, pattern text, task descriptions and results, session
purposes and context. Each page must show them (escaped), and its HTML must hold no
element or attribute that could run script, beyond the page's own htmx script tag and
sparkline SVGs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from empathy_web.dashboard.panels import PANELS
from empathy_web.dashboard.templatetags.dashboard import EXCERPT_CHARS
from empathy_web.library.models import PromotedPattern
from memory import (
    AccessTier,
    AgentCoordinator,
    AgentTask,
    EmpathyOS,
    InvalidValue,
    RedisShortTermMemory,
    StagedPattern,
    TeamSession,
)
from memory.codec import check_id
from tests.web.test_permissions import seed

pytestmark = pytest.mark.django_db

CORPUS = {
    "img": "<img src=x onerror=alert(1)>",
    "script": '"><script>alert(1)</script>',
    "js-url": "javascript:alert(1)",
    "template": "{{7*7}}",
    "pre-svg": "</pre><svg onload=alert(1)>",
    "quotes": "'\";--",
    "rtl": "\u202eexe.txt",
    "long": "<svg onload=alert(1)>" * 2500,
}

# Substrings that only ever appear in the HTML if something was not escaped.
RAW = ("<img src=x", "<script>alert", "<svg onload", "'\";--")

# Elements that can run script or load something; only the page's own may appear.
ACTIVE = {"script", "svg", "img", "iframe", "object", "embed", "frame", "base", "style", "math"}
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "data", "poster"}
# The pages' own SVGs, by the start of their labels: sparklines, and the task charts.
SPARKLINES = (
    "signals per minute:",
    "queued tasks:",
    "Tasks of the teams below,",
    "Tasks completed and failed,",
)

SLASHED = CORPUS["script"]  # a valid library id that holds a "/"


# Long ids stop short of the 200-character limit: ids at the limit are tested apart.
LONG_ID = 180


def ident(hostile: str, what: str) -> str | None:
    """``hostile`` as an id of kind ``what``, shortened to fit; None where the library
    refuses it (braces). Ids with "/" are kept apart: see the slash tests below."""
    value = f"{hostile[: LONG_ID - len(what) - 1]} {what}"
    try:
        check_id(value)
    except InvalidValue:
        return None
    return None if "/" in value else value


def as_json(value: str) -> str:
    """How a string shows inside a pretty-printed JSON ``<pre>``."""
    return json.dumps(value, ensure_ascii=False)[1:-1]


@dataclass(frozen=True)
class Planted:
    """One corpus string, written by one agent into everything an agent can write."""

    name: str
    agent: str
    team: str
    session: str
    texts: dict[str, list[str]]  # page -> the texts it must show


def plant(memory: RedisShortTermMemory, name: str, hostile: str) -> Planted:
    def text(what: str, limit: int = 1_000_000) -> str:
        return f"{hostile} {what}"[-limit:]

    def the_id(what: str) -> str:
        return ident(hostile, what) or f"{name}-{what}"

    agent, team, session_id = the_id("agent"), the_id("team"), the_id("session")
    signal_type, target = the_id("signal"), the_id("target")
    me = EmpathyOS(agent, memory)

    key, value = text("key", 512), text("value")
    me.stash(key, {"note": value})
    data = text("data")
    me.send_signal(signal_type, {"data": data}, target)

    staged = StagedPattern(
        the_id("pattern"),
        agent,
        the_id("kind"),
        text("name"),
        text("description"),
        code=text("code"),
        context={"why": text("context")},
        team=team,
    )
    me.stage_pattern(staged)
    promoted = StagedPattern(
        the_id("promoted"), agent, the_id("kind"), text("pname"), text("pdesc"), code=text("pcode")
    )
    me.stage_pattern(promoted)
    validator = EmpathyOS(f"validator-{name}", memory, AccessTier.VALIDATOR)
    decided = validator.promote_pattern(promoted.pattern_id)
    PromotedPattern.objects.create(
        pattern_id=decided.pattern_id,
        name=decided.name,
        pattern_type=decided.pattern_type,
        description=decided.description,
        code=decided.code or "",
        confidence=decided.confidence,
        agent_id=decided.agent_id,
        context=decided.context,
    )

    coordinator = AgentCoordinator(memory, team, actor=agent)
    capability = the_id("capability")
    coordinator.register_agent(agent, [capability])
    task_type = the_id("type")
    done = AgentTask(the_id("done"), task_type, text("done description"))
    queued = AgentTask(the_id("queued"), task_type, text("description"), context={"c": hostile})
    coordinator.add_task(done)
    coordinator.add_task(queued)
    claimed = coordinator.claim_task(agent, task_type)
    assert claimed is not None and claimed.task_id == done.task_id
    coordinator.complete_task(done.task_id, {"result": text("result")})

    purpose = text("purpose", 2000)
    session = TeamSession(memory, session_id, purpose, actor=agent)
    session.add_agent(agent)
    context_key, context_value = text("context key", 512), text("context value")
    session.share(context_key, context_value)
    session_data = text("session data")
    session.signal(signal_type, {"data": session_data})

    texts = {
        "overview": [team],
        "signals": [signal_type, agent, target, as_json(data), session_id, as_json(session_data)],
        "patterns": [staged.name, staged.pattern_id, staged.pattern_type, agent]
        + [staged.description, staged.code],
        "library": [decided.name, decided.pattern_type, decided.description, decided.code, agent],
        "agents": [team, agent, capability],
        "sessions": [session_id, purpose, agent],
        "tasks": [team, queued.task_id, done.task_id, task_type, queued.description]
        + [done.description, agent, as_json(text("result"))],
        "session": [session_id, purpose, agent, context_key, as_json(context_value)]
        + [signal_type, as_json(session_data)],
        "memory": [agent, key, as_json(value)],
    }
    return Planted(name, agent, team, session_id, texts)


class Markup(HTMLParser):
    """The elements of a page, and any script written inline."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.inline_script: list[str] = []
        self._in_script = False
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_script.append(data)


def assert_inert(html: str, own_scripts: list[dict], sparklines: int | None = None) -> None:
    """No hostile markup: only the page's own scripts and SVGs (``sparklines`` of them,
    when given; the task board has a chart when it shows a team), no event handler
    attributes, no javascript: URLs, and none of the raw hostile substrings."""
    for raw in RAW:
        assert raw not in html
    markup = Markup(html)
    assert markup.inline_script == []
    scripts = [attrs for tag, attrs in markup.elements if tag == "script"]
    assert scripts == own_scripts
    svgs = [attrs for tag, attrs in markup.elements if tag == "svg"]
    assert sparklines is None or len(svgs) == sparklines
    assert all(svg.get("role") == "img" for svg in svgs)
    assert all((svg.get("aria-label") or "").startswith(SPARKLINES) for svg in svgs)
    others = [tag for tag, _ in markup.elements if tag in ACTIVE - {"script", "svg"}]
    assert others == []
    for tag, attrs in markup.elements:
        for name, value in attrs.items():
            assert not name.startswith("on"), f"<{tag} {name}=...>"
            if name in URL_ATTRIBUTES and value:
                assert not value.strip().lower().startswith("javascript:"), f"<{tag} {name}>"


def assert_shown(html: str, texts: list[str]) -> None:
    """Each text is on the page, escaped exactly once (its excerpt, where a list shows
    an excerpt of a long value)."""
    for text in texts:
        shown = escape(text) in html or escape(text[: EXCERPT_CHARS // 2]) in html
        assert shown, f"not shown: {text[:80]!r}"


@pytest.fixture
def planted(memory) -> dict[str, Planted]:
    return {name: plant(memory, name, hostile) for name, hostile in CORPUS.items()}


@pytest.fixture
def own_scripts(db) -> list[dict]:
    """The script tags every page has of its own (htmx and the like), read off the
    login page: all static files, none inline."""
    page = Client().get(reverse("login")).content.decode()
    scripts = [attrs for tag, attrs in Markup(page).elements if tag == "script"]
    assert scripts
    assert all((attrs.get("src") or "").startswith("/static/") for attrs in scripts)
    return scripts


# Scripts of its own a page loads besides every page's: the queue's keyboard and countdowns.
PAGE_SCRIPTS = {"patterns": [{"src": "/static/js/patterns.js", "defer": None}]}
LISTS = ["overview", "signals", "patterns", "library", "agents", "sessions"]
DETAILS = ["tasks", "session", "memory"]


def _detail_path(kind: str, planted: Planted) -> str:
    if kind == "tasks":
        return reverse("tasks") + "?" + urlencode({"team": planted.team})
    if kind == "session":
        return reverse("session_detail", args=[planted.session])
    return reverse("working_memory") + "?" + urlencode({"agent": planted.agent})


INJECTED = [
    CORPUS["img"],
    CORPUS["script"],
    CORPUS["pre-svg"],
    '<a href=" JavaScript:alert(1)">x</a>',
    '<b onclick="alert(1)">x</b>',
    '<iframe src="https://example.test"></iframe>',
    "<svg><polyline/></svg>",
    "<script>alert(1)</script>",
]


@pytest.mark.parametrize("snippet", INJECTED)
def test_the_checks_catch_markup_that_got_through(memory, steward, own_scripts, snippet):
    html = steward.get(reverse("sessions")).content.decode()
    assert_inert(html, own_scripts)
    tainted = html.replace("</main>", f"{snippet}</main>")
    with pytest.raises(AssertionError):
        assert_inert(tainted, own_scripts)


def test_the_corpus_reaches_every_id_the_library_allows():
    refused = {name for name, hostile in CORPUS.items() if ident(hostile, "agent") is None}
    assert refused == {"template", "script", "pre-svg"}  # braces, and "/" (tested apart)


@pytest.mark.parametrize("listing", LISTS)
def test_list_pages_show_hostile_strings_as_text(planted, steward, own_scripts, listing):
    response = steward.get(reverse(listing))
    assert response.status_code == 200
    html = response.content.decode()
    scripts = own_scripts + PAGE_SCRIPTS.get(listing, [])
    assert_inert(html, scripts, sparklines={"overview": 3, "tasks": 1}.get(listing, 0))
    for one in planted.values():
        assert_shown(html, one.texts[listing])


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_a_staged_pattern_s_detail_shows_hostile_strings_as_text(
    planted, steward, own_scripts, name
):
    """Its code coloured by Pygments, its context, and the diffs against the library."""
    pattern_name, pattern_id = planted[name].texts["patterns"][:2]
    response = steward.get(reverse("pattern_detail", args=[pattern_id]))
    assert response.status_code == 200
    html = response.content.decode()
    assert_inert(html, own_scripts + PAGE_SCRIPTS["patterns"])
    assert_shown(html, [pattern_name])


@pytest.mark.parametrize("name", sorted(CORPUS))
@pytest.mark.parametrize("kind", DETAILS)
def test_detail_pages_show_hostile_strings_as_text(planted, steward, own_scripts, kind, name):
    response = steward.get(_detail_path(kind, planted[name]))
    assert response.status_code == 200
    html = response.content.decode()
    assert_inert(html, own_scripts)
    assert_shown(html, planted[name].texts[kind])


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_live_fragments_show_hostile_strings_as_text(planted, steward, name):
    """The fragments the polling fallback (and the websocket) swap into pages."""
    one = planted[name]
    panels = ",".join(sorted(set(PANELS) - {"signal-feed"}))
    # The signal feed is polled on its own: "team" would filter it.
    polls = {
        "panels": {
            "panels": panels,
            "team": one.team,
            "agent": one.agent,
            "session_id": one.session,
        },
        "feed": {"panels": "signal-feed"},
    }
    shows = {
        "panels": ("overview", "patterns", "agents", "sessions", "tasks", "session", "memory"),
        "feed": ("signals",),
    }
    for poll, query in polls.items():
        response = steward.get(reverse("live_poll") + "?" + urlencode(query))
        assert response.status_code == 200
        html = response.content.decode()
        # two sparklines and a chart on the overview, a chart on the task board
        assert_inert(html, own_scripts=[], sparklines=4 if poll == "panels" else 0)
        for page in shows[poll]:
            assert_shown(html, one.texts[page])


REFLECTED = [
    ("signals", dict.fromkeys(("signal_type", "sender", "target", "team"), CORPUS["script"])),
    ("library", {"q": CORPUS["img"]}),
    ("tasks", {"team": CORPUS["img"] + " team"}),
    ("working_memory", {"agent": CORPUS["img"] + " agent"}),
    ("login", {"next": CORPUS["script"]}),
]


@pytest.mark.parametrize(("url", "query"), REFLECTED, ids=[url for url, _ in REFLECTED])
def test_query_parameters_are_reflected_escaped(memory, steward, own_scripts, url, query):
    client = Client() if url == "login" else steward
    response = client.get(reverse(url) + "?" + urlencode(query))
    assert response.status_code == 200
    html = response.content.decode()
    assert_inert(html, own_scripts)
    for value in query.values():
        assert escape(value) in html


MALFORMED = [
    ("signals", {"cursor": CORPUS["img"]}),
    ("patterns", {"cursor": CORPUS["img"]}),
    ("sessions", {"cursor": CORPUS["img"]}),
    ("agents", {"team": "alpha", "cursor": CORPUS["img"]}),
    ("tasks", {"team": "alpha", "status": "dead", "cursor": CORPUS["img"]}),
    ("tasks", {"team": CORPUS["template"]}),
    ("working_memory", {"agent": CORPUS["template"]}),
    ("working_memory", {"agents_cursor": CORPUS["img"]}),
    ("session_detail", {"cursor": CORPUS["img"]}),
    ("live_poll", {"panels": "session-list", "cursor": CORPUS["img"]}),
]


@pytest.mark.parametrize(
    ("url", "query"), MALFORMED, ids=[f"{u}-{'-'.join(q)}" for u, q in MALFORMED]
)
def test_malformed_query_parameters_get_a_client_error(memory, client_for, url, query):
    seed(memory)
    client = client_for("observer", raise_request_exception=False)
    args = ["s-1"] if url == "session_detail" else []
    response = client.get(reverse(url, args=args) + "?" + urlencode(query))
    assert 400 <= response.status_code < 500


def test_messages_form_errors_and_the_audit_trail_are_escaped(memory, steward, own_scripts):
    """A steward acting on hostile ids: the confirmations, the form errors and the admin
    pages that list the audit trail show them as text."""
    agent, team, task = (ident(CORPUS["img"], what) for what in ("agent", "team", "task"))
    session = ident(CORPUS["quotes"], "session")
    EmpathyOS(agent, memory).stash(CORPUS["long"][:512], {"v": CORPUS["script"]})
    TeamSession(memory, session, CORPUS["pre-svg"], actor=agent)
    PromotedPattern.objects.create(
        pattern_id=ident(CORPUS["img"], "p"),
        name=CORPUS["script"],
        pattern_type=ident(CORPUS["quotes"], "t"),
        description=CORPUS["pre-svg"],
        confidence=0.5,
        agent_id=agent,
    )
    posts = [
        ("add_task", [], {"team_id": team, "task_id": task, "task_type": "t", "priority": "5"}),
        ("send_signal", [], {"signal_type": ident(CORPUS["img"], "s"), "target_agent": agent}),
        ("share", [session], {"key": CORPUS["script"], "value": json.dumps(CORPUS["pre-svg"])}),
        ("task_action", [team, task, "requeue"], {}),
        ("clear_memory", [agent], {}),
        ("delete_session", [session], {}),
    ]
    for url, args, data in posts:
        response = steward.post(reverse(url, args=args), data, follow=True)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert_inert(html, own_scripts)
        assert escape(args[0] if args else data.get("task_id") or data["signal_type"]) in html

    bad = {"team_id": team, "task_id": CORPUS["img"] + "{", "task_type": "t", "priority": "5"}
    response = steward.post(reverse("add_task"), bad)
    assert response.status_code == 400
    assert_inert(response.content.decode(), own_scripts)
    assert escape(CORPUS["img"] + "{") in response.content.decode()

    # The admin has scripts and icons of its own; none may be inline or come from data.
    admin_pages = {
        "admin:library_auditentry_changelist": agent,  # the target of memory.clear
        "admin:library_promotedpattern_changelist": CORPUS["script"],
    }
    for admin_page, shown in admin_pages.items():
        html = steward.get(reverse(admin_page)).content.decode()
        for raw in RAW:
            assert raw not in html
        markup = Markup(html)
        assert markup.inline_script == []
        for tag, attrs in markup.elements:
            assert not any(name.startswith("on") for name in attrs), tag
            if tag in ("script", "img", "iframe", "object", "embed"):
                assert (attrs.get("src") or "").startswith(("/static/admin/", "/admin/jsi18n/"))
        assert escape(shown) in html


SLASH_PAGES = ["sessions", "memory", "tasks"]


def test_ids_with_a_slash_are_refused_before_anything_is_written(memory, steward):
    """Ids end up in URL paths, so the library refuses "/" in them, and so do the forms."""
    agent = f"{SLASHED} agent"
    with pytest.raises(ValueError, match="/"):
        TeamSession(memory, f"{SLASHED} session", "p")
    with pytest.raises(ValueError, match="/"):
        EmpathyOS(agent, memory)
    with pytest.raises(ValueError, match="/"):
        AgentCoordinator(memory, "team").add_task(AgentTask(f"{SLASHED} task", "t"))
    data = {"team_id": "team", "task_id": "a/b", "task_type": "t", "priority": "5"}
    response = steward.post(reverse("add_task"), data)
    assert response.status_code == 400
    assert memory.client.dbsize() == 0


@pytest.mark.parametrize("team", ["R&D", "ops #2", "a+b"])
def test_the_redirect_after_adding_a_task_returns_to_its_team(memory, steward, team):
    data = {"team_id": team, "task_id": "t1", "task_type": "t", "priority": "5"}
    response = steward.post(reverse("add_task"), data)
    assert response.status_code == 302
    assert parse_qs(urlsplit(response["Location"]).query)["team"] == [team]


MAX_ID = ("<svg onload=alert(1)>" * 10)[:200]


@pytest.mark.parametrize("where", ["overview", "agents", "tasks", "session"])
def test_ids_at_the_length_limit_do_not_break_pages(memory, steward, where):
    """Ids of exactly the allowed 200 characters, for a team and a session."""
    coordinator = AgentCoordinator(memory, MAX_ID, actor="agent")
    coordinator.register_agent("agent")
    coordinator.add_task(AgentTask("t1", "t"))
    TeamSession(memory, MAX_ID, "p", actor="agent")
    paths = {
        "overview": reverse("overview"),
        "agents": reverse("agents"),
        "tasks": reverse("tasks") + "?" + urlencode({"team": MAX_ID}),
        "session": reverse("session_detail", args=[MAX_ID]),
    }
    steward.raise_request_exception = False
    response = steward.get(paths[where])
    assert response.status_code == 200
    assert escape(MAX_ID) in response.content.decode()
