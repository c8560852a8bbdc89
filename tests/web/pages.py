"""Reading the dashboard's pages as a person does, and the data the page tests seed."""

from __future__ import annotations

import html
import re
from typing import Any

import redis
from django.http import HttpResponse

from empathy_web.accounts.teams import TeamAccess, Viewer
from empathy_web.library.models import AuditEntry
from memory import AccessTier, AgentCoordinator, AgentTask, RedisShortTermMemory, StagedPattern


def everywhere(user_id: str, tier: AccessTier) -> Viewer:
    """Someone of ``tier`` org-wide and in every team: how the tests of one team read."""
    return Viewer(user_id, tier, tier, TeamAccess(every=tier))


def words(markup: str) -> str:
    """Markup as a reader sees it: tags dropped, entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def page_text(response: HttpResponse) -> str:
    body = response.content.decode()
    return words(body[body.find("<body") :])


def element(response: HttpResponse, element_id: str) -> str:
    """The words of the element with ``element_id`` (an element that does not nest)."""
    body = response.content.decode()
    at = body.find(f'id="{element_id}"')
    assert at != -1, f"no element #{element_id} on the page"
    start = body.rfind("<", 0, at)
    tag = re.match(r"<(\w+)", body[start:]).group(1)
    end = body.find(f"</{tag}>", at)
    return words(body[start:end])


def next_page(response: HttpResponse, label: str = "Next page") -> str | None:
    """The query of the page's "next page" link, or None when it is the last page."""
    found = re.search(r'<a class="more" href="([^"]*)">' + label, response.content.decode())
    return html.unescape(found.group(1)) if found else None


def signal_ids(response: HttpResponse) -> list[str]:
    return re.findall(r'<article class="signal" id="signal-([^"]+)"', response.content.decode())


def task_sections(response: HttpResponse) -> dict[str, tuple[int, list[str], str]]:
    """Per section title of the task board: its total, the task ids in order, its words."""
    found = re.findall(
        r"<h2>([^<]+) <small>\((\d+)\)</small></h2>\s*<table class=\"tasks\">(.*?)</table>",
        response.content.decode(),
        re.S,
    )
    return {
        title: (int(total), re.findall(r'<tr id="task-([^"]+)"', body), words(body))
        for title, total, body in found
    }


def backdate_heartbeat(memory: RedisShortTermMemory, team_id: str, agent_id: str, seconds: int):
    """Make ``agent_id``'s last heartbeat ``seconds`` old, as if it had gone quiet since."""
    now = memory.server_time_ms()
    key = memory.keys.team(team_id, "heartbeats")
    memory.client.zadd(key, {agent_id: now - seconds * 1000})


def redis_snapshot(client: redis.Redis) -> dict[bytes, bytes]:
    return {key: client.dump(key) for key in client.keys("*")}


def audit_actions() -> list[tuple[str, str, str, str]]:
    return list(
        AuditEntry.objects.order_by("id").values_list("actor_name", "tier", "action", "target")
    )


def pattern(pattern_id: str, agent_id: str, **fields: Any) -> StagedPattern:
    fields.setdefault("pattern_type", "security")
    fields.setdefault("name", f"Pattern {pattern_id}")
    fields.setdefault("description", f"What {pattern_id} is about")
    return StagedPattern(pattern_id, agent_id, **fields)


def many_teams(memory: RedisShortTermMemory, count: int) -> list[str]:
    """``count`` teams, each with one queued task and one agent, oldest activity first;
    returns their ids newest first, as the pages list them."""
    ids = [f"team-{n:03d}" for n in range(count)]
    for team_id in ids:
        coordinator = AgentCoordinator(memory, team_id)
        coordinator.register_agent(f"{team_id}-agent", ["work"])
        coordinator.add_task(AgentTask(f"{team_id}-task", "work"))
        memory.client.zadd(memory.keys.teams, {team_id: ids.index(team_id)})  # activity order
    return ids[::-1]


# Every page a logged-in person reads (a session's page needs the session incident-42).
PAGES = [
    "/",
    "/signals/",
    "/patterns/",
    "/tasks/",
    "/agents/",
    "/sessions/",
    "/memory/",
    "/library/",
    "/wizards/security/",
]
