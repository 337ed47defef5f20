"""The pages' sign-in and security headers in headless Chromium (contract §10): the admin token never reaches
Chromium's history or storage, a code works once, CSRF is enforced, sign-out ends the session, and the pages
and the API page run under the Content-Security-Policy without a violation."""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.browser_fixtures import (  # noqa: F401
    ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, browser, login_url, neira_server, open_tab, playwright_driver, sign_in,
)

pytestmark = pytest.mark.e2e
COOKIE = "neira_session"
PRINTED = re.compile(r"sign in to the pages at (http://\S+/login\?code=[\w-]+)")
# Records every CSP violation the page reports, before any of its own scripts run.
WATCH_CSP = "window.__csp = []; document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));"


def _history_urls(profile: Path) -> list[str]:
    """Every URL in Chromium's own History database (read from a copy: Chromium may hold a lock on it)."""
    copy = profile.parent / "History-copy"
    shutil.copy(profile / "Default" / "History", copy)
    with sqlite3.connect(copy) as db:
        return [row[0] for row in db.execute("SELECT url FROM urls")]


def test_sign_in_leaves_the_token_out_of_history_and_storage(neira_server, playwright_driver, tmp_path):
    """The printed link signs a real Chromium profile in; afterwards neither its History database, nor its
    local or session storage, nor any file of the profile holds the admin token."""
    token = neira_server.token
    link = PRINTED.search(neira_server.log()).group(1)  # the link `neira serve` printed for this server
    profile = tmp_path / "chromium-profile"
    context = playwright_driver.chromium.launch_persistent_context(
        str(profile), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True, locale="en-US")
    errors: list[str] = []
    try:
        page = context.pages[0] if context.pages else context.new_page()
        page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
        page.goto(link)
        expect(page.locator("#input")).to_be_visible()
        assert re.fullmatch(r"http://localhost:\d+/", page.url), page.url  # the code left the address
        page.locator("#input").fill("list organs")
        page.locator("#input").press("Enter")  # a cookie write: the CSRF header went with it
        expect(page.locator("#messages > li.msg-neira:not(.msg-thinking)")).to_have_count(1)
        page.get_by_role("link", name="Organs").click()
        expect(page.locator("#live")).to_have_attribute("data-status", "open")  # the stream took the cookie

        session = next(c for c in context.cookies() if c["name"] == COOKIE)
        assert (session["httpOnly"], session["sameSite"], session["path"]) == (True, "Strict", "/")
        assert COOKIE not in page.evaluate("document.cookie")
        storage = page.evaluate("JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])")
        assert token not in storage and "token" not in storage, storage
    finally:
        context.close()  # Chromium writes its History database out when it shuts down
    assert not errors, errors

    urls = _history_urls(profile)
    assert any("/login?code=" in u for u in urls) and any(u.endswith("/organs.html") for u in urls), urls
    assert all(token not in u and "token" not in u for u in urls), urls
    for path in profile.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), f"the admin token is in {path}"


def test_a_code_works_once(neira_server, open_tab):
    """The same link opened again, in another browser, is refused and signs nobody in."""
    first = open_tab(locale="en-US")
    link = login_url(neira_server)
    first.page.goto(link)
    expect(first.page.locator("#app")).to_be_visible()
    second = open_tab(locale="en-US")
    second.allowed += ["401", "404"]  # the refusal, and the /favicon.ico Chromium asks for beside a JSON answer
    refused = second.page.goto(link)
    assert refused.status == 401 and refused.json()["code"] == "unauthorized"
    assert not [c for c in second.page.context.cookies() if c["name"] == COOKIE]
    second.page.goto(f"{neira_server.url}/")
    expect(second.page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(second.page.locator("#app")).to_be_hidden()


def test_csrf_is_enforced_and_sign_out_ends_the_session(neira_server, open_tab):
    """A cookie write without the page's X-Neira-CSRF header is 403; «Sign out» ends the session on the server
    and clears the cookie, and the old cookie value opens nothing afterwards."""
    tab = open_tab(locale="en-US")
    tab.allowed += ["403", "401"]  # the forged write, and the session check after signing out
    page = tab.page
    sign_in(page, neira_server)
    write = """async (csrf) => (await fetch('/api/neira/safe-mode', {method: 'POST', headers: Object.assign(
        {'Content-Type': 'application/json'}, csrf === null ? {} : {'X-Neira-CSRF': csrf}),
        body: JSON.stringify({enabled: false, reason: 'csrf check'})})).status"""
    assert page.evaluate(write, None) == 403
    assert page.evaluate(write, "not-the-token") == 403
    csrf = page.evaluate("async () => (await (await fetch('/api/neira/session')).json()).csrf")
    assert page.evaluate(write, csrf) == 200

    sid = next(c["value"] for c in page.context.cookies() if c["name"] == COOKIE)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.locator("#app")).to_be_hidden()
    assert not [c for c in page.context.cookies() if c["name"] == COOKIE]
    stale = httpx.get(f"{neira_server.url}/api/neira/session", cookies={COOKIE: sid}, timeout=5)
    assert stale.status_code == 401


@pytest.mark.parametrize("path", ["/", "/organs.html", "/schema/swagger"])
def test_pages_run_under_the_csp(neira_server, open_tab, path):
    """Each page gets the security headers, loads only from its own origin, and runs without a CSP violation
    (open_tab also fails the test on any console error, which is where Chromium reports refusals)."""
    tab = open_tab(locale="en-US")
    page = tab.page
    page.add_init_script(WATCH_CSP)
    sign_in(page, neira_server)
    answer = page.goto(f"{neira_server.url}{path}")
    headers = answer.headers
    assert headers["content-security-policy"].startswith("default-src 'self'")
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert (headers["x-content-type-options"], headers["referrer-policy"]) == ("nosniff", "no-referrer")
    if path == "/schema/swagger":
        expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("neira")
        page.screenshot(path=str(ARTIFACTS / "schema-swagger.png"))
    elif path == "/organs.html":
        expect(page.locator("#live")).to_have_attribute("data-status", "open")
    else:
        expect(page.locator("#input")).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert page.evaluate("window.__csp") == []
    others = [u for u in tab.urls if not u.startswith((neira_server.url, "ws://127.0.0.1", "data:"))]
    assert not others, others
