"""Schemathesis against the real server's /openapi.json: generated requests for every operation must
never produce a 5xx, and every answer must match its documented status codes, content type and schema."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.conftest import running_server

EXAMPLES = 20  # per operation: bounded, so the whole run stays near a minute


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with running_server() as url:
        yield url


def test_no_server_errors_and_documented_answers(server: str) -> None:
    schema = schemathesis.openapi.from_url(f"{server}/openapi.json")
    checks = [
        schemathesis.checks.not_a_server_error,
        schemathesis.checks.status_code_conformance,
        schemathesis.checks.content_type_conformance,
        schemathesis.checks.response_schema_conformance,
    ]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    calls: dict[str, int] = {}

    for operation in operations:
        label = operation.label

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=server, checks=checks)
            calls[label] = calls.get(label, 0) + 1  # noqa: B023 - called right below, in this iteration

        check()
    print(f"schemathesis: {sum(calls.values())} requests over {len(calls)} operations: {calls}")
    assert len(calls) == len(operations) and sum(calls.values()) >= 5 * len(operations)
