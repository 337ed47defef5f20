"""Concurrent applies of one plan answer like a repeated apply: 200 `already_applied: true` with the
winner's result (a double click is not told the plan went stale)."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from tests.e2e.server import Server
from tests.reliability.conftest import async_client

pytestmark = pytest.mark.e2e


async def test_concurrent_duplicate_applies_answer_already_applied(server: Server) -> None:
    async with async_client(server, connections=20) as c:
        said = (await c.post("/api/neira/commands", json={"text": "создай голосовой орган v1"})).json()
        plan_id = said["plan"]["id"]
        answers = await asyncio.gather(*(c.post(f"/api/neira/commands/plans/{plan_id}/apply") for _ in range(20)))
    winner = next(r.json() for r in answers if r.status_code == 200 and not r.json()["already_applied"])
    assert Counter((r.status_code, r.json().get("already_applied")) for r in answers) == {(200, False): 1, (200, True): 19}
    assert {str(r.json()["applied"]) for r in answers} == {str(winner["applied"])}
