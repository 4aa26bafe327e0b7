"""Recovering failed payments from the backer's page, and moderator refunds, against a real localstripe."""
from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app import clock
from app.extensions import db
from app.notifications.models import OutboxMessage
from app.payments import gateway
from app.pledges.models import Pledge, PledgeEvent
from app.settlement import refunds
from app.settlement import services as settlement
from app.settlement.models import ChargeAttempt
from tests.factories import login, make_campaign, make_user
from tests.localstripe_fixture import (
    CARD_AUTHENTICATE,
    CARD_DECLINE_ON_CHARGE,
    CARD_OK,
    browser_authenticate_payment,
    browser_client,
    browser_confirm_setup,
)
from tests.test_pledges import JSON, pledge_with_card
from tests.test_settlement import _succeeded

CARDS = {"ok": (CARD_OK, "40"), "auth": (CARD_AUTHENTICATE, "41"), "declined": (CARD_DECLINE_ON_CHARGE, "42")}


@pytest.fixture
def funded(app, localstripe):
    """A $100 campaign past its deadline and settled once: 40 collected, 41 waits for authentication,
    42 declined. Returns the logged-in clients of the backers, by role ("ok", "auth", "declined").

    localstripe lives for the whole session and Stripe customers are found by email, so each test's
    backers get fresh addresses: PaymentIntents of earlier tests never count as theirs."""
    creator = make_user("creator@example.com")
    campaign = make_campaign(creator, "live", tiers=1, goal=10000, currency="USD")
    run = uuid.uuid4().hex[:8]
    clients = {}
    for role, (card, amount) in CARDS.items():
        client = app.test_client()
        email = f"{role}-{run}@example.com"
        make_user(email)
        login(client, email)
        pledge_with_card(client, localstripe, campaign, card=card, tier=campaign.tiers[0].id, amount=amount)
        clients[role] = client
        client.email = email
    clock.set_offset(timedelta(days=31))
    settlement.run_pass()
    return clients


def _pledge(amount: int) -> Pledge:
    db.session.expire_all()
    return db.session.scalar(select(Pledge).where(Pledge.amount == amount))


def _flashes(client, response) -> str:
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return client.get(response.headers["Location"]).get_data(as_text=True)


# --- the backer authenticates --------------------------------------------------------------------

def test_authentication_completed_through_the_page(app, localstripe, funded):
    client = funded["auth"]
    pledge = _pledge(4100)
    assert pledge.state == "errored"
    page = client.get(f"/pledges/{pledge.id}").get_data(as_text=True)
    assert "Fix your payment" in page and "Confirm payment" in page and "Use another card" in page
    until = pledge.failed_at + timedelta(days=app.config["PAYMENT_RETRY_DAYS"])
    assert until.strftime("%Y-%m-%d %H:%M UTC") in page
    assert 'id="authenticate-form"' in page and f'action="/pledges/{pledge.id}/payment"' in page
    secret = re.search(r'data-client-secret="([^"]+)"', page).group(1)
    # Posting before the bank's check changes nothing: the server asks Stripe, not the browser.
    follow = _flashes(client, client.post(f"/pledges/{pledge.id}/payment"))
    assert "not confirmed yet" in follow and _pledge(4100).state == "errored"
    # Stripe.js's confirmCardPayment: the backer completes the bank's check, then the form posts.
    assert browser_authenticate_payment(localstripe, secret) == "succeeded"
    follow = _flashes(client, client.post(f"/pledges/{pledge.id}/payment"))
    assert "Your payment went through" in follow
    assert _pledge(4100).state == "collected"
    assert "pledge_collected" in db.session.scalars(select(OutboxMessage.kind).where(OutboxMessage.recipient == client.email)).all()
    # A second post and the next daily pass change nothing.
    client.post(f"/pledges/{pledge.id}/payment")
    clock.set_offset(timedelta(days=33))
    settlement.run_pass()
    assert _succeeded(localstripe, [pledge.id]) == {pledge.id: 1}


def test_failed_authentication_keeps_the_pledge_errored(app, localstripe, funded):
    client = funded["auth"]
    pledge = _pledge(4100)
    secret = settlement.authentication_secret(pledge)
    assert browser_authenticate_payment(localstripe, secret, success=False) != "succeeded"
    follow = _flashes(client, client.post(f"/pledges/{pledge.id}/payment"))
    assert "not confirmed yet" in follow and _pledge(4100).state == "errored"


# --- the backer gives another card ---------------------------------------------------------------

def test_new_card_fixes_a_declined_pledge(app, localstripe, funded):
    client = funded["declined"]
    pledge = _pledge(4200)
    old_card = pledge.payment_method_id
    page = client.get(f"/pledges/{pledge.id}").get_data(as_text=True)
    failure = db.session.scalar(select(ChargeAttempt).where(ChargeAttempt.pledge_id == pledge.id))
    assert failure.status == "failed" and failure.decline_code == "card_declined"
    # Why, in the backer's words (Stripe's English message stays in the attempt's record, for the log).
    assert "Your card was declined. Please use another card or contact your bank." in page
    assert 'id="authenticate-form"' not in page  # the bank declined; it did not ask for authentication
    assert f'action="/pledges/{pledge.id}/fix-card"' in page and 'id="card-element"' in page
    data = client.post(f"/pledges/{pledge.id}/fix-card", headers=JSON).get_json()
    assert data["confirm_url"] == f"/pledges/{pledge.id}/fix-card/confirm"
    setup_id = data["client_secret"].split("_secret_")[0]
    assert browser_confirm_setup(localstripe, setup_id, CARD_OK) == "succeeded"
    follow = _flashes(client, client.post(data["confirm_url"], data={"setup_intent": setup_id}))
    assert "Your payment went through" in follow
    pledge = _pledge(4200)
    assert pledge.state == "collected" and pledge.card_last4 == "4242" and pledge.payment_method_id != old_card
    assert _succeeded(localstripe, [pledge.id]) == {pledge.id: 1}
    assert browser_client(localstripe).v1.payment_methods.retrieve(old_card).customer is None
    # The confirmation posted twice, and the passes of the following days, charge nothing more.
    client.post(data["confirm_url"], data={"setup_intent": setup_id})
    for day in (32, 33):
        clock.set_offset(timedelta(days=day))
        settlement.run_pass()
    assert _succeeded(localstripe, [pledge.id]) == {pledge.id: 1}
    assert db.session.scalar(select(func.count(ChargeAttempt.id)).where(ChargeAttempt.pledge_id == pledge.id, ChargeAttempt.status == "succeeded")) == 1


def test_a_new_card_declined_too_stays_errored(app, localstripe, funded):
    client = funded["declined"]
    pledge = _pledge(4200)
    data = client.post(f"/pledges/{pledge.id}/fix-card", headers=JSON).get_json()
    setup_id = data["client_secret"].split("_secret_")[0]
    browser_confirm_setup(localstripe, setup_id, CARD_DECLINE_ON_CHARGE)
    follow = _flashes(client, client.post(data["confirm_url"], data={"setup_intent": setup_id}))
    assert "did not go through" in follow
    again = _pledge(4200)
    assert again.state == "errored" and again.failed_at == pledge.failed_at  # the window does not restart
    assert _succeeded(localstripe, [pledge.id]) == {}


def test_fixing_is_only_for_errored_pledges_in_the_window(app, localstripe, funded):
    collected = _pledge(4000)
    ok = funded["ok"]
    response = ok.post(f"/pledges/{collected.id}/fix-card", headers=JSON)
    assert response.status_code == 422 and "failed" in str(response.get_json())
    assert "there is no payment to confirm" in _flashes(ok, ok.post(f"/pledges/{collected.id}/payment"))
    assert "Fix your payment" not in ok.get(f"/pledges/{collected.id}").get_data(as_text=True)
    declined = _pledge(4200)
    client = funded["declined"]
    clock.set_offset(timedelta(days=31 + 8))  # the 7-day window is over (the pass has not dropped it yet)
    response = client.post(f"/pledges/{declined.id}/fix-card", headers=JSON)
    assert response.status_code == 422 and "over" in str(response.get_json())
    page = client.get(f"/pledges/{declined.id}").get_data(as_text=True)
    assert "time to fix this payment ended" in page and 'id="card-form"' not in page


def test_other_members_get_404(app, localstripe, funded):
    pledge = _pledge(4100)
    nosy = funded["ok"]  # a backer of the same campaign, not of this pledge
    assert nosy.post(f"/pledges/{pledge.id}/payment").status_code == 404
    assert nosy.post(f"/pledges/{pledge.id}/fix-card", headers=JSON).status_code == 404
    assert nosy.post(f"/pledges/{pledge.id}/fix-card/confirm", data={"setup_intent": "seti_x"}).status_code == 404
    assert nosy.get(f"/pledges/{pledge.id}").status_code == 404
    assert app.test_client().post(f"/pledges/{pledge.id}/payment").status_code == 302  # visitors: log in first
    assert _pledge(4100).state == "errored"


# --- moderator refunds ---------------------------------------------------------------------------

def _refunds_at_stripe(pledge: Pledge) -> list:
    intent = db.session.scalar(select(ChargeAttempt.payment_intent_id).where(ChargeAttempt.pledge_id == pledge.id, ChargeAttempt.status == "succeeded"))
    return [r for r in gateway.read_refunds(intent) if r.counts]


@pytest.fixture
def moderator(app):
    user = make_user("mod@example.com", name="Mo Moderator", moderator=True)
    client = app.test_client()
    login(client, "mod@example.com")
    return user, client


def test_refund_needs_a_note_and_happens_once(app, localstripe, funded, moderator):
    mod, client = moderator
    pledge = _pledge(4000)
    url = f"/moderation/pledges/{pledge.id}/refund"
    page = client.get(url).get_data(as_text=True)
    assert 'name="note"' in page and "Refund this pledge" in page and "$40.00" in page
    response = client.post(url, data={"note": "   "})
    assert response.status_code == 422 and "Write why this pledge is refunded" in response.get_data(as_text=True)
    assert _pledge(4000).state == "collected" and _refunds_at_stripe(pledge) == []
    follow = _flashes(client, client.post(url, data={"note": "Fraud report confirmed"}))
    assert "is refunded" in follow
    pledge = _pledge(4000)
    assert pledge.state == "refunded" and pledge.refund_id.startswith("re_")
    [at_stripe] = _refunds_at_stripe(pledge)
    assert (at_stripe.id, at_stripe.amount) == (pledge.refund_id, 4000)
    event = db.session.scalar(select(PledgeEvent).where(PledgeEvent.pledge_id == pledge.id, PledgeEvent.action == "refund"))
    assert (event.from_state, event.to_state, event.actor_id, event.note) == ("collected", "refunded", mod.id, "Fraud report confirmed")
    assert db.session.scalar(select(PledgeEvent.note).where(PledgeEvent.pledge_id == pledge.id, PledgeEvent.action == "refund_requested")) == "Fraud report confirmed"
    mail = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "pledge_refunded"))
    assert mail.recipient == funded["ok"].email and "$40.00" in mail.body and "Fraud" not in mail.body
    # Twice is refused, and Stripe refunded once.
    response = client.post(url, data={"note": "again"})
    assert response.status_code == 422 and "Only a collected pledge" in response.get_data(as_text=True)
    with pytest.raises(refunds.RefundError):
        refunds.refund(_pledge(4000), mod, "and again")
    assert len(_refunds_at_stripe(pledge)) == 1
    assert "Refunded" in funded["ok"].get(f"/pledges/{pledge.id}").get_data(as_text=True)


def test_only_collected_pledges_are_refunded(app, localstripe, funded, moderator):
    mod, client = moderator
    errored = _pledge(4100)
    response = client.post(f"/moderation/pledges/{errored.id}/refund", data={"note": "Dispute"})
    assert response.status_code == 422 and "Only a collected pledge" in response.get_data(as_text=True)
    assert _pledge(4100).state == "errored"
    assert client.get("/moderation/pledges/999999/refund").status_code == 404
    with pytest.raises(refunds.RefundError):
        refunds.refund(_pledge(4000), make_user("member@example.com"), "not a moderator")


def test_interrupted_refund_is_finished_without_a_second_refund(app, localstripe, funded, moderator, monkeypatch):
    mod, _client = moderator
    pledge = _pledge(4000)

    def crash(*args, **kwargs):
        raise RuntimeError("the process died after Stripe refunded")

    monkeypatch.setattr(refunds, "_record", crash)
    with pytest.raises(RuntimeError):
        refunds.refund(pledge, mod, "Chargeback")
    monkeypatch.undo()
    db.session.rollback()
    assert _pledge(4000).state == "collected" and len(_refunds_at_stripe(pledge)) == 1
    # Meanwhile the crashed request still holds the pledge: a second moderator is told to wait.
    with pytest.raises(refunds.RefundError, match="already under way"):
        refunds.refund(_pledge(4000), mod, "Chargeback")
    clock.set_offset(timedelta(days=31, minutes=11))  # the lease ran out
    refunds.refund(_pledge(4000), mod, "Chargeback, second try")
    pledge = _pledge(4000)
    [at_stripe] = _refunds_at_stripe(pledge)
    assert pledge.state == "refunded" and pledge.refund_id == at_stripe.id


def test_members_get_403_on_refunds(app, localstripe, funded):
    pledge = _pledge(4000)
    member = funded["auth"]
    assert member.get(f"/moderation/pledges/{pledge.id}/refund").status_code == 403
    assert member.post(f"/moderation/pledges/{pledge.id}/refund", data={"note": "mine now"}).status_code == 403
    assert app.test_client().post(f"/moderation/pledges/{pledge.id}/refund", data={"note": "x"}).status_code == 302
    assert _pledge(4000).state == "collected" and _refunds_at_stripe(pledge) == []


def test_refund_form_needs_csrf(make_app, app, localstripe, funded, moderator):
    protected = make_app(WTF_CSRF_ENABLED=True)
    client = protected.test_client()
    with protected.app_context():
        login_page = client.get("/auth/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', login_page).group(1)
        client.post("/auth/login", data={"email": "mod@example.com", "password": "correct horse battery", "csrf_token": token})
        pledge = _pledge(4000)
        assert client.post(f"/moderation/pledges/{pledge.id}/refund", data={"note": "no token"}).status_code == 400
        assert client.post(f"/pledges/{_pledge(4100).id}/payment").status_code == 400
        page = client.get(f"/moderation/pledges/{pledge.id}/refund").get_data(as_text=True)
        assert 'name="csrf_token"' in page
    assert _pledge(4000).state == "collected"


# --- the gateway verb ----------------------------------------------------------------------------

def test_gateway_reads_refunds(app, localstripe, funded):
    intent = db.session.scalar(select(ChargeAttempt.payment_intent_id).where(ChargeAttempt.status == "succeeded"))
    assert gateway.read_refunds(intent) == []
    made = gateway.refund(intent, 1000, idempotency_key="test-read-refunds")
    [found] = gateway.read_refunds(intent)
    assert (found.id, found.amount, found.counts) == (made.id, 1000, True)
    with pytest.raises(gateway.GatewayError):
        gateway.read_refunds("not-an-intent")
