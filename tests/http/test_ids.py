"""Ids in paths, on every route that takes one (issue 14, point 7): a well-formed id that names nothing is
404 `not_found`; an id that could never be valid (`..`, `/`, control characters, over 128 characters) is 400."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient

from tests.conftest import auth

ROUTES = [
    ("GET", "/cells/{id}"), ("GET", "/cells/{id}/1.0.0"),
    ("GET", "/factory/cells/{id}"), ("POST", "/factory/cells/{id}/approve"), ("POST", "/factory/cells/{id}/disable"),
    ("POST", "/factory/cells/{id}/rollback"), ("POST", "/factory/cells/{id}/auto_heal"),
    ("GET", "/organs/{id}/status"), ("POST", "/organs/{id}/rebuild"), ("DELETE", "/organs/{id}/build"),
    ("POST", "/api/neira/commands/plans/{id}/apply"),
]
UNKNOWN = ["organ-missing", "organ-01", "organ-999", "cell-404", "cell-01", "missing.cell", "plan-1", "x" * 128]
NEVER_VALID = ["%2E%2E", "a%2E%2E", "%2F", "a%2Fb", "%00", "a%0Ab", "x" * 129]


@pytest.mark.parametrize("method,route", ROUTES, ids=[f"{m} {r}" for m, r in ROUTES])
async def test_unknown_ids_are_404_and_impossible_ones_400(client: AsyncTestClient, method: str, route: str) -> None:
    got = {}
    for value in UNKNOWN + NEVER_VALID:
        r = await client.request(method, route.format(id=value), headers=auth())
        got[value] = (r.status_code, r.json()["code"] if r.content[:1] == b"{" else r.text[:40])
    expected = {v: (404, "not_found") for v in UNKNOWN} | {v: (400, "invalid_request") for v in NEVER_VALID}
    assert got == expected


async def test_organ_status_change_of_an_unknown_organ_is_404(client: AsyncTestClient) -> None:
    for organ_id in ("organ-missing", "organ-01"):
        r = await client.post(f"/organs/{organ_id}/status", json={"state": "stable"}, headers=auth())
        assert (r.status_code, r.json()["code"]) == (404, "not_found")
