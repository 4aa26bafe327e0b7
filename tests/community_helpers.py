"""Helpers for the tests/test_community_*.py modules: backers without Stripe, and statement counting."""
from __future__ import annotations

from contextlib import contextmanager
from html.parser import HTMLParser

from sqlalchemy import event, func, select, update

from app.campaigns import totals
from app.campaigns.models import Tier
from app.extensions import db
from app.notifications.models import OutboxMessage
from app.pledges.models import Pledge
from tests.factories import make_user

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


def outbox(kind: str | None = None) -> list[OutboxMessage]:
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    if kind:
        query = query.where(OutboxMessage.kind == kind)
    return list(db.session.scalars(query).all())


def outbox_count() -> int:
    return db.session.scalar(select(func.count()).select_from(OutboxMessage)) or 0


@contextmanager
def counting():
    """The SQL statements run inside the block."""
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


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
