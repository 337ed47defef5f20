"""`/cells` over HTTP: register (201/200/409), read, list and search, roles, safe mode, unsafe ids."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from neira.core import Core
from tests.conftest import auth, make_settings

ID = "analysis.demo.v1"


def cell(version: str = "1.0.0", **extra) -> dict:
    return {"id": ID, "version": version, "analysis_type": "demo", "links": [], "metadata": {"schema": "v1"}} | extra


def cells_root(client: AsyncTestClient) -> Path:
    return client.app.state.core.settings.data_path / "cells"


def deep(levels: int) -> dict:
    value: dict = {}
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.fixture
async def safe_client(tmp_path: Path) -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(create_app(Core(make_settings(tmp_path / "safe", safe_mode=True)))) as c:
        yield c


async def test_register_then_identical_then_conflict(client: AsyncTestClient):
    r = await client.post("/cells", json=cell(), headers=auth("operator"))
    assert (r.status_code, r.json()) == (201, {"id": ID, "version": "1.0.0"})
    r = await client.post("/cells", json=cell(), headers=auth())
    assert (r.status_code, r.json()) == (200, {"id": ID, "version": "1.0.0"})
    r = await client.post("/cells", json=cell(description="other"), headers=auth())
    assert (r.status_code, r.json()) == (409, {"code": "conflict", "reason": f"{ID} 1.0.0 is already registered with other content"})
    assert (cells_root(client) / ID / "1.0.0.json").is_file()
    key = {"Idempotency-Key": "cells-1"}
    r = await client.post("/cells", json=cell("2.0.0"), headers=auth() | key)
    assert (r.status_code, r.json()) == (201, {"id": ID, "version": "2.0.0"})
    r = await client.post("/cells", json=cell("2.0.0"), headers=auth() | key)
    assert (r.status_code, r.json()) == (201, {"id": ID, "version": "2.0.0"})
    r = await client.post("/cells", json=cell("3.0.0"), headers=auth() | key)
    assert (r.status_code, r.json()["code"]) == (409, "conflict")


async def test_reads_latest_and_exact_versions(client: AsyncTestClient):
    for v in ("1.2.0", "1.10.0", "1.9.0"):
        assert (await client.post("/cells", json=cell(v), headers=auth())).status_code == 201
    r = await client.get(f"/cells/{ID}", headers=auth("viewer"))
    assert (r.status_code, r.json()) == (200, cell("1.10.0"))
    r = await client.get(f"/cells/{ID}/1.9.0", headers=auth("viewer"))
    assert (r.status_code, r.json()) == (200, cell("1.9.0"))
    r = await client.get(f"/cells/{ID}/3.0.0", headers=auth())
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    r = await client.get("/cells/analysis.nothing.v1", headers=auth())
    assert (r.status_code, r.json()) == (404, {"code": "not_found", "reason": "no cell analysis.nothing.v1 in the catalog"})


async def test_list_and_search_over_the_examples(client: AsyncTestClient):
    r = await client.get("/cells", headers=auth("viewer"))
    ids = [c["id"] for c in r.json()]
    assert r.status_code == 200 and "analysis.grayscale.v1" in ids and ids == sorted(ids)
    r = await client.get("/cells", params={"kind": "memory"}, headers=auth())
    assert [c["kind"] for c in r.json()] and {c["kind"] for c in r.json()} == {"memory"}
    r = await client.get("/cells", params={"q": "серого"}, headers=auth())
    assert [c["id"] for c in r.json()] == ["analysis.grayscale.v1"]
    r = await client.get("/cells", params={"q": "grayscale", "kind": "action"}, headers=auth())
    assert r.json() == []
    r = await client.get("/cells", params={"kind": "robot"}, headers=auth())
    assert (r.status_code, r.json()) == (400, {"code": "invalid_request", "reason": "kind must be one of analysis, action, memory"})


async def test_invalid_templates_and_bodies(client: AsyncTestClient):
    r = await client.post("/cells", json=cell(confidence_threshold=3), headers=auth())
    assert (r.status_code, r.json()) == (400, {"code": "invalid_template", "reason": "template is invalid",
                                               "errors": [{"path": "$.confidence_threshold", "message": "must be between 0 and 1"}]})
    r = await client.post("/cells", content=b"{not json", headers=auth() | {"content-type": "application/json"})
    assert (r.status_code, r.json()) == (400, {"code": "invalid_request", "reason": "malformed JSON body"})
    r = await client.post("/cells", content=b"", headers=auth())
    assert (r.status_code, r.json()["code"]) == (400, "invalid_request")
    for raw in (b"[" * 5000 + b"]" * 5000, b"\xff\xfe\xfa", json.dumps(cell(metadata={"schema": "v1", "x": deep(100)})).encode()):
        r = await client.post("/cells", content=raw, headers=auth() | {"content-type": "application/json"})
        assert (r.status_code, r.json()["code"]) == (400, "invalid_request"), raw[:20]
    assert (await client.post("/cells", json=cell(metadata={"schema": "v1", "x": deep(50)}), headers=auth())).status_code == 201
    r = await client.post("/cells", json=[cell()], headers=auth())
    assert (r.status_code, r.json()["code"]) == (400, "invalid_template")
    r = await client.post("/cells", json=cell(description="x" * (1024 * 1024 + 10)), headers=auth())
    assert (r.status_code, r.json()["code"]) == (413, "payload_too_large")


UNSAFE_IDS = ["../../evil", "a/b", "..", "/abs", "x\\..\\y", "Upper", "a\n"]
UNSAFE_PATHS = [
    "/cells/%2E%2E", "/cells/..%2F..%2Fetc", "/cells/a%2Fb/1.0.0", "/cells/..%2F/1.0.0", f"/cells/{ID}/..%2F..%2Fx",
    f"/cells/{ID}/1.0.0%2F..", "/cells/%2Fetc%2Fpasswd", "/cells/a/b/c", "/cells/a%0A",
]


async def test_unsafe_ids_are_400_and_never_reach_the_disk(client: AsyncTestClient):
    data_dir = cells_root(client).parent
    before = sorted(p for p in data_dir.rglob("*") if "neira.db" not in p.name)
    for bad in UNSAFE_IDS:
        r = await client.post("/cells", json=cell() | {"id": bad}, headers=auth())
        assert (r.status_code, r.json()["code"]) == (400, "invalid_template"), bad
    r = await client.post("/cells", json=cell("../../1.0.0"), headers=auth())
    assert (r.status_code, r.json()["code"]) == (400, "invalid_template")
    for path in UNSAFE_PATHS:
        r = await client.get(path, headers=auth())
        assert (r.status_code, r.json()["code"]) == (400, "invalid_request"), path
    assert sorted(p for p in data_dir.rglob("*") if "neira.db" not in p.name) == before


async def test_roles(client: AsyncTestClient):
    r = await client.post("/cells", json=cell(), headers=auth("viewer"))
    assert (r.status_code, r.json()["code"]) == (403, "forbidden")
    r = await client.post("/cells", json=cell())
    assert (r.status_code, r.json()["code"]) == (401, "unauthorized")
    r = await client.get("/cells", headers={"Authorization": "Bearer wrong"})
    assert (r.status_code, r.json()["code"]) == (401, "unauthorized")
    assert not (cells_root(client) / ID).exists()


async def test_safe_mode_lets_only_the_admin_write(safe_client: AsyncTestClient):
    r = await safe_client.post("/cells", json=cell(), headers=auth("operator"))
    assert (r.status_code, r.json()["code"]) == (403, "safe_mode")
    assert (await safe_client.get("/cells", headers=auth("viewer"))).status_code == 200
    r = await safe_client.post("/cells", json=cell(), headers=auth("admin"))
    assert r.status_code == 201


async def test_post_cells_and_factory_refuse_a_link_cycle(client: AsyncTestClient) -> None:
    r = await client.post("/cells", json=cell(links=["analysis.other.v1"]), headers=auth())
    assert r.status_code == 201  # a missing link is not an error
    other = {"id": "analysis.other.v1", "version": "1.0.0", "analysis_type": "demo", "links": [ID], "metadata": {"schema": "v1"}}
    for path, body in (("/cells", other), ("/factory/cells", {"template": other})):
        r = await client.post(path, json=body, headers=auth())
        assert (r.status_code, r.json()["code"], [e["path"] for e in r.json()["errors"]]) == (400, "invalid_template", ["$.links"])
    assert (await client.get("/cells/analysis.other.v1", headers=auth())).status_code == 404
