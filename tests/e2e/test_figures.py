"""The figure pages in a real browser (issue 19): the demo's moderator opens the operations page from
the navigation and changes the period; anyone opens the stats page from the footer. In English,
French and Chinese, each page checked by axe-core (WCAG 2.2 AA) as it loads, with no script error."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from app.demo import DEMO_PASSWORD
from tests.e2e.helpers import LANGUAGES, check_accessibility, log_in, nav, open_browser

pytestmark = pytest.mark.e2e


def _check_now(person) -> None:
    """axe on the page as it is now (the load event's check of the last page may not have run yet):
    waits for a check already running to finish first."""
    for _attempt in range(100):
        try:
            check_accessibility(person.page, person.problems)
            return
        except PlaywrightError as error:
            if "already running" not in str(error):
                raise
            person.page.wait_for_timeout(100)
    raise AssertionError("axe never finished its previous run")


@pytest.mark.parametrize("language", LANGUAGES, ids=[language.code for language in LANGUAGES])
def test_the_figure_pages_in_every_language(server, browser, language):
    T = language
    server.flask("seed-demo")  # skipped by the command when the demo is there already
    moderator = open_browser(browser, server.url, "Morgan (moderator)", "moderator@example.com", language)
    page = moderator.page
    try:
        log_in(moderator, DEMO_PASSWORD)
        nav(page, T("Operations"))
        expect(page.locator("h1")).to_have_text(T("Operations"))
        expect(page.locator("svg.chart[role=img]").first).to_be_visible()
        page.select_option("#weeks", "52")
        page.get_by_role("button", name=T("Show")).click()
        expect(page).to_have_url(re.compile(r"/moderation/operations\?weeks=52$"))
        expect(page.locator("#weeks")).to_have_value("52")
        page.locator("details.weekly summary").first.click()  # a week-by-week table, opened
        expect(page.locator("details.weekly table").first).to_be_visible()

        page.locator("footer").get_by_role("link", name=T("Stats")).click()
        expect(page).to_have_url(re.compile(r"/stats$"))
        expect(page.locator("h1")).to_have_text(T("Threshold in figures"))
        expect(page.locator(".stat-launched")).not_to_have_text("0")
        _check_now(moderator)
        assert not moderator.problems, moderator.problems
    finally:
        page.context.close()
