"""Contract §10: the security headers on every kind of answer, and OpenAPI pages that load only our own files."""

from __future__ import annotations

import re

import pytest
from litestar.testing import AsyncTestClient

from api.headers import CONTENT_SECURITY_POLICY
from api.openapi_pages import ASSET_FILES
from tests.conftest import auth

EXPECTED = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
ANSWERS = [  # (method, path, headers, expected status): pages, API answers, errors, redirects, /schema
    ("GET", "/", {}, 200),
    ("GET", "/organs.html", {}, 200),
    ("GET", "/js/api.js", {}, 200),
    ("GET", "/api/neira/capabilities", auth(), 200),
    ("GET", "/healthz", {}, 200),
    ("GET", "/metrics", {}, 200),
    ("GET", "/api/neira/capabilities", {}, 401),
    ("POST", "/api/neira/safe-mode", auth("viewer"), 403),
    ("GET", "/no/such/route", {}, 404),
    ("DELETE", "/healthz", {}, 405),
    ("GET", "/login?code=unknown", {}, 401),
    ("GET", "/schema", {}, 200),
    ("GET", "/schema/swagger", {}, 200),
    ("GET", "/schema/openapi.json", {}, 200),
    ("GET", "/schema/assets/swagger-ui-bundle.js", {}, 200),
    ("GET", "/schema/nothing-here", {}, 404),
]


@pytest.mark.parametrize(("method", "path", "headers", "status"), ANSWERS)
async def test_every_answer_carries_the_security_headers(client: AsyncTestClient, method: str, path: str,
                                                         headers: dict[str, str], status: int) -> None:
    r = await client.request(method, path, headers=headers)
    assert r.status_code == status, r.text[:200]
    assert {k: r.headers.get(k) for k in EXPECTED} == EXPECTED
    assert len(r.headers.get_list("content-security-policy")) == 1


def test_the_policy_allows_our_origin_only() -> None:
    directives = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["default-src"] == "'self'" and directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY and "http" not in CONTENT_SECURITY_POLICY
    assert directives["img-src"] == "'self' data:"  # Swagger UI's icons are data: SVGs; a run's images
    assert directives["media-src"] == "'self' blob:"  # a run's audio: a Blob URL made by the page itself
    assert set(directives) == {"default-src", "img-src", "media-src", "object-src", "base-uri", "form-action",
                               "frame-ancestors"}


async def test_a_successful_sign_in_redirect_carries_them_too(client: AsyncTestClient) -> None:
    code = await client.app.state.sign_in.issue_code()
    r = await client.get(f"/login?code={code}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize("path", ["/schema", "/schema/swagger"])
async def test_the_api_page_loads_nothing_from_another_origin(client: AsyncTestClient, path: str) -> None:
    page = (await client.get(path)).text
    refs = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert refs and all(ref.startswith("/") and not ref.startswith("//") for ref in refs), refs
    assert "http" not in page and "cdn" not in page.lower() and "fonts.googleapis" not in page
    assert re.findall(r"<script(?![^>]*\ssrc=)", page) == [], "no inline script: the CSP would refuse it"
    assert "<style" not in page and "style=" not in page
    for ref in refs:
        if ref.startswith("/schema/assets/"):
            asset = await client.get(ref)
            assert asset.status_code == 200 and len(asset.content) > 100, ref
            assert asset.headers["content-type"].startswith(("text/javascript", "text/css")), ref
    assert '/schema/assets/swagger-ui-bundle.js' in refs and '/schema/assets/swagger-init.js' in refs


async def test_only_the_listed_assets_are_served(client: AsyncTestClient) -> None:
    for name in ASSET_FILES:
        assert (await client.get(f"/schema/assets/{name}")).status_code == 200, name
    for name in ("index.html", "favicon-32x32.png", "..%2F__init__.py", "redoc.standalone.js"):
        r = await client.get(f"/schema/assets/{name}")
        assert r.status_code in (400, 404) and r.json()["code"] in ("not_found", "invalid_request"), name
