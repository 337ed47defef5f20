"""Every list route pages (issue 14, point 11; contract §10): `?limit=` (default 100, at most 1000), an opaque
`?cursor=`, a JSON array per page, and the next page's URL in `Link: <…>; rel="next"`, absent on the last one."""

from __future__ import annotations

import asyncio
import re

import pytest
from litestar.testing import AsyncTestClient

from tests.conftest import auth

LISTS = ["/cells", "/factory/cells", "/organs", "/api/neira/events", "/api/neira/audit"]
NEXT = re.compile(r'^<([^>]+)>; rel="next"$')


def probe(n: int) -> dict:
    return {"id": f"analysis.page_probe_{n}.v1", "version": "1.0.0", "analysis_type": "probe", "links": [],
            "metadata": {"schema": "v1"}}


async def fill(client: AsyncTestClient, organs: int = 105) -> None:
    """More than a default page of organs, records, events and audit records, and every build finished."""
    for _ in range(organs):
        r = await client.post("/organs/build", json={"organ_template": "organ.echo.v1"}, headers=auth())
        assert r.status_code == 201, r.text
    for n in range(organs):
        assert (await client.post("/factory/cells", json={"template": probe(n)}, headers=auth())).status_code == 201
    for n in range(4):
        assert (await client.post("/cells", json=probe(n), headers=auth())).status_code in (200, 201)
    deadline = asyncio.get_running_loop().time() + 20
    while {o["state"] for o in (await client.get("/organs?limit=1000", headers=auth())).json()} != {"stable"}:
        assert asyncio.get_running_loop().time() < deadline, "builds did not finish"
        await asyncio.sleep(0.02)  # polling for the builds to end, not hiding a race


async def walk(client: AsyncTestClient, url: str) -> tuple[list, int]:
    """Follow the Link headers from `url`; every item, and how many pages it took."""
    items, pages = [], 0
    while url:
        r = await client.get(url, headers=auth())
        assert r.status_code == 200, r.text
        assert isinstance(r.json(), list)
        items += r.json()
        pages += 1
        link = r.headers.get("link")
        url = NEXT.match(link).group(1) if link else ""
        assert pages < 500
    return items, pages


@pytest.mark.parametrize("path", LISTS)
async def test_following_the_links_gives_the_whole_list_once(client: AsyncTestClient, path: str) -> None:
    await fill(client, organs=12)
    whole = (await client.get(f"{path}?limit=1000", headers=auth())).json()
    assert "link" not in (await client.get(f"{path}?limit=1000", headers=auth())).headers
    items, pages = await walk(client, f"{path}?limit=5")
    key = "seq" if path.startswith("/api") else "id"
    assert [i[key] for i in items] == [i[key] for i in whole] and len(whole) > 5
    assert pages == -(-len(whole) // 5)


async def test_default_page_is_100_and_filters_carry_over(client: AsyncTestClient) -> None:
    await fill(client)
    for path in ("/organs", "/factory/cells", "/api/neira/events", "/api/neira/audit"):
        r = await client.get(path, headers=auth())
        assert len(r.json()) == 100 and NEXT.match(r.headers["link"]), path
    organs, _ = await walk(client, "/organs")
    assert [o["id"] for o in organs] == [f"organ-{n}" for n in range(1, 106)]  # oldest first, by number
    records, _ = await walk(client, "/factory/cells?state=draft&limit=2")
    assert records and {r["state"] for r in records} == {"draft"}
    probes, _ = await walk(client, "/cells?q=page_probe&limit=3")
    assert [c["id"] for c in probes] == sorted(f"analysis.page_probe_{n}.v1" for n in range(105))  # by id


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=abc", "limit=-1", "cursor=%21%21", "cursor=", "cursor=AAAA"])
async def test_bad_page_parameters_are_400(client: AsyncTestClient, path: str, query: str) -> None:
    r = await client.get(f"{path}?{query}", headers=auth())
    assert (r.status_code, r.json()["code"]) == (400, "invalid_request"), (query, r.text)
