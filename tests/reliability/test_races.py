"""Real concurrency against a real server (httpx.AsyncClient with a connection per request, asyncio.gather):
racing lifecycle moves on one record, racing creates under one Idempotency-Key, and racing applies of one
command plan. Each race ends in exactly the legal outcome, and each change is audited exactly once."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import httpx
import pytest

from neira.lifecycle import CELL_TRANSITIONS
from tests.e2e.server import Server
from tests.reliability.conftest import apage_all, async_client, page_all

pytestmark = pytest.mark.e2e

N = 50


def template(name: str, version: str = "1.0.0") -> dict[str, Any]:
    return {"id": f"analysis.race_{name}", "version": version, "analysis_type": "race_probe", "links": [],
            "metadata": {"schema": "v1"}}


def audit_of(server: Server, subject: str) -> list[dict[str, Any]]:
    with server.client() as c:
        return [a for a in page_all(c, "/api/neira/audit", 5000) if a["subject"] == subject]


async def new_record(c: httpx.AsyncClient, name: str) -> str:
    r = await c.post("/factory/cells", json={"template": template(name)})
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def test_fifty_concurrent_approves_make_exactly_the_three_legal_moves(server: Server) -> None:
    async with async_client(server, connections=N) as c:
        rid = await new_record(c, "approve")
        answers = await asyncio.gather(*(c.post(f"/factory/cells/{rid}/approve", json={"reason": f"r{i}"}) for i in range(N)))
        final = (await c.get(f"/factory/cells/{rid}")).json()
    ok = sorted((r.json()["state"] for r in answers if r.status_code == 200), key=["canary", "experimental", "stable"].index)
    assert ok == ["canary", "experimental", "stable"]
    refused = [(r.status_code, r.json()["code"], r.json()["from"]) for r in answers if r.status_code != 200]
    assert refused == [(409, "invalid_transition", "stable")] * (N - 3)
    moves = [("draft", "canary"), ("canary", "experimental"), ("experimental", "stable")]
    assert [(h["from"], h["to"]) for h in final["history"]] == [(None, "draft"), *moves]
    audited = audit_of(server, f"cell:{rid}")
    assert [(a["action"], a["before"], a["after"]) for a in audited] == [
        ("cell.create", None, "draft"), *(("cell.approve", b, a) for b, a in moves)]
    # the audited reasons are those of three distinct winning requests
    assert len({a["reason"] for a in audited[1:]}) == 3


async def test_racing_moves_of_every_kind_leave_one_legal_audited_chain(server: Server) -> None:
    rng = random.Random(6)
    moves = [rng.choice(["approve", "disable", "rollback"]) for _ in range(N)]
    async with async_client(server, connections=N) as c:
        rid = await new_record(c, "mixed")
        answers = await asyncio.gather(*(c.post(f"/factory/cells/{rid}/{m}") for m in moves))
        final = (await c.get(f"/factory/cells/{rid}")).json()
    assert {r.status_code for r in answers} <= {200, 409}
    assert all(r.json()["code"] == "invalid_transition" for r in answers if r.status_code == 409)
    audited = audit_of(server, f"cell:{rid}")
    chain = [(a["before"], a["after"]) for a in audited]
    assert len(chain) == 1 + sum(r.status_code == 200 for r in answers)  # every success audited once, nothing else
    assert [b for b, _ in chain] == [None, *(a for _, a in chain[:-1])]
    assert all(any(to == a for (frm, _), to in CELL_TRANSITIONS.items() if frm == b) for b, a in chain[1:]), chain
    assert chain[-1][1] == final["state"]
    assert [(h["from"], h["to"]) for h in final["history"]] == chain


async def test_concurrent_builds_with_one_idempotency_key_make_one_organ(server: Server) -> None:
    body = {"organ_template": "organ.echo.v1"}
    key = {"Idempotency-Key": "race-build-1"}
    async with async_client(server, connections=N) as c:
        before = {o["id"] for o in await apage_all(c, "/organs")}
        answers = await asyncio.gather(*(c.post("/organs/build", json=body, headers=key) for _ in range(N)))
        after = {o["id"] for o in await apage_all(c, "/organs")}
        other = await c.post("/organs/build", json={"organ_template": "organ.reverse.v1"}, headers=key)
    assert Counter(r.status_code for r in answers) == {201: N}
    assert len({r.text for r in answers}) == 1
    organ_id = answers[0].json()["organ_id"]
    assert after - before == {organ_id}
    assert (other.status_code, other.json()["code"]) == (409, "conflict")
    assert [a["action"] for a in audit_of(server, f"organ:{organ_id}")] == ["organ.build"]


async def test_concurrent_factory_creates_with_one_idempotency_key_make_one_record(server: Server) -> None:
    body = {"template": template("idem")}
    async with async_client(server, connections=N) as c:
        keyed = await asyncio.gather(*(c.post("/factory/cells", json=body, headers={"Idempotency-Key": "race-cell-1"})
                                       for _ in range(N)))
        unkeyed = await asyncio.gather(*(c.post("/factory/cells", json={"template": template("nokey")}) for _ in range(N)))
        records = await apage_all(c, "/factory/cells")
    assert Counter(r.status_code for r in keyed) == {201: N}
    assert len({r.text for r in keyed}) == 1  # the first answer, replayed byte for byte
    # without a key the record's identity (template, version, backend) decides: one 201, then the same record
    assert Counter(r.status_code for r in unkeyed) == {201: 1, 200: N - 1}
    assert len({r.json()["id"] for r in unkeyed}) == 1
    mine = Counter(r["template_id"] for r in records if r["template_id"].startswith("analysis.race_"))
    assert mine["analysis.race_idem"] == 1 and mine["analysis.race_nokey"] == 1
    for r in (keyed[0], unkeyed[0]):
        assert [a["action"] for a in audit_of(server, f"cell:{r.json()['id']}")] == ["cell.create"]


async def test_concurrent_applies_of_one_plan_apply_it_once(server: Server) -> None:
    async with async_client(server, connections=N) as c:
        said = await c.post("/api/neira/commands", json={"text": "создай голосовой орган v1"})
        assert said.status_code == 200, said.text
        plan = said.json()["plan"]
        assert said.json()["intent"] == "create_organ" and plan["changes"], said.text
        organs_before = {o["id"] for o in (await c.get("/organs")).json()}
        records_before = {r["id"] for r in (await c.get("/factory/cells")).json()}
        answers = await asyncio.gather(*(c.post(f"/api/neira/commands/plans/{plan['id']}/apply") for _ in range(20)))
        again = await c.post(f"/api/neira/commands/plans/{plan['id']}/apply")
        organs_after = {o["id"] for o in (await c.get("/organs")).json()}
        records_after = {r["id"] for r in (await c.get("/factory/cells")).json()}
    outcomes = Counter(
        "applied" if r.status_code == 200 and not r.json()["already_applied"]
        else "repeat" if r.status_code == 200 else r.json()["code"] for r in answers)
    assert outcomes["applied"] == 1 and set(outcomes) <= {"applied", "repeat", "plan_stale"}, outcomes
    applied = next(r.json() for r in answers if r.status_code == 200 and not r.json()["already_applied"])
    organ_id = next(a["organ_id"] for a in applied["applied"] if a["kind"] == "organ")
    assert organs_after - organs_before == {organ_id}
    created = [c["id"] for c in plan["changes"] if c["kind"] == "cell" and c["action"] == "create"]
    assert len(records_after - records_before) == len(created)
    assert {a["record_id"] for a in applied["applied"] if a["kind"] == "cell"} == records_after - records_before
    assert (again.status_code, again.json()["already_applied"], again.json()["applied"]) == (200, True, applied["applied"])
    assert [a["action"] for a in audit_of(server, f"plan:{plan['id']}")] == ["command.apply"]
    assert [a["action"] for a in audit_of(server, f"organ:{organ_id}")] == ["organ.build"]
