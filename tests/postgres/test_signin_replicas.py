"""The pages' sign-in behind a load balancer (contract §9, §10): a link minted on one replica signs in on
another, once; the session cookie works on every replica with the same CSRF token; a sign-out on one ends
the session on all of them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.signin import COOKIE, CSRF_HEADER
from neira.core import Core
from tests.conftest import auth, make_settings
from tests.postgres.cores import SLOW, seen


@pytest.fixture
async def clients(tmp_path: Path, pg_url: str) -> AsyncIterator[list[AsyncTestClient]]:
    apps = [create_app(Core(make_settings(tmp_path / n, database_url=pg_url, stage_delays_ms=SLOW))) for n in "abc"]
    async with AsyncTestClient(apps[0]) as a, AsyncTestClient(apps[1]) as b, AsyncTestClient(apps[2]) as c:
        yield [a, b, c]


async def test_a_link_from_one_replica_signs_in_on_another_and_sign_out_ends_it_everywhere(
        clients: list[AsyncTestClient]) -> None:
    a, b, c = clients
    link = await a.post("/api/neira/login-codes", headers=auth())
    assert link.status_code == 201, link.text
    code = parse_qs(urlsplit(link.json()["url"]).query)["code"][0]
    signed = await b.get(f"/login?code={code}", follow_redirects=False)
    assert signed.status_code == 303, signed.text
    sid = signed.cookies[COOKIE]
    again = await c.get(f"/login?code={code}", follow_redirects=False)
    assert again.status_code == 401  # used once, on any replica
    csrfs = set()
    for client in clients:
        client.cookies.set(COOKIE, sid)
        who = await client.get("/api/neira/session")
        assert who.status_code == 200 and who.json()["role"] == "admin", who.text
        csrfs.add(who.json()["csrf"])
    [csrf] = csrfs  # one token, whichever replica answers
    safe = await c.post("/api/neira/safe-mode", json={"enabled": False, "reason": "page write"}, headers={CSRF_HEADER: csrf})
    assert safe.status_code == 200, safe.text
    out = await c.post("/logout", headers={CSRF_HEADER: csrf})
    assert out.status_code == 200 and out.json()["signed_out"] is True
    for client in (a, b):
        client.cookies.set(COOKIE, sid)

        async def ended(client: AsyncTestClient = client) -> bool:
            return (await client.get("/api/neira/safe-mode")).status_code == 401

        await seen(ended)  # the other replicas' cached copies go with the sign-out's notification
