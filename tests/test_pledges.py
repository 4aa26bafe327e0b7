"""Pledges against a real localstripe: save a card, activate on Stripe's word, edit, cancel, refuse."""
from __future__ import annotations

from datetime import timedelta

import pytest
import stripe
from sqlalchemy import func, select

from app import clock
from app.campaigns import services as campaigns
from app.campaigns.models import Campaign, Tier
from app.extensions import db
from app.notifications.models import OutboxMessage
from app.pledges import services
from app.pledges.models import Pledge, PledgeEvent
from tests.factories import login, make_campaign, make_user
from tests.localstripe_fixture import CARD_AUTHENTICATE, CARD_DECLINE_ON_SETUP, CARD_OK, browser_client, browser_confirm_setup

JSON = {"Accept": "application/json"}


@pytest.fixture
def creator(app):
    return make_user("creator@example.com", name="Cat Creator")


@pytest.fixture
def campaign(creator):
    live = make_campaign(creator, "live", tiers=2, title="Solar Lantern")
    tiers = sorted(live.tiers, key=lambda t: t.amount)
    tiers[1].quantity_limit = 2
    db.session.commit()
    return live


def begin(client, campaign, tier="", amount="25"):
    return client.post(f"/campaigns/{campaign.slug}/pledge", data={"tier": str(tier), "amount": amount}, headers=JSON)


def pledge_with_card(client, localstripe, campaign, card=CARD_OK, tier="", amount="25", authenticate=True):
    """What the page's script does: begin, confirm the card with Stripe, post the result."""
    response = begin(client, campaign, tier, amount)
    assert response.status_code == 200, response.get_json()
    data = response.get_json()
    setup_id = data["client_secret"].split("_secret_")[0]
    status = browser_confirm_setup(localstripe, setup_id, card, authenticate=authenticate)
    return client.post(data["confirm_url"], data={"setup_intent": setup_id}), status


def backer(client, email="backer@example.com"):
    user = make_user(email, name="Bao Backer")
    login(client, email)
    return user


def test_successful_pledge_counts_at_once(app, client, localstripe, campaign):
    backer(client)
    tier = campaign.tiers[0]
    response, status = pledge_with_card(client, localstripe, campaign, tier=tier.id, amount="30")
    assert status == "succeeded" and response.status_code == 302
    pledge = db.session.scalar(select(Pledge))
    assert pledge.state == "active" and pledge.amount == 3000 and pledge.currency == "USD"
    assert pledge.card_last4 == "4242" and pledge.card_brand == "visa" and pledge.payment_method_id
    assert db.session.get(Tier, tier.id).claimed == 1
    page = app.test_client().get(f"/campaigns/{campaign.slug}").get_data(as_text=True)
    assert "$30.00" in page and 'class="h5 mb-0 backers">1<' in page
    mine = client.get("/me/pledges").get_data(as_text=True)
    assert "Solar Lantern" in mine and "Active" in mine
    assert "4242" in client.get(f"/pledges/{pledge.id}").get_data(as_text=True)
    assert "pledge_confirmed" in db.session.scalars(select(OutboxMessage.kind)).all()
    # the card is attached to the backer's customer at Stripe
    pm = browser_client(localstripe).v1.payment_methods.retrieve(pledge.payment_method_id)
    assert pm.customer == pledge.backer.stripe_customer_id


def test_authentication_card_completes(client, localstripe, campaign):
    backer(client)
    response, status = pledge_with_card(client, localstripe, campaign, card=CARD_AUTHENTICATE)
    assert status == "succeeded"
    assert db.session.scalar(select(Pledge.state)) == "active"


def test_failed_authentication_counts_nothing(client, localstripe, campaign):
    backer(client)
    response, status = pledge_with_card(client, localstripe, campaign, card=CARD_AUTHENTICATE, authenticate=False)
    assert status != "succeeded"
    assert db.session.scalar(select(Pledge.state)) == "pending"
    follow = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "not saved" in follow or "card" in follow


def test_declined_card_counts_nothing(app, client, localstripe, campaign):
    backer(client)
    response, status = pledge_with_card(client, localstripe, campaign, card=CARD_DECLINE_ON_SETUP)
    assert status != "succeeded"
    assert db.session.scalar(select(Pledge.state)) == "pending"
    assert campaigns.totals.of(db.session.get(Campaign, campaign.id, populate_existing=True)).pledged == 0
    # a retry with a good card reuses the same pending pledge
    response, status = pledge_with_card(client, localstripe, campaign, card=CARD_OK)
    assert db.session.scalar(select(func.count(Pledge.id))) == 1
    assert db.session.scalar(select(Pledge.state)) == "active"


def test_double_begin_makes_one_pledge(client, localstripe, campaign):
    backer(client)
    first = begin(client, campaign).get_json()
    second = begin(client, campaign).get_json()
    assert first["confirm_url"] == second["confirm_url"]
    assert db.session.scalar(select(func.count(Pledge.id))) == 1
    setup_id = second["client_secret"].split("_secret_")[0]
    browser_confirm_setup(localstripe, setup_id, CARD_OK)
    assert client.post(second["confirm_url"], data={"setup_intent": setup_id}).status_code == 302
    assert client.post(second["confirm_url"], data={"setup_intent": setup_id}).status_code == 302  # double submit
    assert db.session.scalar(select(Pledge.state)) == "active"
    assert db.session.scalar(select(func.count(PledgeEvent.id)).where(PledgeEvent.action == "activate")) == 1
    # a second pledge to the same campaign is refused
    assert client.get(f"/campaigns/{campaign.slug}/pledge").status_code == 302
    assert begin(client, campaign).status_code == 422


def test_forged_setup_intent_of_another_customer(app, client, localstripe, campaign):
    backer(client)
    other = app.test_client()
    backer(other, "other@example.com")
    theirs = begin(other, campaign).get_json()
    their_setup = theirs["client_secret"].split("_secret_")[0]
    browser_confirm_setup(localstripe, their_setup, CARD_OK)
    mine = begin(client, campaign).get_json()
    response = client.post(mine["confirm_url"], data={"setup_intent": their_setup})
    assert response.status_code == 302
    states = db.session.scalars(select(Pledge.state)).all()
    assert states == ["pending", "pending"]
    # and the gateway itself refuses a SetupIntent of another customer
    from app.payments import gateway

    mine_customer = db.session.scalar(select(Pledge).where(Pledge.backer.has(email="backer@example.com"))).backer.stripe_customer_id
    with pytest.raises(gateway.GatewayError):
        gateway.read_setup(their_setup, mine_customer)


@pytest.mark.parametrize(
    "data,message",
    [
        ({"tier": "", "amount": "0.10"}, "at least $0.50"),
        ({"tier": "", "amount": "abc"}, "as a number"),
        ({"tier": "", "amount": "-5"}, "more than zero"),
        ({"tier": "", "amount": "1000000"}, "at most"),
        ({"tier": "999999", "amount": "50"}, "Choose one of this campaign"),
        ({"tier": "TIER0", "amount": "10"}, "at least $25.00"),
        ({"amount": ""}, "Enter the amount"),
    ],
)
def test_bad_pledge_input(client, campaign, data, message):
    backer(client)
    data = {k: (str(campaign.tiers[0].id) if v == "TIER0" else v) for k, v in data.items()}
    response = client.post(f"/campaigns/{campaign.slug}/pledge", data=data)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert message in page
    if data.get("amount"):
        assert f'value="{data["amount"]}"' in page
    assert db.session.scalar(select(func.count(Pledge.id))) == 0
    assert message in str(client.post(f"/campaigns/{campaign.slug}/pledge", data=data, headers=JSON).get_json())


def test_refused_cases(app, client, creator, campaign):
    # visitors are sent to log in
    assert app.test_client().get(f"/campaigns/{campaign.slug}/pledge").status_code == 302
    # never on one's own campaign
    login(client, "creator@example.com")
    response = begin(client, campaign)
    assert response.status_code == 422 and "own campaign" in str(response.get_json())
    client.post("/auth/logout")
    backer(client)
    # not live
    draft = make_campaign(creator, "approved")
    assert client.get(f"/campaigns/{draft.slug}/pledge").status_code == 404
    ended = make_campaign(creator, "unsuccessful")
    assert begin(client, ended).status_code == 422
    # after the deadline (server time)
    clock.set_offset(timedelta(days=31))
    response = begin(client, campaign)
    assert response.status_code == 422 and "deadline" in str(response.get_json())
    assert db.session.scalar(select(func.count(Pledge.id))) == 0


def test_deadline_checked_at_activation(client, localstripe, campaign):
    backer(client)
    data = begin(client, campaign).get_json()
    setup_id = data["client_secret"].split("_secret_")[0]
    browser_confirm_setup(localstripe, setup_id, CARD_OK)
    clock.set_offset(timedelta(days=31))
    client.post(data["confirm_url"], data={"setup_intent": setup_id})
    assert db.session.scalar(select(Pledge.state)) == "pending"


def test_edit_changes_tier_and_claims(client, localstripe, campaign):
    backer(client)
    low, high = sorted(campaign.tiers, key=lambda t: t.amount)
    pledge_with_card(client, localstripe, campaign, tier=low.id, amount="25")
    pledge = db.session.scalar(select(Pledge))
    response = client.post(f"/pledges/{pledge.id}/edit", data={"tier": str(high.id), "amount": "20"})
    assert response.status_code == 422 and "at least $50.00" in response.get_data(as_text=True)
    response = client.post(f"/pledges/{pledge.id}/edit", data={"tier": str(high.id), "amount": "75"})
    assert response.status_code == 302
    db.session.expire_all()
    assert (db.session.get(Tier, low.id).claimed, db.session.get(Tier, high.id).claimed) == (0, 1)
    assert db.session.get(Pledge, pledge.id).amount == 7500
    assert client.post(f"/pledges/{pledge.id}/edit", data={"tier": "", "amount": "5"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Tier, high.id).claimed == 0
    assert "pledge_edited" in db.session.scalars(select(OutboxMessage.kind)).all()


def test_limited_tier_never_oversells(app, localstripe, campaign):
    limited = max(campaign.tiers, key=lambda t: t.amount)  # limit 2
    clients = []
    for n in range(3):
        c = app.test_client()
        backer(c, f"b{n}@example.com")
        clients.append(c)
    for c in clients[:2]:
        pledge_with_card(c, localstripe, campaign, tier=limited.id, amount="50")
    response = begin(clients[2], campaign, limited.id, "50")
    assert response.status_code == 422 and "sold out" in str(response.get_json())
    assert db.session.get(Tier, limited.id).claimed == 2
    page = app.test_client().get(f"/campaigns/{campaign.slug}").get_data(as_text=True)
    assert "Sold out" in page


def test_cancel_releases_claim_and_card_then_pledge_again(client, localstripe, campaign):
    backer(client)
    tier = campaign.tiers[0]
    pledge_with_card(client, localstripe, campaign, tier=tier.id)
    pledge = db.session.scalar(select(Pledge))
    card = pledge.payment_method_id
    assert client.post(f"/pledges/{pledge.id}/cancel").status_code == 302
    db.session.expire_all()
    assert db.session.get(Pledge, pledge.id).state == "canceled"
    assert db.session.get(Tier, tier.id).claimed == 0
    assert browser_client(localstripe).v1.payment_methods.retrieve(card).customer is None
    assert campaigns.totals.of(db.session.get(Campaign, campaign.id, populate_existing=True)).backers == 0
    # the backer may pledge again: a new row
    pledge_with_card(client, localstripe, campaign, tier=tier.id)
    assert sorted(db.session.scalars(select(Pledge.state)).all()) == ["active", "canceled"]
    # nobody else can see or cancel it
    other = make_user("nosy@example.com")
    assert other
    nosy = client.application.test_client()
    login(nosy, "nosy@example.com")
    new_id = db.session.scalar(select(Pledge.id).where(Pledge.state == "active"))
    assert nosy.get(f"/pledges/{new_id}").status_code == 404
    assert nosy.post(f"/pledges/{new_id}/cancel").status_code == 404
    assert nosy.post(f"/pledges/{new_id}/edit", data={"amount": "99"}).status_code == 404


def test_no_changes_after_the_deadline(client, localstripe, campaign):
    backer(client)
    pledge_with_card(client, localstripe, campaign)
    pledge = db.session.scalar(select(Pledge))
    clock.set_offset(timedelta(days=30, minutes=1))
    client.post(f"/pledges/{pledge.id}/cancel")
    client.post(f"/pledges/{pledge.id}/edit", data={"tier": "", "amount": "99"})
    db.session.expire_all()
    pledge = db.session.get(Pledge, pledge.id)
    assert pledge.state == "active" and pledge.amount == 2500


def test_card_change(client, localstripe, campaign):
    backer(client)
    pledge_with_card(client, localstripe, campaign)
    pledge = db.session.scalar(select(Pledge))
    old = pledge.payment_method_id
    data = client.post(f"/pledges/{pledge.id}/card", headers=JSON).get_json()
    setup_id = data["client_secret"].split("_secret_")[0]
    browser_confirm_setup(localstripe, setup_id, CARD_AUTHENTICATE)
    assert client.post(data["confirm_url"], data={"setup_intent": setup_id}).status_code == 302
    db.session.expire_all()
    pledge = db.session.get(Pledge, pledge.id)
    assert pledge.card_last4 == "3184" and pledge.payment_method_id != old
    assert browser_client(localstripe).v1.payment_methods.retrieve(old).customer is None


def test_suspension_and_cancellation_release_every_pledge(app, localstripe, creator, campaign):
    for n in range(2):
        c = app.test_client()
        backer(c, f"b{n}@example.com")
        pledge_with_card(c, localstripe, campaign, amount="40")
    cards = db.session.scalars(select(Pledge.payment_method_id)).all()
    moderator = make_user("mod@example.com", moderator=True)
    campaigns.suspend(campaign, moderator, "Fraud report confirmed")
    db.session.expire_all()
    assert db.session.scalars(select(Pledge.state)).all() == ["released", "released"]
    assert sum(t.claimed for t in db.session.scalars(select(Tier))) == 0
    assert campaigns.totals.of(db.session.get(Campaign, campaign.id, populate_existing=True)).pledged == 8000  # the snapshot at the stop
    assert db.session.scalar(select(func.count(OutboxMessage.id)).where(OutboxMessage.kind == "pledge_released")) == 2
    from app.settlement import services as settlement

    assert settlement.run_pass().cards_released == 2  # the pass releases the saved cards, in batches
    for card in cards:
        assert browser_client(localstripe).v1.payment_methods.retrieve(card).customer is None
    assert services.release_campaign(campaign) == 0  # twice is harmless

    second = make_campaign(creator, "live")
    c = app.test_client()
    login(c, "b0@example.com")
    pledge_with_card(c, localstripe, second, amount="40")
    login(c, "creator@example.com")
    assert c.post(f"/campaigns/{second.slug}/cancel").status_code == 302
    assert db.session.scalar(select(Pledge.state).where(Pledge.campaign_id == second.id)) == "released"


def test_stripe_errors_are_messages_not_500(make_app, campaign):
    broken = make_app(STRIPE_API_BASE="http://127.0.0.1:9", STRIPE_MAX_RETRIES=0)
    client = broken.test_client()
    with broken.app_context():
        backer(client)
    response = client.post(f"/campaigns/{campaign.slug}/pledge", data={"tier": "", "amount": "25"}, headers=JSON)
    assert response.status_code == 422
    assert stripe  # the library is only ever used through the gateway


def _counters_match(campaign_id: int) -> tuple[int, int]:
    db.session.expire_all()
    campaign = db.session.get(Campaign, campaign_id)
    rows = db.session.execute(
        select(func.coalesce(func.sum(Pledge.amount), 0), func.count()).where(Pledge.campaign_id == campaign_id, Pledge.state == "active")
    ).one()
    assert (campaign.pledged_total, campaign.backers_count) == (rows[0], rows[1])
    return campaign.pledged_total, campaign.backers_count


def test_live_counters_follow_every_change(app, localstripe, campaign):
    clients = []
    for n in range(3):
        c = app.test_client()
        backer(c, f"c{n}@example.com")
        pledge_with_card(c, localstripe, campaign, amount=str(10 + n))
        clients.append(c)
    assert _counters_match(campaign.id) == (3300, 3)
    first = db.session.scalar(select(Pledge).where(Pledge.amount == 1000))
    clients[0].post(f"/pledges/{first.id}/edit", data={"tier": "", "amount": "25.50"})
    assert _counters_match(campaign.id) == (2550 + 1100 + 1200, 3)
    second = db.session.scalar(select(Pledge).where(Pledge.amount == 1100))
    clients[1].post(f"/pledges/{second.id}/cancel")
    assert _counters_match(campaign.id) == (2550 + 1200, 2)
    from app.settlement import services as settlement

    clock.set_offset(timedelta(days=31))
    settlement.run_pass()  # charged or released: nothing is active any more, the snapshot shows
    assert _counters_match(campaign.id) == (0, 0)
    db.session.expire_all()
    assert campaigns.totals.of(db.session.get(Campaign, campaign.id)).pledged == 2550 + 1200
