"""The evidence in the organs panel, in headless Chromium against a real `neira serve` (contract §7): a canary
v2 of the reverse organ shows its verdict, figures against the stable v1, that it waits for a human, a chart of
p99 against the baseline over its stint and each cell record's verdict; Approve moves it on."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.e2e.browser_fixtures import ARTIFACTS, _start_server, browser, open_tab, playwright_driver, sign_in  # noqa: F401
from tests.e2e.server import Server

pytestmark = pytest.mark.e2e

V2 = {
    "id": "organ.reverse.v2", "version": "2.0.0", "roles": ["reverse"],
    "cells": ["analysis.reverse.v1", "action.echo.v1"],
    "pathways": [{"name": "main", "cells": ["analysis.reverse.v1", "action.echo.v1"]}],
    "policies": {"stage": "draft", "hitl": True},
    "metadata": {"schema": "v1", "samples": [{"input": "abc", "expect": {"equals": "cba"}},
                                             {"input": "hello", "expect": {"equals": "olleh"}},
                                             {"input": "neira", "expect": {"equals": "arien"}}]},
}


@pytest.fixture(scope="module")
def evidence_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Canary analysis on (every 200 ms), a short canary dwell and a long experimental one, so an approved
    canary stays where the page can see it."""
    yield from _start_server(tmp_path_factory, "neira-evidence", "100,100,60000", {"NEIRA_ANALYSIS_INTERVAL_MS": "200"})


def wait_state(api, organ_id: str, wanted: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while (state := api.get(f"/organs/{organ_id}/status").json()["state"]) != wanted:
        assert time.monotonic() < deadline, state
        time.sleep(0.05)  # polling the builder's stages, not hiding a race


def test_the_panel_shows_a_canary_against_its_stable_baseline(evidence_server, open_tab):
    with evidence_server.client() as api:
        v1 = api.post("/organs/build", json={"organ_template": "organ.reverse.v1"}).json()["organ_id"]
        wait_state(api, v1, "canary")  # hitl: it would wait there for a human; the test puts it on stable by hand
        moved = api.post(f"/organs/{v1}/status", json={"state": "stable", "reason": "the baseline for the test"})
        assert moved.status_code == 200, moved.text
        v2 = api.post("/organs/build", json={"organ_template": V2}).json()["organ_id"]
        wait_state(api, v2, "canary")

    tab = open_tab(locale="en-US")
    page = tab.page
    sign_in(page, evidence_server)
    page.goto(f"{evidence_server.url}/organs.html")
    row = page.locator(f'#organs-body tr[data-organ-id="{v2}"]')
    expect(row).to_have_attribute("data-state", "canary")
    row.locator('[data-act="status"]').click()
    evidence = page.locator(f'#organs-body tr[data-detail-for="{v2}"] .status-evidence')
    expect(evidence.get_by_role("heading", name="Evidence")).to_be_visible()
    # The analysis is measured while the page looks: the events stream redraws the status until it passes.
    verdict = evidence.locator(".evidence:not(.evidence-compact) .verdict")
    expect(verdict).to_have_attribute("data-verdict", "pass", timeout=15000)
    expect(verdict).to_have_text("passing")
    expect(evidence.locator(".evidence-wait")).to_have_text("Waits for a human approval.")
    figures = evidence.locator(".evidence:not(.evidence-compact) .evidence-figures")
    expect(figures).to_contain_text("0 errors (0.0%)")
    expect(figures).to_contain_text(f"stable {v1}:")
    chart = evidence.get_by_role("img")
    expect(chart).to_have_attribute("aria-label", re.compile(rf"^{v2}: p99 [\d.]+ ms against the stable version's [\d.]+ ms, \d+ points$"))
    expect(chart.locator("polyline.trend-p99")).to_have_count(1)
    expect(chart.locator("polyline.trend-baseline")).to_have_count(1)
    assert int(chart.get_attribute("data-points")) >= 2
    # Each cell record of the organ has its own verdict beside it.
    cells = evidence.locator(".evidence-cells > li")
    expect(cells).to_have_count(2)
    evidence.scroll_into_view_if_needed()
    evidence.screenshot(path=str(ARTIFACTS / "panel-evidence.png"))
    # The verdict passes and the template asks for a human: the row's Approve moves it to experimental.
    approve = row.get_by_role("button", name="Approve")
    expect(approve).to_be_enabled()
    approve.click()
    expect(row).to_have_attribute("data-state", "experimental")
    expect(evidence.locator(".evidence-wait")).to_have_text("Waits for the stage's minimum time.")


def test_the_chat_announces_an_organ_that_waits_for_approval(evidence_server, open_tab):
    """A canary v2 made and applied in the chat is followed live; once its analysis passes and it waits for a
    human, the chat says so with its evidence and offers the phrase that approves it, which plans the move."""
    with evidence_server.client() as api:
        stable = [o for o in api.get("/organs").json() if o["template_id"] == "organ.reverse.v1" and o["state"] == "stable"]
        if not stable:
            v1 = api.post("/organs/build", json={"organ_template": "organ.reverse.v1"}).json()["organ_id"]
            wait_state(api, v1, "canary")
            assert api.post(f"/organs/{v1}/status", json={"state": "stable", "reason": "baseline"}).status_code == 200
    tab = open_tab(locale="en-US")
    page = tab.page
    sign_in(page, evidence_server)
    page.locator("#input").fill("update reverse organ to v3")
    page.locator("#input").press("Enter")
    reply = page.locator("#messages > li.msg-neira:not(.msg-thinking)").last
    reply.get_by_role("button", name="Apply").click()
    item = reply.locator(".organ-item").first
    expect(item).to_be_visible()
    organ_id = item.get_attribute("data-organ-id")
    note = page.locator('article[data-intent="announcement"]')
    expect(note).to_have_count(1, timeout=15000)
    expect(note.locator(".reply-text")).to_have_text(re.compile(rf"^{organ_id} waits for approval: \d+ runs, 0 errors, p99 "))
    expect(note.locator(".suggestions-title")).to_have_text("To approve it:")
    note.get_by_role("button", name=f"approve {organ_id}").click()
    expect(page.locator("#input")).to_have_value(f"approve {organ_id}")
    page.locator("#input").press("Enter")
    plan = page.locator("#messages > li.msg-neira:not(.msg-thinking)").last
    expect(plan.locator(".plan")).to_contain_text(f"{organ_id}: canary → experimental")
    plan.get_by_role("button", name="Apply").click()
    expect(plan.locator(".organ-item")).to_have_attribute("data-state", "experimental")
    with evidence_server.client() as api:
        wait_state(api, organ_id, "experimental", timeout=10)
    page.screenshot(path=str(ARTIFACTS / "chat-waiting.png"))
