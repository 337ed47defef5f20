"""Every operation in the OpenAPI needs a token unless the contract leaves it open; roles are enforced."""

from __future__ import annotations

import re

from litestar.testing import AsyncTestClient

from tests.conftest import auth

OPEN = {("GET", "/healthz"), ("GET", "/metrics"), ("POST", "/logout")}  # sign-out ends the caller's own session


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


async def _operations(client: AsyncTestClient) -> list[tuple[str, str]]:
    schema = (await client.get("/schema/openapi.json")).json()
    return [(m.upper(), p) for p, ops in schema["paths"].items() for m in ops if m.upper() in {"GET", "POST", "PUT", "PATCH", "DELETE"}]


async def test_every_operation_needs_a_token(client: AsyncTestClient) -> None:
    ops = await _operations(client)
    assert len(ops) >= 8
    for method, path in ops:
        r = await client.request(method, _concrete(path))
        if (method, path) in OPEN:
            assert r.status_code == 200, (method, path)
        else:
            assert (r.status_code, r.json()["code"]) == (401, "unauthorized"), (method, path)
        wrong = await client.request(method, _concrete(path), headers={"Authorization": "Bearer nope"})
        if (method, path) not in OPEN:
            assert wrong.status_code == 401, (method, path)


async def test_viewer_cannot_write_anything(client: AsyncTestClient) -> None:
    for method, path in await _operations(client):
        if method == "GET" or path == "/api/neira/commands" or (method, path) in OPEN:  # commands: open to every role; it refuses writes itself
            continue
        r = await client.request(method, _concrete(path), headers=auth("viewer"), json={})
        assert (r.status_code, r.json()["code"]) == (403, "forbidden"), (method, path)


async def test_malformed_authorization_headers(client: AsyncTestClient) -> None:
    for header in ("admin-token-for-tests", "Basic admin-token-for-tests", "Bearer", "Bearer  ", "bearer admin-token-for-tests x"):
        r = await client.get("/api/neira/capabilities", headers={"Authorization": header})
        assert r.status_code == 401, header
    assert (await client.get("/api/neira/capabilities", headers={"Authorization": "bearer admin-token-for-tests"})).status_code == 200


async def test_static_pages_are_open_and_cached_sensibly(client: AsyncTestClient) -> None:
    r = await client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "cache-control" in r.headers
