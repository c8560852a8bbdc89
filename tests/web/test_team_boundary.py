"""Teams are the boundary for people: with two teams on one deployment, each person sees
and acts on their teams' records (at their tier there) and the org-wide ones, and a
record of a team they are not in answers 404 everywhere.

The matrix: every URL that names a team's record x (a member of alpha at each tier, a
member of beta only, org-wide tiers with no team, an org-wide validator who only
observes alpha, an org-wide steward, anonymous), by GET and by POST.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client

from empathy_web.asgi import application
from empathy_web.library.models import AuditEntry, PromotedPattern
from memory import AccessTier, AgentCoordinator, RedisShortTermMemory
from memory.patterns import get_staged
from memory.sessions import get_session
from memory.tiers import Caller
from memory.working import list_entries
from tests.web.sockets import HOST, ORIGIN
from tests.web.teams_data import MARKERS, ORG_MARKER, TeamRecords, seed_all

pytestmark = pytest.mark.django_db

READER = Caller("reader", AccessTier.OBSERVER)

# Who: (tier group, memberships). "tierless" is in no tier group.
PEOPLE: dict[str, tuple[str | None, dict[str, str]]] = {
    "alpha observer": ("tierless", {"alpha": "observer"}),
    "alpha contributor": ("tierless", {"alpha": "contributor"}),
    "alpha validator": ("tierless", {"alpha": "validator"}),
    "alpha steward": ("tierless", {"alpha": "steward"}),
    "beta observer": ("tierless", {"beta": "observer"}),
    "org observer": ("observer", {}),
    "org validator, alpha observer": ("validator", {"alpha": "observer"}),
    "org steward": ("steward", {}),
}
MEMBERS_OF_ALPHA = [name for name in PEOPLE if "alpha" in name] + ["org steward"]
NOT_IN_ALPHA = ["beta observer", "org observer"]


@pytest.fixture
def records(memory: RedisShortTermMemory) -> dict[str, Any]:
    return seed_all(memory)


@pytest.fixture
def person(make_user: Callable[..., User]) -> Callable[[str], Client]:
    clients: dict[str, Client] = {}

    def person(name: str) -> Client:
        if name not in clients:
            clients[name] = client = Client()
            if name != "anonymous":
                tier, teams = PEOPLE[name]
                username = name.replace(" ", "_").replace(",", "")
                client.force_login(make_user(tier, username, teams))
        return clients[name]

    return person


def record_urls(r: TeamRecords) -> dict[str, str]:
    """Every page that shows one record of ``r``'s team."""
    return {
        "task board": f"/tasks/?team={r.team}",
        "task": f"/tasks/{r.team}/{r.pending}/",
        "session": f"/sessions/{r.session}/",
        "session value": f"/sessions/{r.session}/value/?key=shared-{r.team}",
        "working memory": f"/memory/?agent={r.agent}",
        "memory value": f"/memory/{r.agent}/value/?{urlencode({'key': r.key})}",
        "signal": f"/signals/{r.signal}/",
        "pattern": f"/patterns/{r.pattern}/",
    }


@pytest.mark.parametrize("name", [*PEOPLE, "anonymous"])
def test_a_teams_records_answer_its_members_and_404_to_everyone_else(records, person, name):
    client = person(name)
    for team in ("alpha", "beta"):
        member = name == "org steward" or team in name
        for what, url in record_urls(records[team]).items():
            response = client.get(url)
            if name == "anonymous":
                assert response.status_code == 302, (what, url)
            else:
                assert response.status_code == (200 if member else 404), (name, what, url)
            if response.status_code == 404:
                assert MARKERS[team] not in response.content.decode()


LISTS = ["/", "/signals/", "/tasks/", "/agents/", "/sessions/", "/memory/", "/patterns/"]
PANELS = "overview-panel,signal-feed,task-board,agent-list,session-list,working-memory"


@pytest.mark.parametrize("name", PEOPLE)
def test_lists_and_live_panels_show_your_teams_and_org_wide_records_only(records, person, name):
    client = person(name)
    seen = ""
    for url in LISTS:
        response = client.get(url)
        assert response.status_code == 200, url
        seen += response.content.decode()
    for team in ("alpha", "beta"):
        poll = client.get(f"/live/?{urlencode({'panels': PANELS, 'team': team})}")
        seen += poll.content.decode()
    for team in ("alpha", "beta"):
        token = MARKERS[team][3:-4]  # escaped or not
        member = name == "org steward" or team in name
        assert (token in seen) is member, (name, team)
    assert ORG_MARKER in seen  # org-wide records: visible to every tier


def _requeue(r: TeamRecords) -> tuple[str, dict[str, str]]:
    return f"/tasks/{r.team}/{r.dead}/requeue/", {}


def _approve(r: TeamRecords) -> tuple[str, dict[str, str]]:
    return f"/patterns/{r.pattern}/approve/", {"note": ""}


def _share(r: TeamRecords) -> tuple[str, dict[str, str]]:
    return f"/sessions/{r.session}/share/", {"key": "k", "value": '"v"'}


def _delete_session(r: TeamRecords) -> tuple[str, dict[str, str]]:
    return f"/sessions/{r.session}/delete/", {}


def _clear(r: TeamRecords) -> tuple[str, dict[str, str]]:
    return f"/memory/{r.agent}/clear/", {}


def _add_task(r: TeamRecords) -> tuple[str, dict[str, str]]:
    data = {"team_id": r.team, "task_id": "new", "task_type": "review", "priority": "5"}
    return "/tasks/add/", data


def _signal(r: TeamRecords) -> tuple[str, dict[str, str]]:
    return "/signals/send/", {"signal_type": "ping", "team": r.team, "data": "1"}


def _done(memory: RedisShortTermMemory, r: TeamRecords, action: str) -> bool:
    """Whether ``action`` on ``r``'s team's record happened, read from Redis."""
    coordinator = AgentCoordinator(memory, r.team, access_tier=AccessTier.OBSERVER)
    return {
        "requeue": lambda: coordinator.get_task(r.dead).status == "pending",
        "approve": lambda: get_staged(memory, READER, r.pattern) is None,
        "share": lambda: "k" in (get_session(memory, READER, r.session) and _context(memory, r)),
        "delete session": lambda: get_session(memory, READER, r.session) is None,
        "clear memory": lambda: not list(list_entries(memory, READER, r.agent)),
        "add task": lambda: coordinator.get_task("new") is not None,
        "send signal": lambda: AuditEntry.objects.filter(action="signal.send").exists(),
    }[action]()


def _context(memory: RedisShortTermMemory, r: TeamRecords) -> dict[str, Any]:
    from memory import TeamSession

    session = TeamSession(memory, r.session, access_tier=AccessTier.OBSERVER, create=False)
    return session.get_context()


# action -> (how to POST it, the tier it needs in the record's team)
ACTIONS = {
    "requeue": (_requeue, "steward"),
    "approve": (_approve, "validator"),
    "share": (_share, "contributor"),
    "delete session": (_delete_session, "steward"),
    "clear memory": (_clear, "steward"),
    "add task": (_add_task, "contributor"),
    "send signal": (_signal, "contributor"),
}
ORDER = ["observer", "contributor", "validator", "steward"]


def _alpha_tier(name: str) -> str | None:
    if name == "org steward":
        return "steward"
    return PEOPLE[name][1].get("alpha")


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("name", PEOPLE)
def test_actions_on_a_teams_record_take_the_tier_in_that_team(
    memory, records, person, name, action
):
    how, needed = ACTIONS[action]
    url, data = how(records["alpha"])
    response = person(name).post(url, data)
    tier = _alpha_tier(name)
    if tier is None:
        expected = 404
    elif ORDER.index(tier) >= ORDER.index(needed):
        expected = 302
    else:
        expected = 403
    assert response.status_code == expected, (name, action, response.status_code)
    assert _done(memory, records["alpha"], action) is (expected == 302)
    if expected == 302:  # audited with the team, and the tier they had there
        entry = AuditEntry.objects.latest("created")
        assert (entry.team, entry.tier) == ("alpha", tier.upper()), (name, action)


@pytest.mark.parametrize("action", ACTIONS)
def test_a_crafted_post_on_another_teams_record_changes_nothing(memory, records, person, action):
    how, _ = ACTIONS[action]
    url, data = how(records["beta"])
    response = person("alpha steward").post(url, data)
    assert response.status_code == 404
    assert not _done(memory, records["beta"], action)
    assert not AuditEntry.objects.exists()
    assert not PromotedPattern.objects.exists()


def test_an_org_wide_pattern_takes_the_org_wide_tier(memory, records, person):
    pattern = records["org"]["pattern"]
    alpha_only = person("alpha validator").post(f"/patterns/{pattern}/approve/", {"note": ""})
    assert alpha_only.status_code == 403
    assert get_staged(memory, READER, pattern) is not None
    org = person("org validator, alpha observer").post(f"/patterns/{pattern}/approve/")
    assert org.status_code == 302
    assert get_staged(memory, READER, pattern) is None
    # ... and the same person only observes alpha's.
    alpha = records["alpha"].pattern
    refused = person("org validator, alpha observer").post(f"/patterns/{alpha}/approve/")
    assert refused.status_code == 403
    assert get_staged(memory, READER, alpha) is not None


@pytest.mark.parametrize(
    "name, status",
    [("alpha steward", 403), ("org validator, alpha observer", 200), ("org observer", 403)],
)
def test_the_security_wizard_is_an_org_wide_agent_and_takes_the_org_wide_tier(
    records, person, name, status
):
    assert person(name).get("/wizards/security/").status_code == status


SOCKET_PANELS = "overview-panel,task-board,agent-list,session-list,working-memory,pattern-queue"


@pytest.mark.parametrize("name", PEOPLE)
@pytest.mark.django_db(transaction=True)
async def test_live_panels_over_the_websocket_show_your_teams_only(records, person, name):
    client = await sync_to_async(person)(name)
    cookie = f"sessionid={client.cookies['sessionid'].value}; csrftoken={'x' * 32}".encode()
    shown = ""
    for team in ("", "alpha", "beta"):  # and a board of each team, as a crafted page asks
        query = urlencode({"panels": SOCKET_PANELS, **({"team": team} if team else {})})
        socket = WebsocketCommunicator(
            application, f"/ws/dashboard/?{query}", headers=[(b"cookie", cookie), ORIGIN, HOST]
        )
        assert (await socket.connect())[0]
        output = await socket.receive_output(timeout=5)
        if output["type"] == "websocket.send":
            shown += output["text"]
        else:  # a team they are not in: the socket closes, showing nothing
            assert output == {"type": "websocket.close", "code": 4404}
        await socket.disconnect()
    for team in ("alpha", "beta"):
        member = name == "org steward" or team in name
        assert (MARKERS[team][3:-4] in shown) is member, (name, team)
    assert ORG_MARKER in shown
