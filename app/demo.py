"""`flask --app wsgi seed-demo`: demo accounts, campaigns in every state, tiers, covers and pledges.

Everything is made through the real services (the clock is moved to launch campaigns in the past),
and pledges save real cards on the Stripe server the app talks to — localstripe in the offline demo —
by doing over HTTP what Stripe.js does in the browser.
"""
from __future__ import annotations

import io
import json
import random
import urllib.parse
import urllib.request
from datetime import timedelta

import click
from flask import current_app
from flask.cli import with_appcontext
from PIL import Image, ImageDraw

from app import clock
from app.accounts import services as accounts
from app.accounts.models import User
from app.campaigns import services as campaigns
from app.campaigns.models import Campaign
from app.content import images
from app.extensions import db

DEMO_PASSWORD = "threshold-demo"
#: (email, display name, moderator)
DEMO_USERS = [
    ("moderator@example.com", "Morgan (moderator)", True),
    ("creator@example.com", "Camille Creator", False),
    ("backer@example.com", "Bao Backer", False),
]
EXTRA_BACKERS = ["Ada", "Bruno", "Chen Wei", "Dana", "Élodie", "Farid", "Grace", "Hiro"]


def seed_users() -> dict[str, User]:
    """Create the demo accounts that do not exist yet; return them by email."""
    users = {}
    for email, name, moderator in DEMO_USERS:
        users[email] = accounts.find_by_email(email) or accounts.register(email, name, DEMO_PASSWORD, moderator=moderator)
    for name in EXTRA_BACKERS:
        email = f"{name.split()[0].lower().replace('é', 'e')}@example.com"
        users[email] = accounts.find_by_email(email) or accounts.register(email, name, DEMO_PASSWORD)
    return users


# --- covers --------------------------------------------------------------------------------------

PALETTES = [((15, 123, 95), (232, 245, 239)), ((41, 72, 160), (224, 234, 252)), ((180, 70, 40), (252, 236, 224)),
            ((120, 50, 150), (240, 228, 248)), ((30, 30, 30), (240, 200, 60)), ((0, 110, 140), (220, 245, 250))]


def _cover(seed: int) -> str:
    """A generated cover (gradient and shapes), checked and stored like an upload."""
    rng = random.Random(seed)
    dark, light = PALETTES[seed % len(PALETTES)]
    img = Image.new("RGB", (1200, 675), light)
    draw = ImageDraw.Draw(img)
    for y in range(675):
        t = y / 675
        draw.line([(0, y), (1200, y)], fill=tuple(int(light[i] * (1 - t) + dark[i] * t * 0.6 + light[i] * t * 0.4) for i in range(3)))
    for _ in range(7):
        x, y, r = rng.randint(0, 1200), rng.randint(0, 675), rng.randint(40, 220)
        draw.ellipse([x - r, y - r, x + r, y + r], outline=dark, width=rng.randint(4, 14))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    processed = images.process_cover(buf.getvalue())
    return images.save_cover(processed, campaigns.cover_folder())


# --- pledges through the Stripe server, as the browser would -------------------------------------

def _stripe_post(path: str, fields: dict) -> dict:
    base = current_app.config["STRIPE_API_BASE"]
    key = current_app.config.get("STRIPE_SECRET_KEY") or "sk_test_localstripe"
    request = urllib.request.Request(
        f"{base}/v1/{path}", data=urllib.parse.urlencode(fields).encode(), method="POST",
        headers={"Authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


#: Stripe's test cards that succeed, with 16 digits (all localstripe takes): each demo backer pays with
#: their own (several backers sharing one card is a warning sign that holds a payout).
TEST_CARDS = ("4242424242424242", "4000056655665556", "5555555555554444", "2223003122003222", "5200828282828210",
              "5105105105105100", "6011111111111117", "6011000990139424", "3566002020360505", "6200000000000005")


def _card_of(backer: User) -> str:
    return TEST_CARDS[backer.id % len(TEST_CARDS)]


def _pledge(campaign: Campaign, backer: User, amount: int, tier_index: int | None, country: str | None = None,
            addons: dict[str, int] | None = None, card: str = "4242424242424242") -> None:
    """A pledge of `amount` (the reward and bonus) for the tier at `tier_index`, with add-ons by title,
    shipped to `country` when something ships."""
    from app.pledges import services as pledges

    tier = campaign.tiers[tier_index] if tier_index is not None else None
    by_title = {addon.title: addon.id for addon in campaign.addons}
    choice = pledges.Choice(tier.id if tier else None, max(amount, tier.amount if tier else 0),
                            quantities={by_title[title]: n for title, n in (addons or {}).items()}, country=country)
    pledge, secret = pledges.begin(campaign, backer, choice)
    method = _stripe_post("payment_methods", {"type": "card", "card[number]": card, "card[exp_month]": "12", "card[exp_year]": "2034", "card[cvc]": "123"})
    setup_id = secret.split("_secret_")[0]
    intent = _stripe_post(f"setup_intents/{setup_id}/confirm", {"payment_method": method["id"], "client_secret": secret})
    if intent.get("status") == "requires_action":  # the 3-D Secure dialog, answered "Complete authentication"
        _stripe_post(f"setup_intents/{setup_id}/confirm", {"client_secret": secret})
    pledges.activate(pledge, backer, setup_id)


# --- campaigns -----------------------------------------------------------------------------------

def _tiers(campaign: Campaign, creator: User, specs: list[tuple]) -> None:
    """Tiers from (title, description, amount, limit) or, for a tier that ships, (…, destinations)."""
    delivery = (clock.utcnow().date().replace(day=1) + timedelta(days=120)).replace(day=1)
    for title, description, amount, limit, *shipping in specs:
        destinations = shipping[0] if shipping else {}
        note = "Ships from Portland in recycled packaging." if destinations else "Ships worldwide"
        campaigns.add_tier(campaign, creator, campaigns.TierInput(title, description, amount, limit, delivery, note,
                                                                  ships=bool(destinations), destinations=destinations))


#: The lantern's shipping, in cents: a few countries of their own, and the rest of the world.
LANTERN_SHIPPING = {"US": 800, "CA": 1200, "GB": 1500, "FR": 1500, "DE": 1500, "ZZ": 2500}
LANTERN_TIERS = [
    ("Thank-you postcard", "A hand-signed postcard.", 1000, None, {"US": 0, "ZZ": 200}),
    ("The thing itself", "One of the first production run.", 5000, None, LANTERN_SHIPPING),
    ("Early bird", "The thing itself at a discount, for the first backers.", 4000, 10, LANTERN_SHIPPING),
]


def _lantern_addons(lantern: Campaign, creator: User) -> None:
    """Two add-ons: spare batteries for the lantern tiers (shipping per unit), and a limited stand for any tier."""
    with_lantern = frozenset(tier.id for tier in lantern.tiers if tier.title != "Thank-you postcard")
    campaigns.add_addon(lantern, creator, campaigns.AddonInput(
        "Spare battery", "A second battery, for twice the nights.", 1200, None, ships=True, shipping_per="unit",
        tier_ids=with_lantern, destinations={"US": 200, "CA": 300, "GB": 400, "FR": 400, "DE": 400, "ZZ": 600}))
    campaigns.add_addon(lantern, creator, campaigns.AddonInput(
        "Oak stand", "A turned oak stand, signed by the maker. A run of 20.", 2500, 20, ships=True, shipping_per="pledge",
        destinations={"US": 500, "ZZ": 900}))


STORY = """## What we are making

{blurb}

We have spent two years on prototypes, and the design is ready for a first production run. Your
pledge pays for the tooling and the first batch.

## Where the money goes

- **60%** manufacturing
- **25%** shipping and packaging
- **15%** fees and a safety margin

Thank you for reading — and for backing us if you can!
"""
RISKS = "Manufacturing can slip by a few weeks. We have a second supplier lined up, and we will post an update every month."


def _campaign(creator: User, title: str, blurb: str, category: str, goal: int, currency: str = "USD", days: int = 30, seed: int = 0,
              tiers: list | None = None) -> Campaign:
    data = campaigns.CampaignInput(title, blurb, category, goal, currency, days, STORY.format(blurb=blurb), RISKS)
    campaign = campaigns.create_draft(creator, data, _cover(seed))
    _tiers(campaign, creator, tiers or [("Thank-you postcard", "A hand-signed postcard.", 1000 if currency != "JPY" else 1000, None),
                                         ("The thing itself", "One of the first production run.", 5000 if currency != "JPY" else 6000, None),
                                         ("Early bird", "The thing itself at a discount, for the first backers.", 4000 if currency != "JPY" else 5000, 10)])
    return campaign


def _to(campaign: Campaign, creator: User, moderator: User, *steps: str, note: str = "") -> Campaign:
    for step in steps:
        if step == "submit":
            campaigns.submit(campaign, creator)
        elif step in campaigns.DECISIONS:
            campaigns.decide(campaign, moderator, step, note if step != "approve" else "")
        elif step == "launch":
            _onboard(creator)
            campaigns.launch(campaign, creator)
    return campaign


def _onboard(creator: User) -> None:
    """The creator's payout account, through the offline Stripe's hosted onboarding page (what a
    creator clicks through at Stripe): a campaign launches only when its creator can be paid."""
    from app.payouts import services as payouts

    if payouts.can_receive(creator) or not current_app.config.get("STRIPE_API_BASE"):
        return  # with Stripe's own test mode, the creator onboards in the browser (My payouts)
    from app.payments.localstripe_server import click_through_onboarding

    click_through_onboarding(payouts.start_onboarding(creator, "US"))
    payouts.refresh_account(payouts.account_for(creator))


def seed_campaigns(users: dict[str, User]) -> int:
    """Campaigns in every state; skipped when the demo campaigns exist already."""
    if db.session.scalar(db.select(Campaign.id).where(Campaign.slug == "solar-lantern")):
        return 0
    mod, cam, bao = users["moderator@example.com"], users["creator@example.com"], users["backer@example.com"]
    others = [users[f"{n.split()[0].lower().replace('é', 'e')}@example.com"] for n in EXTRA_BACKERS]
    # Raw card numbers work against localstripe only (Stripe's test mode wants Stripe.js or pm_card_* ids).
    live_pledges = bool(current_app.config.get("STRIPE_API_BASE"))

    def pledges(campaign: Campaign, plan: list[tuple]) -> None:
        """(backer, amount, tier index[, country, {add-on title: quantity}]) per pledge."""
        if live_pledges:
            for backer, amount, tier, *rest in plan:
                _pledge(campaign, backer, amount, tier, *rest, card=_card_of(backer))

    made = []
    # Launched 29 days ago: its deadline passes tomorrow.
    clock.set_offset(timedelta(days=-29))
    try:
        lantern = _campaign(cam, "Solar Lantern", "A lantern that charges in the sun and lights a room all night.", "design", 300000, seed=1,
                            tiers=LANTERN_TIERS)
        _lantern_addons(lantern, cam)
        lantern = _to(lantern, cam, mod, "submit", "approve", "launch")
        # Every pledge ships somewhere: a destination of its own, or the rest of the world (Japan).
        pledges(lantern, [(bao, 5000, 1, "US", {"Spare battery": 1}), (others[0], 5000, 2, "FR", {"Oak stand": 1}),
                          (others[1], 5500, 2, "DE"), (others[2], 10000, None, "GB", {"Oak stand": 1}),
                          (others[3], 5000, 1, "JP", {"Spare battery": 2})])
        campaigns.set_featured(lantern, mod, True)
        made.append(lantern)
    finally:
        clock.reset()
    # Launched 50 and 35 days ago with 30-day runs: the deadline has passed; the next `settle` decides
    # them, and the board game's payout hold (14 days) is over too: the worker pays its creator.
    for offset, title, blurb, goal, plan, currency in (
        (-50, "Orbit Board Game", "A cooperative space game for two to five players.", 40000,
         [(bao, 5000, 1), (others[4], 6000, 1), (others[5], 4000, 2), (others[6], 1000, 0), (others[7], 25000, None)], "EUR"),
        (-35, "Hydro Garden Kit", "Grow herbs on your windowsill without soil.", 800000,
         [(bao, 5000, 1), (others[0], 1000, 0)], "USD"),
    ):
        clock.set_offset(timedelta(days=offset))
        try:
            c = _to(_campaign(cam, title, blurb, "games" if "Game" in title else "technology", goal, currency, seed=len(made) + 2), cam, mod, "submit", "approve", "launch")
            pledges(c, plan)
            made.append(c)
        finally:
            clock.reset()
    zine = _to(_campaign(users["ada@example.com"], "Tiny Press Zine", "A risograph zine about city birds, printed by hand.", "publishing", 80000, "GBP", 20, seed=5),
               users["ada@example.com"], mod, "submit", "approve", "launch")
    pledges(zine, [(bao, 1500, 0), (others[1], 5000, 1), (others[2], 4000, 2), (others[3], 6000, 1)])
    cookbook = _to(_campaign(users["bruno@example.com"], "Night Market Cookbook", "Street food recipes from twelve night markets.", "food", 1200000, "JPY", 45, seed=6),
                   users["bruno@example.com"], mod, "submit", "approve", "launch")
    pledges(cookbook, [(bao, 6000, 1), (others[4], 1000, 0)])
    made += [zine, cookbook]
    # Two members reported the cookbook: it waits in the moderators' Reported section.
    from app.community import reports

    reports.report(cookbook, others[5], "misleading", "The photos look like stock images, not food from the markets.")
    reports.report(cookbook, others[6], "intellectual_property", "Several recipes seem copied from a published book.")
    # The creator's other states.
    made.append(_campaign(cam, "Paper Kite Workshop", "Kites you fold from one sheet of paper.", "crafts", 150000, seed=7))
    made.append(_to(_campaign(cam, "Pocket Synth", "A synthesizer that fits in a shirt pocket.", "music", 2500000, seed=8), cam, mod, "submit"))
    made.append(_to(_campaign(cam, "Balcony Beehive", "A safe beehive for city balconies.", "community", 900000, seed=9), cam, mod,
                    "submit", "request_changes", note="Please explain how neighbours are kept safe, and add a risk about local bee rules."))
    made.append(_to(_campaign(cam, "Clay Coffee Set", "Hand-thrown cups and a pour-over stand.", "crafts", 450000, seed=10), cam, mod, "submit", "approve"))
    made.append(_to(_campaign(cam, "Miracle Battery", "A battery that never needs charging.", "technology", 10000000, seed=11), cam, mod,
                    "submit", "reject", note="Perpetual energy claims cannot be backed by evidence; we cannot list this project."))
    canceled = _to(_campaign(users["chen@example.com"], "Street Piano Tour", "Pianos on twelve street corners for a summer.", "music", 600000, seed=12),
                   users["chen@example.com"], mod, "submit", "approve", "launch")
    pledges(canceled, [(bao, 2500, 0)])
    campaigns.cancel(canceled, users["chen@example.com"])
    suspended = _to(_campaign(users["dana@example.com"], "Too Good Headphones", "Studio headphones for the price of earbuds.", "technology", 500000, seed=13),
                    users["dana@example.com"], mod, "submit", "approve", "launch")
    pledges(suspended, [(others[6], 5000, 1)])
    campaigns.suspend(suspended, mod, "Reported by several members: the product photos belong to another company.")
    made += [canceled, suspended]
    return len(made)


@click.command("seed-demo")
@with_appcontext
def seed_demo() -> None:
    """Fill the database with demo data (safe to run again: existing rows are kept)."""
    # The members joined two months ago, before the campaigns launched (pledges from accounts made
    # after launch are a warning sign that holds a payout).
    clock.set_offset(timedelta(days=-60))
    try:
        users = seed_users()
    finally:
        clock.reset()
    count = seed_campaigns(users)
    click.echo(f"Demo accounts ready ({len(users)}), password: {DEMO_PASSWORD}; {count} demo campaigns made")
    for email, _name, moderator in DEMO_USERS:
        click.echo(f"  {email}{'  (moderator)' if moderator else ''}")
