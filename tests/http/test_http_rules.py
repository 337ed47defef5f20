"""Rules every route keeps (issue 14, point 7): HEAD wherever GET, 415 for a body that is not JSON, the web
dir's own files that are not pages stay unserved, and a bounded `session_id`."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from neira.config import Settings
from neira.core import Core
from tests.conftest import auth

SAMPLES = {"cell_id": "analysis.grayscale.v1", "template_id": "organ.voice.v1", "name": "schema.css", "version": "1.0.0", "rest": "x", "path": "swagger", "file_path": "organs.html"}


async def concrete_get_paths(client: AsyncTestClient) -> list[str]:
    """Every GET route of the app with its parameters filled in (an organ and a record made for them)."""
    organ = (await client.post("/organs/build", json={"organ_template": "organ.echo.v1"}, headers=auth())).json()["organ_id"]
    record = (await client.get("/factory/cells", headers=auth())).json()[0]["id"]
    values = {**SAMPLES, "organ_id": organ, "record_id": record}
    paths = []
    for route in client.app.routes:
        if "GET" in getattr(route, "methods", ()):
            path = route.path
            for name, value in values.items():
                path = path.replace(f"{{{name}:str}}", value).replace(f"{{{name}:path}}", value)
            assert "{" not in path, path
            paths.append(path)
    return paths


async def test_head_answers_wherever_get_does(client: AsyncTestClient) -> None:
    differ = {}
    for path in await concrete_get_paths(client):
        get, head = await client.get(path, headers=auth()), await client.head(path, headers=auth())
        same = get.headers.get("content-type") == head.headers.get("content-type") and "content-length" in head.headers
        if head.status_code != get.status_code or head.content or not same:
            differ[path] = (get.status_code, head.status_code, head.content[:40])
    assert differ == {}


async def test_head_without_a_token_is_401_like_get(client: AsyncTestClient) -> None:
    r = await client.head("/organs")
    assert (r.status_code, r.content) == (401, b"")


JSON_ROUTES = [("/cells", {}), ("/factory/cells/dryrun", {}), ("/factory/cells", {}), ("/organs/build", {}),
               ("/api/neira/commands", {}), ("/api/neira/safe-mode", {}), ("/api/neira/capabilities/factory_adapter", {})]


@pytest.mark.parametrize("path,_", JSON_ROUTES, ids=[p for p, _ in JSON_ROUTES])
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"])
async def test_a_body_that_is_not_json_is_415(client: AsyncTestClient, path: str, _: dict, content_type: str) -> None:
    r = await client.post(path, content=b'{"text": "help"}', headers={**auth(), "Content-Type": content_type})
    assert (r.status_code, r.json()["code"]) == (415, "unsupported_media_type"), r.text


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON",
                                          "application/merge-patch+json", None])
async def test_json_and_unlabelled_bodies_are_read(client: AsyncTestClient, content_type: str | None) -> None:
    headers = {**auth(), **({"Content-Type": content_type} if content_type else {})}
    r = await client.post("/api/neira/commands", content=b'{"text": "help"}', headers=headers)
    assert r.status_code == 200, r.text


async def test_a_move_without_a_body_needs_no_content_type(client: AsyncTestClient) -> None:
    await client.post("/organs/build", json={"organ_template": "organ.echo.v1"}, headers=auth())
    record = (await client.get("/factory/cells", headers=auth())).json()[0]["id"]
    r = await client.post(f"/factory/cells/{record}/disable", headers={**auth(), "Content-Type": "text/plain"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("path", ["/README.md", "/js/../README.md", "/%52EADME.md"])
async def test_the_web_dirs_readme_is_not_served(client: AsyncTestClient, path: str) -> None:
    r = await client.get(path)
    assert (r.status_code, r.json()["code"]) in ((404, "not_found"), (400, "invalid_request")), r.text


async def test_pages_are_still_served(client: AsyncTestClient) -> None:
    for path in ("/", "/organs.html", "/index.html"):
        assert (await client.get(path)).status_code == 200, path


async def test_session_id_is_bounded(client: AsyncTestClient) -> None:
    ok = await client.post("/api/neira/commands", json={"text": "help", "session_id": "s" * 128}, headers=auth())
    assert ok.status_code == 200
    long = await client.post("/api/neira/commands", json={"text": "help", "session_id": "s" * 100_000}, headers=auth())
    assert (long.status_code, long.json()["code"]) == (400, "invalid_request")
    assert "sss" not in long.text


async def test_an_internal_error_tells_the_client_an_id_and_the_operator_the_traceback(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    core = Core(settings)

    def broken() -> dict[str, str]:
        raise RuntimeError("opened /srv/neira/secret.db with token t0ken")

    async with AsyncTestClient(create_app(core)) as client:
        monkeypatch.setattr(core.policy, "capability_list", broken)
        r = await client.get("/api/neira/capabilities", headers=auth())
    body = r.json()
    assert (r.status_code, body["code"]) == (500, "internal")
    error_id = body["reason"].removeprefix("internal error ")
    assert len(error_id) == 12 and "secret" not in r.text and "t0ken" not in r.text
    [record] = [rec for rec in caplog.records if error_id in rec.getMessage()]
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError  # the operator can find the bug
