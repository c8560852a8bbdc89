"""``/metrics``: Prometheus's text format, parsed with prometheus_client's own parser; its
values are the library's after a known workload; access by token or address only."""

from __future__ import annotations

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from empathy_web.dashboard.prometheus import COUNTED
from memory import AccessTier, AgentCoordinator, AgentTask, Caller, EmpathyOS, RedisShortTermMemory
from memory.series import SERIES_KINDS, TASK_KINDS
from memory.signals import send

pytestmark = pytest.mark.django_db

TOKEN = "s3cret-scrape-token"


def scrape(client: Client, **headers: str) -> dict[str, dict[tuple, float]]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return samples(response.content.decode())


def samples(text: str) -> dict[str, dict[tuple, float]]:
    """A scrape's values, by sample name and sorted labels."""
    found: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


@pytest.fixture
def workload(memory: RedisShortTermMemory) -> RedisShortTermMemory:
    """Team "build": 3 queued reviews, 1 queued fix, 1 claimed, 1 dead-lettered; two
    agents alive."""
    build = AgentCoordinator(memory, "build", max_attempts=1)
    for agent in ("a1", "a2"):
        build.register_agent(agent)
    for i in range(5):
        build.add_task(AgentTask(f"r-{i}", "review"))
    build.add_task(AgentTask("f-1", "fix"))
    build.claim_task("a1", "review")
    build.fail_task(build.claim_task("a2", "review").task_id, "boom", retry=False)
    send(memory, Caller("a1", AccessTier.CONTRIBUTOR), "status", {"ok": 1}, team="build")
    return memory


def test_metrics_are_off_without_a_token_or_addresses(client):
    assert client.get("/metrics").status_code == 404


def test_a_scrape_needs_the_token(settings, client):
    settings.METRICS_TOKEN = TOKEN
    refused = client.get("/metrics")
    assert refused.status_code == 401 and refused["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


def test_allowed_addresses_scrape_without_a_token(settings):
    settings.METRICS_ALLOWED_ADDRESSES = ["10.1.0.0/16", "127.0.0.1"]
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="10.2.0.1").get("/metrics").status_code == 404


def test_the_figures_are_the_librarys(settings, client, workload):
    settings.METRICS_TOKEN = TOKEN

    found = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    depth = found["empathy_queue_depth"]
    assert depth[(("task_type", "fix"), ("team", "build"))] == 1
    assert depth[(("task_type", "review"), ("team", "build"))] == 3
    tasks = {dict(k)["state"]: v for k, v in found["empathy_tasks_in_state"].items()}
    assert tasks == {"pending": 4, "claimed": 1, "completed": 0, "dead": 1}
    agents = {dict(k)["liveness"]: v for k, v in found["empathy_agents"].items()}
    assert agents == {"alive": 2, "late": 0, "dead": 0}
    outcomes = {
        (dict(k)["task_type"], name.removeprefix("empathy_tasks_").removesuffix("_total")): v
        for name in [f"empathy_{kind}_total" for kind in TASK_KINDS]
        for k, v in found.get(name, {}).items()
        if dict(k)["team"] == "build"
    }
    assert outcomes == {
        ("review", "added"): 5, ("fix", "added"): 1, ("review", "claimed"): 2,
        ("review", "dead_lettered"): 1,
    }  # fmt: skip
    assert not {name for name in found if name.startswith("empathy_tasks_") and "lease" in name}
    assert found["empathy_signals_sent_total"] == {(("team", "build"),): 1}
    waits = found["empathy_queue_latency_seconds"]
    assert set(waits) == {(("task_type", t), ("team", "build")) for t in ("fix", "review")}
    assert all(0 <= v < 60 for v in waits.values())
    assert found["empathy_teams_unreported"][()] == 0
    assert found["empathy_bridge_lag_seconds"][()] == 0  # no bridge has announced anything
    again = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")  # the first one, timed
    timed = {dict(k)["view"]: v for k, v in again["empathy_request_seconds_count"].items()}
    assert timed["metrics"] >= 1


def test_every_kind_the_library_counts_is_a_counter():
    assert set(COUNTED) == set(SERIES_KINDS)


def test_teams_past_the_limit_are_counted_not_reported(settings, client, workload):
    settings.METRICS_TOKEN, settings.METRICS_MAX_TEAMS = TOKEN, 1
    AgentCoordinator(workload, "other").add_task(AgentTask("o-1", "x"))

    found = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert found["empathy_teams_unreported"][()] == 1
    assert {dict(k)["team"] for k in found["empathy_queue_depth"]} == {"other"}  # the newest


def test_the_bridge_lag_is_the_wait_of_the_oldest_unannounced_event(settings, client, memory):
    settings.METRICS_TOKEN = TOKEN
    EmpathyOS("a", short_term_memory=memory).stash("k", 1)
    announced = memory.latest_event_id()
    memory.client.set(memory.keys.bridge_cursor, announced)
    assert (
        scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")["empathy_bridge_lag_seconds"][()] == 0
    )
    EmpathyOS("a", short_term_memory=memory).stash("k", 2)  # not announced yet
    lag = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")["empathy_bridge_lag_seconds"][()]
    assert 0 <= lag < 5
