"""Schema fuzzing: schemathesis generates requests for every operation of the agent
API from its own generated OpenAPI schema and sends them, with a contributor
credential, to a live daphne. No answer is a 5xx, and every answer matches the schema
(status, content type and body)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.live_server import LiveServer, start_live_server

CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 25  # per operation: about 35 operations, a minute or so in all


@pytest.fixture(scope="module")
def live() -> Iterator[LiveServer]:
    server = start_live_server(API_REQUESTS_PER_MINUTE="1000000")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def secret(live: LiveServer) -> str:
    return live.credential("fuzzer", "contributor", "alpha", "beta")


def test_no_request_gets_a_server_error_or_an_answer_off_the_schema(live, secret):
    schema = schemathesis.openapi.from_url(f"{live.url}/api/v1/openapi.json")
    headers = {"Authorization": f"Bearer {secret}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30  # the whole API

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def fuzz(case) -> None:
            if isinstance(case.body, dict) and "wait" in case.body:
                case.body["wait"] = 0  # long polls have tests of their own
            response = case.call(base_url=live.url, headers=headers)
            case.validate_response(response, checks=CHECKS)

        fuzz()
