"""`/factory/cells` over HTTP: dry-run, create, idempotency, every lifecycle move with each role, safe mode,
gates, and every error code the routes give."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from api.app import create_app
from neira.core import Core
from neira.storage import tables
from tests.conftest import auth, make_settings

T = "analysis.http_demo.v1"


def tpl(version: str = "1.0.0", **extra: Any) -> dict[str, Any]:
    return {"id": T, "version": version, "analysis_type": "demo", "links": [], "metadata": {"schema": "v1"}} | extra


def core_of(client: AsyncTestClient) -> Core:
    return client.app.state.core


async def dump(core: Core) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with core.db.read() as conn:
        for name, table in tables.metadata.tables.items():
            out[name] = [tuple(r) for r in await conn.execute(select(table))]
    root = core.settings.data_path
    out["files"] = sorted((str(p), p.read_bytes()) for p in root.rglob("*") if p.is_file() and "neira.db" not in p.name)
    return out


async def create(client: AsyncTestClient, version: str = "1.0.0", role: str = "admin", **body: Any) -> dict[str, Any]:
    r = await client.post("/factory/cells", json={"tpl": tpl(version)} | body, headers=auth(role))
    assert r.status_code == 201, r.text
    return r.json()


async def move(client: AsyncTestClient, id: str, action: str, role: str = "admin", headers: dict | None = None, **kw: Any):
    return await client.post(f"/factory/cells/{id}/{action}", headers=auth(role) | (headers or {}), **kw)


async def settled(client: AsyncTestClient, id: str) -> str:
    """The record's state once a background heal is over (the app runs on its own event loop)."""
    for _ in range(200):
        state = (await client.get(f"/factory/cells/{id}", headers=auth())).json()["state"]
        if state != "healing":
            return state
        await asyncio.sleep(0.01)
    raise AssertionError(f"{id} is still healing")


@pytest.fixture
async def safe_client(tmp_path: Path) -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(create_app(Core(make_settings(tmp_path / "safe", safe_mode=True)))) as c:
        yield c


# --- dry-run ---------------------------------------------------------------------------------------
async def test_dryrun_reports_and_writes_nothing(client: AsyncTestClient):
    core = core_of(client)
    before = await dump(core)
    body = {"backend": "adapter", "tpl": tpl(links=["analysis.text_normalize.v1", "analysis.nowhere.v1"])}
    r = await client.post("/factory/cells/dryrun", json=body, headers=auth("operator"))
    assert r.status_code == 200
    result = r.json()
    assert set(result) == {"ok", "report", "plan"} and result["ok"] is False
    assert {"kind", "deps", "links", "risks", "compat", "selector", "policy"} <= set(result["report"])
    assert [(x["id"], x["status"]) for x in result["report"]["links"]] == [
        ("analysis.nowhere.v1", "missing"), ("analysis.text_normalize.v1", "present")]
    assert [x["code"] for x in result["report"]["risks"]] == ["missing_link"]
    assert result["plan"]["text"].startswith(f"+ cell {T} — new draft record of {T} 1.0.0")
    r = await client.post("/factory/cells/dryrun", json={"spec": tpl(), "backend": "script"}, headers=auth())
    assert r.status_code == 200 and r.json()["ok"] is False
    assert [v["capability"] for v in r.json()["report"]["policy"]["violations"]] == ["factory_script"]
    assert await dump(core) == before


async def test_dryrun_of_the_seed_example(client: AsyncTestClient):
    seed = {"backend": "adapter", "tpl": {"id": "analysis.summarize.v1", "version": "0.1.0", "analysis_type": "summary",
                                          "links": [], "metadata": {"schema": "v1"}}}
    r = await client.post("/factory/cells/dryrun", json=seed, headers=auth())
    report = r.json()["report"]
    assert (r.status_code, r.json()["ok"], report["analysis_type"], report["links"]) == (200, True, "summary", [])
    assert [x["code"] for x in report["risks"]] == ["older_version"]  # the catalog has 1.0.0


BAD_BODIES = [
    ({}, "invalid_request"), ({"tpl": tpl(), "spec": tpl()}, "invalid_request"), ({"tpl": tpl(), "extra": 1}, "invalid_request"),
    ({"tpl": tpl(), "backend": "rust"}, "invalid_request"), ({"tpl": tpl(), "hitl": "no"}, "invalid_request"),
    ({"tpl": tpl(id="../x")}, "invalid_template"), ({"tpl": {"id": T}}, "invalid_template"),
    ({"tpl": "analysis.missing.v1"}, "not_found"), ([tpl()], "invalid_request"),
]


async def test_bad_bodies(client: AsyncTestClient):
    before = await dump(core_of(client))
    for route in ("/factory/cells/dryrun", "/factory/cells"):
        for body, code in BAD_BODIES:
            r = await client.post(route, json=body, headers=auth())
            assert (r.status_code, r.json()["code"]) == ({"not_found": 404}.get(code, 400), code), (route, body)
    assert await dump(core_of(client)) == before


async def test_malformed_json(client: AsyncTestClient):
    for route in ("/factory/cells/dryrun", "/factory/cells", "/factory/cells/cell-1/approve"):
        r = await client.post(route, content=b"{oops", headers=auth() | {"content-type": "application/json"})
        assert (r.status_code, r.json()) == (400, {"code": "invalid_request", "reason": "malformed JSON body"})
        r = await client.post(route, content=b"[" * 3000 + b"]" * 3000, headers=auth() | {"content-type": "application/json"})
        assert (r.status_code, r.json()) == (400, {"code": "invalid_request", "reason": "JSON body nests deeper than 64 levels"})


# --- create ----------------------------------------------------------------------------------------
async def test_create_then_same_again_then_idempotency(client: AsyncTestClient):
    r = await client.post("/factory/cells", json={"template": tpl()}, headers=auth("operator") | {"Idempotency-Key": "k1"})
    record = r.json()
    assert r.status_code == 201
    assert record == {
        "id": "cell-1", "state": "draft", "template_id": T, "version": "1.0.0", "backend": "adapter", "hitl": True,
        "kind": "analysis", "previous_state": None, "digest": record["digest"], "template": tpl(),
        "created_at": record["created_at"], "updated_at": record["created_at"],
    }
    assert (await move(client, "cell-1", "approve")).json() == {"id": "cell-1", "state": "canary"}
    r = await client.post("/factory/cells", json={"template": tpl()}, headers=auth())
    assert r.status_code == 200 and r.json()["state"] == "canary"  # never reset to draft
    r = await client.post("/factory/cells", json={"template": tpl()}, headers=auth() | {"Idempotency-Key": "k1"})
    assert (r.status_code, r.json()) == (201, record)
    r = await client.post("/factory/cells", json={"template": tpl("2.0.0")}, headers=auth() | {"Idempotency-Key": "k1"})
    assert (r.status_code, r.json()["code"]) == (409, "conflict")
    r = await client.post("/factory/cells", json={"template": tpl(description="changed")}, headers=auth())
    assert (r.status_code, r.json()["code"]) == (409, "conflict")
    assert (await client.get(f"/cells/{T}", headers=auth())).json() == tpl()


async def test_closed_gates(client: AsyncTestClient):
    r = await client.post("/factory/cells", json={"tpl": tpl(), "backend": "wasm"}, headers=auth())
    assert (r.status_code, r.json()) == (403, {"code": "capability_disabled", "reason": "capability factory_wasm is locked", "capability": "factory_wasm"})
    await create(client)
    r = await client.post("/api/neira/capabilities/factory_adapter", json={"state": "disabled"}, headers=auth())
    assert r.status_code == 200
    r = await client.post("/factory/cells", json={"tpl": tpl("1.1.0")}, headers=auth())
    assert (r.status_code, r.json()["capability"]) == (403, "factory_adapter")
    r = await move(client, "cell-1", "approve")
    assert (r.status_code, r.json()["code"]) == (403, "capability_disabled")
    assert (await move(client, "cell-1", "disable")).json() == {"id": "cell-1", "state": "disabled"}  # safety moves stay open


# --- lifecycle -------------------------------------------------------------------------------------
async def test_lifecycle_with_reasons_and_history(client: AsyncTestClient):
    await create(client, role="operator")
    for role, expected in (("operator", "canary"), ("admin", "experimental"), ("operator", "stable")):
        r = await move(client, "cell-1", "approve", role, json={"reason": f"ok by {role}"})
        assert (r.status_code, r.json()) == (200, {"id": "cell-1", "state": expected})
    r = await move(client, "cell-1", "approve")
    assert (r.status_code, r.json()) == (409, {"code": "invalid_transition", "reason": "cannot approve a stable record: it is already stable (stable → stable is not in the table)", "from": "stable", "to": "stable"})
    got = (await client.get("/factory/cells/cell-1", headers=auth("viewer"))).json()
    assert [(h["from"], h["to"], h["actor"], h["reason"]) for h in got["history"]] == [
        (None, "draft", "operator", None), ("draft", "canary", "operator", "ok by operator"),
        ("canary", "experimental", "admin", "ok by admin"), ("experimental", "stable", "operator", "ok by operator")]
    events = (await client.get("/api/neira/events", params={"limit": 500}, headers=auth())).json()
    assert [(e["subject"], e["data"]["to"]) for e in events if e["type"] == "cell.transition"] == [
        ("cell:cell-1", "draft"), ("cell:cell-1", "canary"), ("cell:cell-1", "experimental"), ("cell:cell-1", "stable")]
    audit = (await client.get("/api/neira/audit", headers=auth())).json()
    moves = [a for a in audit if a["subject"] == "cell:cell-1"]
    assert [(a["actor"], a["action"], a["after"]) for a in moves][-1] == ("operator", "cell.approve", "stable")
    assert all(a["decision_ids"] for a in moves)


async def test_viewer_cannot_move_and_operator_is_refused_in_safe_mode(client: AsyncTestClient, safe_client: AsyncTestClient):
    await create(client)
    for action in ("approve", "disable", "rollback", "auto_heal", "auto_rollback"):
        r = await move(client, "cell-1", action, "viewer")
        assert (r.status_code, r.json()["code"]) == (403, "forbidden")
    r = await client.post("/factory/cells", json={"tpl": tpl("1.1.0")}, headers=auth("viewer"))
    assert (r.status_code, r.json()["code"]) == (403, "forbidden")
    r = await client.post("/factory/cells/dryrun", json={"tpl": tpl()}, headers=auth("viewer"))
    assert (r.status_code, r.json()["code"]) == (403, "forbidden")
    assert (await client.get("/factory/cells/cell-1", headers=auth("viewer"))).json()["state"] == "draft"
    assert (await client.post("/factory/cells/cell-1/approve")).status_code == 401

    assert (await create(safe_client))["id"] == "cell-1"
    for action in ("approve", "disable", "rollback", "auto_heal", "auto_rollback"):
        r = await move(safe_client, "cell-1", action, "operator")
        assert (r.status_code, r.json()["code"]) == (403, "safe_mode")
    r = await safe_client.post("/factory/cells", json={"tpl": tpl("1.1.0")}, headers=auth("operator"))
    assert (r.status_code, r.json()["code"]) == (403, "safe_mode")
    assert (await move(safe_client, "cell-1", "approve", "admin")).json() == {"id": "cell-1", "state": "canary"}


@pytest.mark.parametrize("terminal", ["disable", "rollback", "auto_rollback"])
async def test_approve_after_a_terminal_move_is_409(client: AsyncTestClient, terminal: str):
    await create(client)
    assert (await move(client, "cell-1", "approve")).status_code == 200
    assert (await move(client, "cell-1", terminal)).status_code == 200
    r = await move(client, "cell-1", "approve")
    assert (r.status_code, r.json()["code"], r.json()["to"]) == (409, "invalid_transition", "stable")


async def promote(client: AsyncTestClient, version: str) -> str:
    id = (await create(client, version))["id"]
    for _ in range(3):
        assert (await move(client, id, "approve")).status_code == 200
    return id


async def test_stable_deprecates_and_rollback_restores(client: AsyncTestClient):
    old, new = await promote(client, "1.0.0"), await promote(client, "1.1.0")
    r = await client.get("/factory/cells", params={"state": "deprecated"}, headers=auth())
    assert [x["id"] for x in r.json()] == [old]
    r = await move(client, new, "rollback", json={"reason": "regression"})
    assert (r.status_code, r.json()) == (200, {"id": new, "state": "rolled_back", "restored": old})
    assert [x["id"] for x in (await client.get("/factory/cells", params={"state": "stable"}, headers=auth())).json()] == [old]
    r = await move(client, old, "auto_rollback")
    assert (r.status_code, r.json()) == (200, {"id": old, "state": "rolled_back", "restored": None})
    events = (await client.get("/api/neira/events", params={"limit": 500}, headers=auth())).json()
    assert [e["subject"] for e in events if e["type"] == "factory.auto_rollback"] == [f"cell:{old}"]
    metrics = (await client.get("/metrics")).text
    for line in ('factory_rollbacks_total{kind="manual"} 1.0', 'factory_rollbacks_total{kind="auto"} 1.0',
                 "training_converged_total 0.0", "training_iterations_total 0.0", "factory_cells_active 0.0",
                 'factory_cells_created_total{backend="adapter"} 2.0', 'factory_approvals_total{to="stable"} 2.0'):
        assert line in metrics, line


async def test_auto_heal_over_http(client: AsyncTestClient):
    await create(client)
    await move(client, "cell-1", "approve")
    r = await move(client, "cell-1", "auto_heal", json={"reason": "probe"})
    assert (r.status_code, r.json()) == (200, {"id": "cell-1", "state": "healing"})
    r = await move(client, "cell-1", "approve")
    assert (r.status_code, r.json()["from"]) == (409, "healing")
    assert await settled(client, "cell-1") == "canary"
    events = (await client.get("/api/neira/events", params={"limit": 500}, headers=auth())).json()
    assert [e["data"]["phase"] for e in events if e["type"] == "factory.auto_heal"] == ["started", "finished"]


async def test_move_bodies(client: AsyncTestClient):
    await create(client)
    for content in (b'{"reason": "x", "extra": 1}', b'["x"]', b'{"reason": 5}'):
        r = await move(client, "cell-1", "approve", content=content, headers={"content-type": "application/json"})
        assert (r.status_code, r.json()["code"]) == (400, "invalid_request"), content
    r = await move(client, "cell-1", "approve", content=b"")
    assert r.json() == {"id": "cell-1", "state": "canary"}


async def test_unknown_and_unsafe_record_ids(client: AsyncTestClient):
    before = await dump(core_of(client))
    r = await client.get("/factory/cells/cell-42", headers=auth())
    assert (r.status_code, r.json()) == (404, {"code": "not_found", "reason": "no cell record cell-42", "record": "cell-42"})
    assert (await move(client, "cell-42", "approve")).status_code == 404
    for path in ("/factory/cells/%2E%2E", "/factory/cells/..%2Fcell-1", "/factory/cells/..%2F..%2Fetc%2Fpasswd"):
        r = await client.get(path, headers=auth())
        assert (r.status_code, r.json()["code"]) == (400, "invalid_request"), path
    for path in ("/factory/cells/%2E%2E/approve", "/factory/cells/..%2Fcell-1/rollback"):
        r = await client.post(path, headers=auth())
        assert (r.status_code, r.json()["code"]) == (400, "invalid_request"), path
    r = await client.post("/factory/cells/cell-1/explode", headers=auth())
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    r = await client.get("/factory/cells", params={"state": "sideways"}, headers=auth())
    assert (r.status_code, r.json()["code"]) == (400, "invalid_request")
    assert await dump(core_of(client)) == before
