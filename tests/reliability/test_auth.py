"""Roles and safe mode on every operation the OpenAPI lists, beyond tests/http/test_auth.py (no token → 401,
viewer writes → 403): operators are refused on admin-only routes, safe mode refuses every operator write
with `safe_mode`, and no token — right or wrong, in a header or a WebSocket's `?token=` — reaches the log."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote

import pytest
from litestar.testing import AsyncTestClient
from websockets.sync.client import connect

from api.app import create_app
from neira.core import Core
from tests.conftest import ADMIN, OPERATOR, VIEWER, auth, make_settings
from tests.reliability.conftest import Store, make_server

READ = {"GET", "HEAD", "OPTIONS"}


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


async def write_operations(client: AsyncTestClient) -> list[tuple[str, str]]:
    """Every write operation in the OpenAPI, except the routes open to every role (they check writes
    themselves: the Command Cell; tests/commands covers its refusals) and the open ones (sign-out)."""
    schema = (await client.get("/schema/openapi.json")).json()
    any_role = marked(client, "any_role") | marked(client, "exclude_from_auth")
    ops = [(m.upper(), p) for p, item in schema["paths"].items() for m in item
           if m.upper() in {"POST", "PUT", "PATCH", "DELETE"} and (m.upper(), p) not in any_role]
    assert len(ops) >= 15
    return ops


def marked(client: AsyncTestClient, flag: str) -> set[tuple[str, str]]:
    """(method, path) of every handler whose `opt` sets `flag`, read from the app itself."""
    found = set()
    for route in client.app.routes:
        for handler in getattr(route, "route_handlers", []):
            if handler.opt.get(flag):
                found |= {(m, route.path_format.rstrip("/") or "/") for m in handler.http_methods}
    return found


def admin_only(client: AsyncTestClient) -> set[tuple[str, str]]:
    """(method, path) of every handler marked `opt={"admin": True}`."""
    return marked(client, "admin")


@pytest.fixture
async def safe_client(tmp_path: Path) -> AsyncIterator[AsyncTestClient]:
    app = create_app(Core(make_settings(tmp_path / "data", safe_mode=True)))
    async with AsyncTestClient(app) as c:
        yield c


async def test_operator_is_forbidden_on_every_admin_only_route(client: AsyncTestClient) -> None:
    routes = admin_only(client)
    assert {("POST", "/api/neira/capabilities/{name}"), ("POST", "/api/neira/safe-mode")} <= routes
    bodies = {"/api/neira/safe-mode": {"enabled": False, "reason": "t"}, "/api/neira/capabilities/{name}": {"state": "stable"}}
    for method, path in sorted(routes):
        url = concrete(path).replace("x1", "organs_builder")
        for role in ("operator", "viewer"):
            r = await client.request(method, url, headers=auth(role), json=bodies.get(path, {}))
            assert (r.status_code, r.json()["code"]) == (403, "forbidden"), (role, method, path)
        r = await client.request(method, url, headers=auth("admin"), json=bodies.get(path, {}))
        assert r.status_code in (200, 201), (method, path, r.text)  # 201: a new sign-in code
    assert (await client.get("/api/neira/safe-mode", headers=auth())).json()["enabled"] is False


async def test_safe_mode_refuses_every_operator_write(safe_client: AsyncTestClient) -> None:
    ops = await write_operations(safe_client)
    answers = {}
    for method, path in ops:
        r = await safe_client.request(method, concrete(path), headers=auth("operator"), json={})
        answers[(method, path)] = (r.status_code, r.json()["code"])
    expected = {op: (403, "safe_mode") for op in ops if op not in admin_only(safe_client)}
    expected |= {op: (403, "forbidden") for op in ops if op in admin_only(safe_client)}
    assert answers == expected
    # the admin still writes in safe mode (whatever the answer, it is not a safe-mode refusal)
    for method, path in ops:
        r = await safe_client.request(method, concrete(path), headers=auth("admin"), json={})
        assert r.json().get("code") != "safe_mode", (method, path)


async def test_safe_mode_switched_at_run_time_applies_to_the_next_request(client: AsyncTestClient) -> None:
    ops = [op for op in await write_operations(client) if op not in admin_only(client)]
    on = await client.post("/api/neira/safe-mode", headers=auth(), json={"enabled": True, "reason": "incident"})
    assert on.status_code == 200, on.text
    for method, path in ops:
        r = await client.request(method, concrete(path), headers=auth("operator"), json={})
        assert (r.status_code, r.json()["code"]) == (403, "safe_mode"), (method, path)
    off = await client.post("/api/neira/safe-mode", headers=auth(), json={"enabled": False, "reason": "over"})
    assert off.status_code == 200, off.text
    for method, path in ops:
        r = await client.request(method, concrete(path), headers=auth("operator"), json={})
        assert r.json().get("code") not in ("safe_mode", "forbidden", "unauthorized"), (method, path, r.text)


# wrong tokens: plain, URL-encoded specials (decoded they hold `!`, `/`, space), short, and near-misses of real ones
WRONG = ["wrong-secret-token-456", "w%21rong%2Fsecret789", "sh0rt", "left%20right%20secret", ADMIN + "x", OPERATOR[:-1]]


def test_tokens_never_reach_the_log(tmp_path: Path, store: Store) -> None:
    server = make_server(tmp_path / "data", store, NEIRA_LOG_LEVEL="debug")  # DEBUG: uvicorn's line per WebSocket too
    server.start(timeout=60)
    try:
        with server.client() as c:
            organ_id = c.post("/organs/build", json={"organ_template": "organ.echo.v1"}).json()["organ_id"]
            for token in (ADMIN, OPERATOR, VIEWER, *map(unquote, WRONG)):
                for scheme in ("Bearer", "bearer", "Basic"):
                    c.get("/api/neira/capabilities", headers={"Authorization": f"{scheme} {token}"})
                    c.post("/factory/cells", headers={"Authorization": f"{scheme} {token}"}, json={"template": {"id": "x"}})
                c.get(f"/cells?token={token}", headers={"Authorization": f"Bearer {token}"})
        for token in (ADMIN, OPERATOR, VIEWER, *WRONG):
            for path in ("/api/neira/events/stream", f"/organs/{organ_id}/stream", "/api/neira/events/stream?since=0&x=1"):
                sep = "&" if "?" in path else "?"
                with connect(f"ws://127.0.0.1:{server.port}{path}{sep}token={token}", open_timeout=10) as ws:
                    try:
                        ws.recv(timeout=0.2)  # the snapshot, or the 4401 close for a wrong token
                    except Exception:
                        pass
        with server.client() as c:  # one more request, so every earlier line has been written
            assert c.get("/healthz").status_code == 200
    finally:
        server.stop()
    log = server.log()
    assert log.count("WebSocket /") >= 3 * (3 + len(WRONG))  # the connects were logged — without their query
    secrets = {ADMIN, OPERATOR, VIEWER, *WRONG, *map(unquote, WRONG)}
    assert {s for s in secrets if s in log} == set()
