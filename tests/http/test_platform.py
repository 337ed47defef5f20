"""Platform routes over HTTP: health, metrics, introspection, gates, safe mode, events, audit, error bodies."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families

from neira.storage import migrate
from tests.conftest import ADMIN, auth
from tests.http.live import Live, close_code, frame


async def test_open_routes_need_no_token(client: AsyncTestClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok", "database": "ok", "schema": migrate.head()}
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    assert (await client.get("/schema/openapi.json")).status_code == 200


async def test_metrics_name_every_seed_metric(client: AsyncTestClient) -> None:
    await client.get("/api/neira/capabilities", headers=auth())
    text = (await client.get("/metrics")).text
    for name in (
        "factory_cells_created_total", "factory_cells_active", "factory_exec_errors_total",
        "factory_dryrun_requests_total", "factory_approvals_total", "factory_rollbacks_total",
        "organ_build_attempts_total", "organ_build_failures_total", "organ_build_duration_ms",
        "organ_build_status_queries_total", "training_iterations_total", "training_converged_total",
        "neira_http_requests_total",
    ):
        assert f"# TYPE {name}" in text or f"# TYPE {name.removesuffix('_total')}" in text, name


async def test_http_metrics_count_each_answer_by_route_and_status(client: AsyncTestClient) -> None:
    await client.get("/api/neira/capabilities", headers=auth())
    await client.get("/api/neira/capabilities", headers=auth())
    await client.get("/api/neira/capabilities")  # refused by the access check, before the route runs
    await client.get("/organs/organ-999/status", headers=auth())
    await client.get("/metrics")
    samples = [s for f in text_string_to_metric_families((await client.get("/metrics")).text) for s in f.samples]

    def value(name: str, path: str, status: int, **more: str) -> float | None:
        want = {"method": "GET", "path": path, "status_code": str(status), "app_name": "neira", **more}
        found = [s.value for s in samples if s.name == name and s.labels == want]
        return found[0] if found else None

    caps = "/api/neira/capabilities"
    assert value("neira_http_requests_total", caps, 200) == 2
    assert value("neira_http_requests_total", caps, 401) == 1
    assert value("neira_http_requests_total", "/organs/{organ_id}/status", 404) == 1
    assert value("neira_http_request_duration_seconds_count", caps, 200) == 2
    assert value("neira_http_request_duration_seconds_bucket", caps, 200, le="+Inf") == 2
    assert value("neira_http_requests_in_progress", caps, 200) == 0
    assert not [s for s in samples if s.labels.get("path") == "/metrics"]  # the scrape does not count itself


async def test_capabilities_flip_and_locked(client: AsyncTestClient) -> None:
    caps = (await client.get("/api/neira/capabilities", headers=auth("viewer"))).json()
    assert caps["factory_script"] == "locked" and caps["organs_builder"] == "experimental"
    r = await client.post("/api/neira/capabilities/organs_builder", json={"state": "disabled", "reason": "drill"}, headers=auth())
    assert (r.status_code, r.json()) == (200, {"name": "organs_builder", "state": "disabled"})
    r = await client.post("/api/neira/capabilities/factory_wasm", json={"state": "stable"}, headers=auth())
    assert (r.status_code, r.json()["code"], r.json()["capability"]) == (403, "capability_locked", "factory_wasm")
    r = await client.post("/api/neira/capabilities/nope", json={"state": "stable"}, headers=auth())
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    r = await client.post("/api/neira/capabilities/organs_builder", json={"state": "sideways"}, headers=auth())
    assert (r.status_code, r.json()["code"]) == (400, "invalid_request")
    r = await client.post("/api/neira/capabilities/organs_builder", json={"state": "stable"}, headers=auth("operator"))
    assert (r.status_code, r.json()["code"]) == (403, "forbidden")


async def test_safe_mode_blocks_operator_writes(client: AsyncTestClient) -> None:
    assert (await client.get("/api/neira/safe-mode", headers=auth("operator"))).json() == {"enabled": False, "reason": None}
    r = await client.post("/api/neira/safe-mode", json={"enabled": True, "reason": "incident"}, headers=auth())
    assert r.json() == {"enabled": True, "reason": "incident"}
    r = await client.post("/factory/cells/dryrun", json={"template": {}}, headers=auth("operator"))
    assert (r.status_code, r.json()["code"]) == (403, "safe_mode")
    assert (await client.get("/api/neira/introspection/status", headers=auth("operator"))).json()["safe_mode"]["enabled"]
    r = await client.post("/api/neira/safe-mode", json={"enabled": False}, headers=auth("operator"))
    assert r.json()["code"] == "forbidden"


async def test_events_and_audit_record_changes(client: AsyncTestClient) -> None:
    await client.post("/api/neira/safe-mode", json={"enabled": True, "reason": "drill"}, headers=auth())
    await client.post("/api/neira/capabilities/factory_adapter", json={"state": "stable"}, headers=auth())
    events = (await client.get("/api/neira/events", headers=auth("viewer"))).json()
    assert [(e["type"], e["subject"]) for e in events[-2:]] == [
        ("safe_mode.changed", "safe_mode"), ("capability.changed", "capability:factory_adapter"),
    ]
    since = events[-2]["seq"]
    assert [e["type"] for e in (await client.get(f"/api/neira/events?since={since}", headers=auth())).json()] == ["capability.changed"]
    audit = (await client.get("/api/neira/audit", headers=auth())).json()
    assert [(a["actor"], a["action"], a["before"], a["after"]) for a in audit[-2:]] == [
        ("admin", "safe_mode.set", False, True), ("admin", "capability.set", "experimental", "stable"),
    ]


async def test_introspection_shape(client: AsyncTestClient) -> None:
    body = (await client.get("/api/neira/introspection/status", headers=auth())).json()
    assert {"safe_mode", "capabilities", "factory", "organs", "cells"} <= body.keys()
    assert body["cells"]["catalog_versions"] > 0


async def test_events_stream_sends_live_events(live: Live) -> None:
    async with live.ws(f"/api/neira/events/stream?token={ADMIN}") as ws:
        await live.http.post("/api/neira/safe-mode", json={"enabled": True, "reason": "ws"})
        got = await frame(ws)
        assert (got["type"], got["data"]) == ("safe_mode.changed", {"enabled": True, "reason": "ws"})


async def test_events_stream_replays_since(live: Live) -> None:
    await live.http.post("/api/neira/safe-mode", json={"enabled": True, "reason": "one"})
    async with live.ws(f"/api/neira/events/stream?token={ADMIN}&since=0") as ws:
        got = await frame(ws)
        assert (got["type"], got["data"]["reason"]) == ("safe_mode.changed", "one")


async def test_events_stream_refuses_bad_token(live: Live) -> None:
    assert await close_code(live, "/api/neira/events/stream?token=wrong") == 4401
    assert await close_code(live, "/api/neira/events/stream") == 4401


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("GET", "/no/such/route", {}, 404, "not_found"),
        ("DELETE", "/api/neira/capabilities", {}, 405, "method_not_allowed"),
        ("POST", "/api/neira/safe-mode", {"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "invalid_request"),
        ("POST", "/api/neira/safe-mode", {"json": {"enabled": "yes"}}, 400, "invalid_request"),
        ("POST", "/api/neira/safe-mode", {"json": {"enabled": True, "extra": 1}}, 400, "invalid_request"),
        ("GET", "/api/neira/events?limit=0", {}, 400, "invalid_request"),
        ("POST", "/api/neira/safe-mode", {"content": b"\xff\xfe\xfa", "headers": {"Content-Type": "application/json"}}, 400, "invalid_request"),
        ("POST", "/api/neira/safe-mode", {"content": b"[" * 5000 + b"]" * 5000, "headers": {"Content-Type": "application/json"}}, 400, "invalid_request"),
        ("POST", "/api/neira/safe-mode", {"content": b"x" * (1024 * 1024 + 1)}, 413, "payload_too_large"),
    ],
)
async def test_error_bodies(client: AsyncTestClient, method: str, path: str, kwargs: dict, status: int, code: str) -> None:
    headers = {**auth(), **kwargs.pop("headers", {})}
    r = await client.request(method, path, headers=headers, **kwargs)
    assert (r.status_code, r.json()["code"]) == (status, code)
    assert set(r.json()) >= {"code", "reason"}
    assert "Traceback" not in r.text and "/work" not in r.text and "site-packages" not in r.text


async def test_events_stream_replays_more_than_one_page(live: Live) -> None:
    from api.controllers import platform

    for i in range(5):
        await live.http.post("/api/neira/safe-mode", json={"enabled": i % 2 == 0, "reason": f"r{i}"})
    original = platform.REPLAY_PAGE
    platform.REPLAY_PAGE = 2  # five stored events arrive over three pages, in order, once each
    try:
        async with live.ws(f"/api/neira/events/stream?token={ADMIN}&since=0") as ws:
            got = [(await frame(ws))["data"]["reason"] for _ in range(5)]
            await live.http.post("/api/neira/safe-mode", json={"enabled": False, "reason": "live"})
            got.append((await frame(ws))["data"]["reason"])
    finally:
        platform.REPLAY_PAGE = original
    assert got == ["r0", "r1", "r2", "r3", "r4", "live"]


async def test_events_stream_refuses_a_bad_since(live: Live) -> None:
    assert await close_code(live, f"/api/neira/events/stream?token={ADMIN}&since=abc") == 4400


async def test_lifecycle_serves_both_transition_tables(client: AsyncTestClient) -> None:
    assert (await client.get("/api/neira/lifecycle")).status_code == 401
    body = (await client.get("/api/neira/lifecycle", headers=auth("viewer"))).json()
    assert body["organs"]["stages"] == ["draft", "canary", "experimental", "stable"]
    organ_moves = {(t["from"], t["via"], t["to"]) for t in body["organs"]["transitions"]}
    assert ("draft", "cancel", "failed") in organ_moves and ("stable", "cancel", "failed") not in organ_moves
    cell_moves = {(t["from"], t["via"], t["to"]) for t in body["cells"]["transitions"]}
    assert ("stable", "rollback", "rolled_back") in cell_moves and ("draft", "rollback", "rolled_back") not in cell_moves
    states = set(body["organs"]["states"]) | set(body["cells"]["states"]) | {"previous"}
    assert {t["to"] for t in body["cells"]["transitions"] + body["organs"]["transitions"]} <= states


async def test_an_illegal_organ_move_names_both_states(client: AsyncTestClient) -> None:
    built = (await client.post("/organs/build", json={"organ_template": "organ.echo.v1"}, headers=auth())).json()
    organ_id = built["organ_id"]
    assert (await client.post(f"/organs/{organ_id}/status", json={"state": "stable"}, headers=auth())).status_code == 200
    r = await client.post(f"/organs/{organ_id}/status", json={"state": "canary"}, headers=auth())
    assert (r.status_code, r.json()["code"], r.json()["from"], r.json()["to"]) == (409, "invalid_transition", "stable", "canary")
    r = await client.delete(f"/organs/{organ_id}/build", headers=auth())
    assert (r.status_code, r.json()["from"], r.json()["to"]) == (409, "stable", "failed")

