"""Fifty backers at once on a tier limited to five: exactly five win (PostgreSQL, separate connections)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from app.campaigns.models import Tier
from app.extensions import db
from app.pledges.models import Pledge
from tests.factories import login, make_campaign, make_user
from tests.localstripe_fixture import CARD_OK, browser_confirm_setup

BACKERS = 50
LIMIT = 5


@pytest.fixture
def postgres_only(app):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the concurrency test runs on PostgreSQL (SQLite serialises every writer)")


def test_fifty_concurrent_pledges_on_a_tier_of_five(app, localstripe, postgres_only):
    creator = make_user("creator@example.com")
    campaign = make_campaign(creator, "live", tiers=1)
    tier = campaign.tiers[0]
    tier.quantity_limit = LIMIT
    db.session.commit()
    ready = []
    for n in range(BACKERS):
        client = app.test_client()
        make_user(f"b{n}@example.com")
        login(client, f"b{n}@example.com")
        data = client.post(f"/campaigns/{campaign.slug}/pledge", data={"tier": str(tier.id), "amount": "25"},
                           headers={"Accept": "application/json"}).get_json()
        setup_id = data["client_secret"].split("_secret_")[0]
        assert browser_confirm_setup(localstripe, setup_id, CARD_OK) == "succeeded"
        ready.append((client, data["confirm_url"], setup_id))

    def confirm(item):
        client, url, setup_id = item
        return client.post(url, data={"setup_intent": setup_id}).status_code

    with ThreadPoolExecutor(max_workers=BACKERS) as pool:
        codes = list(pool.map(confirm, ready))
    assert codes == [302] * BACKERS  # winners and losers are both answered with a page, never a 500
    db.session.expire_all()
    active = db.session.scalar(select(func.count(Pledge.id)).where(Pledge.state == "active"))
    assert active == LIMIT
    assert db.session.get(Tier, tier.id).claimed == LIMIT
    assert db.session.scalar(select(func.count(Pledge.id)).where(Pledge.state == "pending")) == BACKERS - LIMIT
