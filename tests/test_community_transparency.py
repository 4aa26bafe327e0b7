"""Transparency on ended campaigns (issue 8): the public page shows pledged at the deadline beside what
was really collected, after a settlement with a declined card — also through the visitors' page
cache, whose version the settlement pass moves."""
from __future__ import annotations

import re
import uuid
from datetime import timedelta

from sqlalchemy import select, update

from app import caching, clock
from app.campaigns.models import Campaign
from app.community.transparency import ended_figures
from app.extensions import db
from app.pledges.models import Pledge
from app.settlement import refunds
from app.settlement import services as settlement
from tests.factories import login, make_campaign, make_user
from tests.localstripe_fixture import CARD_DECLINE_ON_CHARGE, CARD_OK
from tests.queries import counting
from tests.test_pledges import pledge_with_card


def _row(page: str, css: str) -> str:
    match = re.search(rf'<tr class="{css}[^"]*">(.*?)</tr>', page, re.S)
    assert match, f"no {css} row"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(1))).strip()


def _funded_with_a_declined_card(app, localstripe):
    """A $100 campaign: $60 and $30 on good cards, $25 on a card declined at the charge."""
    tag = uuid.uuid4().hex[:8]
    creator = make_user(f"creator-{tag}@example.com")
    campaign = make_campaign(creator, "live", tiers=1, goal=10000, currency="USD", title=f"Lantern {tag}")
    for n, (card, amount) in enumerate(((CARD_OK, "60"), (CARD_OK, "30"), (CARD_DECLINE_ON_CHARGE, "25"))):
        client = app.test_client()
        make_user(f"{tag}-{n}@example.com")
        login(client, f"{tag}-{n}@example.com")
        response, status = pledge_with_card(client, localstripe, campaign, card=card, tier=campaign.tiers[0].id, amount=amount)
        assert status == "succeeded" and response.status_code == 302
    return campaign


def test_the_page_shows_pledged_and_collected_after_a_settle_with_a_declined_card(app, localstripe):
    campaign = _funded_with_a_declined_card(app, localstripe)
    clock.set_offset(timedelta(days=31))
    settlement.run_pass()
    assert dict(db.session.execute(select(Pledge.amount, Pledge.state)).all()) == {6000: "collected", 3000: "collected", 2500: "errored"}
    page = app.test_client().get(f"/campaigns/{campaign.slug}").get_data(as_text=True)
    assert "$115.00" in page  # the headline: pledged at the deadline
    assert _row(page, "t-pledged") == "Pledged at the deadline $115.00 3 backers"
    assert _row(page, "t-collected") == "Collected $90.00 2 backers"
    assert _row(page, "t-errored") == "Payment failed, can still be fixed $25.00 1 backer"
    assert "$90.00 collected so far" in page
    assert 't-dropped' not in page and 't-refunded' not in page and 't-charging' not in page
    # A week later the failed payment is dropped, and a moderator refunds one collected pledge.
    db.session.execute(update(Pledge).where(Pledge.amount == 2500).values(failed_at=clock.utcnow() - timedelta(days=8)))
    db.session.commit()
    settlement.run_pass()
    refunds.refund(db.session.scalar(select(Pledge).where(Pledge.amount == 3000)), make_user(moderator=True), "Disputed")
    page = app.test_client().get(f"/campaigns/{campaign.slug}").get_data(as_text=True)
    assert _row(page, "t-pledged") == "Pledged at the deadline $115.00 3 backers"
    assert _row(page, "t-collected") == "Collected $60.00 1 backer"
    assert _row(page, "t-dropped") == "Never collected $25.00 1 backer"
    assert _row(page, "t-refunded") == "Refunded to backers $30.00 1 backer"
    assert "t-errored" not in page
    # No payment is moving any more: the figure is final, not "so far".
    assert "$60.00 collected in all" in page and "collected so far" not in page


def test_the_cached_visitor_page_follows_the_charges(app, make_app, localstripe):
    """With the page cache on: a visitor who saw the page between the decision and the charges sees
    the collected figure as soon as the pass has charged (the pass moved the campaigns' version)."""
    campaign = _funded_with_a_declined_card(app, localstripe)
    cached = make_app(PUBLIC_PAGE_CACHE_SECONDS=3600)
    caching.clear()
    clock.set_offset(timedelta(days=31))
    settlement.decide_due_campaigns(settlement.Summary())
    visitor = cached.test_client()
    before = visitor.get(f"/campaigns/{campaign.slug}").get_data(as_text=True)
    assert _row(before, "t-collected") == "Collected $0.00 0 backers" and _row(before, "t-charging").startswith("Being collected now $115.00")
    version = db.session.scalar(select(Campaign.updated_at).where(Campaign.id == campaign.id))
    settlement.run_pass()
    assert db.session.scalar(select(Campaign.updated_at).where(Campaign.id == campaign.id)) > version
    after = visitor.get(f"/campaigns/{campaign.slug}").get_data(as_text=True)
    assert _row(after, "t-collected") == "Collected $90.00 2 backers"
    assert _row(after, "t-errored").endswith("$25.00 1 backer")
    caching.clear()


def test_unfunded_and_canceled_pages_say_nobody_paid_without_a_query(app, frozen_clock):
    creator = make_user()
    missed = make_campaign(creator, "unsuccessful", title="Missed")
    stopped = make_campaign(creator, "canceled", title="Stopped")
    live = make_campaign(creator, "live", title="Running")
    for campaign in (missed, stopped, live):
        db.session.refresh(campaign)
    with counting() as statements:
        assert ended_figures(missed).funded is False and ended_figures(stopped).collected.amount == 0
        assert ended_figures(live) is None
    assert statements == []
    client = app.test_client()
    assert "short of the goal: nobody was charged" in client.get(f"/campaigns/{missed.slug}").get_data(as_text=True)
    assert "when the campaign was canceled: nobody was charged" in client.get(f"/campaigns/{stopped.slug}").get_data(as_text=True)
    assert "transparency" not in client.get(f"/campaigns/{live.slug}").get_data(as_text=True)


def test_a_funded_page_reads_its_figures_in_one_statement(app, frozen_clock):
    campaign = make_campaign(make_user(), "successful")
    db.session.refresh(campaign)
    with counting() as statements:
        figures = ended_figures(campaign)
    assert len(statements) == 1 and figures.funded and figures.collected.amount == 0
