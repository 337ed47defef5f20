"""`/schema/openapi.json` can drive a client (contract §10): every JSON body typed with named properties, every
route's error answers with the error body, bearer auth declared, open routes marked `security: []`."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

ERROR_REF = {"$ref": "#/components/schemas/Error"}
OPEN = {("GET", "/healthz"), ("GET", "/metrics"), ("GET", "/login"), ("POST", "/logout")}
NO_BODY = {("GET", "/login"), ("GET", "/metrics")}  # a redirect; Prometheus text


@pytest.fixture
async def document(client: AsyncTestClient) -> dict[str, Any]:
    r = await client.get("/schema/openapi.json")
    assert r.status_code == 200
    return r.json()


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m.upper(), path, op) for path, item in doc["paths"].items() for m, op in item.items() if isinstance(op, dict)]


def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The object schema a body stands for (through a $ref, or an array's items)."""
    if schema.get("type") == "array":
        schema = schema["items"]
    if "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


async def test_every_answer_and_request_body_has_named_properties(document: dict[str, Any]) -> None:
    ops = operations(document)
    assert len(ops) >= 30
    for method, path, op in ops:
        ok = {code: r for code, r in op["responses"].items() if code[0] in "2"}
        if (method, path) in NO_BODY:
            continue
        assert ok, (method, path)
        for code, response in ok.items():
            schema = resolve(document, response["content"]["application/json"]["schema"])
            assert schema.get("properties"), (method, path, code, schema)
        if "requestBody" in op:
            schema = resolve(document, op["requestBody"]["content"]["application/json"]["schema"])
            assert schema.get("properties"), (method, path)


async def test_writes_that_take_a_body_declare_it(document: dict[str, Any]) -> None:
    with_body = {(m, p) for m, p, op in operations(document) if "requestBody" in op}
    for route in [("POST", "/api/neira/commands"), ("POST", "/organs/build"), ("POST", "/organs/{organ_id}/run"),
                  ("POST", "/organs/run"), ("POST", "/factory/cells"), ("POST", "/factory/cells/dryrun"),
                  ("POST", "/factory/cells/{record_id}/run"), ("POST", "/cells"), ("POST", "/organs/{organ_id}/status"),
                  ("POST", "/api/neira/capabilities/{name}"), ("POST", "/api/neira/safe-mode"),
                  ("POST", "/factory/cells/{record_id}/approve")]:
        assert route in with_body, route


async def test_error_answers_use_the_error_body(document: dict[str, Any]) -> None:
    error = document["components"]["schemas"]["Error"]
    assert {"code", "reason"} <= set(error["required"]) and "capability" in error["properties"]
    for method, path, op in operations(document):
        errors = {code: r for code, r in op["responses"].items() if code[0] in "45"}
        if (method, path) not in OPEN:
            assert "401" in errors, (method, path)
        if "{" in path:
            assert {"400", "404"} <= set(errors), (method, path)
        if "requestBody" in op:
            assert {"400", "413", "415"} <= set(errors), (method, path)
        for response in errors.values():
            assert response["content"]["application/json"]["schema"] == ERROR_REF
    by_route = {(m, p): op for m, p, op in operations(document)}
    assert "429" in by_route[("POST", "/organs/{organ_id}/run")]["responses"]
    assert "409" in by_route[("POST", "/api/neira/commands/plans/{plan_id}/apply")]["responses"]
    assert "403" in by_route[("GET", "/organs")]["responses"]


async def test_bearer_auth_is_declared_and_open_routes_need_none(document: dict[str, Any]) -> None:
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": document["components"]["securitySchemes"]["bearer"]["description"]}
    assert document["security"] == [{"bearer": []}]
    for method, path, op in operations(document):
        if (method, path) in OPEN:
            assert op["security"] == [], (method, path)
        else:
            assert "security" not in op, (method, path)


async def test_creates_take_an_idempotency_key(document: dict[str, Any]) -> None:
    for path in ("/cells", "/factory/cells", "/organs/build"):
        params = {p["name"]: p for p in document["paths"][path]["post"].get("parameters", [])}
        assert params["Idempotency-Key"]["in"] == "header" and params["Idempotency-Key"]["required"] is False


async def test_operation_ids_are_unique_handler_names(document: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in operations(document)]
    assert len(ids) == len(set(ids))
    assert {"command", "apply", "build", "status", "run_organ"} <= set(ids)


async def test_organ_status_documents_why_it_waits(document: dict[str, Any]) -> None:
    status = document["components"]["schemas"]["OrganStatus"]["properties"]
    assert {"enum": ["analysis", "approval", "delay", "gate"]} in status["waiting_for"]["anyOf"]
    assert "held_left_ms" in document["components"]["schemas"]["OrganMetrics"]["properties"]
