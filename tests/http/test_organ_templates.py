"""`/organs/templates`: the catalog's organ templates, listed in pages (contract §10) and read one by one."""

from __future__ import annotations

import re

from litestar.testing import AsyncTestClient

from tests.conftest import auth

EXAMPLES = ["organ.echo.v1", "organ.reverse.v1", "organ.vision.v1", "organ.voice.v1"]


async def _add_versions(client: AsyncTestClient) -> None:
    """organ.echo.v1 at 1.1.0 and a few more ids, through the catalog (as the Command Cell registers them)."""
    catalog = client.app.state.core.catalog
    echo = await catalog.get_organ_template("organ.echo.v1")
    await catalog.put_organ_template({**echo, "version": "1.1.0"})
    for n in range(3):
        await catalog.put_organ_template({**echo, "id": f"organ.extra{n}.v1"})


def _next(r) -> str | None:
    link = r.headers.get("link")
    if link is None:
        return None
    found = re.fullmatch(r'<(/organs/templates\?[^>]+)>; rel="next"', link)
    assert found, link
    return found.group(1)


async def test_every_template_once_page_by_page(client: AsyncTestClient) -> None:
    await _add_versions(client)
    first = await client.get("/organs/templates", headers=auth("viewer"))
    assert first.status_code == 200 and "link" not in first.headers
    everything = [t["id"] for t in first.json()]
    assert everything == sorted(everything) and set(EXAMPLES) <= set(everything) and len(everything) == 7
    echo = next(t for t in first.json() if t["id"] == "organ.echo.v1")
    assert echo["version"] == "1.1.0" and echo["versions"] == ["1.0.0", "1.1.0"] and echo["cells"]

    seen, url, pages = [], "/organs/templates?limit=3", 0
    while url:
        r = await client.get(url, headers=auth())
        assert r.status_code == 200 and isinstance(r.json(), list) and len(r.json()) <= 3
        seen += [t["id"] for t in r.json()]
        url, pages = _next(r), pages + 1
    assert seen == everything and pages == 3


async def test_bad_page_parameters_are_400(client: AsyncTestClient) -> None:
    for query in ("limit=0", "limit=1001", "limit=x", "cursor=%%%", "cursor=" + "a" * 201):
        r = await client.get(f"/organs/templates?{query}", headers=auth())
        assert (r.status_code, r.json()["code"]) == (400, "invalid_request"), query
    assert (await client.get("/organs/templates?limit=1000", headers=auth())).status_code == 200
    assert (await client.get("/organs/templates")).status_code == 401


async def test_one_template_is_its_latest_version(client: AsyncTestClient) -> None:
    await _add_versions(client)
    r = await client.get("/organs/templates/organ.echo.v1", headers=auth("viewer"))
    assert r.status_code == 200 and r.json()["id"] == "organ.echo.v1" and r.json()["version"] == "1.1.0"
    missing = await client.get("/organs/templates/organ.nothing.v1", headers=auth())
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
