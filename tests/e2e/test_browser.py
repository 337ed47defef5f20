"""The chat page and the organs panel in headless Chromium, against a real `neira serve`."""

from __future__ import annotations

import re

import pytest

from playwright.sync_api import expect

from tests.e2e.browser_fixtures import ARTIFACTS, browser, neira_server, open_tab, playwright_driver, sign_in, slow_server  # noqa: F401

pytestmark = pytest.mark.e2e

SEED_PHRASES = [
    "создай голосовой орган v1",
    "обнови зрение до v2 (grayscale)",
    "собери speak-pipeline normalize→phonemes→adapter",
]
REPLY = "#messages > li.msg-neira:not(.msg-thinking)"


def send(page, text: str) -> None:
    box = page.locator("#input")
    box.fill(text)
    box.press("Enter")


def last_reply(page, count: int):
    """Wait until there are `count` replies, and return the newest one."""
    replies = page.locator(REPLY)
    expect(replies).to_have_count(count)
    return replies.nth(count - 1)


def no_horizontal_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_seed_phrases_plan_apply_and_panel(neira_server, open_tab):
    """Each seed phrase shows a plan; Apply builds an organ to stable; the panel lists them live."""
    tab = open_tab(locale="ru-RU")
    page = tab.page
    sign_in(page, neira_server)
    expect(page.locator("#input")).to_be_visible()
    expect(page.locator("#input")).to_have_attribute("placeholder", re.compile("Введите команду"))

    organ_ids = []
    for n, phrase in enumerate(SEED_PHRASES, start=1):
        send(page, phrase)
        reply = last_reply(page, n)
        plan = reply.locator(".plan-text")
        expect(plan).to_be_visible()
        expect(plan.locator(".line-add, .line-change").first).to_be_visible()
        if n == 1:
            page.screenshot(path=str(ARTIFACTS / "chat-plan-pending.png"))
        reply.get_by_role("button", name="Применить").click()
        expect(reply.locator(".plan-state")).to_have_text("Применён")
        item = reply.locator(".organ-item").first
        expect(item).to_have_attribute("data-state", "stable")
        expect(item.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "3")
        organ_ids.append(item.get_attribute("data-organ-id"))
        if n == 2:  # the update plan (~ line) with its finished build
            page.screenshot(path=str(ARTIFACTS / "chat-plan.png"))
    assert len(set(organ_ids)) == 3, organ_ids
    # A draft record of its own for the panel's cell actions below (the organs' cells went to stable with them).
    probe = {"id": "analysis.panel_probe.v1", "version": "1.0.0", "analysis_type": "echo", "links": [],
             "metadata": {"schema": "v1"}}
    with neira_server.client() as api:
        assert api.post("/factory/cells", json={"template": probe}).status_code == 201

    # The session survives a reload: same id, same history, same finished builds.
    session_label = page.locator("#session-id").inner_text()
    page.reload()
    expect(page.locator(REPLY)).to_have_count(3)
    expect(page.locator("#session-id")).to_have_text(session_label)
    expect(page.locator('.organ-item[data-state="stable"]')).to_have_count(3)
    # ↑ recalls the last command.
    page.locator("#input").press("ArrowUp")
    expect(page.locator("#input")).to_have_value(SEED_PHRASES[-1])

    # "Open in the organs panel" lists the organs with their template and a stable badge, that one's status open.
    page.locator(f'.organ-item[data-organ-id="{organ_ids[1]}"]').get_by_role("link", name="Открыть в панели органов").click()
    expect(page).to_have_url(re.compile(r"/organs\.html#organ="))
    expect(page.locator(f'#organs-body tr[data-detail-for="{organ_ids[1]}"] .status-detail')).to_be_visible()
    for organ_id in organ_ids:
        row = page.locator(f'#organs-body tr[data-organ-id="{organ_id}"]')
        expect(row).to_have_attribute("data-state", "stable")
        expect(row.locator(".badge")).to_have_text("стабильный")
    expect(page.locator("#organs-body").get_by_text("organ.voice.v1")).to_be_visible()
    expect(page.locator("#caps li")).not_to_have_count(0)
    # Status opens a detail row with the organ's cells and stage timings.
    row = page.locator(f'#organs-body tr[data-organ-id="{organ_ids[0]}"]')
    row.get_by_role("button", name="Статус").click()
    detail = page.locator(f'#organs-body tr[data-detail-for="{organ_ids[0]}"]')
    expect(detail.locator(".status-detail")).to_be_visible()
    expect(row.get_by_role("button", name="Скрыть")).to_have_attribute("aria-expanded", "true")
    expect(detail.locator(".timeline-legend")).to_contain_text("канарейка")
    page.screenshot(path=str(ARTIFACTS / "panel.png"), full_page=True)

    # Rebuild asks first, then the organ goes through its stages again (attempt 2) and ends stable.
    row.get_by_role("button", name="Пересобрать").click()
    page.get_by_role("dialog").get_by_role("button", name="Да, выполнить").click()
    expect(detail.locator('.metrics-list dt:text-is("attempts") + dd')).to_have_text("2")
    expect(row).to_have_attribute("data-state", "stable")

    # A build started elsewhere shows up and moves on through the events stream, without a reload.
    expect(page.locator("#live")).to_have_attribute("data-status", "open")
    with neira_server.client() as api:
        started = api.post("/organs/build", json={"organ_template": "organ.echo.v1"})
    assert started.status_code == 201, started.text
    new_row = page.locator(f'#organs-body tr[data-organ-id="{started.json()["organ_id"]}"]')
    expect(new_row).to_have_attribute("data-state", "stable")

    # Cell records: approve moves a draft on; disable asks first, and "keep as is" keeps it.
    # (the probe cell: no organ uses it, and a disabled cell refuses every build that needs it)
    cell_row = page.locator('#cells-body tr[data-state="draft"]', has_text="analysis.panel_probe.v1").first
    cell_id = cell_row.get_attribute("data-cell-id")
    cell_row = page.locator(f'#cells-body tr[data-cell-id="{cell_id}"]')
    cell_row.get_by_role("button", name="Одобрить").click()
    expect(cell_row).to_have_attribute("data-state", "canary")
    cell_row.get_by_role("button", name="Отключить").click()
    page.get_by_role("dialog").get_by_role("button", name="Оставить как есть").click()
    expect(page.get_by_role("dialog")).to_be_hidden()
    expect(cell_row).to_have_attribute("data-state", "canary")
    cell_row.get_by_role("button", name="Отключить").click()
    page.get_by_role("dialog").get_by_role("button", name="Да, выполнить").click()
    expect(cell_row).to_have_attribute("data-state", "disabled")
    assert all("token" not in u and neira_server.token not in u for u in tab.urls), "the token leaked into a URL"


def test_cancel_slow_build_from_panel(slow_server, open_tab):
    """A slow build started in the chat is cancelled from the panel; both pages show it failed."""
    chat = open_tab(locale="en-US")
    page = chat.page
    sign_in(page, slow_server)
    send(page, "create voice organ v1")
    reply = last_reply(page, 1)
    reply.get_by_role("button", name="Apply").click()
    item = reply.locator(".organ-item").first
    expect(item).to_be_visible()
    organ_id = item.get_attribute("data-organ-id")

    panel = open_tab(context=page.context)
    panel.page.goto(f"{slow_server.url}/organs.html")
    row = panel.page.locator(f'#organs-body tr[data-organ-id="{organ_id}"]')
    expect(row).to_be_visible()
    # Keyboard only: Enter opens the confirmation with the safe choice focused, Escape backs out,
    # and focus comes back to the button; then Tab to "Yes" and Enter.
    cancel_button = row.get_by_role("button", name="Cancel build")
    cancel_button.focus()
    panel.page.keyboard.press("Enter")
    dialog = panel.page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(organ_id)
    expect(dialog.get_by_role("button", name="Keep as is")).to_be_focused()
    panel.page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(cancel_button).to_be_focused()
    assert row.get_attribute("data-state") != "failed"
    panel.page.keyboard.press("Enter")
    expect(dialog.get_by_role("button", name="Keep as is")).to_be_focused()
    panel.page.keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="Yes, do it")).to_be_focused()
    panel.page.keyboard.press("Enter")
    expect(row).to_have_attribute("data-state", "failed")
    expect(row.locator(".badge")).to_have_text("failed")
    expect(row.get_by_role("button", name="Cancel build")).to_be_disabled()
    panel.page.screenshot(path=str(ARTIFACTS / "panel-cancelled.png"), full_page=True)

    # The chat's live progress bar, fed by the organ's stream, shows the failure too.
    expect(item).to_have_attribute("data-state", "failed")
    expect(item.locator(".stages")).to_have_class(re.compile("is-failed"))
    expect(item.locator(".organ-note")).to_have_text("The build failed.")
    page.screenshot(path=str(ARTIFACTS / "chat-failed.png"))


def test_phone_layout_has_no_horizontal_scroll(neira_server, open_tab):
    """At 360 px both pages fit the width, with a plan on screen and the tables as cards."""
    tab = open_tab(locale="ru-RU", width=360, height=740)
    page = tab.page
    sign_in(page, neira_server)
    send(page, SEED_PHRASES[2])
    plan_reply = last_reply(page, 1)
    expect(plan_reply.locator(".plan-text")).to_be_visible()
    assert no_horizontal_scroll(page)
    page.screenshot(path=str(ARTIFACTS / "chat-360.png"))
    # Saying «применить» applies the session's plan, like the button: the plan is marked and the build followed.
    send(page, "применить")
    applied = last_reply(page, 2)
    expect(applied.locator(".organ-item")).to_have_attribute("data-state", "stable")
    expect(plan_reply.locator(".plan-state")).to_have_text("Применён")
    assert no_horizontal_scroll(page)
    page.goto(f"{neira_server.url}/organs.html")
    expect(page.locator("#organs-body tr").first).to_be_visible()
    # Rows restyled as cards keep their table semantics.
    organs_table = page.get_by_role("table", name="Органы")
    expect(organs_table.get_by_role("row").nth(1).get_by_role("cell").first).to_be_visible()
    assert no_horizontal_scroll(page)
    page.screenshot(path=str(ARTIFACTS / "panel-360.png"), full_page=True)


def test_login_language_switch_and_keyboard(neira_server, open_tab):
    """Without a session the page says how to sign in; after the link, an English UI with a working switch."""
    tab = open_tab(locale="en-US")
    tab.allowed.append("401")  # the session check of a page that is not signed in yet
    page = tab.page
    page.goto(f"{neira_server.url}/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.locator("#login")).to_contain_text("neira login-url")
    expect(page.get_by_role("button", name="Check again")).to_be_focused()
    expect(page.locator("#app")).to_be_hidden()
    sign_in(page, neira_server)
    box = page.get_by_role("textbox", name="Command")
    expect(box).to_be_focused()

    # Shift+Enter breaks the line, Enter sends.
    box.type("list")
    box.press("Shift+Enter")
    box.type("organs")
    expect(box).to_have_value("list\norgans")
    box.fill("")
    # A welcome suggestion fills the input when clicked.
    page.get_by_role("button", name="create voice organ v1").click()
    expect(box).to_have_value("create voice organ v1")

    # A typo is not executed: the reply offers the corrected phrase, and a click puts it in the input.
    send(page, "craate voice organ v1")
    reply = last_reply(page, 1)
    expect(reply.locator("article")).to_have_attribute("data-understood", "false")
    reply.locator(".suggestions").get_by_role("button", name="create voice organ v1").click()
    expect(box).to_have_value("create voice organ v1")
    expect(box).to_be_focused()

    page.get_by_role("button", name="RU").click()
    expect(page.get_by_role("button", name="Отправить")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    page.reload()
    expect(page.get_by_role("button", name="Отправить")).to_be_visible()
    page.get_by_role("button", name="EN").click()
    expect(page.get_by_role("button", name="Send")).to_be_visible()


def test_policy_denied_plan_gates_and_safe_mode(neira_server, open_tab):
    """A closed gate shows in the plan (violations, no Apply) and on the panel; safe mode raises a banner live."""
    tab = open_tab(locale="en-US")
    page = tab.page
    with neira_server.client() as api:
        assert api.post("/api/neira/capabilities/organs_builder", json={"state": "disabled"}).status_code == 200
        try:
            sign_in(page, neira_server)
            send(page, "create echo organ v1")
            reply = last_reply(page, 1)
            expect(reply.locator(".violations")).to_contain_text("organs_builder")
            expect(reply.get_by_role("button", name="Apply")).to_be_disabled()
            expect(reply.locator(".denied")).to_be_visible()

            page.get_by_role("link", name="Organs").click()
            expect(page.locator('#caps li[data-capability="organs_builder"] .badge')).to_have_text("disabled")
            expect(page.locator("#organs-gate")).to_contain_text("organs_builder")
            expect(page.locator("#safe-mode")).to_be_hidden()
            expect(page.locator("#live")).to_have_attribute("data-status", "open")

            # Gate and safe-mode changes arrive through the events stream while the panel is open.
            assert api.post("/api/neira/safe-mode", json={"enabled": True, "reason": "maintenance window"}).status_code == 200
            expect(page.locator("#safe-mode")).to_be_visible()
            expect(page.locator("#safe-mode")).to_contain_text("maintenance window")
            page.screenshot(path=str(ARTIFACTS / "panel-safe-mode.png"))
            assert api.post("/api/neira/capabilities/organs_builder", json={"state": "experimental"}).status_code == 200
            expect(page.locator("#organs-gate")).to_be_hidden()
            expect(page.locator("#organs-table:visible, #organs-empty:visible")).to_have_count(1)
        finally:
            api.post("/api/neira/safe-mode", json={"enabled": False, "reason": "test over"})
            api.post("/api/neira/capabilities/organs_builder", json={"state": "experimental"})
    expect(page.locator("#safe-mode")).to_be_hidden()


def test_chat_ui_follows_the_reply_language(neira_server, open_tab):
    """The UI strings switch to the language a reply comes in, and back."""
    tab = open_tab(locale="en-US")
    page = tab.page
    sign_in(page, neira_server)
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    send(page, "статус")
    expect(last_reply(page, 1)).to_be_visible()
    expect(page.get_by_role("button", name="Отправить")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    expect(page.locator("#logout")).to_have_text("Выйти")
    send(page, "list organs")
    expect(last_reply(page, 2)).to_be_visible()
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    expect(page.locator("#logout")).to_have_text("Sign out")


def test_panel_activity_and_cell_records(neira_server, open_tab):
    """The panel's activity view lists events and audit live and filters them; an organ's cells open their records."""
    tab = open_tab(locale="en-US")
    page = tab.page
    sign_in(page, neira_server)
    page.goto(f"{neira_server.url}/organs.html")
    expect(page.locator("#live")).to_have_attribute("data-status", "open")
    with neira_server.client() as api:
        for _ in range(6):  # 4 stage events each at least: more rows than the view shows at first
            assert api.post("/organs/build", json={"organ_template": "organ.echo.v1"}).status_code == 201
        started = api.post("/organs/build", json={"organ_template": "organ.reverse.v1"})
    assert started.status_code == 201, started.text
    organ_id = started.json()["organ_id"]
    subject = f"organ:{organ_id}"
    activity = page.locator("#activity-body")
    expect(activity.locator("tr", has_text=subject).first).to_be_visible()  # arrived through the stream
    expect(activity.locator("tr")).to_have_count(25)  # the newest 25, then 25 more a click
    page.get_by_role("button", name="Show more").click()
    expect(activity.locator("tr")).not_to_have_count(25)

    # Filter by subject (a click on a subject does it too) and by type.
    page.get_by_label("Subject").fill(subject)
    expect(activity.locator("tr").first).to_contain_text(subject)
    rows = activity.locator("tr")
    assert all(subject in rows.nth(i).inner_text() for i in range(rows.count()))
    page.get_by_label("Type").select_option("organ.stage")
    expect(activity.locator('tr[data-type="organ.stage"]').first).to_be_visible()
    expect(activity.locator('tr:not([data-type="organ.stage"])')).to_have_count(0)
    page.get_by_label("Subject").fill("nothing-like-this")
    expect(page.locator("#activity-empty")).to_have_text("Nothing matches the filter.")
    page.get_by_label("Subject").fill("")

    # The audit trail, filtered by a subject picked from a row.
    page.locator("#activity-view").get_by_role("button", name="Audit").click()
    expect(activity.locator("tr").first).to_be_visible()
    activity.locator("tr", has_text=subject).first.get_by_role("button").click()
    expect(page.get_by_label("Subject")).to_have_value(subject)
    expect(activity.locator("tr").first).to_contain_text(subject)

    # The organ's status lists its cells; each opens its cell record with the history.
    row = page.locator(f'#organs-body tr[data-organ-id="{organ_id}"]')
    row.get_by_role("button", name="Status").click()
    detail = page.locator(f'#organs-body tr[data-detail-for="{organ_id}"]')
    record_link = detail.locator("button[data-record]").first
    record_id = record_link.get_attribute("data-record")
    record_link.click()
    expect(record_link).to_have_attribute("aria-expanded", "true")
    record = detail.locator(f'.cell-record[data-record-for="{record_id}"]')
    expect(record).to_contain_text("History")
    expect(record.locator("ol li").first).to_contain_text("draft")
    page.screenshot(path=str(ARTIFACTS / "panel-activity.png"), full_page=True)

    # The catalog's organ templates, with their cells; the pages follow a list's Link headers to its end.
    voice = page.locator('#templates-body tr[data-template-id="organ.voice.v1"]')
    expect(voice).to_contain_text("analysis.text_to_phonemes.v1")
    listed = page.evaluate("""async () => {
        const { apiList } = await import("/js/api.js");
        const all = await apiList("/organs/templates?limit=1");
        const cut = await apiList("/organs/templates?limit=1", 2);
        return [all.items.map((t) => t.id), all.more, cut.items.length, cut.more];
    }""")
    shown = page.locator("#templates-body tr").evaluate_all("rows => rows.map((r) => r.dataset.templateId)")
    assert listed == [shown, False, 2, True] and len(shown) >= 4, listed
