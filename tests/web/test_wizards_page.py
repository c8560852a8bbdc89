"""The security wizard page: who may use it, what it shows for vulnerable, clean and bad
code (pasted or uploaded), staging a finding as a pattern, CSRF, hostile code, and the
wizard's runs in the live dashboards. Runs on a real redis-server."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from empathy_web.asgi import application
from empathy_web.dashboard.bridge import Bridge
from empathy_web.library.models import AuditEntry
from memory import AccessTier, EmpathyOS, RedisShortTermMemory
from tests.web.test_csrf import TokenFinder
from tests.web.test_permissions import assert_unchanged, redis_snapshot
from tests.web.test_xss import Markup, assert_inert

pytestmark = pytest.mark.django_db

PAGE = "/wizards/security/"
WIZARD_SCRIPT = {"src": "/static/wizards/security.js", "defer": None}

VULNERABLE = """\
import subprocess
import yaml


def run(user_input):
    return subprocess.call("ls " + user_input, shell=True)


def load(text):
    return yaml.load(text)
"""

CLEAN = """\
import secrets


def token() -> str:
    return secrets.token_urlsafe(32)
"""

MULTI_LINE = """\
import subprocess
subprocess.run(
    "rm -rf " + path,
    shell=True,
)
"""

# Each line is hostile, and bandit quotes two of them back in its findings.
HOSTILE = (
    'password = "<script>alert(1)</script>"\n'
    "# </code></td></tr><img src=x onerror=alert(1)>\n"
    "x = '\"><svg onload=alert(1)>'\n"
    "import pickle\n"
    'pickle.loads(b"<img src=x onerror=alert(1)>")\n'
)


# fixtures and helpers -------------------------------------------------------------------


@pytest.fixture
def alice(memory, client_for: Callable[..., Client]) -> Client:
    return client_for("contributor", username="alice")


def run(client: Client, code: str, **extra: object):
    return client.post(PAGE, {"code": code, "language": "python"}, **extra)


class Listing(HTMLParser):
    """The code listing's rows (line -> classes, code, notes), the findings' stage forms
    (finding -> action) and the errors shown."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.classes: dict[int, set[str]] = {}
        self.code: dict[int, str] = {}
        self.notes: dict[int, str] = {}
        self.stage_forms: dict[str, str] = {}
        self.errors: list[str] = []
        self._line: int | None = None
        self._cell: str | None = None
        self._form: str | None = None
        self._error_depth = 0
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        classes = set((attributes.get("class") or "").split())
        if tag == "tr" and re.fullmatch(r"L\d+", attributes.get("id") or ""):
            self._line = int(attributes["id"][1:])
            self.classes[self._line] = classes
            self.code[self._line] = self.notes[self._line] = ""
        elif tag == "td" and self._line is not None:
            self._cell = next((c for c in ("src", "notes") if c in classes), None)
        elif tag == "form" and "/runs/" in (attributes.get("action") or ""):
            self._form = attributes["action"]
        elif tag == "input" and self._form and attributes.get("name") == "finding":
            self.stage_forms[attributes["value"]] = self._form
        if "error" in classes or "errorlist" in classes:
            self._error_depth += 1
            self.errors.append("")
        elif self._error_depth:
            self._error_depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._line = None
        elif tag == "td":
            self._cell = None
        elif tag == "form":
            self._form = None
        if self._error_depth:
            self._error_depth -= 1

    def handle_data(self, data: str) -> None:
        if self._line is not None and self._cell == "src":
            self.code[self._line] += data
        elif self._line is not None and self._cell == "notes":
            self.notes[self._line] += data
        if self._error_depth:
            self.errors[-1] += data

    def flagged(self) -> dict[int, str]:
        """Flagged lines and their severity class."""
        return {
            line: next(c for c in classes if c.startswith("sev-"))
            for line, classes in self.classes.items()
            if "flagged" in classes
        }


def own_scripts() -> list[dict]:
    """The page's own scripts: every page's (read off the login page) and the wizard's."""
    page = Client().get(reverse("login")).content.decode()
    return [attrs for tag, attrs in Markup(page).elements if tag == "script"] + [WIZARD_SCRIPT]


def static_scripts(html: str) -> list[dict]:
    """A page's scripts that load its own static files (any other fails the check)."""
    scripts = [attrs for tag, attrs in Markup(html).elements if tag == "script"]
    return [attrs for attrs in scripts if (attrs.get("src") or "").startswith("/static/")]


def staged_ids(memory: RedisShortTermMemory) -> list[str]:
    validator = EmpathyOS("checker", memory, AccessTier.VALIDATOR)
    return [p.pattern_id for p in validator.get_staged_patterns(limit=100)]


# who may use it -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tier", "status"),
    [
        ("anonymous", 302),
        ("tierless", 403),
        ("observer", 403),
        ("contributor", 200),
        ("validator", 200),
        ("steward", 200),
    ],
)
def test_the_page_for_each_tier(memory, client_for, tier, status):
    client = client_for(tier, username=f"{tier}-1")

    response = client.get(PAGE)

    assert response.status_code == status
    if tier == "anonymous":
        location = urlsplit(response["Location"])
        assert location.path == reverse("login")
        assert parse_qs(location.query)["next"] == [PAGE]
    if status == 200:
        html = response.content.decode()
        assert "<h1>Security wizard</h1>" in html
        assert 'name="code"' in html and 'type="file" name="upload"' in html
        assert re.search(rf"<code>security_analysis_wizard:{tier}-\d+</code>", html)
    if tier != "anonymous":
        overview = client.get(reverse("overview")).content.decode()
        assert (f'href="{PAGE}"' in overview) == (status == 200), "the nav link"


def test_observers_can_neither_run_nor_stage(memory, alice, client_for):
    ran = Listing(run(alice, VULNERABLE).content.decode())
    observer = client_for("observer")
    before = redis_snapshot(memory.client)

    refused_run = run(observer, VULNERABLE)
    refused_stage = observer.post(ran.stage_forms["0"], {"finding": "0"})
    refused_view = observer.get(ran.stage_forms["0"])

    assert (refused_run.status_code, refused_stage.status_code) == (403, 403)
    assert refused_view.status_code == 403
    assert_unchanged(before, redis_snapshot(memory.client))
    assert staged_ids(memory) == []
    assert AuditEntry.objects.count() == 0


def test_the_wizard_runs_as_the_person_with_their_tier(memory, client_for):
    steward = client_for("steward", username="sam")

    response = run(steward, CLEAN)

    assert response.status_code == 200
    assert "<code>security_analysis_wizard:sam</code>" in response.content.decode()
    stashed = [e for e in memory.read_events() if e.type == "working.stashed"]
    assert stashed and {(e.actor, e.tier) for e in stashed} == {
        ("security_analysis_wizard:sam", "STEWARD")
    }


# running it -----------------------------------------------------------------------------


def test_vulnerable_code_has_its_findings_marked_on_their_lines(alice):
    response = run(alice, VULNERABLE)

    assert response.status_code == 200
    html = response.content.decode()
    listing = Listing(html)
    assert listing.flagged() == {1: "sev-low", 6: "sev-high", 10: "sev-medium"}
    assert listing.code[6] == '    return subprocess.call("ls " + user_input, shell=True)'
    assert "high B602: subprocess call with shell=True identified" in listing.notes[6]
    assert "medium B506: Use of unsafe yaml load" in listing.notes[10]
    assert "low B404" in listing.notes[1]
    assert all(listing.notes[n] == "" for n in listing.notes if n not in (1, 6, 10))
    assert sorted(listing.code) == list(range(1, 11))
    assert "3 findings:" in html
    assert "1 high" in html and "1 medium" in html and "1 low" in html
    assert 'href="https://cwe.mitre.org/data/definitions/78.html"' in html
    assert sorted(listing.stage_forms) == ["0", "1", "2"]


def test_a_finding_over_several_lines_marks_them_all(alice):
    listing = Listing(run(alice, MULTI_LINE).content.decode())

    assert listing.flagged() == {1: "sev-low", 4: "sev-high"}
    assert {n for n, classes in listing.classes.items() if "covered" in classes} == {2, 3, 5}


def test_clean_code_shows_no_findings(alice):
    response = run(alice, CLEAN)

    assert response.status_code == 200
    html = response.content.decode()
    assert "No findings:" in html and "found nothing to flag in 5 lines" in html
    listing = Listing(html)
    assert listing.flagged() == {} and listing.stage_forms == {}
    assert len(listing.code) == 5


def test_htmx_swaps_in_the_results_and_shows_progress_meanwhile(alice):
    page = alice.get(PAGE).content.decode()
    form = next(a for t, a in Markup(page).elements if t == "form" and a.get("id") == "wizard-form")
    assert form["hx-post"] == PAGE and form["hx-target"] == "#wizard-panel"
    assert form["enctype"] == "multipart/form-data"  # and a plain POST without script
    indicator = form["hx-indicator"]
    assert re.search(rf'id="{indicator[1:]}" class="[^"]*htmx-indicator', page)

    response = run(alice, VULNERABLE, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    fragment = response.content.decode()
    assert fragment.lstrip().startswith('<section id="wizard-panel">')
    assert "<html" not in fragment
    assert Listing(fragment).flagged() == {1: "sev-low", 6: "sev-high", 10: "sev-medium"}
    run_page = response["HX-Push-Url"]
    assert re.fullmatch(r"/wizards/security/runs/[0-9a-f]{64}/", run_page)
    assert f'action="{run_page}"' in fragment


def test_a_run_has_a_page_of_its_own_for_its_owner_only(memory, alice, client_for):
    run_page = run(alice, VULNERABLE, HTTP_HX_REQUEST="true")["HX-Push-Url"]

    again = alice.get(run_page)
    other = client_for("contributor", username="bob").get(run_page)

    assert again.status_code == 200
    listing = Listing(again.content.decode())
    assert listing.flagged() == {1: "sev-low", 6: "sev-high", 10: "sev-medium"}
    assert escape(VULNERABLE.splitlines()[5]) in again.content.decode()  # in the form, to edit
    assert other.status_code == 404
    assert "no longer kept" in other.content.decode()
    assert alice.get("/wizards/security/runs/not-a-run/").status_code == 404


# bad input ------------------------------------------------------------------------------


BAD_INPUT = {
    # (form data, what the page says); files are made afresh for each test.
    "empty": ({"code": ""}, "Paste some Python code"),
    "blank": ({"code": "\n   \n\t\n"}, "Paste some Python code"),
    "too big": ({"code": "#" * 204_800 + "\n"}, "The code is 204,801 bytes; the limit is 204,800"),
    "syntax": (
        {"code": "x = 1\nif x\n    y = 2\n"},
        "The code does not parse (line 2, column 5): expected &#x27;:&#x27;",
    ),
    "javascript": ({"code": "eval(location.hash)", "language": "javascript"}, "Python only"),
    "both": (
        {"code": "x = 1", "upload": ("a.py", b"y = 2\n")},
        "Paste code or upload a file, not both.",
    ),
}


@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_is_a_400_that_says_why_and_stages_nothing(memory, alice, case, htmx):
    data, message = BAD_INPUT[case]
    if "upload" in data:
        data = {**data, "upload": SimpleUploadedFile(*data["upload"])}
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}

    response = alice.post(PAGE, {"language": "python", **data}, **headers)

    assert response.status_code == 400
    html = response.content.decode()
    assert message in html
    assert ('<section id="wizard-panel">' in html) and (("<html" in html) != htmx)
    assert Listing(html).stage_forms == {}
    assert "HX-Push-Url" not in response
    assert staged_ids(memory) == []


def test_code_that_does_not_parse_has_the_line_marked(alice):
    response = run(alice, "x = 1\nif x\n    y = 2\n")

    listing = Listing(response.content.decode())
    assert {n for n, classes in listing.classes.items() if "error-line" in classes} == {2}
    assert "expected ':'" in listing.notes[2]
    assert "No findings" not in response.content.decode()


# uploads --------------------------------------------------------------------------------


def upload(client: Client, name: str, content: bytes):
    return client.post(PAGE, {"upload": SimpleUploadedFile(name, content), "language": "python"})


def test_an_uploaded_file_is_analysed(alice):
    response = upload(alice, "tools.py", b"\xef\xbb\xbf" + VULNERABLE.encode())

    assert response.status_code == 200
    html = response.content.decode()
    assert "Results for tools.py" in html
    assert Listing(html).flagged() == {1: "sev-low", 6: "sev-high", 10: "sev-medium"}


def test_windows_line_ends_keep_the_line_numbers(alice):
    response = upload(alice, "crlf.py", VULNERABLE.replace("\n", "\r\n").encode())

    listing = Listing(response.content.decode())
    assert listing.flagged() == {1: "sev-low", 6: "sev-high", 10: "sev-medium"}
    assert listing.code[6] == '    return subprocess.call("ls " + user_input, shell=True)'


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("notes.txt", b"x = 1\n", "“notes.txt” is not a Python file"),
        (
            "latin1.py",
            b"x = 1\ny = 2\nname = '\xe9t\xe9'\n",
            "“latin1.py” is not UTF-8 text: byte 0xe9 on line 3 cannot be decoded",
        ),
        ("big.py", b"#" * 204_801, "“big.py” is 204,801 bytes; the limit is 204,800 bytes"),
        ("empty.py", b"", "The submitted file is empty."),
        ("blank.py", b"\n\n", "“blank.py” is empty"),
        ("broken.py", b"def f(:\n", "The code does not parse (line 1, column 7)"),
    ],
    ids=["not-py", "not-utf8", "too-big", "empty", "blank", "syntax"],
)
def test_a_bad_upload_is_a_400_that_says_why(memory, alice, name, content, message):
    response = upload(alice, name, content)

    assert response.status_code == 400
    assert escape(message) in response.content.decode()
    assert staged_ids(memory) == []


# staging --------------------------------------------------------------------------------


def test_staging_a_finding_puts_it_in_the_validators_queue(memory, alice):
    ran = Listing(run(alice, VULNERABLE).content.decode())
    run_page = ran.stage_forms["1"]  # B602, line 6

    response = alice.post(run_page, {"finding": "1"})

    assert (response.status_code, response["Location"]) == (302, f"{run_page}#finding-1")
    validator = EmpathyOS("reviewer", memory, AccessTier.VALIDATOR)
    [pattern] = validator.get_staged_patterns()
    assert re.fullmatch(r"B602-[0-9a-f]{16}", pattern.pattern_id)
    assert pattern.agent_id == "security_analysis_wizard:alice"
    assert pattern.pattern_type == "security"
    assert pattern.name == "B602 subprocess_popen_with_shell_equals_true"
    assert "shell=True" in pattern.description and "line 6" in pattern.description
    assert pattern.code == '    return subprocess.call("ls " + user_input, shell=True)'
    assert pattern.confidence == 0.9
    assert pattern.context["rule_id"] == "B602" and pattern.context["line"] == 6
    assert pattern.context["cwe"] == 78 and pattern.context["requested_by"] == "alice"
    entry = AuditEntry.objects.get()
    assert (entry.actor_name, entry.tier) == ("alice", "CONTRIBUTOR")
    assert (entry.action, entry.target) == ("wizard.stage_pattern", pattern.pattern_id)
    # What the person sees next: the run marks it staged, the queue page lists it.
    followed = alice.get(response["Location"]).content.decode()
    assert f"Staged {pattern.pattern_id} for validation." in followed
    assert f"Staged as <code>{pattern.pattern_id}</code>" in followed
    assert sorted(Listing(followed).stage_forms) == ["0", "2"]
    queue = alice.get(reverse("patterns")).content.decode()
    assert f'id="pattern-{pattern.pattern_id}"' in queue
    assert "security_analysis_wizard:alice" in queue


def test_staging_with_htmx_swaps_the_button_for_a_note(memory, alice):
    ran = Listing(run(alice, VULNERABLE).content.decode())

    response = alice.post(ran.stage_forms["2"], {"finding": "2"}, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    fragment = response.content.decode()
    [pattern_id] = staged_ids(memory)
    assert pattern_id.startswith("B506-")
    assert fragment.lstrip().startswith('<div class="stage" id="stage-2">')
    assert f"Staged as <code>{pattern_id}</code>" in fragment
    assert "<form" not in fragment and "<html" not in fragment


def test_the_same_finding_is_the_same_pattern_whoever_finds_it(memory, alice, client_for):
    ran = Listing(run(alice, VULNERABLE).content.decode())
    alice.post(ran.stage_forms["1"], {"finding": "1"})
    [pattern_id] = staged_ids(memory)
    # The same call, indented differently in another file.
    call = VULNERABLE.splitlines()[5].strip()
    moved = f"import subprocess\n\n\nclass Runner:\n    def go(self, user_input):\n        {call}\n"

    bob = client_for("contributor", username="bob")
    html = run(bob, moved).content.decode()

    assert f"Staged as <code>{pattern_id}</code>" in html
    assert sorted(Listing(html).stage_forms) == ["0"]  # only B404 is left to stage
    assert staged_ids(memory) == [pattern_id]


def test_a_decided_pattern_is_not_staged_again(memory, alice):
    ran = Listing(run(alice, VULNERABLE).content.decode())
    alice.post(ran.stage_forms["1"], {"finding": "1"})
    [pattern_id] = staged_ids(memory)
    EmpathyOS("reviewer", memory, AccessTier.VALIDATOR).promote_pattern(pattern_id)

    plain = alice.post(ran.stage_forms["1"], {"finding": "1"})
    htmx = alice.post(ran.stage_forms["1"], {"finding": "1"}, HTTP_HX_REQUEST="true")

    assert plain.status_code == 302
    assert "was already decided" in alice.get(plain["Location"]).content.decode()
    assert htmx.status_code == 409 and "was already decided" in htmx.content.decode()
    assert staged_ids(memory) == []
    assert AuditEntry.objects.count() == 1


@pytest.mark.parametrize("finding", ["3", "-1", "one", "", "99999999999999"])
def test_staging_a_finding_the_run_does_not_have_is_a_400(memory, alice, finding):
    ran = Listing(run(alice, VULNERABLE).content.decode())

    response = alice.post(ran.stage_forms["0"], {"finding": finding})

    assert response.status_code == 400
    assert "This run has no finding" in response.content.decode()
    assert staged_ids(memory) == []


def test_staging_from_a_run_that_is_no_longer_kept_is_a_404(memory, alice):
    action = Listing(run(alice, VULNERABLE).content.decode()).stage_forms["0"]
    memory.client.flushall()

    plain = alice.post(action, {"finding": "0"})
    htmx = alice.post(action, {"finding": "0"}, HTTP_HX_REQUEST="true")

    assert plain.status_code == htmx.status_code == 404
    assert "no longer kept" in plain.content.decode()
    assert "no longer kept" in htmx.content.decode() and "<html" not in htmx.content.decode()
    assert staged_ids(memory) == []


# CSRF -----------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["none", "forged"])
def test_running_without_the_csrf_token_is_refused(memory, client_for, token):
    client = client_for("contributor", enforce_csrf_checks=True)
    assert client.get(PAGE).status_code == 200  # the browser has its CSRF cookie
    before = redis_snapshot(memory.client)
    data = {"code": VULNERABLE, "language": "python"}
    if token == "forged":
        data["csrfmiddlewaretoken"] = "x" * 64

    assert client.post(PAGE, data).status_code == 403
    assert_unchanged(before, redis_snapshot(memory.client))


@pytest.mark.parametrize("token", ["none", "forged"])
def test_staging_without_the_csrf_token_is_refused(memory, client_for, token):
    client = client_for("contributor", enforce_csrf_checks=True)
    tokens = TokenFinder(client.get(PAGE).content.decode())
    ran = client.post(PAGE, {"code": VULNERABLE, "csrfmiddlewaretoken": tokens.forms[PAGE]})
    action = Listing(ran.content.decode()).stage_forms["1"]
    data = {"finding": "1"} | ({"csrfmiddlewaretoken": "x" * 64} if token == "forged" else {})

    response = client.post(action, data)

    assert response.status_code == 403
    assert staged_ids(memory) == []
    assert AuditEntry.objects.count() == 0


@pytest.mark.parametrize("sent_as", ["form field", "htmx header"])
def test_running_and_staging_with_the_pages_token_go_through(memory, client_for, sent_as):
    client = client_for("contributor", enforce_csrf_checks=True)
    tokens = TokenFinder(client.get(PAGE).content.decode())

    def post(path: str, data: dict, token: str):
        if sent_as == "form field":
            return client.post(path, {**data, "csrfmiddlewaretoken": token})
        return client.post(path, data, HTTP_X_CSRFTOKEN=tokens.htmx, HTTP_HX_REQUEST="true")

    ran = post(PAGE, {"code": VULNERABLE}, tokens.forms.get(PAGE, ""))
    assert ran.status_code == 200
    action = Listing(ran.content.decode()).stage_forms["1"]
    staged = post(action, {"finding": "1"}, TokenFinder(ran.content.decode()).forms[action])

    assert staged.status_code == (302 if sent_as == "form field" else 200)
    assert [p.split("-")[0] for p in staged_ids(memory)] == ["B602"]


# hostile code ---------------------------------------------------------------------------


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "fragment"])
def test_hostile_code_is_shown_as_text(memory, alice, htmx):
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    name = "<img src=x onerror=alert(1)>.py"
    response = alice.post(
        PAGE,
        {"upload": SimpleUploadedFile(name, HOSTILE.encode()), "language": "python"},
        **headers,
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert_inert(html, [] if htmx else own_scripts())
    listing = Listing(html)
    assert [listing.code[n] for n in sorted(listing.code)] == HOSTILE.splitlines()
    assert listing.flagged() == {1: "sev-low", 4: "sev-low", 5: "sev-medium"}
    assert "Possible hardcoded password: '<script>alert(1)</script>'" in listing.notes[1]
    assert escape(name) in html
    # Staged, it is shown as text on the validators' page too.
    alice.post(listing.stage_forms["0"], {"finding": "0"})
    queue = alice.get(reverse("patterns")).content.decode()
    assert_inert(queue, static_scripts(queue))
    assert escape('password = "<script>alert(1)</script>"') in queue


def test_hostile_code_that_does_not_parse_is_shown_as_text(alice):
    code = "x = '<img src=x onerror=alert(1)>\n<script>alert(1)</script>\n"

    response = run(alice, code)

    assert response.status_code == 400
    html = response.content.decode()
    assert_inert(html, own_scripts())
    assert Listing(html).code == {
        1: "x = '<img src=x onerror=alert(1)>",
        2: "<script>alert(1)</script>",
    }


# the live dashboards --------------------------------------------------------------------


def test_runs_and_stagings_show_in_the_live_panels(memory, alice, client_for):
    """What the live fallback (and the websocket) swaps into an observer's pages."""
    observer = client_for("observer")
    ran = Listing(run(alice, VULNERABLE).content.decode())
    alice.post(ran.stage_forms["1"], {"finding": "1"})
    [pattern_id] = staged_ids(memory)

    live = observer.get(reverse("live_poll"), {"panels": "working-memory,pattern-queue"})

    html = live.content.decode()
    assert live.status_code == 200
    assert ">security_analysis_wizard:alice</a>" in html
    assert f'id="pattern-{pattern_id}"' in html
    events = [(e.type, e.actor) for e in memory.read_events()]
    assert ("working.stashed", "security_analysis_wizard:alice") in events
    assert ("pattern.staged", "security_analysis_wizard:alice") in events


def test_a_run_is_announced_in_the_signal_feed(memory, alice, client_for):
    run(alice, VULNERABLE)
    feed = client_for("observer").get(reverse("live_poll"), {"panels": "signal-feed"})
    html = feed.content.decode()
    assert "security_analysis" in html
    assert "security_analysis_wizard:alice" in html
    assert "&quot;total&quot;: 3" in html  # the summary, escaped like all agent data


async def started(bridge: Bridge) -> None:
    """Until the bridge knows where to start reading, so it sees what comes next."""
    while bridge.last_id is None:
        await asyncio.sleep(0.01)


@pytest.mark.django_db(transaction=True)
async def test_a_run_reaches_an_open_dashboard_through_the_bridge(memory, client_for):
    stop = asyncio.Event()
    bridge = Bridge(memory, get_channel_layer(), coalesce=0.05, block_ms=100)
    task = asyncio.create_task(bridge.run(stop))
    try:
        watcher = await sync_to_async(client_for)("observer")
        cookie = f"sessionid={watcher.cookies['sessionid'].value}; csrftoken={'x' * 32}".encode()
        communicator = WebsocketCommunicator(
            application,
            "/ws/dashboard/?panels=working-memory",
            headers=[
                (b"cookie", cookie),
                (b"origin", b"http://localhost"),
                (b"host", b"localhost"),
            ],
        )
        connected, _ = await communicator.connect()
        assert connected
        assert "No agent has working memory." in await communicator.receive_from(timeout=5)
        await asyncio.wait_for(started(bridge), 5)
        alice = await sync_to_async(client_for)("contributor", username="alice")

        ran = await sync_to_async(run)(alice, CLEAN)

        assert ran.status_code == 200
        html = await communicator.receive_from(timeout=5)
        assert ">security_analysis_wizard:alice</a>" in html
        await communicator.disconnect()
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
