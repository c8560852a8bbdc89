"""The security wizard page under big or many runs: the findings it lists, a run that
reaches its time limit, every result cached, and a per-person limit on runs. Runs on a
real redis-server."""

from __future__ import annotations

import pytest
from django.test import override_settings

from memory.wizards import security_analysis_wizard as security_module
from memory.wizards.security_analysis_wizard import DEFAULT_MAX_CODE_BYTES, DEFAULT_MAX_FINDINGS
from tests.web.test_wizards_page import PAGE, Listing, run

pytestmark = pytest.mark.django_db

# 200 KB of asserts: 22,000 findings, which once made a 34 MB page.
ASSERTS = "assert x\n" * (DEFAULT_MAX_CODE_BYTES // 9 - 1)


@pytest.fixture
def alice(memory, client_for):
    return client_for("contributor", username="alice")


@pytest.fixture
def scans(monkeypatch):
    """The source of every bandit scan run during the test."""
    seen: list[str] = []
    real = security_module.analyze_python

    def spy(code, **bounds):
        seen.append(code)
        return real(code, **bounds)

    monkeypatch.setattr(security_module, "analyze_python", spy)
    return seen


def test_a_big_paste_lists_the_most_severe_findings_and_counts_the_rest(alice, scans):
    response = run(alice, ASSERTS, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert len(response.content) < 1024 * 1024  # it was 34 MB
    html = response.content.decode()
    total = ASSERTS.count("\n")
    assert f"{total} findings:" in html
    listing = Listing(html)
    assert len(listing.stage_forms) == DEFAULT_MAX_FINDINGS
    assert f"The other {total - DEFAULT_MAX_FINDINGS} are counted above" in html
    # Viewing the run again, or running the same code again, reads the cache.
    assert alice.get(response["HX-Push-Url"]).status_code == 200
    assert run(alice, ASSERTS).status_code == 200
    assert len(scans) == 1


@override_settings(WIZARD_MAX_SECONDS=0.05)
def test_a_run_that_reaches_the_time_limit_says_so(alice):
    response = run(alice, ASSERTS)

    assert response.status_code == 200
    html = response.content.decode()
    assert "The analysis stopped at its time limit (0.05 s) while checking line" in html
    assert "later lines were not checked" in html


@override_settings(WIZARD_RUNS_PER_MINUTE=2)
def test_runs_past_the_per_person_limit_are_a_429(alice, client_for, scans):
    assert run(alice, "x = 1").status_code == 200
    assert run(alice, "x = 2").status_code == 200

    refused = run(alice, "x = 3", HTTP_HX_REQUEST="true")

    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "run the wizard 2 times in the last minute" in refused.content.decode()
    assert len(scans) == 2
    # Code already analysed is served from the cache; another person has their own runs.
    assert run(alice, "x = 1").status_code == 200
    assert run(client_for("contributor", username="bob"), "x = 3").status_code == 200
    assert len(scans) == 3


def test_the_limit_and_time_come_from_settings(alice, settings):
    assert settings.WIZARD_RUNS_PER_MINUTE == 10
    assert settings.WIZARD_MAX_SECONDS == 5
    assert alice.get(PAGE).status_code == 200


def test_a_long_listing_shows_the_lines_around_what_it_lists(alice):
    code = "x = 1\n" * 1000 + "import pickle\npickle.loads(data)\n" + "y = 2\n" * 1000
    html = run(alice, code).content.decode()

    listing = Listing(html)
    # Lines 1001 and 1002 are flagged; three lines either side are shown with them.
    assert sorted(listing.code) == list(range(998, 1006))
    assert listing.flagged() == {1001: "sev-low", 1002: "sev-medium"}
    assert html.count("… 997 lines with nothing listed …") == 2  # before and after


def test_a_long_listing_of_code_that_does_not_parse_shows_the_error_line(alice):
    code = "x = 1\n" * 800 + "def (:\n" + "y = 2\n" * 5
    html = run(alice, code).content.decode()

    assert sorted(Listing(html).code) == list(range(798, 805))  # the error is on 801
