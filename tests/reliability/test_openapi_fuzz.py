"""Schemathesis against a real server's own OpenAPI (/schema/openapi.json): every operation, up to 25 generated
requests each (valid and invalid parameters and bodies), as the admin. No request may get a 5xx, and every
response must match the schema wherever the schema documents its status (error bodies included).

Its own server: the fuzzer flips gates and safe mode, which would change what other modules see."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.e2e.server import Server
from tests.reliability.conftest import headers

pytestmark = pytest.mark.e2e

EXAMPLES = 25
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def api(server: Server) -> Iterator[schemathesis.BaseSchema]:
    raw = httpx.get(f"{server.url}/schema/openapi.json", timeout=10).json()
    yield schemathesis.openapi.from_dict(raw)


def test_no_operation_answers_5xx_or_breaks_its_schema(server: Server, api: schemathesis.BaseSchema) -> None:
    failures: dict[str, str] = {}
    counts: dict[str, int] = {}
    started = time.monotonic()
    for result in api.get_all_operations():
        op = result.ok()
        counts[op.label] = 0

        @FUZZ
        @given(case=op.as_strategy())
        def check(case: schemathesis.Case) -> None:
            counts[op.label] += 1
            response = case.call(base_url=server.url, headers=headers("admin"), timeout=30)
            case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

        try:
            check()
        except Exception as exc:  # one report for the whole API: which operations failed, and how
            failures[op.label] = str(exc)[:2000]
    assert failures == {}
    assert len(counts) >= 25, counts
    assert sum(counts.values()) >= 300, counts  # the bodies the schema documents were really generated
    assert time.monotonic() - started < 60
    assert "Traceback" not in server.log()
