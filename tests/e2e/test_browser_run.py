"""Runs in the pages, in headless Chromium against a real `neira serve`: the chat plays the voice organ's answer and
shows a failed run, the panel's try-it box runs organs on text and on an uploaded image (contract §6)."""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import expect

from tests.e2e.browser_fixtures import ARTIFACTS, browser, neira_server, open_tab, playwright_driver, sign_in  # noqa: F401
from tests.e2e.server import Server

pytestmark = pytest.mark.e2e

REPLY = "#messages > li.msg-neira:not(.msg-thinking)"
# An organ whose answer is an image (the example vision organ answers with JSON features).
EDGES = {
    "id": "organ.edges.v1", "version": "1.0.0", "roles": ["vision"],
    "cells": ["analysis.image_decode.v1", "analysis.edge_detect.v1"],
    "pathways": [{"name": "main", "cells": ["analysis.image_decode.v1", "analysis.edge_detect.v1"]}],
    "policies": {"stage": "draft"}, "metadata": {"schema": "v1"},
}
# Reads an <audio>'s real duration once the browser has parsed the file (NaN before its metadata is loaded).
AUDIO_DURATION = """async (audio) => {
  if (audio.readyState < 1) await new Promise((ok, fail) => {
    audio.addEventListener("loadedmetadata", ok, { once: true });
    audio.addEventListener("error", () => fail(new Error("audio error " + audio.error?.code)), { once: true });
  });
  return audio.duration;
}"""


def png(width: int, height: int) -> bytes:
    """A PNG with shapes in it, so the edge detector finds something."""
    img = Image.new("RGB", (width, height), (240, 240, 235))
    draw = ImageDraw.Draw(img)
    draw.rectangle((8, 8, width // 2, height - 8), fill=(200, 40, 40))
    draw.ellipse((width // 2, 6, width - 6, height // 2 + 10), fill=(30, 90, 200))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def send(page, text: str) -> None:
    box = page.locator("#input")
    box.fill(text)
    box.press("Enter")


def last_reply(page, count: int):
    replies = page.locator(REPLY)
    expect(replies).to_have_count(count)
    return replies.nth(count - 1)


def build_stable(server: Server, template: str | dict) -> str:
    """Build an organ through REST and wait for the builder to take it to stable (the fixture's stages are fast)."""
    with server.client() as api:
        res = api.post("/organs/build", json={"organ_template": template})
        assert res.status_code == 201, res.text
        organ_id = res.json()["organ_id"]
        deadline = time.monotonic() + 15
        while (state := api.get(f"/organs/{organ_id}/status").json()["state"]) != "stable":
            assert state != "failed" and time.monotonic() < deadline, state
            time.sleep(0.05)  # polling the builder's stages, not hiding a race
    return organ_id


def warm(server: Server, organ_id: str) -> None:
    """Start the run pool's workers (a new worker loads eSpeak NG) before a page times its first run."""
    with server.client() as api:
        for _ in range(3):
            if api.post(f"/organs/{organ_id}/run", json={"input": "тест"}).json()["ok"]:
                return
    pytest.fail("the voice organ never ran through REST")


def test_chat_speaks_and_shows_a_failed_run(neira_server, open_tab):
    """«скажи голосом "привет"» plays a WAV whose real duration matches duration_ms; a failed run says where."""
    tab = open_tab(locale="ru-RU")
    page = tab.page
    sign_in(page, neira_server)

    send(page, "создай голосовой орган v1")
    reply = last_reply(page, 1)
    reply.get_by_role("button", name="Применить").click()
    item = reply.locator(".organ-item").first
    expect(item).to_have_attribute("data-state", "stable")
    warm(neira_server, item.get_attribute("data-organ-id"))

    send(page, 'скажи голосом "привет"')
    reply = last_reply(page, 2)
    run = reply.locator(".run")
    expect(run).to_have_attribute("data-ok", "true")
    audio = run.locator("audio[controls]")
    expect(audio).to_have_count(1)
    assert audio.get_attribute("src").startswith("blob:")
    duration_ms = int(audio.get_attribute("data-duration-ms"))
    duration = audio.evaluate(AUDIO_DURATION)
    assert duration > 0.2, duration
    assert abs(duration * 1000 - duration_ms) < 50, (duration, duration_ms)
    expect(run).to_contain_text(f"{duration_ms / 1000:.1f} с речи")
    steps = run.locator(".run-trace li")
    expect(steps).to_have_count(3)
    expect(run.locator('.run-trace li[data-ok="true"]')).to_have_count(3)
    expect(steps.first).to_contain_text("analysis.text_normalize.v1")
    expect(steps.first.locator(".run-ms")).to_contain_text("ms")

    # The other phrasing, with a longer answer; the reply is kept with the session: after a reload it plays again.
    send(page, "запусти голосовой орган: привет, мир")
    audio = last_reply(page, 3).locator(".run audio")
    longer = audio.evaluate(AUDIO_DURATION)
    assert longer > duration and abs(longer * 1000 - int(audio.get_attribute("data-duration-ms"))) < 50
    page.screenshot(path=str(ARTIFACTS / "chat-run.png"))  # the README's picture (docs/screenshot-chat.png)
    page.reload()
    audio = last_reply(page, 3).locator(".run audio")
    assert audio.evaluate(AUDIO_DURATION) == longer

    # A run that fails says which cell stopped it and why, in the reply's language (here English).
    build_stable(neira_server, "organ.vision.v1")
    send(page, "run the vision organ on hello world")
    run = last_reply(page, 4).locator(".run")
    expect(run).to_have_attribute("data-ok", "false")
    error = run.locator(".run-error")
    expect(error).to_have_attribute("data-code", "type_mismatch")
    expect(error).to_contain_text("Failed at analysis.image_decode.v1")
    expect(error).to_contain_text("it got input of the wrong type")
    expect(error).to_contain_text("takes image, not text")
    expect(run.locator('.run-trace li[data-ok="false"]')).to_have_count(1)
    expect(run.locator("audio, img")).to_have_count(0)

    # A failed organ cannot run: the reply says so as a refusal.
    with neira_server.client() as api:
        reverse = build_stable(neira_server, "organ.reverse.v1")
        assert api.post(f"/organs/{reverse}/status", json={"state": "failed"}).status_code == 200
    send(page, f"run {reverse} with «текст»")
    refused = last_reply(page, 5).locator(".run-refused")
    expect(refused).to_contain_text(f"{reverse} has failed and cannot run. Say 'rebuild {reverse}'.")

    # A plan's risk is a `!` line, styled as the error it is.
    send(page, "build odd-pipeline reverse -> decode")
    risk = last_reply(page, 6).locator(".plan-line.line-risk")
    expect(risk).to_have_count(1)
    expect(risk).to_have_class("plan-line line-risk risk-error")
    expect(risk).to_contain_text("the types do not fit")


def open_status(page, organ_id: str):
    row = page.locator(f'#organs-body tr[data-organ-id="{organ_id}"]')
    expect(row).to_have_attribute("data-state", "stable")
    row.locator('[data-act="status"]').click()
    detail = page.locator(f'#organs-body tr[data-detail-for="{organ_id}"]')
    expect(detail.locator(".status-detail")).to_be_visible()
    return detail


def test_panel_try_it_runs_organs_on_images_and_text(neira_server, open_tab):
    """The try-it box runs the vision organ on an uploaded PNG, an image organ back to an <img> of the same size,
    the reverse organ on text; a failed organ offers no run, and a refusal by the server says why."""
    vision = build_stable(neira_server, "organ.vision.v1")
    edges = build_stable(neira_server, EDGES)
    reverse = build_stable(neira_server, "organ.reverse.v1")
    failed = build_stable(neira_server, "organ.echo.v1")
    with neira_server.client() as api:
        assert api.post(f"/organs/{failed}/status", json={"state": "failed"}).status_code == 200

    tab = open_tab(locale="en-US")
    page = tab.page
    sign_in(page, neira_server)
    page.goto(f"{neira_server.url}/organs.html")
    image = {"name": "shapes.png", "mimeType": "image/png", "buffer": png(64, 48)}

    detail = open_status(page, vision)
    expect(detail.locator(".status-runs")).to_contain_text("Not run yet.")
    box = detail.locator(".tryit")
    expect(box.get_by_role("heading", name="Try it")).to_be_visible()
    box.get_by_label("or an image (PNG, JPEG, WebP)").set_input_files(image)
    box.get_by_role("button", name="Run").click()
    run = box.locator(".run")
    expect(run).to_have_attribute("data-ok", "true")
    features = run.locator(".run-json")
    expect(features).to_contain_text('"width": 64')
    expect(features).to_contain_text('"height": 48')
    expect(run.locator(".run-trace li")).to_have_count(3)
    # The status shows the organ's recent run figures, and the box keeps its answer while the status redraws.
    expect(detail.locator('.status-runs [data-runs="1"]')).to_be_visible()
    expect(detail.locator(".status-runs")).to_contain_text("p99")
    expect(box.locator(".run-json")).to_be_visible()

    detail = open_status(page, edges)
    box = detail.locator(".tryit")
    box.get_by_label("or an image (PNG, JPEG, WebP)").set_input_files(image)
    box.get_by_role("button", name="Run").click()
    img = box.locator(".run-image img")
    expect(img).to_be_visible()
    size = img.evaluate("async (img) => { await img.decode(); return [img.naturalWidth, img.naturalHeight]; }")
    assert size == [64, 48]
    expect(box.locator(".run-image figcaption")).to_have_text("64 × 48")
    box.scroll_into_view_if_needed()
    detail.screenshot(path=str(ARTIFACTS / "panel-tryit.png"))

    detail = open_status(page, reverse)
    box = detail.locator(".tryit")
    box.get_by_label("Text").fill("hello world")
    box.get_by_role("button", name="Run").click()
    expect(box.locator(".run-text")).to_have_text("dlrow olleh")
    expect(box.locator(".run-head")).to_contain_text(f"Ran {reverse} · main in")
    # Nothing given: the box asks for input instead of sending an empty run.
    box.get_by_label("Text").fill("")
    box.get_by_role("button", name="Run").click()
    expect(box.locator(".tryit-message")).to_have_text("Type some text or choose an image first.")

    # A failed organ offers no run; the box says why.
    row = page.locator(f'#organs-body tr[data-organ-id="{failed}"]')
    row.locator('[data-act="status"]').click()
    box = page.locator(f'#organs-body tr[data-detail-for="{failed}"] .tryit')
    expect(box).to_have_attribute("data-runnable", "false")
    expect(box.locator(".tryit-cannot")).to_have_text("This organ cannot run now (not_runnable): it is failed.")
    expect(box.get_by_role("button", name="Run")).to_be_hidden()

    # The server's own refusal (409 not_runnable: one of the organ's cells was disabled meanwhile) is shown as is.
    tab.allowed += [f"HTTP 409 {neira_server.url}/organs/{reverse}/run", "the server responded with a status of 409"]
    with neira_server.client() as api:
        cell = next(c for c in api.get(f"/organs/{reverse}/status").json()["cells"] if c["id"] == "analysis.reverse.v1")
        assert api.post(f"/factory/cells/{cell['record_id']}/disable", json={"reason": "test"}).status_code == 200
    box = page.locator(f'#organs-body tr[data-detail-for="{reverse}"] .tryit')
    box.get_by_label("Text").fill("hello again")
    box.get_by_role("button", name="Run").click()
    message = box.locator(".tryit-message")
    expect(message).to_have_attribute("role", "alert")
    expect(message).to_contain_text("The server refused to run it (not_runnable):")
    expect(message).to_contain_text(f"cell record {cell['record_id']} is disabled")
