"""Payouts (issue 16, SPEC §13) against localstripe's Connect: the payout account and its onboarding,
the launch rule, the payout after the hold — exactly once, also when a pass died mid-way — Stripe's
refusals, holds by moderators and by risk signals, refunds after the payout, and the arithmetic."""
from __future__ import annotations

import re
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from app import clock, money
from app.campaigns.models import Campaign, CampaignEvent
from app.extensions import db
from app.notifications.models import OutboxMessage
from app.payments import gateway
from app.payouts import services as payouts
from app.payouts.models import LedgerEntry, PayoutAccount
from app.pledges.models import Pledge
from app.settlement import services as settlement
from tests.factories import csrf_token, login, make_campaign, make_user
from tests.localstripe_fixture import CARD_OK, browser_onboard, onboard
from tests.queries import counting
from tests.test_pledges import backer, pledge_with_card

DAY = timedelta(days=1)


# --- the arithmetic --------------------------------------------------------------------------

@given(collected=st.integers(0, 10**9), refunded_share=st.integers(0, 100), fees=st.integers(0, 10**6),
       percent=st.decimals(0, 100, places=2), currency=st.sampled_from(["USD", "JPY"]))
@settings(max_examples=300, deadline=None)
def test_the_payout_is_collected_less_refunds_and_fees(collected, refunded_share, fees, percent, currency):
    refunded = collected * refunded_share // 100
    books = payouts.Books(currency=currency, collected=collected, refunded=refunded, stripe_fees=fees, fees_estimated=False,
                          platform_fee_percent=Decimal(percent), transferred=0, reversed=0)
    kept = collected - refunded
    # The platform fee: its percentage of what was kept, rounded half up to the minor unit.
    assert books.platform_fee == int((Decimal(kept) * Decimal(percent) / 100).quantize(Decimal(1), rounding="ROUND_HALF_UP"))
    assert books.due == kept - books.platform_fee - fees
    assert isinstance(books.due, int) and books.platform_fee <= kept


# --- the payout account ----------------------------------------------------------------------

@pytest.fixture
def creator(app, client):
    user = make_user("creator@example.com", name="Cat Creator")
    login(client, user.email)
    return user


def test_setting_up_payouts_through_stripes_onboarding(app, client, localstripe, creator):
    page = client.get("/me/payouts").get_data(as_text=True)
    assert "Set up payouts" in page and 'name="country"' in page
    response = client.post("/me/payouts", data={"csrf_token": csrf_token(client, "/me/payouts"), "country": ""})
    assert response.status_code == 422 and "Choose the country of your bank account." in response.get_data(as_text=True)
    response = client.post("/me/payouts", data={"country": "FR"})
    assert response.status_code == 302 and "/connect/onboarding/" in response.location
    account = payouts.account_for(creator)
    assert account.country == "FR" and account.currency == "EUR" and not account.payouts_enabled
    # Left halfway: back on our page, which asks Stripe and says it is not finished.
    back = browser_onboard(response.location, "leave")
    assert back.endswith("/me/payouts/return")
    client.get("/me/payouts/return")
    page = client.get("/me/payouts").get_data(as_text=True)
    assert "Not finished" in page and "Continue with Stripe" in page
    # Completed: the return page reads the account from Stripe (the address itself proves nothing).
    again = client.post("/me/payouts", data={})
    browser_onboard(again.location, "complete")
    response = client.get("/me/payouts/return", follow_redirects=True)
    assert "Your payout account is ready" in response.get_data(as_text=True)
    db.session.expire_all()
    account = db.session.get(PayoutAccount, account.id)
    assert account.payouts_enabled and account.details_submitted and account.due == []
    assert db.session.scalar(select(func.count()).select_from(PayoutAccount)) == 1


def test_a_campaign_cannot_launch_without_a_payout_account(app, client, localstripe, creator):
    campaign = make_campaign(creator, "approved")
    response = client.post(f"/campaigns/{campaign.slug}/launch", follow_redirects=True)
    assert "a payout account that can receive money" in response.get_data(as_text=True)
    assert db.session.get(Campaign, campaign.id).state == "approved"
    onboard(creator)
    client.post(f"/campaigns/{campaign.slug}/launch")
    assert db.session.get(Campaign, campaign.id).state == "live"


def test_requirements_due_after_launch_stop_the_payout_and_tell_the_creator(app, client, localstripe, creator):
    onboard(creator)
    account = payouts.account_for(creator)
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(
        f"{localstripe}/_config/connect/accounts/{account.stripe_account_id}/requirements", data=b"due=true", method="POST"), timeout=10)
    # What the account.updated webhook does: read the account back from Stripe.
    assert "payouts disabled" in payouts.apply_account_event(account.stripe_account_id)
    db.session.expire_all()
    assert not payouts.account_for(creator).payouts_enabled
    assert "payout_account_due" in db.session.scalars(select(OutboxMessage.kind)).all()
    assert "Stripe needs more information" in client.get("/me/payouts").get_data(as_text=True)


# --- paying a funded campaign ----------------------------------------------------------------

@pytest.fixture
def funded(app, localstripe):
    """A $100 campaign with two collected pledges ($60 and $50), settled."""
    owner = make_user("maker@example.com", name="Mia Maker")
    campaign = make_campaign(owner, "live", tiers=1, goal=10000, currency="USD")
    # Emails of their own: localstripe lives for the whole session and finds customers by email, so
    # reconciliation would otherwise see the charges of earlier tests' pledges with the same ids.
    tag = uuid.uuid4().hex[:8]
    for n, amount in enumerate(("60", "50")):
        client = app.test_client()
        backer(client, f"payout-backer-{n}-{tag}@example.com")
        pledge_with_card(client, localstripe, campaign, card=CARD_OK, amount=amount)
    clock.set_offset(timedelta(days=31))
    settlement.run_pass()
    db.session.expire_all()
    campaign = db.session.get(Campaign, campaign.id)
    assert campaign.state == "successful"
    return campaign


def _after_hold(campaign: Campaign) -> None:
    """Move the clock a day past the payout hold (PAYOUT_HOLD_DAYS = 14 after the deadline)."""
    clock.advance(campaign.deadline + timedelta(days=15) - clock.utcnow())


def _transfers(campaign: Campaign) -> list[gateway.TransferState]:
    """What Stripe (localstripe) has transferred for the campaign."""
    payout = payouts.payout_of(campaign)
    return gateway.find_transfers(payouts.transfer_group(payout)) if payout else []


def test_the_payout_waits_for_the_hold_then_pays_once(app, funded):
    assert payouts.run_pass().scheduled == 0  # the hold (14 days) has not passed
    _after_hold(funded)
    summary = payouts.run_pass()
    db.session.expire_all()
    payout = payouts.payout_of(funded)
    books = payouts.books(funded)
    assert summary.scheduled == 1 and summary.outcomes == {payout.id: "paid"}
    assert payout.state == "paid" and payout.amount == books.due > 0 and books.paid == books.due
    assert books.collected == 11000 and books.platform_fee == 550
    [transfer] = _transfers(funded)
    assert transfer.amount == payout.amount and transfer.destination == payouts.account_for(funded.creator).stripe_account_id
    assert transfer.metadata == {"payout": str(payout.id), "campaign": str(funded.id)}
    kinds = sorted(db.session.scalars(select(LedgerEntry.kind).where(LedgerEntry.campaign_id == funded.id)).all())
    assert kinds == ["charge", "charge", "fee", "fee", "transfer"]
    assert "payout_paid" in db.session.scalars(select(OutboxMessage.kind)).all()
    # Again: nothing more.
    assert payouts.run_pass().outcomes == {} and len(_transfers(funded)) == 1
    page = _creator_page(app, funded)
    assert "Paid" in page and payout.transfer_id in page and "Every money movement" in page


def _creator_page(app, campaign: Campaign) -> str:
    client = app.test_client()
    login(client, campaign.creator.email)
    response = client.get(f"/me/campaigns/{campaign.slug}/payout")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_a_pass_that_died_after_committing_asks_stripe_first(app, funded):
    _after_hold(funded)
    payout = payouts.schedule(funded, clock.utcnow())
    # Killed after the `sending` row was committed and Stripe made the transfer, before the answer was saved.
    payout.state, payout.tries = "sending", 1
    payout.stripe_account_id = payouts.account_for(funded.creator).stripe_account_id
    db.session.commit()
    made = gateway.create_transfer(payout.amount, "USD", payout.stripe_account_id, group=payouts.transfer_group(payout),
                                   metadata={"payout": str(payout.id), "campaign": str(funded.id)}, idempotency_key=payout.idempotency_key)
    assert payouts.run_pass().outcomes == {payout.id: "paid (found at Stripe)"}
    db.session.expire_all()
    assert payouts.payout_of(funded).transfer_id == made.id and len(_transfers(funded)) == 1


def test_a_pass_that_died_before_stripe_heard_sends_it_once(app, funded):
    _after_hold(funded)
    payout = payouts.schedule(funded, clock.utcnow())
    payout.state, payout.tries = "sending", 1  # committed; Stripe never heard of it
    payout.stripe_account_id = payouts.account_for(funded.creator).stripe_account_id
    db.session.commit()
    assert payouts.run_pass().outcomes == {payout.id: "paid"}
    assert len(_transfers(funded)) == 1


def test_stripe_refuses_the_transfer_then_it_is_tried_again(app, funded):
    _after_hold(funded)
    payout = payouts.schedule(funded, clock.utcnow())
    payout.amount = 10**11  # more than the platform holds: Stripe answers balance_insufficient
    db.session.commit()
    assert payouts.run_pass().outcomes == {payout.id: "refused"}
    db.session.expire_all()
    payout = payouts.payout_of(funded)
    assert payout.state == "failed" and "balance_insufficient" in payout.last_error and payout.next_try_at > clock.utcnow()
    assert payouts.run_pass().outcomes == {}  # not before next_try_at
    payout.amount = payouts.books(funded).due
    db.session.commit()
    clock.advance(payouts.RETRY_AFTER + timedelta(minutes=1))
    assert payouts.run_pass().outcomes == {payout.id: "paid"}
    db.session.expire_all()
    assert payouts.payout_of(funded).tries == 2 and len(_transfers(funded)) == 1


def test_a_moderator_holds_and_releases_the_payout(app, funded):
    moderator = make_user("mod@example.com", moderator=True)
    client = app.test_client()
    login(client, moderator.email)
    url = f"/moderation/campaigns/{funded.slug}/payout"
    response = client.post(url, data={"decision": "hold", "note": ""})
    assert response.status_code == 422 and "Say why the payout is held" in response.get_data(as_text=True)
    assert client.post(url, data={"decision": "hold", "note": "A backer disputes the delivery."}).status_code == 302
    _after_hold(funded)
    assert payouts.run_pass().outcomes == {} and payouts.payout_of(funded) is None
    assert "The payout is held" in _creator_page(app, funded)
    assert client.post(url, data={"decision": "release", "note": "Settled with the backer."}).status_code == 302
    assert list(payouts.run_pass().outcomes.values()) == ["paid"]
    actions = db.session.scalars(select(CampaignEvent.action).where(CampaignEvent.campaign_id == funded.id)).all()
    assert actions.count("payout_hold") == 1 and actions.count("payout_release") == 1
    review = client.get(f"/moderation/campaigns/{funded.slug}").get_data(as_text=True)
    assert "payout held" in review and "payout released" in review


def _settle_and_pay(campaign: Campaign):
    """Past the deadline, settle; past the hold, a payout pass; returns the campaign's open hold."""
    clock.set_offset(timedelta(days=31))
    settlement.run_pass()
    db.session.expire_all()
    campaign = db.session.get(Campaign, campaign.id)
    _after_hold(campaign)
    payouts.run_pass()
    return payouts.open_hold(campaign)


def test_warning_signs_hold_the_payout_automatically(app, localstripe):
    owner = make_user("risky@example.com")
    campaign = make_campaign(owner, "live", tiers=1, goal=1000, currency="USD")
    clock.set_offset(timedelta(hours=1))  # every backer signs up after the launch
    for n in range(5):
        client = app.test_client()
        backer(client, f"late-{n}@example.com")
        pledge_with_card(client, localstripe, campaign, card=CARD_OK, amount="10")
    hold = _settle_and_pay(campaign)
    assert hold is not None and hold.kind == "risk" and "5 of 5 pledges come from accounts created after launch" in hold.note
    assert payouts.payout_of(db.session.get(Campaign, campaign.id)) is None


def test_a_refund_after_the_payout_reverses_the_transfer_first(app, funded):
    _after_hold(funded)
    payouts.run_pass()
    db.session.expire_all()
    paid = payouts.books(funded).paid
    pledge = db.session.scalar(select(Pledge).where(Pledge.campaign_id == funded.id, Pledge.amount == 5000))
    moderator = make_user("mod@example.com", moderator=True)
    client = app.test_client()
    login(client, moderator.email)
    response = client.post(f"/moderation/pledges/{pledge.id}/refund", data={"note": "Never delivered."})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Pledge, pledge.id).state == "refunded"
    [transfer] = _transfers(funded)
    assert transfer.amount_reversed == 5000
    books = payouts.books(funded)
    assert books.reversed == 5000 and books.paid == paid - 5000
    payouts.refresh_ledger(funded)
    assert payouts.books(funded).refunded == 5000


def test_pages_need_the_right_person(app, funded):
    stranger = app.test_client()
    make_user("stranger@example.com")
    login(stranger, "stranger@example.com")
    assert stranger.get(f"/me/campaigns/{funded.slug}/payout").status_code == 403
    assert stranger.post(f"/moderation/campaigns/{funded.slug}/payout", data={"decision": "hold", "note": "x"}).status_code in (403, 404)
    assert app.test_client().get("/me/payouts").status_code == 302  # log in first
    assert re.search(r"/auth/login", app.test_client().get("/me/payouts").location)


# --- reconciliation --------------------------------------------------------------------------

def test_reconciliation_finds_each_kind_of_difference(app, funded, runner):
    _after_hold(funded)
    payouts.run_pass()
    result = runner.invoke(args=["reconcile", "--campaign", funded.slug])
    assert result.exit_code == 0, result.output
    assert "1 campaigns checked, 0 differences" in result.output
    # A charge Stripe has that we do not: a PaymentIntent for one of the campaign's pledges, made behind our back.
    pledge = db.session.scalar(select(Pledge).where(Pledge.campaign_id == funded.id, Pledge.amount == 6000))
    stray = gateway.charge(pledge.id, 99, uuid.uuid4().hex, 1234, "USD", pledge.backer.stripe_customer_id, pledge.payment_method_id).id
    # An amount that differs, and a transfer our ledger does not have.
    charge = db.session.scalar(select(LedgerEntry).where(LedgerEntry.campaign_id == funded.id, LedgerEntry.kind == "charge",
                                                         LedgerEntry.pledge_id != pledge.id))
    charge.amount += 1
    transfer = db.session.scalar(select(LedgerEntry).where(LedgerEntry.campaign_id == funded.id, LedgerEntry.kind == "transfer"))
    db.session.delete(transfer)
    db.session.commit()
    result = runner.invoke(args=["reconcile", "--campaign", funded.slug])
    assert result.exit_code == 1
    assert f"charge {stray} of 1234 at Stripe is not in our ledger" in result.output
    assert f"charge {charge.stripe_id} is {charge.amount} in our ledger but {charge.amount - 1} at Stripe" in result.output
    assert f"transfer {transfer.stripe_id} of {transfer.amount} at Stripe is not in our ledger" in result.output
    assert "3 differences" in result.output
    moderator = make_user("mod@example.com", moderator=True)
    client = app.test_client()
    login(client, moderator.email)
    queue = client.get("/moderation").get_data(as_text=True)
    assert "found 3 differences" in queue and stray in queue


def test_backers_sharing_one_card_hold_the_payout(app, localstripe):
    owner = make_user("shared@example.com")
    campaign = make_campaign(owner, "live", tiers=1, goal=1000, currency="USD")
    tag = uuid.uuid4().hex[:8]
    for n in range(3):  # three accounts, one card (the same 4242 number: the same fingerprint)
        client = app.test_client()
        backer(client, f"same-card-{n}-{tag}@example.com")
        pledge_with_card(client, localstripe, campaign, card=CARD_OK, amount="10")
    assert len(set(db.session.scalars(select(Pledge.card_fingerprint)).all())) == 1
    hold = _settle_and_pay(campaign)
    assert hold is not None and hold.kind == "risk" and "3 backers paid with the same card." in hold.note


def test_stripe_unreachable_during_the_transfer_then_paid_once(app, funded, localstripe, monkeypatch):
    _after_hold(funded)
    monkeypatch.setitem(app.config, "STRIPE_API_BASE", "http://127.0.0.1:9")  # nobody listens there
    monkeypatch.setitem(app.config, "STRIPE_MAX_RETRIES", 0)
    [outcome] = payouts.run_pass().outcomes.values()
    assert outcome == "stripe unavailable"
    db.session.expire_all()
    payout = payouts.payout_of(funded)
    assert payout.state == "sending" and payout.tries == 1  # maybe sent, maybe not: asked before anything else
    monkeypatch.setitem(app.config, "STRIPE_API_BASE", localstripe)
    clock.advance(payouts.LEASE + timedelta(minutes=1))
    assert payouts.run_pass().outcomes == {payout.id: "paid"}
    assert len(_transfers(funded)) == 1


def test_a_refused_reversal_refunds_nothing_and_says_why(app, funded):
    _after_hold(funded)
    payouts.run_pass()
    db.session.expire_all()
    payout = payouts.payout_of(funded)
    # The whole transfer was taken back at Stripe behind our back: nothing is left to reverse.
    gateway.reverse_transfer(payout.transfer_id, payout.amount, metadata={}, idempotency_key=f"test-{uuid.uuid4()}")
    pledge = db.session.scalar(select(Pledge).where(Pledge.campaign_id == funded.id, Pledge.amount == 6000))
    moderator = make_user("mod@example.com", moderator=True)
    client = app.test_client()
    login(client, moderator.email)
    page = client.post(f"/moderation/pledges/{pledge.id}/refund", data={"note": "Never delivered."}, follow_redirects=True)
    assert "could not be reversed, so nothing was refunded" in page.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Pledge, pledge.id).state == "collected"


def test_the_workers_ledger_sync_costs_the_same_statements_for_one_campaign_or_many(app, funded):
    """The payout pass keeps every recent funded campaign's ledger current in a fixed number of statements:
    a pass is never a loop of queries over campaigns."""
    def sync() -> int:
        with counting() as statements:
            payouts.sync_recent_ledgers(clock.utcnow())
        return len(statements)

    assert sync() == 3  # two reads of what is missing, one insert
    assert db.session.scalar(select(func.count(LedgerEntry.id)).where(LedgerEntry.campaign_id == funded.id)) == 4
    alone = sync()
    for n in range(3):
        make_campaign(make_user(f"other-maker-{n}@example.com"), "successful")
    assert sync() == alone == 2
    # Nothing new: nothing written again.
    assert db.session.scalar(select(func.count(LedgerEntry.id))) == 4


def test_the_dashboards_money_report_reads_the_ledger(app, funded):
    """Once the worker's pass has written the ledger, the creator's money report shows its figures —
    collected, fees, net and what was paid — and the payout page only reads (a GET writes nothing)."""
    client = app.test_client()
    login(client, funded.creator.email)
    before = db.session.scalar(select(func.count(LedgerEntry.id)).where(LedgerEntry.campaign_id == funded.id))
    client.get(f"/me/campaigns/{funded.slug}/payout")
    assert db.session.scalar(select(func.count(LedgerEntry.id)).where(LedgerEntry.campaign_id == funded.id)) == before == 0
    _after_hold(funded)
    payouts.run_pass()
    db.session.expire_all()
    books = payouts.books(funded)
    # A fee Stripe corrected later, written in the ledger only: the report follows the ledger.
    fee = db.session.scalars(select(LedgerEntry).where(LedgerEntry.campaign_id == funded.id, LedgerEntry.kind == "fee")).first()
    fee.amount += 7
    db.session.commit()
    page = client.get("/me/campaigns").get_data(as_text=True)
    report = page[page.index('class="card mb-3 money-report"'):]
    stripe_fee = re.search(r'class="stripe-fee".*?<td class="text-end text-nowrap">− ([^<]+)</td>', report, re.S).group(1)
    assert stripe_fee == money.format_money(books.stripe_fees + 7, "USD", "en")
    net = re.search(r'class="net-payout.*?<td class="text-end text-nowrap">([^<]+)</td>', report, re.S).group(1)
    assert net == money.format_money(books.due - 7, "USD", "en")
    paid = re.search(r'class="paid-out".*?<td class="text-end text-nowrap">([^<]+)</td>', report, re.S).group(1)
    assert paid == money.format_money(books.paid, "USD", "en")
