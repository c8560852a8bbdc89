"""Every page and action when Redis is down or was never up: a banner, not a crash;
and what /readyz and /healthz say."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from empathy_web.dashboard.agents_memory import use_memory
from empathy_web.library.models import AuditEntry
from memory import RedisShortTermMemory
from tests.redis_server import start_redis_server
from tests.web.pages import page_text

pytestmark = pytest.mark.django_db


# The pages that read the agents' short-term memory.
MEMORY_PAGES = ["/", "/signals/", "/patterns/", "/tasks/", "/agents/", "/sessions/", "/memory/"]


@pytest.fixture
def redis_down() -> Iterator[RedisShortTermMemory]:
    """The web's memory on a private server that is then stopped."""
    server = start_redis_server([])
    try:
        unreachable = RedisShortTermMemory(url=server.url)
        use_memory(unreachable)
    finally:
        server.stop()
    try:
        yield unreachable
    finally:
        use_memory(None)
        unreachable.close()


@pytest.mark.parametrize("path", [*MEMORY_PAGES, "/sessions/incident-42/"])
def test_it_shows_a_banner_when_redis_is_unreachable(redis_down, observer, path):
    response = observer.get(path)

    assert response.status_code == 503
    assert "Redis is unreachable." in page_text(response)
    assert "Connection refused" in page_text(response)
    assert "Traceback" not in response.content.decode()


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/tasks/add/", {"team_id": "t", "task_id": "a", "task_type": "b", "priority": 5}),
        ("/signals/send/", {"signal_type": "ping"}),
        ("/sessions/incident-42/share/", {"key": "k", "value": "1"}),
        ("/tasks/t/a/requeue/", {}),
        ("/tasks/t/a/cancel/", {}),
        ("/sessions/incident-42/delete/", {}),
        ("/memory/security-agent/clear/", {}),
    ],
)
def test_it_shows_a_banner_for_actions_when_redis_is_unreachable(redis_down, steward, path, data):
    response = steward.post(path, data)

    assert response.status_code == 503
    assert "Redis is unreachable." in page_text(response)
    assert not AuditEntry.objects.exists()


@pytest.fixture
def redis_never_answered(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The web starts with REDIS_URL naming a server that is not running."""
    server = start_redis_server([])
    server.stop()
    monkeypatch.setenv("REDIS_URL", server.url)
    use_memory(None)
    try:
        yield server.url
    finally:
        use_memory(None)


@pytest.mark.parametrize("path", MEMORY_PAGES)
def test_it_shows_a_banner_when_redis_was_never_reachable(redis_never_answered, observer, path):
    response = observer.get(path)

    assert response.status_code == 503
    assert "Redis is unreachable." in page_text(response)
    assert "cannot reach Redis at 127.0.0.1:" in page_text(response)


def test_readyz_says_redis_was_never_reachable(redis_never_answered, client):
    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["problems"] == {"redis": "unavailable"}  # no address


def test_the_library_still_answers_when_redis_is_unreachable(redis_down, observer):
    assert observer.get("/library/").status_code == 200


def test_readyz_says_redis_is_unreachable(redis_down, client):
    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["problems"] == {"redis": "unavailable"}
    assert "127.0.0.1" not in response.content.decode()
    assert client.get("/healthz").status_code == 200


def test_readyz_and_healthz_answer_ok_when_all_is_up(memory, client):
    assert client.get("/readyz").json() == {"status": "ok"}
    assert client.get("/healthz").json() == {"status": "ok"}
