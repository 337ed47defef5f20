"""Fixtures for the browser tests: a real `neira serve` subprocess and headless Debian Chromium."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e.server import Server

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path(os.environ.get("NEIRA_E2E_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKEN = "e2e-browser-admin-token"
FAST_DELAYS = "100,100,100"
SLOW_DELAYS = "4000,4000,4000"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(condition: bool, why: str) -> None:
    """Skip locally when a tool is missing; in CI (CI=true) fail loudly instead."""
    if condition:
        return
    if _in_ci():
        pytest.fail(f"browser tests cannot run in CI: {why}", pytrace=False)
    pytest.skip(why)


def _start_server(tmp_path_factory: pytest.TempPathFactory, name: str, delays: str,
                  env: dict[str, str] | None = None) -> Iterator[Server]:
    """A `neira serve` on a free port with its own data dir and stage delays (and `env`); stopped after the module."""
    require(CHROMIUM.exists(), f"{CHROMIUM} is not installed (apt-get install chromium)")  # before a server starts
    base = tmp_path_factory.mktemp(name)
    server = Server(base / "data", token=TOKEN, env={"ORGANS_BUILDER_STAGE_DELAYS": delays, **(env or {})})
    server.env.pop("ORGANS_BUILDER_STAGE_DELAYS_MS", None)
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(str(exc)[-4000:], pytrace=False)
    try:
        yield server
    finally:
        try:
            server.stop(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def login_url(server: Server) -> str:
    """A fresh one-time sign-in link, minted with the admin token (as `neira login-url` does)."""
    with server.client() as api:
        res = api.post("/api/neira/login-codes")
    assert res.status_code == 201, res.text
    return res.json()["url"]


def sign_in(page, server: Server) -> None:
    """Sign a page in the way a person does: open a sign-in link; the server sets the cookie and goes to /."""
    from playwright.sync_api import expect

    page.goto(login_url(server))
    expect(page.locator("#app")).to_be_visible()
    assert "code=" not in page.url, "the sign-in code must leave the address bar"
    page.wait_for_load_state("networkidle")  # the page's icon too: a test that leaves at once must not abort it


@pytest.fixture(scope="module")
def neira_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose builds go draft → stable in about 300 ms."""
    yield from _start_server(tmp_path_factory, "neira-fast", FAST_DELAYS)


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose builds take seconds per stage, so there is time to cancel one."""
    yield from _start_server(tmp_path_factory, "neira-slow", SLOW_DELAYS)


@pytest.fixture(scope="module")
def playwright_driver():
    """Playwright's driver, for the module's browser and for tests that need a Chromium profile on disk."""
    require(CHROMIUM.exists(), f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - the venv has it
        require(False, "playwright is not installed")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright_driver):
    """Headless Debian Chromium driven by Playwright (never a downloaded browser)."""
    browser = playwright_driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
    try:
        yield browser
    finally:
        browser.close()


@dataclass
class Tab:
    """A page plus everything it reported: console errors, uncaught exceptions, failed responses, URLs."""

    page: object
    errors: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not any(a in e for a in self.allowed)]


@pytest.fixture
def open_tab(browser, request):
    """Factory: open_tab(locale=..., viewport=...) → Tab; fails the test on any console error it saw."""
    contexts = []
    tabs: list[Tab] = []

    def make(locale: str = "ru-RU", width: int = 1280, height: int = 860, context=None) -> Tab:
        if context is None:
            context = browser.new_context(locale=locale, viewport={"width": width, "height": height}, reduced_motion="reduce")
            contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        tab = Tab(page=page)
        page.on("console", lambda msg: msg.type == "error" and tab.errors.append(f"console: {msg.text}"))
        page.on("pageerror", lambda exc: tab.errors.append(f"pageerror: {exc}"))
        page.on("request", lambda req: tab.urls.append(req.url))
        page.on("response", lambda res: res.status >= 400 and tab.errors.append(f"HTTP {res.status} {res.url}"))
        page.on("requestfailed", lambda req: tab.errors.append(f"request failed: {req.url} {req.failure}"))
        tabs.append(tab)
        return tab

    yield make
    for context in contexts:
        context.close()
    problems = [e for tab in tabs for e in tab.unexpected_errors()]
    assert not problems, "browser reported errors:\n" + "\n".join(problems)
