"""The honest delivery record (issue 17): each tier's share shipped and delivered beside its estimated
month with a plain "late" marker, the creator's delivered / on-time / months-late figures — computed
from the fulfillment items, in one statement each — and updates tagged as delivery news."""
from __future__ import annotations

import re
from datetime import date, datetime

import pytest
from sqlalchemy import update

from app.campaigns.models import Tier
from app.community import services as community
from app.extensions import db
from app.fulfillment.delivery import campaign_delivery, creator_delivery
from app.fulfillment.models import REWARD_ITEM, FulfillmentItem
from tests.factories import login, make_campaign, make_user
from tests.queries import counting
from tests.test_fulfillment_surveys import Funded, funded  # noqa: F401  (the fixture)


def _item(pledge, state="not_started", shipped_on: date | None = None, delivered: bool = False) -> FulfillmentItem:
    item = FulfillmentItem(pledge_id=pledge.id, campaign_id=pledge.campaign_id, item=REWARD_ITEM, tier_id=pledge.tier_id,
                           state="delivered" if delivered else state, shipped_on=shipped_on,
                           shipped_at=datetime.combine(shipped_on, datetime.min.time()) if shipped_on else None)
    db.session.add(item)
    return item


@pytest.fixture
def shipping(frozen_clock, funded: Funded) -> Funded:  # noqa: F811
    """The clock stands at 24 December 2026 (frozen on 23 November, the deadline passed 31 days later).
    The lamp was due in October 2026: one shipped in November (a month late) and arrived, one not shipped
    (two months late and counting). The poster is due in February 2027: one shipped in December (on
    time), one not yet (not due)."""
    shop = funded.shop
    db.session.execute(update(Tier).where(Tier.id == shop.lamp.id).values(estimated_delivery=date(2026, 10, 1)))
    db.session.execute(update(Tier).where(Tier.id == shop.poster.id).values(estimated_delivery=date(2027, 2, 1)))
    _item(funded.lamp, "shipped", date(2026, 11, 15), delivered=True)
    _item(funded.stand)
    _item(funded.battery, "shipped", date(2026, 12, 20))
    # funded.poster has no item row yet: it still counts, as not shipped.
    db.session.commit()
    return funded


def test_each_tier_beside_its_estimate(shipping):
    shop = shipping.shop
    rows = campaign_delivery(shop.campaign)
    assert set(rows) == {shop.lamp.id, shop.poster.id}  # the first tier has no backer
    lamp, poster = rows[shop.lamp.id], rows[shop.poster.id]
    assert (lamp.backers, lamp.shipped, lamp.delivered, lamp.shipped_pct, lamp.delivered_pct, lamp.late) == (2, 1, 1, 50, 50, True)
    assert (poster.backers, poster.shipped, poster.delivered, poster.late) == (2, 1, 0, False)
    # Every lamp shipped: no longer late, even though it shipped after the estimate.
    _item_for = db.session.query(FulfillmentItem).filter_by(pledge_id=shipping.stand.id).one()
    _item_for.state, _item_for.shipped_on = "shipped", date(2026, 12, 1)
    db.session.commit()
    assert not campaign_delivery(shop.campaign)[shop.lamp.id].late


def test_the_creators_record(shipping):
    record = creator_delivery(shipping.creator)
    assert (record.rewards, record.delivered, record.due, record.on_time, record.months_late) == (4, 1, 3, 1, 3)
    assert record.on_time_pct == 33 and record.average_months_late == 1.5
    # Another creator's rewards are not theirs; a newcomer has none.
    assert creator_delivery(make_user()).rewards == 0 and creator_delivery(make_user()).on_time_pct is None


def test_only_after_funding(app, frozen_clock):
    live = make_campaign(make_user(), "live")
    assert campaign_delivery(live) == {}
    assert "delivery-record" not in app.test_client().get(f"/campaigns/{live.slug}").get_data(as_text=True)


def test_one_statement_each(app, shipping):
    campaign, creator = shipping.shop.campaign, shipping.creator
    assert campaign.state and creator.id  # loaded before counting
    with counting() as statements:
        campaign_delivery(campaign)
        creator_delivery(creator)
    assert len(statements) == 2


def test_the_campaign_page_shows_it(app, shipping):
    shop = shipping.shop
    page = app.test_client().get(f"/campaigns/{shop.campaign.slug}", headers={"Accept-Language": "en"}).get_data(as_text=True)
    section = page[page.index('id="delivery"'):page.index("</section>", page.index('id="delivery"'))]
    lamp = section[section.index(f'data-tier="{shop.lamp.id}"'):]
    lamp = lamp[:lamp.index("</tr>")]
    assert "October 2026" in lamp and "Late" in lamp and "50%" in lamp
    poster = section[section.index(f'data-tier="{shop.poster.id}"'):]
    assert "Late" not in poster[:poster.index("</tr>")]
    # The creator's track record beside it, counted from the same rows.
    box = page[page.index('class="track-record"'):]
    assert re.search(r"1 of 4 rewards delivered", box) and "33% shipped on time" in box
    assert "late ones 1.5 months late on average" in box


def test_delivery_news_beside_the_record(app, shipping):
    shop, creator = shipping.shop, shipping.creator
    client = app.test_client()
    login(client, creator.email)
    form = client.get(f"/campaigns/{shop.campaign.slug}/updates/new").get_data(as_text=True)
    assert 'name="delivery_news"' in form
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form)
    data = {"title": "Lamps are on the boat", "body": "All of them.", "delivery_news": "y"}
    if token:
        data["csrf_token"] = token.group(1)
    assert client.post(f"/campaigns/{shop.campaign.slug}/updates/new", data=data).status_code == 302
    community.post_update(shop.campaign, creator, "Thank you", "Plain news.", False)
    page = app.test_client().get(f"/campaigns/{shop.campaign.slug}").get_data(as_text=True)
    news = page[page.index('class="list-unstyled delivery-news"'):]
    news = news[:news.index("</ul>")]
    assert "Lamps are on the boat" in news and "Thank you" not in news
    assert page.count("delivery-news-badge") == 1


def test_a_live_campaigns_update_is_not_delivery_news(app, frozen_clock):
    creator = make_user()
    live = make_campaign(creator, "live")
    item = community.post_update(live, creator, "Progress", "Going well.", False, delivery_news=True)
    assert item.delivery_news is False
