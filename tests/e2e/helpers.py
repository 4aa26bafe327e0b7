"""What the journey does many times: one browser per person, the words of the person's language,
the card element, money on a page, screenshots at two widths, and what localstripe recorded."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import stripe
from axe_playwright_python.sync_playwright import Axe
from babel.numbers import format_percent
from babel.support import NullTranslations, Translations
from playwright.sync_api import Browser, Page, expect

from app.money import format_money

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
PASSWORD = "journey-password-1"
TIMEOUT_MS = 20_000
expect.set_options(timeout=TIMEOUT_MS)

#: Stripe's test cards, as a backer types them into the card element.
CARD_OK = "4242 4242 4242 4242"
CARD_AUTHENTICATE = "4000 0027 6000 3184"
CARD_DECLINED = "4000 0000 0000 0002"


@dataclass(frozen=True)
class Language:
    """A language the site speaks, as a browser asks for it, and its words as the site's catalog has them.

    `T("msgid", name=…)` is the translation the page must show. For French and Chinese the msgid must
    be in the compiled catalog (a typo or a fragment fails the test instead of passing in English).
    """

    code: str  # the catalog's name: en, fr, zh_Hans_CN
    accept: str  # the browser's language (Accept-Language)
    timezone: str  # where the people are
    suffix: str = ""  # of screenshot names: "", "-fr", "-zh-Hans"

    @cached_property
    def _catalog(self) -> NullTranslations:
        if self.code == "en":
            return NullTranslations()
        found = Translations.load(str(ROOT / "app" / "translations"), [self.code])
        assert isinstance(found, Translations), f"no compiled catalog for {self.code} (make babel-compile)"
        return found

    def _known(self, key) -> None:
        if self.code != "en":
            assert self._catalog._catalog.get(key), f"{key!r} is not translated in the {self.code} catalog"

    def __call__(self, msgid: str, **values) -> str:
        self._known(msgid)
        text = self._catalog.ugettext(msgid)
        return text % values if values else text

    def n(self, singular: str, plural: str, num: int, **values) -> str:
        """ngettext as the templates call it (`num` filled in)."""
        self._known((singular, 0))
        return self._catalog.ungettext(singular, plural, num) % {"num": num, **values}

    def before(self, msgid: str, placeholder: str) -> str:
        """The translated words before `%(placeholder)s` (whose value the page fills in)."""
        return self(msgid, **{placeholder: "\x00"}).split("\x00")[0].strip()

    def money(self, amount: int, currency: str = "USD") -> str:
        return format_money(amount, currency, self.code)

    def percent(self, whole: int) -> str:
        """45 -> "45%", "45 %" in French."""
        return format_percent(whole / 100, locale=self.code)

    def cents(self, text: str) -> int:
        """The first US-dollar amount in a text as this language writes it, in cents:
        "$1,150.50" (en), "1 150,50 $US" (fr), "US$1,150.50" (zh) -> 115050."""
        found = _MONEY[self.code].search(text)
        assert found, f"no dollar amount in {text!r} ({self.code})"
        value = re.sub(r"[^\d.,−-]", "", found.group(0)).replace("−", "-")
        group, decimal = (".", ",") if self.code == "fr" else (",", ".")
        value = value.replace(group, "").replace(decimal, ".")
        negative = value.startswith("-")
        whole, _dot, frac = value.lstrip("-").partition(".")
        amount = int(whole) * 100 + int((frac or "0").ljust(2, "0"))
        return -amount if negative else amount


_MONEY = {
    "en": re.compile(r"[-−]?\$[\d,]+(?:\.\d{2})?"),
    "zh_Hans_CN": re.compile(r"[-−]?US\$[\d,]+(?:\.\d{2})?"),
    "fr": re.compile(r"[-−]?\d[\d\u202f\u00a0 ]*(?:,\d{2})?[\u202f\u00a0 ]?\$US"),
}
ENGLISH = Language("en", "en-US", "UTC")
LANGUAGES = [ENGLISH, Language("fr", "fr-FR", "Europe/Paris", "-fr"), Language("zh_Hans_CN", "zh-CN", "Asia/Shanghai", "-zh-Hans")]


@dataclass
class Person:
    """Someone with their own browser (context: cookies, session) and one tab."""

    name: str
    email: str
    page: Page
    language: Language = ENGLISH
    problems: list[str] = field(default_factory=list)


def open_browser(browser: Browser, base_url: str, name: str, email: str, language: Language = ENGLISH) -> Person:
    """A fresh browser context for one person: desktop size, their language and time zone, dialogs answered "OK"."""
    context = browser.new_context(base_url=base_url, viewport=DESKTOP, locale=language.accept, timezone_id=language.timezone)
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    page = context.new_page()
    person = Person(name=name, email=email, page=page, language=language)
    # Our destructive buttons ask window.confirm(); a person clicks OK (Playwright would dismiss it).
    page.on("dialog", lambda dialog: dialog.accept())
    # A script error or a refused resource (CSP) is a bug the person would hit: collect them.
    page.on("pageerror", lambda error: person.problems.append(f"{page.url}: script error: {error.stack or error}"))
    page.on("console", lambda msg: person.problems.append(f"{page.url}: console {msg.type}: {msg.text}") if msg.type == "error" else None)
    # Every page the person lands on is checked by axe-core (WCAG 2.2 AA) in their language.
    page.on("load", lambda loaded: check_accessibility(loaded, person.problems))
    return person


#: axe-core (bundled by axe-playwright-python, pinned: nothing is fetched at run time). The rules it runs:
#: WCAG 2.0/2.1/2.2 A and AA, and its best practices; a violation of serious, critical or moderate impact
#: fails the journey.
_AXE = Axe()
_AXE_OPTIONS = {"resultTypes": ["violations"],
                "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]}}
FAILING_IMPACTS = {"moderate", "serious", "critical"}


def check_accessibility(page: Page, problems: list[str]) -> None:
    """Run axe-core on the page as it stands; each failing violation becomes a problem line (rule, impact,
    the elements). A page that navigates away meanwhile is checked when the next one loads."""
    try:
        if not page.evaluate("typeof window.axe !== 'undefined'"):
            page.evaluate(_AXE.axe_script)
        # The handler of one page's load may run once the test has already moved on to the next page, whose
        # document may still be loading (no style sheets yet: every target looks too small): wait for it.
        # Between the two calls the page may have moved on to a document without axe: that one's own load
        # handler checks it (null here).
        results = page.evaluate("""async (options) => {
            if (document.readyState !== "complete") await new Promise(done => window.addEventListener("load", done, {once: true}));
            return typeof axe === "undefined" ? null : await axe.run(document, options);
        }""", _AXE_OPTIONS)
    except Exception as error:  # noqa: BLE001  (navigated away, closed: the next page is checked instead)
        if "context was destroyed" in str(error) or "closed" in str(error) or "navigat" in str(error):
            return
        raise
    if results is None:
        return
    for violation in results["violations"]:
        if violation.get("impact") in FAILING_IMPACTS:
            targets = "; ".join(" ".join(node["target"]) if isinstance(node["target"], list) else str(node["target"])
                                for node in violation["nodes"][:5])
            line = f"{page.url}: axe {violation['impact']} {violation['id']}: {violation['help']} — {targets}"
            if line not in problems:  # the same page visited again says nothing new
                problems.append(line)


def register(person: Person) -> None:
    """Sign up through the form, as a new visitor does."""
    page, T = person.page, person.language
    page.goto("/")
    page.get_by_role("link", name=T("Sign up")).click()
    expect(page).to_have_url(re.compile(r"/auth/register$"))
    page.fill("input[name=email]", person.email)
    page.fill("input[name=display_name]", person.name)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name=T("Create account")).click()
    expect(page.locator(".alert-success")).to_contain_text(T("Welcome, %(name)s! Your account is ready.", name=person.name))
    expect(page.locator("nav.navbar")).to_contain_text(person.name)


def log_in(person: Person, password: str = PASSWORD) -> None:
    page, T = person.page, person.language
    page.goto("/")
    page.get_by_role("link", name=T("Log in")).click()
    page.fill("input[name=email]", person.email)
    page.fill("input[name=password]", password)
    page.get_by_role("button", name=T("Log in")).click()
    expect(page.locator("nav.navbar")).to_contain_text(person.name)


def nav(page: Page, name: str) -> None:
    """Follow a link of the top navigation (opening the menu first at phone width)."""
    # Before the stylesheet applies, the toggler shows at every width: judge it on the styled page.
    page.wait_for_load_state()
    toggler = page.locator(".navbar-toggler")
    if toggler.is_visible() and toggler.get_attribute("aria-expanded") != "true":
        toggler.click()
    page.locator("nav.navbar").get_by_role("link", name=name, exact=True).click()
    page.wait_for_load_state()


def flash(page: Page):
    """The flashed messages at the top of the page."""
    return page.locator("main .alert").first


def fill_card(page: Page, number: str, *, month: str = "12", year: str = "34", cvc: str = "123", postal: str = "94110") -> None:
    """Type a card into Stripe.js's card element (localstripe's has plain inputs, named by placeholder)."""
    element = page.locator("#card-element")
    expect(element.locator("input")).to_have_count(5)
    for placeholder, value in (("number", number.replace(" ", "")), ("exp_month", month), ("exp_year", year),
                               ("cvc", cvc), ("postal_code", postal)):
        element.locator(f"input[placeholder={placeholder}]").fill(value)


def progress_ratio(box) -> float:
    """How much of the progress track the bar fills, measured on the page (0.0 … 1.0)."""
    track = box.locator(".progress").bounding_box()
    bar = box.locator(".progress-bar").bounding_box()
    assert track and bar and track["width"] > 0
    return bar["width"] / track["width"]


def shoot(page: Page, name: str) -> None:
    """docs/screenshots/<name>-desktop.png (1280 wide) and <name>-phone.png (390 wide), whole pages
    (name with the language's suffix: campaign-fr, campaign-zh-Hans)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size or DESKTOP
    try:
        for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(viewport)
            page.wait_for_load_state("networkidle")
            # Every image on the page has arrived before the picture is taken.
            page.wait_for_function("Array.from(document.images).every((img) => img.complete)")
            page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True, animations="disabled",
                            caret="hide")
    finally:
        page.set_viewport_size(size)


def stripe_client(base_url: str) -> stripe.StripeClient:
    return stripe.StripeClient("sk_test_e2e", base_addresses={"api": base_url}, max_network_retries=0)


def payment_intents(base_url: str) -> list[dict]:
    """Every PaymentIntent localstripe holds (paged), as plain dicts."""
    client = stripe_client(base_url)
    found: list[dict] = []
    params: dict = {"limit": 100}
    while True:
        page = client.v1.payment_intents.list(params=params)
        found += [intent.to_dict() for intent in page.data]
        if not page.has_more:
            return found
        params["starting_after"] = page.data[-1].id


def intents_for(intents: list[dict], pledge_id: int) -> list[dict]:
    """The PaymentIntents made for one pledge (our gateway puts the pledge id in their metadata)."""
    return [i for i in intents if (i.get("metadata") or {}).get("pledge") == str(pledge_id)]
