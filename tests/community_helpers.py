"""Helpers for the tests/test_community_*.py modules: backers without Stripe, and statement counting."""
from __future__ import annotations

from html.parser import HTMLParser

from sqlalchemy import func, select, update

from app.campaigns import totals
from app.campaigns.models import Tier
from app.extensions import db
from app.notifications.models import OutboxMessage
from app.pledges.models import Pledge
from tests.factories import login, make_campaign, make_user
from tests.queries import counting  # noqa: F401  (the community tests import it from here)

_n = iter(range(1, 10**9))


def back(campaign, user=None, state: str = "active", amount: int = 2500):
    """`user` (a new member when None) backs `campaign` with a pledge in `state`, as the pledge service leaves it."""
    user = user or make_user()
    tier = campaign.tiers[0] if campaign.tiers else None
    pledge = Pledge(campaign_id=campaign.id, backer_id=user.id, tier_id=tier.id if tier else None, amount=amount,
                    currency=campaign.currency, state=state, payment_method_id=f"pm_test_{next(_n)}",
                    card_brand="visa", card_last4="4242")
    db.session.add(pledge)
    if state == "active":
        if tier is not None:
            db.session.execute(update(Tier).where(Tier.id == tier.id).values(claimed=Tier.claimed + 1))
        totals.add(campaign.id, amount, 1)
    db.session.commit()
    return user


def make_world(*extra_backers: tuple[str, str]):
    """A live campaign by Creator Cora with Backer Ben (and `extra_backers`, (email, name) pairs), a
    member who does not back it, and a moderator: the cast of the community tests."""
    creator = make_user("creator@example.com", name="Creator Cora")
    campaign = make_campaign(creator, "live", title="Solar Lantern")
    for email, name in (("backer@example.com", "Backer Ben"), *extra_backers):
        back(campaign, make_user(email, name=name))
    make_user("member@example.com", name="Member Mia")
    make_user("mod@example.com", name="Mod Max", moderator=True)
    return campaign


def client_for(app, email: str | None = None):
    """A test client, logged in as `email` when given."""
    client = app.test_client()
    if email:
        login(client, email)
    return client


def outbox(kind: str | None = None) -> list[OutboxMessage]:
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    if kind:
        query = query.where(OutboxMessage.kind == kind)
    return list(db.session.scalars(query).all())


def outbox_count() -> int:
    return db.session.scalar(select(func.count()).select_from(OutboxMessage)) or 0



class _Scanner(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self._in_script = tag == "script"
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}>")
            if name in ("href", "src", "action") and (value or "").strip().lower().startswith(("javascript:", "data:", "vbscript:")):
                self.found.append(f"<{tag} {name}={value}>")
        if tag == "img" and dict(attrs).get("src") == "x":
            self.found.append("<img src=x>")

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script and "alert" in data:
            self.found.append("<script>alert")


def dangerous_markup(page: str) -> list[str]:
    """Elements or attributes in `page` that would run script: what an XSS payload would have to become."""
    scanner = _Scanner()
    scanner.feed(page)
    return scanner.found
