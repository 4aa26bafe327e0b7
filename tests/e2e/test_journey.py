"""The whole journey in a browser, page by page, as the people click it (issue #6).

A creator drafts a campaign with a cover and two tiers, a moderator asks for changes then approves,
the creator launches; three backers pledge through the card form (a card that succeeds, one that
asks for 3-D Secure, one that is declined), one edits, one cancels and pledges again; the deadline
passes (`flask settle` with the clock moved): the campaign is funded and the cards are charged —
the 3-D Secure card's bank asks again, and its backer confirms the payment from his pledge page.
A second campaign misses its goal: nobody is charged, its pledges are released.

Nothing goes through the database: every step is a page, a form, a click — or the command line the
operators use (`users create --moderator`, `settle`). Money is checked twice: what the people see,
and what localstripe (our Stripe) recorded.
"""
from __future__ import annotations

import contextlib
import re
from datetime import date
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Page, expect

from tests.e2e.helpers import (
    CARD_AUTHENTICATE,
    CARD_DECLINED,
    CARD_OK,
    PASSWORD,
    Person,
    cents,
    fill_card,
    flash,
    intents_for,
    log_in,
    nav,
    open_browser,
    payment_intents,
    progress_ratio,
    register,
    shoot,
)

pytestmark = pytest.mark.e2e

DAY = 24 * 3600
RECORDER = "Tidewater Field Recorder"
ZINE = "Night Market Zine"
CHANGES_NOTE = "Please tell backers when the recorders ship, and how you will handle a late parts order."


# --- what the people make -------------------------------------------------------------------------

def make_cover(path: Path, top: tuple[int, int, int], bottom: tuple[int, int, int], accent: tuple[int, int, int],
               motif: str = "wave") -> Path:
    """A 1600×900 PNG drawn here: a sky gradient, a moon, hills, and a sound wave or a string of
    lanterns (the kind of cover a creator uploads)."""
    width, height = 1600, 900
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):
        t = y / (height - 1)
        draw.line([(0, y), (width, y)], fill=tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    draw.ellipse((1080, 160, 1360, 440), fill=accent)
    hills = [(0, 900), (0, 640)] + [(x, 640 - round(90 * ((x / 200) % 2 - 1) ** 2)) for x in range(0, 1601, 40)] + [(1600, 900)]
    draw.polygon(hills, fill=tuple(max(0, c - 70) for c in bottom))
    if motif == "wave":
        for i, x in enumerate(range(120, 900, 36)):
            h = 40 + (i * 37) % 120
            draw.rounded_rectangle((x, 420 - h, x + 18, 420 + h), radius=9, fill=(255, 255, 255))
    else:  # lanterns on a string
        draw.line([(0, 180), (1600, 260)], fill=(40, 20, 60), width=4)
        for i, x in enumerate(range(80, 1600, 170)):
            y = 184 + x * 80 // 1600
            colour = [(255, 99, 71), (255, 193, 7), (255, 236, 179)][i % 3]
            draw.line([(x, y), (x, y + 40)], fill=(40, 20, 60), width=3)
            draw.rounded_rectangle((x - 34, y + 40, x + 34, y + 140), radius=30, fill=colour)
    image.save(path, "PNG")
    return path


def delivery_month(months_ahead: int) -> str:
    today = date.today()
    month = today.month - 1 + months_ahead
    return f"{today.year + month // 12}-{month % 12 + 1:02d}"


# --- pages the creator and the moderator use ------------------------------------------------------

def draft_campaign(creator: Person, *, title: str, blurb: str, category: str, goal: str, days: int, story: str,
                   risks: str, cover: Path) -> str:
    """Fill the new-campaign form (with a cover upload); returns the campaign's slug."""
    page = creator.page
    nav(page, "Start a campaign")
    expect(page).to_have_url(re.compile(r"/campaigns/new$"))
    page.fill("input[name=title]", title)
    page.fill("input[name=blurb]", blurb)
    page.select_option("select[name=category]", category)
    page.fill("input[name=goal]", goal)
    page.select_option("select[name=currency]", "USD")
    page.fill("input[name=duration_days]", str(days))
    page.fill("textarea[name=story]", story)
    page.fill("textarea[name=risks]", risks)
    page.set_input_files("input[name=cover]", str(cover))
    page.get_by_role("button", name="Save draft").click()
    expect(flash(page)).to_contain_text("Draft saved")
    match = re.search(r"/campaigns/([^/]+)/edit", page.url)
    assert match, page.url
    # The cover was checked, re-encoded and stored: it is shown back, and the browser can draw it.
    thumb = page.locator("img.img-thumbnail")
    expect(thumb).to_be_visible()
    assert thumb.evaluate("img => img.complete && img.naturalWidth") > 0
    expect(page.locator(".status-panel .missing")).to_contain_text("at least one funding tier")
    return match.group(1)


def add_tier(creator: Person, *, title: str, description: str, amount: str, limit: str = "", months_ahead: int = 6) -> None:
    page = creator.page
    page.get_by_role("link", name="Add a tier").click()
    page.fill("input[name=title]", title)
    page.fill("textarea[name=description]", description)
    page.fill("input[name=amount]", amount)
    page.fill("input[name=quantity_limit]", limit)
    page.fill("input[name=estimated_delivery]", delivery_month(months_ahead))
    page.fill("input[name=shipping_note]", "Ships worldwide")
    page.get_by_role("button", name="Save tier").click()
    expect(flash(page)).to_contain_text("Tier added.")
    expect(page.locator(".tier-row", has_text=title)).to_be_visible()


def submit_for_review(creator: Person) -> None:
    page = creator.page
    page.locator(".status-panel").get_by_role("button", name="Submit for review").click()
    expect(flash(page)).to_contain_text("Submitted for review")
    expect(page.locator(".status-panel .state-badge")).to_have_text("In review")


def open_review(moderator: Person, title: str) -> Page:
    page = moderator.page
    nav(page, "Moderation")
    item = page.locator(".review-queue .queue-item", has_text=title)
    expect(item).to_be_visible()
    item.get_by_role("link", name=title).click()
    expect(page.locator("h1")).to_have_text(title)
    return page


def decide(moderator: Person, title: str, decision: str, note: str = "") -> None:
    page = open_review(moderator, title)
    form = page.locator("form.decision-form")
    form.get_by_label(decision, exact=True).check()
    form.locator("textarea[name=note]").fill(note)
    form.get_by_role("button", name="Send decision").click()
    said = {"Approve": f"“{title}” is approved.", "Request changes": f"Changes requested for “{title}”."}[decision]
    expect(flash(page)).to_contain_text(said)
    expect(page).to_have_url(re.compile(r"/moderation$"))  # back to the queue, where it is no longer waiting
    expect(page.locator(".review-queue .queue-item", has_text=title)).to_have_count(0)


def launch(creator: Person, title: str) -> str:
    """From the dashboard: Manage, then Launch now (and OK the confirmation); returns the public page URL."""
    page = creator.page
    nav(page, "My campaigns")
    card = page.locator(".my-campaign", has_text=title)
    expect(card).to_have_attribute("data-state", "approved")
    expect(card.locator(".next-step")).to_contain_text("launch it when you are ready")
    card.get_by_role("link", name="Manage").click()
    page.locator(".status-panel").get_by_role("button", name="Launch now").click()
    expect(flash(page)).to_contain_text("Your campaign is live!")
    expect(page.locator("h1")).to_have_text(title)
    return page.url


# --- the campaign page as anyone sees it -----------------------------------------------------------

def expect_funding(page: Page, *, pledged: int, percent: int, backers: int) -> None:
    """The funding box: pledged amount, % funded, backers, and a bar as wide as the percentage (capped)."""
    box = page.locator(".funding-box")
    expect(box.locator(".pledged")).to_be_visible()
    assert cents(box.locator(".pledged").inner_text()) == pledged
    expect(box.locator(".percent-funded")).to_have_text(f"{percent}%")
    expect(box.locator(".backers")).to_have_text(str(backers))
    width = min(percent, 100)
    expect(box.locator(".progress-bar")).to_have_attribute("style", re.compile(rf"width:\s*{width}%"))
    expect(box.locator(".progress")).to_have_attribute("aria-valuenow", str(percent))
    assert abs(progress_ratio(box) - width / 100) < 0.02, (progress_ratio(box), width)


def tier_card(page: Page, title: str):
    return page.locator(".tier", has=page.get_by_role("heading", name=title, exact=True))


# --- pledging ---------------------------------------------------------------------------------------

def pledge_id_from(page: Page) -> int:
    expect(page).to_have_url(re.compile(r"/pledges/\d+$"))
    return int(re.search(r"/pledges/(\d+)$", page.url).group(1))


def pledge(backer: Person, campaign_url: str, *, tier: str | None, amount: str | None, card: str,
           authenticate: bool = False, screenshot: str | None = None) -> int:
    """From the campaign page: choose a reward (or none), type the amount and the card, pledge.

    Returns the pledge's id (from the address of the pledge page the backer lands on)."""
    page = backer.page
    page.goto(campaign_url)
    if tier:
        tier_card(page, tier).get_by_role("link", name="Select this reward").click()
        expect(page.locator("input[name=tier]:checked")).to_have_count(1)
        chosen = page.locator("label.tier-choice", has=page.locator("input[name=tier]:checked"))
        expect(chosen).to_contain_text(tier)
    else:
        page.locator(".funding-box").get_by_role("link", name="Back this project").click()
        page.locator("label.tier-choice", has_text="No reward").locator("input[name=tier]").check()
    expect(page.locator("h1")).to_have_text("Back this project")
    expect(page.locator(".test-mode-notice")).to_contain_text("4242 4242 4242 4242")
    if amount is not None:
        page.fill("input[name=amount]", amount)
    fill_card(page, card)
    if screenshot:
        shoot(page, screenshot)
    page.locator("#pledge-submit").click()
    if authenticate:
        # localstripe's Stripe.js shows its 3-D Secure dialog; the backer completes it.
        page.get_by_role("button", name="Complete authentication").click()
    expect(flash(page)).to_contain_text("Thank you! Your pledge is in.")
    expect(page.locator(".pledge-state")).to_have_text("Active")
    return pledge_id_from(page)


def expect_pledge_page(backer: Person, pledge_id: int, *, state: str, amount: int, explains: str) -> None:
    page = backer.page
    page.goto(f"/pledges/{pledge_id}")
    expect(page.locator(".pledge-state")).to_have_text(state)
    assert cents(page.locator(".pledge-amount").inner_text()) == amount
    expect(page.locator("main")).to_contain_text(explains)


def my_pledge_row(backer: Person, title: str, state: str):
    page = backer.page
    nav(page, "My pledges")
    expect(page).to_have_url(re.compile(r"/me/pledges$"))
    row = page.locator(".my-pledge", has=page.get_by_role("link", name=title)).filter(
        has=page.locator(f".pledge-state:text-is('{state}')"))
    expect(row).to_have_count(1)
    return row


# --- the journey ------------------------------------------------------------------------------------

def test_journey(server, browser, e2e_tmp: Path) -> None:
    people: list[Person] = []
    try:
        journey(server, browser, e2e_tmp, people)
    except BaseException:
        # What each person was looking at when it failed, next to the app's log.
        for someone in people:
            with contextlib.suppress(Exception):
                someone.page.screenshot(path=str(e2e_tmp / f"failed-{someone.name.split()[0].lower()}.png"), full_page=True)
        print(f"screenshots of every person's page at the failure: {e2e_tmp}/failed-*.png")
        raise


def journey(server, browser, e2e_tmp: Path, people: list[Person]) -> None:
    base = server.url

    def person(name: str, email: str) -> Person:
        new = open_browser(browser, base, name, email)
        people.append(new)
        return new

    creator = person("Maya Okafor", "maya@example.com")
    moderator = person("Moss Lindqvist", "moss@moderators.example.com")
    visitor = person("A visitor", "")
    alice = person("Alice Brandt", "alice@example.com")
    bob = person("Bob Nakamura", "bob@example.com")
    carol = person("Carol Diaz", "carol@example.com")

    # 1. The creator registers, drafts a campaign with a cover and two tiers, previews it, submits it.
    register(creator)
    cover = make_cover(e2e_tmp / "tidewater.png", (22, 78, 99), (142, 202, 190), (250, 204, 21))
    draft_campaign(
        creator, title=RECORDER, blurb="A pocket recorder for rivers, reefs and rain, built by field biologists.",
        category="technology", goal="100", days=1, cover=cover,
        story="## What we are making\n\nA **waterproof** recorder with two hydrophones.\n\n- 40 hours of battery\n- open file formats",
        risks="Parts can arrive late; we keep two suppliers for every chip.",
    )
    page = creator.page
    add_tier(creator, title="Early bird recorder", description="One recorder, at the early price.", amount="40", limit="2")
    add_tier(creator, title="Field kit", description="A recorder, a hydrophone and a case.", amount="60")
    expect(page.locator(".tier-row", has_text="Early bird recorder")).to_contain_text("0 of 2 claimed")
    expect(page.locator(".tier-row", has_text="Field kit")).to_contain_text("Unlimited")
    expect(page.locator(".status-panel")).to_contain_text("Everything needed is here")

    page.locator(".status-panel").get_by_role("link", name="Preview").click()
    expect(page.locator(".preview-banner")).to_contain_text("this is how the public will see your campaign")
    expect(page.locator("h1")).to_have_text(RECORDER)
    expect(page.locator(".story h2")).to_have_text("What we are making")  # the Markdown is rendered
    expect(page.locator(".story strong")).to_have_text("waterproof")
    assert page.locator("img.object-fit-cover").evaluate("img => img.complete && img.naturalWidth") > 0
    expect(tier_card(page, "Early bird recorder")).to_contain_text("Pledge $40.00 or more")
    expect(tier_card(page, "Early bird recorder").locator(".remaining")).to_have_text("2 of 2 left")
    expect(page.get_by_role("link", name="Back this project")).to_have_count(0)  # not open to pledges yet
    expect_funding(page, pledged=0, percent=0, backers=0)
    page.get_by_role("link", name="Back to editing").click()
    submit_for_review(creator)

    # 2. A moderator (made on the command line) asks for changes with a note; the creator sees it on
    #    the dashboard, edits, submits again; the moderator approves.
    output = server.flask("users", "create", moderator.email, "--password", PASSWORD, "--name", moderator.name, "--moderator")
    assert "Created moderator" in output, output
    log_in(moderator)
    review = open_review(moderator, RECORDER)
    expect(review.locator(".creator-card")).to_contain_text(creator.email)
    expect(review.locator(".public-view")).to_contain_text("Early bird recorder")
    shoot(review, "moderation-review")
    decide(moderator, RECORDER, "Request changes", CHANGES_NOTE)

    nav(page, "My campaigns")
    mine = page.locator(".my-campaign", has_text=RECORDER)
    expect(mine).to_have_attribute("data-state", "changes_requested")
    expect(mine.locator(".moderator-note")).to_contain_text(CHANGES_NOTE)
    expect(mine.locator(".next-step")).to_contain_text("make the changes asked for")
    mine.get_by_role("link", name="Manage").click()
    expect(page.locator(".status-panel .moderator-note")).to_contain_text(CHANGES_NOTE)
    page.fill("textarea[name=story]", page.input_value("textarea[name=story]")
              + "\n\n## When it ships\n\nRecorders ship six months after the campaign ends.")
    page.fill("textarea[name=risks]", page.input_value("textarea[name=risks]")
              + " If an order is late we tell backers at once and ship the field kits first.")
    page.get_by_role("button", name="Save draft").click()
    expect(flash(page)).to_contain_text("Changes saved.")
    submit_for_review(creator)

    review = open_review(moderator, RECORDER)
    expect(review.locator(".story")).to_contain_text(["Recorders ship six months after the campaign ends."])
    expect(review.locator(".history-row[data-action=request_changes]")).to_contain_text(CHANGES_NOTE)
    decide(moderator, RECORDER, "Approve")

    # 3. The creator launches: the campaign is on the home page and in search. A second campaign
    #    (two days long, with a goal nobody will reach) goes through review and launches too.
    recorder_url = launch(creator, RECORDER)
    expect(page.locator(".time-left")).to_be_visible()
    expect_funding(page, pledged=0, percent=0, backers=0)

    zine_cover = make_cover(e2e_tmp / "zine.png", (49, 27, 94), (236, 120, 84), (255, 236, 179), motif="lanterns")
    draft_campaign(
        creator, title=ZINE, blurb="Forty pages of stalls, recipes and portraits from the night market.",
        category="publishing", goal="500", days=2, cover=zine_cover,
        story="A risograph zine about the people who run the night market.", risks="Printing could take longer.",
    )
    add_tier(creator, title="A copy of the zine", description="One printed copy.", amount="15")
    submit_for_review(creator)
    decide(moderator, ZINE, "Approve")
    zine_url = launch(creator, ZINE)

    vpage = visitor.page
    vpage.goto("/")
    for title in (RECORDER, ZINE):
        expect(vpage.locator(".campaign-card", has_text=title).first).to_be_visible()
    vpage.fill("#home-q", "field recorder")
    vpage.locator(".hero").get_by_role("button", name="Search").click()
    expect(vpage).to_have_url(re.compile(r"/campaigns\?q=field\+recorder"))
    expect(vpage.locator(".campaign-card")).to_have_count(1)
    expect(vpage.locator(".campaign-card")).to_contain_text(RECORDER)
    expect(vpage.locator("main")).to_contain_text("1 campaign")
    vpage.locator(".campaign-card").get_by_role("link", name=RECORDER).click()
    expect(vpage).to_have_url(recorder_url)

    # 4. Three backers pledge through the card form.
    #    Alice: 4242 on the limited tier.
    register(alice)
    alice_recorder = pledge(alice, recorder_url, tier="Early bird recorder", amount=None, card=CARD_OK, screenshot="pledge-form")
    expect_pledge_page(alice, alice_recorder, state="Active", amount=4000, explains="Your card is saved, not charged.")
    expect(alice.page.locator(".pledge-card")).to_contain_text("4242")
    vpage.goto(recorder_url)
    expect_funding(vpage, pledged=4000, percent=40, backers=1)
    expect(tier_card(vpage, "Early bird recorder").locator(".remaining")).to_have_text("1 of 2 left")
    # The card is saved, not charged: Stripe holds no payment yet.
    assert payment_intents(server.stripe_base) == []

    #    Bob: the card that asks for 3-D Secure; he completes the authentication dialog.
    register(bob)
    bob_recorder = pledge(bob, recorder_url, tier="Field kit", amount=None, card=CARD_AUTHENTICATE, authenticate=True)
    expect_pledge_page(bob, bob_recorder, state="Active", amount=6000, explains="Your card is saved, not charged.")

    #    Carol: a declined card — the message shows next to the card, nothing is pledged; she types
    #    another card; later she cancels, and pledges again for the last early-bird recorder.
    register(carol)
    cpage = carol.page
    cpage.goto(recorder_url)
    cpage.locator(".funding-box").get_by_role("link", name="Back this project").click()
    cpage.locator("label.tier-choice", has_text="No reward").locator("input[name=tier]").check()
    cpage.fill("input[name=amount]", "25")
    fill_card(cpage, CARD_DECLINED)
    cpage.locator("#pledge-submit").click()
    expect(cpage.locator("#card-errors")).to_have_text(re.compile("declined", re.I))
    expect(cpage.locator("#card-errors")).to_be_visible()
    expect(cpage.locator("#pledge-submit")).to_be_enabled()
    expect(cpage).to_have_url(re.compile(r"/pledge$"))
    card_box, errors_box = cpage.locator("#card-element").bounding_box(), cpage.locator("#card-errors").bounding_box()
    assert 0 <= errors_box["y"] - (card_box["y"] + card_box["height"]) < 40, "the decline is shown right under the card"
    vpage.goto(recorder_url)
    expect_funding(vpage, pledged=4000 + 6000, percent=100, backers=2)  # the declined card pledged nothing
    fill_card(cpage, CARD_OK)
    cpage.locator("#pledge-submit").click()
    expect(flash(cpage)).to_contain_text("Thank you! Your pledge is in.")
    carol_first = pledge_id_from(cpage)
    expect_pledge_page(carol, carol_first, state="Active", amount=2500, explains="Your card is saved, not charged.")
    cpage.get_by_role("button", name="Cancel pledge").click()  # and OK in the confirmation
    expect(flash(cpage)).to_contain_text("Your pledge is canceled. You will not be charged.")
    expect(cpage.locator(".pledge-state")).to_have_text("Canceled")
    carol_recorder = pledge(carol, recorder_url, tier="Early bird recorder", amount=None, card=CARD_OK)
    assert carol_recorder != carol_first

    #    Alice raises her pledge (same reward, more support).
    apage = alice.page
    apage.goto(f"/pledges/{alice_recorder}")
    apage.get_by_role("link", name="Change reward or amount").click()
    expect(apage.locator("input[name=tier]:checked")).to_have_attribute("id", re.compile(r"tier-\d+"))
    apage.fill("input[name=amount]", "50")
    apage.get_by_role("button", name="Save changes").click()
    expect(flash(apage)).to_contain_text("Your pledge is updated.")
    assert cents(apage.locator(".pledge-amount").inner_text()) == 5000

    #    Alice and Carol also back the zine, which will not reach its goal.
    alice_zine = pledge(alice, zine_url, tier="A copy of the zine", amount="20", card=CARD_OK)
    carol_zine = pledge(carol, zine_url, tier=None, amount="30", card=CARD_OK)

    #    What everyone now sees: $150 of $100, three backers, the early-bird tier sold out.
    vpage.goto(recorder_url)
    expect_funding(vpage, pledged=15000, percent=150, backers=3)
    expect(tier_card(vpage, "Early bird recorder")).to_contain_text("Sold out")
    expect(tier_card(vpage, "Early bird recorder").get_by_role("link", name="Select this reward")).to_have_count(0)
    shoot(vpage, "campaign")
    vpage.goto(zine_url)
    expect_funding(vpage, pledged=5000, percent=10, backers=2)
    vpage.goto("/")
    recorder_card = vpage.locator(".campaign-card", has_text=RECORDER).first
    expect(recorder_card).to_contain_text("150% funded")
    shoot(vpage, "discover")
    assert payment_intents(server.stripe_base) == [], "pledging never charges a card"

    #    Talking (issue 8): Bob asks in the comments; the creator replies (marked as the creator) and
    #    posts an update for backers only; a visitor sees its title and count, Bob reads it.
    bpage = bob.page
    bpage.goto(recorder_url)
    bpage.fill("#comment-body", "Does the field kit include a windscreen?")
    bpage.get_by_role("button", name="Post comment").click()
    expect(flash(bpage)).to_contain_text("Comment posted.")
    expect(bpage.locator(".comment-thread", has_text="windscreen")).to_contain_text("Bob Nakamura")
    page.goto(recorder_url)
    thread = page.locator(".comment-thread", has_text="windscreen")
    thread.locator("summary", has_text="Reply").click()
    thread.locator("textarea[name=body]").fill("Yes: a foam windscreen, and a furry one for windy days.")
    thread.get_by_role("button", name="Reply").click()
    expect(flash(page)).to_contain_text("Comment posted.")
    reply = page.locator(".comment-thread", has_text="windscreen").locator(".comment-reply")
    expect(reply).to_contain_text("furry one")
    expect(reply.locator(".creator-badge")).to_have_text("Creator")
    page.get_by_role("link", name="Post an update").click()
    page.fill("input[name=title]", "The first prototypes are in")
    page.fill("textarea[name=body]", "We recorded **three** prototypes in the rain.")
    page.get_by_label("For backers only").check()
    page.get_by_role("button", name="Post update").click()
    expect(flash(page)).to_contain_text("Update posted. Backers will get it by email shortly.")
    vpage.goto(recorder_url)
    expect(vpage.locator(".updates-count")).to_have_text("1")
    expect(vpage.locator(".comments-count")).to_have_text("2")
    expect(vpage.locator(".campaign-update")).to_contain_text("The first prototypes are in")
    expect(vpage.locator(".campaign-update .backers-only-note")).to_have_text("This update is for backers only.")
    expect(vpage.locator(".comment-reply .creator-badge")).to_have_text("Creator")
    bpage.goto(recorder_url)
    expect(bpage.locator(".update-excerpt")).to_contain_text("three prototypes in the rain")

    #    Alice reports the zine to the moderators (issue 8); the moderator finds it in the queue's
    #    Reported section, reads the report and dismisses it with a note.
    apage.goto(zine_url)
    apage.get_by_role("link", name="Report this project to the moderators").click()
    apage.get_by_label("Misleading or false claims").check()
    apage.fill("textarea[name=note]", "The page says forty pages; the sample shows twelve.")
    apage.get_by_role("button", name="Send report").click()
    expect(flash(apage)).to_contain_text("A moderator will look at this campaign.")
    mpage = moderator.page
    mpage.goto("/moderation")
    reported = mpage.locator(".reported-item", has_text=ZINE)
    expect(reported).to_contain_text("1 open report")
    reported.get_by_role("link", name=ZINE).click()
    expect(mpage.locator(".open-report")).to_contain_text("forty pages")
    resolve = mpage.locator(".resolve-form")
    resolve.get_by_label("Dismiss the reports: the campaign stays as it is").check()
    resolve.locator("textarea[name=note]").fill("The sample is an excerpt: nothing misleading.")
    resolve.get_by_role("button", name="Resolve reports").click()
    expect(flash(mpage)).to_contain_text("1 report on")
    expect(mpage.locator(".reported-item")).to_have_count(0)

    # 5. The deadline passes: one settlement pass, run by the operators' command with its clock moved
    #    past the recorder's deadline (one day) but not the zine's (two days). The app server keeps
    #    its own clock, so "time left" on its pages is real time; the pass decides the campaign.
    output = server.flask("settle", clock_offset_seconds=DAY + 3600)
    assert re.search(r"\bsuccessful", output), output

    vpage.goto(recorder_url)
    expect(vpage.locator(".funding-box .outcome")).to_have_text("Funded")
    expect_funding(vpage, pledged=15000, percent=150, backers=3)  # the total at the deadline
    expect(vpage.get_by_role("link", name="Back this project")).to_have_count(0)
    vpage.goto(zine_url)
    expect(vpage.locator(".funding-box .outcome")).to_have_count(0)  # still running

    #    localstripe: one off-session charge per pledge, for the pledged amount, in dollars. Alice's
    #    and Carol's cards paid; Bob's bank asks for authentication again (the 3-D Secure card).
    intents = payment_intents(server.stripe_base)
    assert charges(intents, alice_recorder) == [(5000, "usd", "succeeded")]
    assert charges(intents, carol_recorder) == [(4000, "usd", "succeeded")]
    assert charges(intents, bob_recorder) == [(6000, "usd", "requires_action")]
    assert charges(intents, carol_first) == [], "a canceled pledge is never charged"
    assert charges(intents, alice_zine) == charges(intents, carol_zine) == [], "the zine is still running"
    assert len(intents) == 3

    #    What the backers see on their pledges.
    expect_pledge_page(alice, alice_recorder, state="Collected", amount=5000, explains="your payment was collected")
    expect_pledge_page(carol, carol_recorder, state="Collected", amount=4000, explains="your payment was collected")
    expect_pledge_page(carol, carol_first, state="Canceled", amount=2500, explains="You will not be charged.")
    my_pledge_row(carol, RECORDER, "Collected")
    my_pledge_row(carol, RECORDER, "Canceled")
    my_pledge_row(alice, RECORDER, "Collected")
    my_pledge_row(alice, ZINE, "Active")

    #    The creator's dashboard: funded, the chart, and the money report — with Bob's payment failed.
    nav(page, "My campaigns")
    mine = page.locator(".my-campaign", has_text=RECORDER)
    expect(mine).to_have_attribute("data-state", "successful")
    expect(mine.locator(".next-step")).to_contain_text("funded!")
    expect(mine).to_contain_text("$150.00 pledged by 3 backers")
    expect(mine.locator("figure svg")).to_be_visible()  # the pledges-over-time chart
    expect_money_report(mine, pledged=15000, backers=3, collected=9000, errored=6000, charge_count=2)

    #    Bob's bank wants him to confirm the charge: he does it from his pledge page.
    expect_pledge_page(bob, bob_recorder, state="Payment failed", amount=6000, explains="your payment did not go through")
    fix = bpage.locator(".fix-payment")
    expect(fix).to_contain_text("Fix your payment")
    fix.get_by_role("button", name="Confirm payment").click()
    bpage.get_by_role("button", name="Complete authentication").click()
    expect(flash(bpage)).to_contain_text("Your payment went through and your pledge is collected.")
    expect(bpage.locator(".pledge-state")).to_have_text("Collected")
    expect(bpage.locator(".fix-payment")).to_have_count(0)
    intents = payment_intents(server.stripe_base)
    assert charges(intents, bob_recorder) == [(6000, "usd", "succeeded")]
    assert sum(i["amount"] for i in intents if i["status"] == "succeeded") == 15000

    nav(page, "My campaigns")
    expect_money_report(page.locator(".my-campaign", has_text=RECORDER), pledged=15000, backers=3, collected=15000,
                        errored=0, charge_count=3)

    # 6. The zine misses its goal: a pass with the clock past its deadline releases every pledge.
    output = server.flask("settle", clock_offset_seconds=2 * DAY + 1800)
    assert "unsuccessful" in output, output
    vpage.goto(zine_url)
    expect(vpage.locator(".funding-box .outcome")).to_have_text("Not funded")
    expect_funding(vpage, pledged=5000, percent=10, backers=2)
    expect(vpage.get_by_role("link", name="Back this project")).to_have_count(0)
    expect_pledge_page(alice, alice_zine, state="Released", amount=2000, explains="you were not charged")
    expect_pledge_page(carol, carol_zine, state="Released", amount=3000, explains="you were not charged")
    expect(my_pledge_row(carol, ZINE, "Released")).to_contain_text("you were not charged")
    expect(my_pledge_row(alice, RECORDER, "Collected")).to_contain_text("your payment was collected")
    expect(my_pledge_row(alice, ZINE, "Released")).to_contain_text("The campaign did not go ahead")
    shoot(alice.page, "backer-dashboard")

    nav(page, "My campaigns")
    mine = page.locator(".my-campaign", has_text=ZINE)
    expect(mine).to_have_attribute("data-state", "unsuccessful")
    expect(mine.locator(".next-step")).to_contain_text("not funded: nobody was charged.")
    report = mine.locator(".money-report")
    expect(report).to_have_attribute("data-funded", "false")
    expect(report).to_contain_text("nobody was charged")
    assert cents(report.locator("tr.pledged-at-deadline").inner_text()) == 5000
    expect(report.locator("tr.collected, tr.net-payout")).to_have_count(0)
    shoot(page, "creator-dashboard")

    intents = payment_intents(server.stripe_base)
    assert charges(intents, alice_zine) == charges(intents, carol_zine) == [], "nobody is charged for the zine"
    assert len(intents) == 3, "the pass after the zine's deadline charged nothing more"

    # No script error and no refused resource on any page — but the one 402 of Carol's declined card,
    # which Chromium logs as a failed request of Stripe.js.
    declined = re.compile(r"/pledge: console error: Failed to load resource: .*402")
    problems = [p for someone in people for p in someone.problems if not declined.search(p)]
    assert problems == [], "\n".join(problems)


def charges(intents: list[dict], pledge_id: int) -> list[tuple[int, str, str]]:
    """(amount, currency, status) of the PaymentIntents localstripe holds for one pledge."""
    return [(i["amount"], i["currency"], i["status"]) for i in intents_for(intents, pledge_id)]


def expect_money_report(card, *, pledged: int, backers: int, collected: int, errored: int, charge_count: int) -> None:
    """The creator's money report for a funded campaign, and that it adds up.

    Pledged at the deadline = collected + failed (+ dropped, being collected: none here); the platform
    fee is its percentage of what was collected; the net payout is collected − refunds − fees. When
    Stripe reports no fee (localstripe does not), the report says its Stripe fee is an estimate.
    """
    report = card.locator(".money-report")
    expect(report).to_be_visible()
    expect(report).to_have_attribute("data-funded", "true")

    def row(name: str) -> int:
        return cents(report.locator(f"tr.{name} td").first.inner_text())

    assert row("pledged-at-deadline") == pledged
    expect(report.locator("tr.pledged-at-deadline")).to_contain_text(f"{backers} backers")
    assert row("collected") == collected
    assert row("errored") == errored
    assert row("dropped") == 0
    assert row("refunded") == 0
    assert report.locator("tr.charging").count() == 0
    assert row("collected") + row("errored") + row("dropped") == row("pledged-at-deadline")
    expect(report.locator("tr.platform-fee")).to_contain_text("Platform fee (5%)")
    assert row("platform-fee") == collected * 5 // 100
    stripe_fee = row("stripe-fee")
    if report.locator(".stripe-fee-estimate").count():
        assert stripe_fee == round(collected * 0.029) + 30 * charge_count  # Stripe's list price, 2.9% + 30¢ a charge
    assert row("net-payout") == collected - row("refunded") - row("platform-fee") - stripe_fee
