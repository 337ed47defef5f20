"""The pages' sign-in (contract §10): one-time codes, the session cookie, CSRF on cookie writes, sign-out, and
WebSockets authenticated by the cookie from the same origin only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from litestar.testing import AsyncTestClient
from websockets.asyncio.client import connect

from api.app import create_app
from api.signin import CODE_TTL_S, COOKIE, SESSION_TTL_S, SignIn
from neira.config import Settings
from neira.core import Core
from tests.conftest import ADMIN, auth
from tests.http.live import TIMEOUT, Live, frame


class Clock:
    """Clock seconds that a test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def pages(settings: Settings, clock: Clock) -> AsyncIterator[tuple[AsyncTestClient, SignIn]]:
    """A client that keeps no cookies between calls unless a test sets them, and the app's sign-in store."""
    sign_in = SignIn(clock=clock)
    async with AsyncTestClient(create_app(Core(settings), sign_in=sign_in)) as c:
        yield c, sign_in


async def _signed_in(client: AsyncTestClient, sign_in: SignIn) -> tuple[str, str]:
    """Sign in with a fresh code: (session cookie value, CSRF token)."""
    r = await client.get(f"/login?code={await sign_in.issue_code()}", follow_redirects=False)
    assert r.status_code == 303, r.text
    sid = r.cookies[COOKIE]
    as_page(client, sid)
    session = await client.get("/api/neira/session")
    assert session.status_code == 200, session.text
    return sid, session.json()["csrf"]


def as_page(client: AsyncTestClient, sid: str | None) -> None:
    """Send the session cookie `sid` from now on (none for None), as the page's browser would."""
    client.cookies.clear()
    if sid is not None:
        client.cookies.set(COOKIE, sid)


async def test_a_code_signs_in_once_and_goes_to_the_chat_page(pages: tuple[AsyncTestClient, SignIn]) -> None:
    client, sign_in = pages
    code = await sign_in.issue_code()
    r = await client.get(f"/login?code={code}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert r.headers["cache-control"] == "no-store"
    cookie = r.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "path", "samesite"} <= attributes, cookie
    assert "samesite=strict" in cookie.lower() and "Path=/" in cookie and f"Max-Age={int(SESSION_TTL_S)}" in cookie
    assert code not in cookie and ADMIN not in cookie
    as_page(client, r.cookies[COOKIE])
    replaced = await client.get(f"/login?code={await sign_in.issue_code()}", follow_redirects=False)
    assert replaced.status_code == 303 and await sign_in.session(r.cookies[COOKIE]) is None  # a new sign-in ends the old session
    client.cookies.clear()
    again = await client.get(f"/login?code={code}", follow_redirects=False)
    assert (again.status_code, again.json()["code"]) == (401, "unauthorized")
    assert "set-cookie" not in again.headers
    for bad in ("", "nope", "x" * 201):
        r = await client.get(f"/login?code={bad}", follow_redirects=False)
        assert r.status_code in (400, 401) and r.json()["code"] in ("unauthorized", "invalid_request"), bad


async def test_codes_and_sessions_expire(pages: tuple[AsyncTestClient, SignIn], clock: Clock) -> None:
    client, sign_in = pages
    late = await sign_in.issue_code()
    clock.now += CODE_TTL_S + 1
    r = await client.get(f"/login?code={late}", follow_redirects=False)
    assert (r.status_code, r.json()["code"]) == (401, "unauthorized")
    sid, _ = await _signed_in(client, sign_in)
    clock.now += SESSION_TTL_S + 1
    r = await client.get("/api/neira/session")
    assert (r.status_code, r.json()["code"]) == (401, "unauthorized")


async def test_the_session_tells_role_and_csrf(pages: tuple[AsyncTestClient, SignIn]) -> None:
    client, sign_in = pages
    sid, csrf = await _signed_in(client, sign_in)
    r = await client.get("/api/neira/session")
    assert r.json() == {"role": "admin", "csrf": csrf} and len(csrf) >= 32
    assert r.headers["cache-control"] == "no-store"
    as_page(client, None)
    assert (await client.get("/api/neira/session", headers=auth("viewer"))).json() == {"role": "viewer", "csrf": None}
    assert (await client.get("/api/neira/session")).status_code == 401
    as_page(client, "forged")
    assert (await client.get("/api/neira/session")).status_code == 401


async def test_cookie_writes_need_the_csrf_header(pages: tuple[AsyncTestClient, SignIn]) -> None:
    client, sign_in = pages
    _, csrf = await _signed_in(client, sign_in)
    assert (await client.get("/api/neira/capabilities")).status_code == 200  # reads need none
    writes = [
        ("POST", "/api/neira/safe-mode", {"enabled": False, "reason": "csrf test"}),
        ("POST", "/api/neira/commands", {"text": "list organs"}),  # any role may call it: still a write
        ("POST", "/organs/build", {"organ_template": "organ.echo.v1", "dryrun": True}),
    ]
    for method, path, body in writes:
        for headers in ({}, {"X-Neira-CSRF": "wrong"}, {"X-Neira-CSRF": ""}):
            r = await client.request(method, path, json=body, headers=headers)
            assert (r.status_code, r.json()["code"]) == (403, "forbidden"), (path, headers)
        r = await client.request(method, path, json=body, headers={"X-Neira-CSRF": csrf})
        assert r.status_code == 200, (path, r.text)
    # A bearer client needs no CSRF header, with or without a cookie.
    r = await client.post("/api/neira/safe-mode", json={"enabled": False}, headers=auth())
    assert r.status_code == 200


async def test_sign_out_ends_the_session(pages: tuple[AsyncTestClient, SignIn]) -> None:
    client, sign_in = pages
    sid, csrf = await _signed_in(client, sign_in)
    refused = await client.post("/logout")
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")  # no CSRF: another site's form
    r = await client.post("/logout", headers={"X-Neira-CSRF": csrf})
    assert r.status_code == 200 and r.json() == {"signed_out": True}
    assert f"{COOKIE}=" in r.headers["set-cookie"] and "Max-Age=0" in r.headers["set-cookie"]
    as_page(client, sid)  # the old cookie, kept by someone: the server has forgotten it
    assert (await client.get("/api/neira/session")).status_code == 401
    again = await client.post("/logout", headers={"X-Neira-CSRF": csrf})
    assert again.json() == {"signed_out": False}  # nothing left to end; the cookie is cleared all the same


async def test_admins_mint_sign_in_links(pages: tuple[AsyncTestClient, SignIn]) -> None:
    client, _ = pages
    for role in ("operator", "viewer"):
        r = await client.post("/api/neira/login-codes", headers=auth(role))
        assert (r.status_code, r.json()["code"]) == (403, "forbidden"), role
    assert (await client.post("/api/neira/login-codes")).status_code == 401
    r = await client.post("/api/neira/login-codes", headers=auth())
    assert r.status_code == 201 and r.json()["expires_in"] == int(CODE_TTL_S)
    url = urlsplit(r.json()["url"])
    assert url.path == "/login" and ADMIN not in r.json()["url"]
    code = parse_qs(url.query)["code"][0]
    assert (await client.get(f"/login?code={code}", follow_redirects=False)).status_code == 303


async def test_streams_take_the_cookie_from_the_same_origin_only(live: Live) -> None:
    minted = await live.http.post("/api/neira/login-codes")
    code = parse_qs(urlsplit(minted.json()["url"]).query)["code"][0]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{live.port}", timeout=TIMEOUT) as browser:
        r = await browser.get(f"/login?code={code}", follow_redirects=False)
        sid = r.cookies[COOKIE]
    organ_id = await live.build()
    path = f"ws://127.0.0.1:{live.port}/organs/{organ_id}/stream"
    cookie = {"Cookie": f"{COOKIE}={sid}"}
    async with connect(path, origin=f"http://127.0.0.1:{live.port}", additional_headers=cookie, open_timeout=TIMEOUT) as ws:  # type: ignore[arg-type]
        assert (await frame(ws))["id"] == organ_id
    for origin in ("http://evil.example", f"http://127.0.0.1:{live.port + 1}", None):
        async with connect(path, origin=origin, additional_headers=cookie, open_timeout=TIMEOUT) as ws:  # type: ignore[arg-type]
            await ws.wait_closed()
            assert ws.close_code == 4401, origin
