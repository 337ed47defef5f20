"""The organs panel follows the `Link: <…>; rel="next"` pages of the list routes (issue 14, point 11)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from api.controllers.pages import encode_cursor
from tests.e2e.browser_fixtures import browser, neira_server, open_tab, playwright_driver, sign_in  # noqa: F401

pytestmark = pytest.mark.e2e


def test_the_panel_lists_organs_from_every_page(neira_server, open_tab):
    with neira_server.client() as c:
        for _ in range(2):
            assert c.post("/organs/build", json={"organ_template": "organ.echo.v1"}).status_code == 201
        organs = c.get("/organs?limit=1000").json()
    first, rest = organs[:1], organs[1:]
    seen = []

    def first_page_only(route):  # the server's first page cut to one organ, with a Link to the real rest
        seen.append(route.request.url)
        link = f'</organs?limit=1000&cursor={encode_cursor(first[0]["id"])}>; rel="next"'
        route.fulfill(response=route.fetch(), json=first, headers={"content-type": "application/json", "link": link})

    tab = open_tab(locale="en-US")
    tab.page.route(re.compile(r"/organs\?limit=1000$"), first_page_only)
    sign_in(tab.page, neira_server)
    tab.page.goto(f"{neira_server.url}/organs.html")
    for organ in (*first, *rest):
        expect(tab.page.locator(f'#organs-body tr[data-organ-id="{organ["id"]}"]')).to_be_visible()
    assert seen and any("cursor=" in url for url in tab.urls)


def test_a_confirmation_answers_only_the_opening_it_was_given_to(neira_server, open_tab):
    """Backing out and asking again at once: the first opening's queued close must not answer the second."""
    tab = open_tab(locale="en-US")
    sign_in(tab.page, neira_server)
    tab.page.goto(f"{neira_server.url}/organs.html")
    answers = tab.page.evaluate("""async () => {
        const { confirmAction } = await import("./js/confirm.js");
        const dialog = document.querySelector("#confirm");
        const first = confirmAction("first");
        dialog.dispatchEvent(new Event("cancel"));  // what Escape does: cancel now, close as a queued task
        dialog.close();
        const second = confirmAction("second");  // opened again before that task ran
        document.querySelector("#confirm-ok").click();
        return [await first, await second];
    }""")
    assert answers == [False, True]
