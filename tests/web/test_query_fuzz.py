"""Arbitrary query strings never make a page or a live panel answer 500: a malformed or
out-of-range parameter is a 400 page, or is ignored over the websocket."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from empathy_web.dashboard.fragments import render_panels
from empathy_web.dashboard.panels import PANELS
from memory import InvalidValue
from memory.tiers import AccessTier
from tests.web.pages import PAGES as DASHBOARD_PAGES
from tests.web.pages import everywhere

pytestmark = pytest.mark.django_db

PAGES = [*DASHBOARD_PAGES, "/sessions/incident-42/", "/live/"]
NAMES = ["cursor", "sort", "team", "teams", "type", "status", "agent", "session_id", "page"]
NAMES += ["after", "q", "panels", "order", "limit"]
TRICKY = ["²", "٣", "-1", "0", "99999999999999999999999", " ", "\x00", "{team}", "1e3"]
VALUES = st.one_of(st.sampled_from(TRICKY), st.text(max_size=30), st.sampled_from(list(PANELS)))
QUERIES = st.dictionaries(st.one_of(st.sampled_from(NAMES), st.text(max_size=8)), VALUES)
FUZZ = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.mark.parametrize("path", PAGES)
@FUZZ
@given(query=QUERIES)
def test_no_query_makes_a_page_fail(memory, incident, steward, path, query):
    if path == "/live/":
        query.setdefault("panels", ",".join(PANELS))
    response = steward.get(f"{path}?{urlencode(query)}")
    assert response.status_code in (200, 400, 404), (query, response.status_code)


@FUZZ
@given(query=QUERIES)
def test_a_live_panel_either_renders_or_refuses_the_query(memory, incident, query):
    viewer = everywhere("steward", AccessTier.STEWARD)
    # The feed renders through render_new_signals; a session's detail needs a session.
    names = [name for name in PANELS if name not in ("signal-feed", "session-detail")]
    try:
        render_panels(names, query, viewer, "csrf")
    except InvalidValue:  # the consumer then renders with no query
        render_panels(names, {}, viewer, "csrf")


@pytest.mark.parametrize("cursor", ["²", "99999999999999999999999"])
@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/sessions/", {}),
        ("/agents/", {"teams": "CURSOR"}),
        ("/tasks/", {"team": "t", "status": "dead"}),
        ("/memory/", {"agent": "a"}),
        ("/memory/", {"agents_cursor": "CURSOR"}),
        ("/patterns/", {"sort": "confidence"}),
    ],
)
def test_a_malformed_cursor_is_a_bad_request(memory, steward, path, query, cursor):
    query = {name: cursor if value == "CURSOR" else value for name, value in query.items()}
    response = steward.get(path, {"cursor": cursor, **query})
    assert response.status_code == 400
