"""Values too long for a list: every list and live panel shows an excerpt with "Show
all", and that link leads to a page with the whole value. Runs on a real redis-server."""

from __future__ import annotations

import html
import re

import pytest

from empathy_web.accounts.tiers import WIZARD_ID_PREFIX
from empathy_web.dashboard.templatetags.dashboard import EXCERPT_CHARS
from empathy_web.library.models import PromotedPattern
from memory import AccessTier, AgentCoordinator, AgentTask, EmpathyOS, StagedPattern, TeamSession

pytestmark = pytest.mark.django_db

# Longer than an excerpt, and hostile, so escaping is checked on the way.
LONG = "<b>" + "x" * (EXCERPT_CHARS * 3) + "</b>END"
SHORT = "fits"


def show_all(response) -> list[str]:
    return [
        html.unescape(url)
        for url in re.findall(r'<a class="show-all" href="([^"]+)">', response.content.decode())
    ]


def whole(response) -> str:
    assert response.status_code == 200
    body = response.content.decode()
    assert "<b>x" not in body  # escaped, never markup
    return html.unescape(body)


@pytest.fixture
def observer(memory, client_for):
    return client_for("observer")


def test_a_long_signal_links_to_all_of_its_data(memory, observer):
    agent = EmpathyOS("agent-1", memory)
    sent = agent.send_signal("report", {"text": LONG})
    agent.send_signal("report", {"text": SHORT})

    feed = observer.get("/signals/")

    assert show_all(feed) == [f"/signals/{sent['id']}/"]
    assert "END" not in feed.content.decode()
    page = whole(observer.get(show_all(feed)[0]))
    assert LONG in page and "agent-1" in page and "report" in page


def test_a_signal_that_is_gone_or_malformed_is_a_404(memory, observer):
    sent = EmpathyOS("agent-1", memory).send_signal("report", {})
    memory.client.delete(memory.keys.signal(sent["id"].rpartition("-")[2]))

    assert observer.get(f"/signals/{sent['id']}/").status_code == 404
    assert observer.get("/signals/not-a-signal/").status_code == 404
    assert observer.get(f"/signals/{sent['id'][:-1]}z/").status_code == 404


def test_a_long_task_result_and_description_link_to_the_task(memory, observer):
    team = AgentCoordinator(memory, "alpha", actor="agent-1")
    team.add_task(AgentTask("t-1", "review", description=LONG, context={"diff": LONG}))
    claimed = team.claim_task("agent-1", "review")
    team.complete_task(claimed.task_id, {"verdict": LONG}, fencing_token=claimed.fencing_token)

    board = observer.get("/tasks/?team=alpha")

    assert set(show_all(board)) == {"/tasks/alpha/t-1/"}
    page = whole(observer.get("/tasks/alpha/t-1/"))
    assert page.count(LONG) == 3  # the description, its context and its result
    assert "completed" in page


def test_a_task_page_for_an_unknown_or_malformed_task_is_a_404(memory, observer):
    AgentCoordinator(memory, "alpha").add_task(AgentTask("t-1", "review"))

    assert observer.get("/tasks/alpha/t-2/").status_code == 404
    assert observer.get("/tasks/alpha/%20%20/").status_code == 404


def test_a_long_working_memory_value_links_to_its_key(memory, observer):
    agent = EmpathyOS("agent-1", memory)
    agent.stash("notes & {drafts}", LONG)
    agent.stash("short", SHORT)

    listing = observer.get("/memory/?agent=agent-1")

    [link] = show_all(listing)
    assert link == "/memory/agent-1/value/?key=notes+%26+%7Bdrafts%7D"
    assert LONG in whole(observer.get(link))
    assert observer.get("/memory/agent-1/value/?key=gone").status_code == 404
    assert observer.get("/memory/agent-1/value/").status_code == 404


def test_a_persons_wizard_memory_stays_theirs_on_its_value_page(memory, client_for):
    wizard_id = WIZARD_ID_PREFIX + "alice"
    EmpathyOS(wizard_id, memory).stash("run:1", LONG)
    link = f"/memory/{wizard_id}/value/?key=run:1"

    assert client_for("observer").get(link).status_code == 404
    assert client_for("validator").get(link).status_code == 404
    assert LONG in whole(client_for("steward").get(link))
    assert LONG in whole(client_for("contributor", username="alice").get(link))


def test_a_long_shared_session_value_links_to_it(memory, observer):
    session = TeamSession(memory, "s-1", purpose="review", actor="agent-1")
    session.share("plan", LONG)
    session.share("ok", SHORT)

    detail = observer.get("/sessions/s-1/")

    assert show_all(detail) == ["/sessions/s-1/value/?key=plan"]
    assert LONG in whole(observer.get("/sessions/s-1/value/?key=plan"))
    assert observer.get("/sessions/s-1/value/?key=nothing").status_code == 404
    assert observer.get("/sessions/s-2/value/?key=plan").status_code == 404


def test_a_long_staged_pattern_links_to_its_detail(memory, observer):
    EmpathyOS("agent-1", memory).stage_pattern(
        StagedPattern("p-1", "agent-1", "fix", "Long one", LONG, code=LONG, confidence=0.5)
    )

    queue = observer.get("/patterns/")

    assert set(show_all(queue)) == {"/patterns/p-1/"}
    assert whole(observer.get("/patterns/p-1/")).count(LONG) >= 1


def test_a_long_library_pattern_has_a_page_of_its_own(memory, observer):
    PromotedPattern.objects.create(
        pattern_id="p-1",
        name="Long one",
        pattern_type="fix",
        description=LONG,
        code=LONG,
        confidence=0.5,
        agent_id="agent-1",
        context={"why": LONG},
    )
    PromotedPattern.objects.create(
        pattern_id="p-2", name="Short", pattern_type="fix", confidence=0.5, agent_id="a"
    )

    library = observer.get("/library/")

    assert set(show_all(library)) == {"/library/p-1/"}
    assert whole(observer.get("/library/p-1/")).count(LONG) == 3
    assert observer.get("/library/p-3/").status_code == 404


def test_the_contributor_tier_is_enough_to_read_but_not_required(memory, client_for):
    EmpathyOS("agent-1", memory, AccessTier.CONTRIBUTOR).stash("k", LONG)

    assert client_for("tierless").get("/memory/agent-1/value/?key=k").status_code == 403
    assert client_for("observer").get("/memory/agent-1/value/?key=k").status_code == 200
