"""`flask --app wsgi seed-demo`: demo accounts, campaigns in every state, tiers, covers, pledges, and
the campaigns' updates, comments, FAQ and questions (in French and Chinese for the campaigns of the
French and Chinese creators). Seeding marks the database as the demo's (app/demo_state.py); on a
demo already seeded, the command moves its dates forward by the time it was left instead.

One function per part (the featured campaign, the other live ones, the ones in other languages, the
ended ones, the other states, the community), each dating what it makes with `_days_ago`.

Everything is made through the real services (the clock is moved to launch campaigns in the past),
and pledges save real cards on the Stripe server the app talks to — localstripe in the offline demo —
by doing over HTTP what Stripe.js does in the browser.
"""
from __future__ import annotations

import contextlib
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
#: The members who read the site (and their mail) in another language: the French and Chinese creators.
LOCALES = {"Élodie": "fr", "Chen Wei": "zh_Hans_CN"}


def seed_users() -> dict[str, User]:
    """Create the demo accounts that do not exist yet; return them by email."""
    users = {}
    for email, name, moderator in DEMO_USERS:
        users[email] = accounts.find_by_email(email) or accounts.register(email, name, DEMO_PASSWORD, moderator=moderator)
    for name in EXTRA_BACKERS:
        email = _email_of(name)
        users[email] = accounts.find_by_email(email) or accounts.register(email, name, DEMO_PASSWORD, locale=LOCALES.get(name))
    return users


def _email_of(name: str) -> str:
    return f"{name.split()[0].lower().replace('é', 'e')}@example.com"


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


def _backers(users: dict[str, User]) -> list[User]:
    return [users[_email_of(name)] for name in EXTRA_BACKERS]


class _Seeder:
    """What every part of the seeding shares: the accounts, and whether pledges can save real cards
    (raw card numbers work against localstripe only; Stripe's test mode wants Stripe.js)."""

    def __init__(self, users: dict[str, User]) -> None:
        self.users = users
        self.mod, self.cam, self.bao = users["moderator@example.com"], users["creator@example.com"], users["backer@example.com"]
        self.others = _backers(users)
        self.live_pledges = bool(current_app.config.get("STRIPE_API_BASE"))

    def pledges(self, campaign: Campaign, plan: list[tuple]) -> None:
        """(backer, amount, tier index[, country, {add-on title: quantity}]) per pledge."""
        if self.live_pledges:
            for backer, amount, tier, *rest in plan:
                _pledge(campaign, backer, amount, tier, *rest, card=_card_of(backer))


@contextlib.contextmanager
def _days_ago(days: float):
    """Run the services as if it were `days` ago (campaigns launched in the past, comments over time)."""
    clock.set_offset(timedelta(days=-days))
    try:
        yield
    finally:
        clock.reset()


# --- the live campaigns (English) ----------------------------------------------------------------

def seed_featured(s: _Seeder) -> Campaign:
    """The Solar Lantern: launched 25 days ago on a 30-day run, featured, with add-ons and shipping;
    past its goal already (`flask --app wsgi demo end solar-lantern` shows a funded campaign's charges)."""
    with _days_ago(25):
        lantern = _campaign(s.cam, "Solar Lantern", "A lantern that charges in the sun and lights a room all night.", "design", 45000, seed=1,
                            tiers=LANTERN_TIERS)
        _lantern_addons(lantern, s.cam)
        lantern = _to(lantern, s.cam, s.mod, "submit", "approve", "launch")
        # Every pledge ships somewhere: a destination of its own, or the rest of the world (Japan).
        s.pledges(lantern, [(s.bao, 5000, 1, "US", {"Spare battery": 1}), (s.others[0], 5000, 2, "FR", {"Oak stand": 1}),
                            (s.others[1], 5500, 2, "DE"), (s.others[2], 10000, None, "GB", {"Oak stand": 1}),
                            (s.others[3], 5000, 1, "JP", {"Spare battery": 2})])
        campaigns.set_featured(lantern, s.mod, True)
    return lantern


def seed_live(s: _Seeder) -> list[Campaign]:
    """Two more live campaigns by other creators, one of them reported by two members."""
    ada, bruno = s.users["ada@example.com"], s.users["bruno@example.com"]
    with _days_ago(3):
        zine = _to(_campaign(ada, "Tiny Press Zine", "A risograph zine about city birds, printed by hand.", "publishing", 80000, "GBP", 20, seed=5),
                   ada, s.mod, "submit", "approve", "launch")
        s.pledges(zine, [(s.bao, 1500, 0), (s.others[1], 5000, 1), (s.others[2], 4000, 2), (s.others[3], 6000, 1)])
        cookbook = _to(_campaign(bruno, "Night Market Cookbook", "Street food recipes from twelve night markets.", "food", 1200000, "JPY", 45, seed=6),
                       bruno, s.mod, "submit", "approve", "launch")
        s.pledges(cookbook, [(s.bao, 6000, 1), (s.others[4], 1000, 0)])
    # Two members reported the cookbook: it waits in the moderators' Reported section.
    from app.community import reports

    reports.report(cookbook, s.others[5], "misleading", "The photos look like stock images, not food from the markets.")
    reports.report(cookbook, s.others[6], "intellectual_property", "Several recipes seem copied from a published book.")
    return [zine, cookbook]


# --- campaigns in French and in Chinese (their content is data, written in the creator's language) --

FR_STORY = """## Ce que nous fabriquons

Des carnets de voyage cousus à la main dans notre atelier de Lyon, avec un papier qui accepte
l'aquarelle, l'encre et le crayon.

## À quoi servira l'argent

- **55 %** papier et cuir
- **30 %** la presse de reliure et les outils
- **15 %** frais et marge de sécurité

Merci de nous lire, et de nous soutenir si vous le pouvez !
"""
FR_RISKS = "Le cuir vient d'une petite tannerie : un retard de quelques semaines est possible. Nous publierons une actualité chaque mois."
FR_TIERS = [("Carte postale aquarellée", "Une carte peinte à la main, envoyée avec un mot.", 1000, None),
            ("Un carnet", "Un carnet A5 de 96 pages, couverture en cuir.", 4500, None),
            ("Premiers soutiens", "Le carnet à prix réduit, pour les premiers contributeurs.", 3800, 15)]

ZH_STORY = """## 我们在做什么

一盏用浙江安吉毛竹手工编织的台灯。暖光、可调亮度，灯罩可以拆下清洗。

## 资金用途

- **60%** 竹材与灯具配件
- **25%** 包装与运输
- **15%** 手续费与备用金

感谢你的关注，也欢迎支持我们！
"""
ZH_RISKS = "竹材需要自然干燥，天气可能让生产推迟几周。我们每个月都会发布项目动态。"
ZH_TIERS = [("感谢明信片", "一张手写感谢明信片。", 3000, None),
            ("一盏台灯", "首批生产的竹编台灯一盏。", 39900, None),
            ("早鸟价", "首批支持者专享的优惠价台灯。", 32900, 20)]


def seed_languages(s: _Seeder) -> list[Campaign]:
    """A live campaign by a French creator (EUR) and one by a Chinese creator (CNY), in their words."""
    elodie, chen = s.users["elodie@example.com"], s.users["chen@example.com"]
    made = []
    for creator, title, blurb, category, goal, currency, story, risks, tiers, days_ago, seed, plan in (
        (elodie, "Carnets de voyage cousus main", "Des carnets reliés à la main pour dessiner et écrire en voyage.", "crafts", 250000,
         "EUR", FR_STORY, FR_RISKS, FR_TIERS, 8, 14, [(s.others[0], 4500, 1), (s.others[5], 3800, 2), (s.bao, 1000, 0)]),
        (chen, "竹影台灯 · Bamboo Lamp", "手工竹编台灯，暖光可调，灯罩可拆洗。", "design", 3000000, "CNY", ZH_STORY, ZH_RISKS, ZH_TIERS, 6, 15,
         [(s.others[6], 39900, 1), (s.others[7], 32900, 2), (s.bao, 3000, 0)]),
    ):
        with _days_ago(days_ago):
            data = campaigns.CampaignInput(title, blurb, category, goal, currency, 30, story, risks)
            campaign = campaigns.create_draft(creator, data, _cover(seed))
            _tiers(campaign, creator, tiers)
            _to(campaign, creator, s.mod, "submit", "approve", "launch")
            s.pledges(campaign, plan)
        made.append(campaign)
    return made


# --- campaigns past their deadline ---------------------------------------------------------------

#: The board game ships from Lyon: France and Germany of their own, the rest of the world (in cents).
ORBIT_SHIPPING = {"FR": 600, "DE": 900, "ZZ": 1800}
ORBIT_TIERS = [
    ("Thank-you postcard", "A hand-signed postcard of the box art.", 1000, None, {"FR": 0, "ZZ": 200}),
    ("The game", "The game, first print run.", 5000, None, ORBIT_SHIPPING),
    ("Early bird", "The game at a discount, for the first backers.", 4000, 10, ORBIT_SHIPPING),
]

def seed_ended(s: _Seeder) -> list[Campaign]:
    """Launched 50 and 35 days ago with 30-day runs: the deadline has passed; the next `settle` decides
    them (make run's settle stage, right after seeding), and the board game's payout hold (14 days) is
    over too: the worker pays its creator. What happens after funding (a survey, shipments) can only be
    seeded once a settlement pass has made the board game successful and collected its pledges."""
    made = []
    for days, title, blurb, goal, plan, currency in (
        (50, "Orbit Board Game", "A cooperative space game for two to five players.", 40000,
         [(s.bao, 5000, 1, "FR"), (s.others[4], 6000, 1, "DE"), (s.others[5], 4000, 2, "FR"), (s.others[6], 1000, 0, "BE"),
          (s.others[7], 25000, None)], "EUR"),
        (35, "Hydro Garden Kit", "Grow herbs on your windowsill without soil.", 800000,
         [(s.bao, 5000, 1), (s.others[0], 1000, 0)], "USD"),
    ):
        with _days_ago(days):
            tiers = ORBIT_TIERS if "Game" in title else None  # the board game ships: it gets a survey and shipments
            c = _to(_campaign(s.cam, title, blurb, "games" if "Game" in title else "technology", goal, currency, seed=len(made) + 2,
                              tiers=tiers), s.cam, s.mod, "submit", "approve", "launch")
            s.pledges(c, plan)
        made.append(c)
    return made


# --- the creator's other states, and stopped campaigns -------------------------------------------

def seed_other_states(s: _Seeder) -> list[Campaign]:
    """A draft, one in review, one sent back with a note, one approved, one rejected, one canceled by
    its creator and one suspended by a moderator."""
    cam, mod = s.cam, s.mod
    made = [
        _campaign(cam, "Paper Kite Workshop", "Kites you fold from one sheet of paper.", "crafts", 150000, seed=7),
        _to(_campaign(cam, "Pocket Synth", "A synthesizer that fits in a shirt pocket.", "music", 2500000, seed=8), cam, mod, "submit"),
        _to(_campaign(cam, "Balcony Beehive", "A safe beehive for city balconies.", "community", 900000, seed=9), cam, mod,
            "submit", "request_changes", note="Please explain how neighbours are kept safe, and add a risk about local bee rules."),
        _to(_campaign(cam, "Clay Coffee Set", "Hand-thrown cups and a pour-over stand.", "crafts", 450000, seed=10), cam, mod, "submit", "approve"),
        _to(_campaign(cam, "Miracle Battery", "A battery that never needs charging.", "technology", 10000000, seed=11), cam, mod,
            "submit", "reject", note="Perpetual energy claims cannot be backed by evidence; we cannot list this project."),
    ]
    chen, dana = s.users["chen@example.com"], s.users["dana@example.com"]
    canceled = _to(_campaign(chen, "Street Piano Tour", "Pianos on twelve street corners for a summer.", "music", 600000, seed=12),
                   chen, mod, "submit", "approve", "launch")
    s.pledges(canceled, [(s.bao, 2500, 0)])
    campaigns.cancel(canceled, chen)
    suspended = _to(_campaign(dana, "Too Good Headphones", "Studio headphones for the price of earbuds.", "technology", 500000, seed=13),
                    dana, mod, "submit", "approve", "launch")
    s.pledges(suspended, [(s.others[6], 5000, 1)])
    campaigns.suspend(suspended, mod, "Reported by several members: the product photos belong to another company.")
    return made + [canceled, suspended]


# --- updates, comments, FAQ and questions, in each campaign's language ---------------------------

#: Per campaign slug: (updates, comments, FAQ, questions). An update is (days ago, title, body,
#: backers only); a comment (days ago, author's email or "creator", body, reply by the creator or "");
#: an FAQ entry (question, answer); a question (days ago, asker's email, body, answer or "" to leave it open).
COMMUNITY = {
    "solar-lantern": (
        [(20, "The first prototypes are out of the oven", "We fired the first ten glass shades this week. Two cracked; "
          "the other eight survived a night in the garden and a fall from the table.", False),
         (6, "Backers' corner: pick the second colour", "Thank you for getting us past half the goal! Reply in the "
          "comments: moss green or harbour blue for the second colour?", True)],
        [(18, "ada@example.com", "How long does a full charge last in winter light?", "About six hours after a grey day, twelve after a sunny one."),
         (5, "backer@example.com", "Harbour blue, please!", "Noted, Bao. It is leading so far.")],
        [("Is the battery replaceable?", "Yes: it slides out from the base, no tools needed. A spare is one of the add-ons."),
         ("Does it ship outside the US?", "Yes, to most countries. Shipping is added to your pledge at checkout.")],
        [(4, "dana@example.com", "Can the lantern charge over USB as well?", "Yes, through a USB-C port under the base."),
         (1, "backer@example.com", "Will the oak stand fit the postcard tier?", "")],
    ),
    "tiny-press-zine": (
        [(2, "Paper has arrived", "Forty kilos of recycled paper, and the first test prints of the heron spread.", False)],
        [(2, "bruno@example.com", "Will there be a second issue?", "If this one funds, yes: canal birds next.")],
        [("How many pages?", "Thirty-two, stapled, A5.")],
        [],
    ),
    "carnets-de-voyage-cousus-main": (
        [(6, "Les premières couvertures sont prêtes", "Nous avons découpé les vingt premières couvertures en cuir "
          "cette semaine. Merci à nos premiers contributeurs !", False)],
        [(5, "ada@example.com", "Le papier supporte-t-il vraiment l'aquarelle ?", "Oui : 300 g/m², grain fin. Il ne gondole pas."),
         (2, "backer@example.com", "Hâte de recevoir le mien !", "")],
        [("Livrez-vous hors de France ?", "Oui, partout en Europe. Les frais sont indiqués au moment de la contribution."),
         ("Puis-je choisir la couleur du cuir ?", "Oui, le questionnaire envoyé après la campagne vous le demandera.")],
        [(3, "backer@example.com", "Les carnets existent-ils en format A4 ?", "Pas pour cette campagne, mais c'est noté pour la suivante.")],
    ),
    "bamboo-lamp": (
        [(5, "第一批竹材已经到货", "我们从安吉收到了第一批毛竹，正在自然干燥中。感谢每一位支持者！", False)],
        [(4, "grace@example.com", "灯光是暖白还是黄光？", "色温2700K，是温暖的黄光，亮度可以调节。"),
         (1, "backer@example.com", "期待收到台灯！", "")],
        [("可以寄到海外吗？", "可以，运费会在支持时显示。"),
         ("灯泡可以更换吗？", "可以，使用标准E27灯头。")],
        [(2, "backer@example.com", "灯罩可以水洗吗？", "可以，取下后用清水冲洗，晾干即可。")],
    ),
}


def seed_community(s: _Seeder, made: list[Campaign]) -> int:
    """The campaigns' updates, comments, FAQ and questions, through the community services (as their
    creators and backers would post them). A part whose author cannot post it (no saved cards in
    Stripe's own test mode: nobody is a backer) is left out. Returns the items made."""
    from app.community import services as community

    by_slug = {c.slug: c for c in made}
    count = 0
    for slug, (updates, comments, faq, questions) in COMMUNITY.items():
        campaign = by_slug.get(slug)
        if campaign is None:
            continue
        creator = campaign.creator
        for days, title, body, backers_only in updates:
            with _days_ago(days):
                community.post_update(campaign, creator, title, body, backers_only)
            count += 1
        for question, answer in faq:
            community.add_faq(campaign, creator, question, answer)
            count += 1
        for days, email, body, reply in comments:
            author = creator if email == "creator" else s.users[email]
            if not community.can_comment(campaign, author):
                continue
            with _days_ago(days):
                comment = community.add_comment(campaign, author, body)
            with _days_ago(max(days - 0.5, 0)):
                if reply:
                    community.add_comment(campaign, creator, reply, parent=comment)
            count += 1 + bool(reply)
        for days, email, body, answer in questions:
            asker = s.users[email]
            if not community.can_ask(campaign, asker):
                continue
            with _days_ago(days):
                question = community.ask(campaign, asker, body)
            if answer:
                with _days_ago(max(days - 0.5, 0)):
                    community.answer_question(campaign, question, creator, answer, reply=True, publish=False)
            count += 1
    return count


def seed_campaigns(users: dict[str, User]) -> list[Campaign]:
    """Campaigns in every state, with their community; skipped (returns []) when the demo campaigns exist already."""
    if db.session.scalar(db.select(Campaign.id).where(Campaign.slug == "solar-lantern")):
        return []
    s = _Seeder(users)
    made = [seed_featured(s), *seed_live(s), *seed_languages(s), *seed_ended(s), *seed_other_states(s)]
    seed_community(s, made)
    return made


def _summary(users: dict[str, User]) -> str:
    from app.community.models import CampaignQuestion, CampaignUpdate, Comment, FaqEntry
    from app.pledges.models import Pledge

    def count(model) -> int:
        return db.session.scalar(db.select(db.func.count()).select_from(model)) or 0

    live = db.session.scalar(db.select(db.func.count()).select_from(Campaign)
                             .where(Campaign.state == "live", Campaign.deadline > clock.utcnow()))
    return (f"{len(users)} accounts, {count(Campaign)} campaigns ({live} live), {count(Pledge)} pledges, "
            f"{count(CampaignUpdate)} updates, {count(Comment)} comments, {count(FaqEntry)} FAQ entries, "
            f"{count(CampaignQuestion)} questions")


@click.command("seed-demo")
@click.option("--after-funding", is_flag=True, help="After a settlement pass: the funded board game's survey and shipments.")
@with_appcontext
def seed_demo(after_funding: bool) -> None:
    """Fill the database with demo data; on a demo database already seeded, move its dates forward instead."""
    from app import demo_state

    if after_funding:
        if demo_state.mark() is None:
            raise click.ClickException("This database is not the demo's (seed it with `seed-demo` first).")
        click.echo(seed_after_funding() or "after funding: nothing to add")
        return

    # The members joined two months ago, before the campaigns launched (pledges from accounts made
    # after launch are a warning sign that holds a payout).
    with _days_ago(60):
        users = seed_users()
    made = seed_campaigns(users)
    if made:
        demo_state.set_mark()
        click.echo(f"Demo seeded: {_summary(users)}; password {DEMO_PASSWORD}")
        return
    if demo_state.mark() is None:
        if not db.session.scalar(db.select(Campaign.id).where(Campaign.slug == "solar-lantern")):
            return
        # Seeded before the mark existed: the members were made 60 days before the seeding.
        demo_state.set_mark(users["moderator@example.com"].created_at + timedelta(days=60))
    pause = demo_state.move_forward()
    moved = f"dates moved forward by {demo_state._human(pause)}, the pause since it was last used" if pause else "dates are current"
    click.echo(f"Demo kept: {_summary(users)}; {moved}")


# --- after funding: the board game's survey and its first shipments (issue 17) --------------------

#: Addresses of the demo backers who answer the board game's survey (made-up places, real formats).
ORBIT_ADDRESSES = {
    "FR": [{"name": "Bao Nguyen", "line1": "12 rue des Lilas", "city": "Lyon", "postal_code": "69003"},
           {"name": "Chloé Martin", "line1": "4 place du Marché", "city": "Rennes", "postal_code": "35000"}],
    "DE": [{"name": "Jonas Weber", "line1": "Bergstraße 7", "city": "Leipzig", "postal_code": "04109"}],
}


def seed_after_funding() -> str | None:
    """Once a settlement pass has made the Orbit Board Game successful: its survey (two questions and the
    address), sent and answered by the backers in France and Germany, and the first rewards shipped —
    one delivered. Skipped (None) before that, or when done already. Commits."""
    from app.fulfillment import shipments, surveys
    from app.fulfillment.surveys import QuestionInput
    from app.pledges.models import Pledge

    game = db.session.scalar(db.select(Campaign).where(Campaign.title == "Orbit Board Game"))
    if game is None or game.state != "successful" or surveys.survey_of(game) is not None:
        return None
    creator = game.creator
    rules = surveys.add_question(game, creator, QuestionInput(
        "choice", "Which language should your rulebook be in?", ["English", "Français", "Deutsch"], required=True))
    surveys.add_question(game, creator, QuestionInput("text", "Anything we should know before we ship?"))
    sent = surveys.send(game, creator)
    pledges = db.session.scalars(db.select(Pledge).where(Pledge.campaign_id == game.id, Pledge.state == "collected")
                                 .order_by(Pledge.id)).all()
    answered, language = 0, {"FR": "Français", "DE": "Deutsch"}
    for pledge in pledges:
        places = ORBIT_ADDRESSES.get(pledge.country or "")
        if not places:
            continue
        address = {**places.pop(0), "country": pledge.country}
        surveys.answer(pledge, pledge.backer, {rules.id: language[pledge.country]}, address)
        answered += 1
    shipments.ensure_items(game)
    shipped = 0
    on = (game.deadline + timedelta(days=10)).date()
    for pledge in pledges[:2]:
        for item in shipments.items_of_pledge(pledge):
            shipments.ship(item, creator, "La Poste", f"6A{pledge.id:05d}{item.id:04d}FR", on)
            shipped += 1
    first = shipments.items_of_pledge(pledges[0]) if pledges else []
    for item in first:
        shipments.mark_delivered(item, pledges[0].backer)
    db.session.commit()
    return f"board game: survey sent to {sent} backers, {answered} answered, {shipped} items shipped, {len(first)} delivered"

