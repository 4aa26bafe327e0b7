"""The settlement pass against a real localstripe: all or nothing, exactly once, failures recovered."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app import clock
from app.accounts.models import User
from app.campaigns.models import Campaign, Tier
from app.extensions import db
from app.notifications.models import OutboxMessage
from app.pledges.models import Pledge
from app.settlement import services as settlement
from app.settlement.models import ChargeAttempt
from tests.factories import fresh_email, make_campaign, make_user
from tests.localstripe_fixture import (
    CARD_AUTHENTICATE,
    CARD_DECLINE_ON_CHARGE,
    CARD_OK,
    browser_authenticate_payment,
    browser_client,
)
from tests.test_pledges import backer, pledge_with_card


def _intents(localstripe: str, pledge_ids) -> dict[int, list]:
    """localstripe's own PaymentIntents per pledge (their metadata and customer), paging through all.

    localstripe lives for the whole test session while our ids restart with each test, so an intent
    belongs to a pledge only if its customer is that pledge's backer's too — which holds only when the
    backer's email is the test's own (`fresh_email`): customers are found by email."""
    client = browser_client(localstripe)
    wanted = {
        str(pid): customer
        for pid, customer in db.session.execute(
            select(Pledge.id, User.stripe_customer_id).join(User, User.id == Pledge.backer_id).where(Pledge.id.in_(list(pledge_ids)))
        )
    }
    found: dict[int, list] = {}
    params = {"limit": 100}
    while True:
        page = client.v1.payment_intents.list(params=params)
        for intent in page.data:
            pledge = intent.to_dict().get("metadata", {}).get("pledge")
            if pledge in wanted and intent.customer == wanted[pledge]:
                found.setdefault(int(pledge), []).append(intent)
        if not page.has_more:
            return found
        params = {"limit": 100, "starting_after": page.data[-1].id}


def _succeeded(localstripe, pledge_ids) -> dict[int, int]:
    counts = {pid: sum(1 for i in intents if i.status == "succeeded") for pid, intents in _intents(localstripe, pledge_ids).items()}
    return {pid: n for pid, n in counts.items() if n}


@pytest.fixture
def funded(app, localstripe):
    """A live campaign with a goal of $100, backed by three cards: fine, needs authentication, declines."""
    creator = make_user("creator@example.com")
    campaign = make_campaign(creator, "live", tiers=1, goal=10000, currency="USD")
    for n, card in enumerate((CARD_OK, CARD_AUTHENTICATE, CARD_DECLINE_ON_CHARGE)):
        client = app.test_client()
        backer(client, fresh_email(f"b{n}"))
        pledge_with_card(client, localstripe, campaign, card=card, tier=campaign.tiers[0].id, amount=str(40 + n))
    return campaign


def _past_deadline(days=31):
    clock.set_offset(timedelta(days=days))


def test_funded_campaign_charges_each_pledge_once(app, localstripe, funded):
    assert settlement.run_pass().decided == {}  # before the deadline nothing happens
    _past_deadline()
    summary = settlement.run_pass()
    assert summary.decided == {funded.id: "successful"}
    db.session.expire_all()
    campaign = db.session.get(Campaign, funded.id)
    assert campaign.state == "successful" and campaign.pledged_at_deadline == 4000 + 4100 + 4200 and campaign.backers_at_deadline == 3
    states = dict(db.session.execute(select(Pledge.amount, Pledge.state)).all())
    assert states == {4000: "collected", 4100: "errored", 4200: "errored"}
    ids = db.session.scalars(select(Pledge.id)).all()
    intents = _intents(localstripe, ids)
    collected = db.session.scalar(select(Pledge).where(Pledge.state == "collected"))
    [intent] = intents[collected.id]
    assert intent.status == "succeeded" and intent.amount == 4000 and intent.currency == "usd"
    errored = db.session.scalars(select(Pledge).where(Pledge.state == "errored")).all()
    codes = {p.amount: db.session.scalar(select(ChargeAttempt.decline_code).where(ChargeAttempt.pledge_id == p.id)) for p in errored}
    assert codes[4100] == "authentication_required" and codes[4200]
    kinds = db.session.scalars(select(OutboxMessage.kind)).all()
    assert kinds.count("pledge_errored") == 2 and kinds.count("pledge_collected") == 1 and "campaign_decided_creator" in kinds
    # A second pass changes nothing (the retries are due tomorrow).
    again = settlement.run_pass()
    assert again.decided == {} and not again.outcomes
    assert _succeeded(localstripe, ids) == {collected.id: 1}


def test_unfunded_campaign_charges_nobody(app, localstripe):
    creator = make_user("creator@example.com")
    campaign = make_campaign(creator, "live", tiers=1, goal=1_000_000)
    client = app.test_client()
    backer(client, fresh_email())
    pledge_with_card(client, localstripe, campaign, tier=campaign.tiers[0].id, amount="40")
    card = db.session.scalar(select(Pledge.payment_method_id))
    _past_deadline()
    summary = settlement.run_pass()
    assert summary.decided == {campaign.id: "unsuccessful"}
    db.session.expire_all()
    assert db.session.scalar(select(Pledge.state)) == "released"
    assert db.session.scalar(select(Tier.claimed)) == 0
    assert db.session.scalar(select(func.count(ChargeAttempt.id))) == 0
    assert _intents(localstripe, db.session.scalars(select(Pledge.id)).all()) == {}
    assert browser_client(localstripe).v1.payment_methods.retrieve(card).customer is None
    assert summary.cards_released == 1
    page = app.test_client().get(f"/campaigns/{campaign.slug}").get_data(as_text=True)
    assert "Not funded" in page and "$40.00" in page
    assert "Not charged — the campaign did not reach its goal" in client.get("/me/pledges").get_data(as_text=True)


def test_authentication_completed_by_the_backer(app, localstripe, funded):
    _past_deadline()
    settlement.run_pass()
    pledge = db.session.scalar(select(Pledge).where(Pledge.amount == 4100))
    secret = settlement.authentication_secret(pledge)
    assert secret
    # The backer's browser: confirmCardPayment completes the 3-D Secure dialog.
    assert browser_authenticate_payment(localstripe, secret) == "succeeded"
    intent_id = secret.split("_secret_")[0]
    assert settlement.record_from_stripe(intent_id) == "collected"
    db.session.expire_all()
    assert db.session.get(Pledge, pledge.id).state == "collected"
    # The daily retry later must not charge again.
    clock.set_offset(timedelta(days=33))
    settlement.run_pass()
    assert _succeeded(localstripe, [pledge.id]) == {pledge.id: 1}


def test_retry_window_runs_out(app, localstripe, funded):
    _past_deadline()
    settlement.run_pass()
    declined = db.session.scalar(select(Pledge).where(Pledge.amount == 4200))
    for day in range(1, 8):
        clock.set_offset(timedelta(days=31 + day, minutes=1))
        settlement.run_pass()
    db.session.expire_all()
    pledges = {p.amount: p.state for p in db.session.scalars(select(Pledge))}
    assert pledges == {4000: "collected", 4100: "dropped", 4200: "dropped"}
    attempts = db.session.scalar(select(func.count(ChargeAttempt.id)).where(ChargeAttempt.pledge_id == declined.id))
    assert attempts == 7  # the first charge and one retry a day inside the 7-day window
    assert db.session.scalar(select(Tier.claimed)) == 1  # only the collected pledge keeps its place
    assert _succeeded(localstripe, [declined.id]) == {}
    assert "pledge_dropped" in db.session.scalars(select(OutboxMessage.kind)).all()


def test_stopping_campaigns_release_every_pledge_through_the_pass(app, localstripe):
    creator = make_user("creator@example.com")
    campaign = make_campaign(creator, "live", tiers=1)
    client = app.test_client()
    backer(client)
    pledge_with_card(client, localstripe, campaign, tier=campaign.tiers[0].id, amount="40")
    from app.campaigns import services as campaigns

    moderator = make_user("mod@example.com", moderator=True)
    campaigns.suspend(campaign, moderator, "Fraud")
    summary = settlement.run_pass()
    assert summary.cards_released == 1 and not summary.decided
    assert db.session.scalar(select(Pledge.state)) == "released"


def test_backers_read_what_happened_to_their_money(app, localstripe, funded):
    """Issue 18, defect 6: a bank asking to confirm is not a red failure, and a collected pledge says when
    it was paid (not our state's name)."""
    from tests.factories import login

    _past_deadline()
    settlement.run_pass()
    badges = {}
    for pledge in db.session.scalars(select(Pledge)):
        client = app.test_client()
        login(client, pledge.backer.email)
        page = client.get(f"/pledges/{pledge.id}", headers={"Accept-Language": "en"}).get_data(as_text=True)
        badge = page[page.index('pledge-state'):]
        badges[pledge.amount] = badge[:badge.index("</span>")]
    assert "text-bg-warning" in badges[4100] and "Action needed: confirm your payment with your bank" in badges[4100]
    assert "text-bg-danger" in badges[4200] and "Payment failed" in badges[4200]
    collected_on = clock.utcnow()
    assert "text-bg-success" in badges[4000] and f"Paid on {collected_on:%b} {collected_on.day}" in badges[4000]
