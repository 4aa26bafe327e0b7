"""The site in French and in Simplified Chinese, in a real browser (issue 9).

A visitor whose browser speaks French (in Paris) or Chinese (in Shanghai) reads the demo's pages in
their language: `<html lang>`, the words, the money as their language writes it, the deadline in
their own time zone with the exact UTC on hover, long Chinese titles that wrap on a phone; then the
footer switcher takes them to English on the same page. Screenshots go to docs/screenshots/demo-*.
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import DESKTOP, PHONE, TIMEOUT_MS, shoot

pytestmark = pytest.mark.e2e

LANGUAGES = [
    # Accept-Language, time zone, <html lang>, words on the page, how the GBP goal is written
    ("fr-FR", "Europe/Paris", "fr", ("Se connecter", "Soutenir ce projet", "Contreparties"), re.compile(r"\d(?:,\d{2})?\s£GB")),
    ("zh-CN", "Asia/Shanghai", "zh-Hans", ("登录", "支持这个项目", "回报"), re.compile(r"£\d[\d,]*(?:\.\d{2})?")),
]
ZONE_NAMES = {"Europe/Paris": "heure normale d’Europe centrale", "Asia/Shanghai": "中国标准时间"}
LONG_CHINESE_TITLE = "城市鸟类手工印刷杂志第二期全彩珍藏版附赠手绘明信片和限量帆布包以及作者亲笔签名"


@pytest.mark.parametrize("accept,zone,lang,words,gbp", LANGUAGES, ids=[row[2] for row in LANGUAGES])
def test_a_visitor_reads_the_site_in_their_language(demo, browser, accept, zone, lang, words, gbp):
    context = browser.new_context(base_url=demo.url, viewport=DESKTOP, locale=accept, timezone_id=zone)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    try:
        page.goto("/")
        expect(page.locator("html")).to_have_attribute("lang", lang)
        expect(page.get_by_role("link", name=words[0], exact=True)).to_be_visible()
        # app.js told the server the browser's time zone: from now on, times are shown in it.
        assert {c["name"]: c["value"] for c in context.cookies()}.get("tz") == zone
        page.reload()
        shoot(page, f"demo-discover-{lang}")

        page.get_by_role("link", name="Tiny Press Zine").first.click()
        expect(page.locator("html")).to_have_attribute("lang", lang)
        for word in words[1:]:
            expect(page.get_by_text(word).first).to_be_visible()
        assert gbp.search(page.locator(".funding-box").inner_text()), page.locator(".funding-box").inner_text()
        deadline = page.locator(".funding-box time[title$='UTC']").first
        expect(deadline).to_contain_text(ZONE_NAMES[zone])
        utc_hour = re.search(r"(\d{2}):\d{2} UTC", deadline.get_attribute("title")).group(1)
        local_hour = re.search(r"(\d{1,2}):\d{2}", deadline.inner_text()).group(1)
        assert int(local_hour) != int(utc_hour), "the deadline is shown in the visitor's zone, not UTC"
        shoot(page, f"demo-campaign-{lang}")

        # A long Chinese title wraps inside the page on a phone (no sideways scrolling).
        page.set_viewport_size(PHONE)
        page.evaluate("(title) => document.querySelectorAll('h1').forEach((h) => { h.textContent = title; })", LONG_CHINESE_TITLE)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        page.goto("/")
        page.evaluate("(title) => document.querySelectorAll('.card-title a').forEach((a) => { a.textContent = title; })",
                      LONG_CHINESE_TITLE + LONG_CHINESE_TITLE)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        page.set_viewport_size(DESKTOP)

        # The footer switcher: English, on the same page, and it sticks.
        page.goto("/campaigns?sort=newest")
        page.locator(".language-switcher").get_by_role("link", name="English").click()
        expect(page).to_have_url(re.compile(r"/campaigns\?sort=newest$"))
        expect(page.locator("html")).to_have_attribute("lang", "en")
        page.goto("/")
        expect(page.get_by_role("link", name="Log in", exact=True)).to_be_visible()
        assert not problems, problems
    finally:
        context.close()
