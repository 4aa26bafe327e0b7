"""POST /stripe/webhook over real HTTP, against a real localstripe: signed events are stored once, handed on
once, and never trusted; anything else is refused with 400.

The app is served by a real threaded HTTP server in the test process, so that localstripe can deliver
its own signed events to it, and so that concurrent deliveries are really concurrent (one thread, one
app context, one database session each).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from app import clock
from app.campaigns.models import Tier
from app.extensions import db
from app.notifications.models import OutboxMessage
from app.payments import gateway
from app.payments.localstripe_server import register_webhook
from app.pledges.models import Pledge, PledgeEvent
from app.webhooks import services as webhooks
from app.webhooks.models import StripeEvent
from tests.factories import login, make_campaign, make_user
from tests.localstripe_fixture import CARD_DECLINE_ON_SETUP, CARD_OK, browser_confirm_setup

HOOK_ID = "threshold-webhook-tests"
JSON = {"Accept": "application/json"}


# --- a real server, signing, posting -----------------------------------------------------------------

@pytest.fixture
def server(app, localstripe) -> Iterator[str]:
    """The app served over HTTP on 127.0.0.1; yields the webhook's URL. localstripe is told to stop
    sending to it before it stops (its deliveries check the registration when they leave)."""
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, name="webhook-server", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{http.server_port}/stripe/webhook"
    yield url
    register_webhook(localstripe, HOOK_ID, url, "whsec_off", events=["threshold.nothing"])
    http.shutdown()
    thread.join(10)


@pytest.fixture
def secret(app) -> str:
    return app.config["STRIPE_WEBHOOK_SECRET"]


def sign(payload: bytes, secret: str, at: int | None = None) -> str:
    """Stripe's scheme: t=<unix time>,v1=HMAC-SHA256(secret, "<t>.<payload>") in hex."""
    at = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), str(at).encode() + b"." + payload, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def event(type_: str, obj: dict, *, livemode: bool = False, event_id: str | None = None) -> bytes:
    return json.dumps({
        "id": event_id or f"evt_test_{secrets.token_hex(8)}", "object": "event", "type": type_,
        "livemode": livemode, "created": int(time.time()), "api_version": "2024-06-20", "data": {"object": obj},
    }).encode()


def post(url: str, payload: bytes, signature: str | None) -> tuple[int, dict | None]:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    request = urllib.request.Request(url, data=payload, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    try:
        return status, json.loads(body)
    except ValueError:
        return status, None


def wait_for(find: Callable[[], object], timeout: float = 10.0):
    """Poll the database (the server commits in its own threads) until `find` returns something."""
    deadline = time.monotonic() + timeout
    while True:
        db.session.rollback()  # a fresh look: every row the test made is committed already
        found = find()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def stored(event_id: str) -> StripeEvent | None:
    db.session.rollback()
    return db.session.get(StripeEvent, event_id)


def count(model, *where) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def counting(monkeypatch, event_type: str, pause: float = 0.0) -> list[str]:
    """Wrap the handler of `event_type` so that the test can count how often it really ran."""
    calls: list[str] = []
    original = webhooks.HANDLERS[event_type]

    def handler(evt):
        calls.append(evt.id)
        time.sleep(pause)  # hold the claim a while, so that concurrent deliveries really overlap
        return original(evt)

    monkeypatch.setitem(webhooks.HANDLERS, event_type, handler)
    return calls


# --- pledges to talk about ---------------------------------------------------------------------------

@pytest.fixture
def campaign(app):
    creator = make_user("creator@example.com", name="Cat Creator")
    live = make_campaign(creator, "live", tiers=1, title="Solar Lantern")
    live.tiers[0].quantity_limit = 3
    db.session.commit()
    return live


def pending_pledge(app, localstripe, campaign, email: str, card: str | None = CARD_OK, tier: bool = True):
    """A backer's pending pledge whose SetupIntent the browser confirmed with `card` (None: not at all),
    without the page's own confirmation POST. Returns (client, confirm_url, pledge)."""
    client = app.test_client()
    make_user(email, name="Bao Backer")
    login(client, email)
    data = client.post(f"/campaigns/{campaign.slug}/pledge",
                       data={"tier": str(campaign.tiers[0].id) if tier else "", "amount": "25"}, headers=JSON).get_json()
    setup_id = data["client_secret"].split("_secret_")[0]
    if card:
        browser_confirm_setup(localstripe, setup_id, card)
    pledge = db.session.scalar(select(Pledge).where(Pledge.setup_intent_id == setup_id))
    assert pledge is not None and pledge.state == "pending"
    return client, data["confirm_url"], pledge


def setup_event(pledge: Pledge, type_: str = "setup_intent.succeeded", **extra) -> bytes:
    """What Stripe would send, as far as the payload goes (the app must not believe its status)."""
    return event(type_, {"id": pledge.setup_intent_id, "object": "setup_intent", "status": "succeeded",
                         "customer": pledge.backer.stripe_customer_id, **extra})


def state_of(pledge_id: int) -> str:
    db.session.rollback()
    return db.session.get(Pledge, pledge_id).state


def activations(pledge_id: int) -> int:
    return count(PledgeEvent, PledgeEvent.pledge_id == pledge_id, PledgeEvent.action == "activate")


# --- localstripe's own deliveries --------------------------------------------------------------------

def test_localstripe_events_arrive_signed_and_are_stored(app, server, localstripe, secret, campaign):
    register_webhook(localstripe, HOOK_ID, server, secret, events=["customer.created", "payment_intent.succeeded"])
    # A new email: localstripe keeps its customers for the session, and an old one makes no customer.created.
    client, url, pledge = pending_pledge(app, localstripe, campaign, f"backer-{secrets.token_hex(4)}@example.com")
    assert client.post(url, data={"setup_intent": pledge.setup_intent_id}).status_code == 302
    pledge = db.session.get(Pledge, pledge.id)
    customer = pledge.backer.stripe_customer_id
    assert pledge.state == "active" and customer

    # Settlement's way of charging: one request, created and confirmed off-session.
    state = gateway.charge(pledge.id, 1, uuid.uuid4().hex, pledge.amount, pledge.currency, customer, pledge.payment_method_id)
    assert state.succeeded
    intent = state.id

    charged = wait_for(lambda: db.session.scalar(select(StripeEvent).where(
        StripeEvent.object_id == intent, StripeEvent.processed_at.is_not(None))))
    assert charged, "localstripe's payment_intent.succeeded never arrived"
    assert charged.type == "payment_intent.succeeded" and charged.id.startswith("evt_")
    assert charged.attempts == 1 and charged.received_at <= charged.processed_at
    # Handed to settlement, which reads the PaymentIntent from Stripe itself (or is not there yet).
    assert charged.outcome.startswith(("settlement", "ignored: pi_"))

    made = wait_for(lambda: db.session.scalar(select(StripeEvent).where(
        StripeEvent.object_id == customer, StripeEvent.type == "customer.created", StripeEvent.processed_at.is_not(None))))
    assert made and made.outcome == "ignored: not a type we act on"  # stored, answered 200, nothing done
    assert state_of(pledge.id) == "active"


# --- refused ----------------------------------------------------------------------------------------

def test_a_bad_signature_is_refused_and_nothing_stored(app, server, secret):
    payload = event("customer.created", {"id": "cus_nobody", "object": "customer"})
    refused = {
        "no header": None,
        "another secret": sign(payload, "whsec_someone_else"),
        "garbage": "t=1,v1=00",
        "too old": sign(payload, secret, at=int(time.time()) - 3600),
    }
    for case, signature in refused.items():
        status, body = post(server, payload, signature)
        assert (status, body) == (400, {"error": "invalid signature"}), case
    # signed, then changed on the way
    status, body = post(server, payload.replace(b"cus_nobody", b"cus_somebody"), sign(payload, secret))
    assert (status, body) == (400, {"error": "invalid signature"})
    assert count(StripeEvent) == 0


def test_what_is_not_an_event_is_refused(app, server, secret):
    for payload in (b"not json", b"[1, 2]", json.dumps({"id": "evt_x", "type": "x"}).encode(),
                    json.dumps({"id": "evt_x", "type": "x", "data": {"object": "nope"}}).encode()):
        status, body = post(server, payload, sign(payload, secret))
        assert (status, body) == (400, {"error": "not a Stripe event"}), payload
    big = event("customer.created", {"id": "cus_big", "object": "customer", "padding": "x" * (1024 * 1024)})
    status, body = post(server, big, sign(big, secret))
    assert status == 413 and body and "error" in body
    assert count(StripeEvent) == 0


@pytest.mark.parametrize("event_id,type_,object_id", [
    ("evt_" + "a" * 300, "customer.created", "cus_1"),   # longer than the id column
    ("evt_a\u0000b", "customer.created", "cus_1"),        # a NUL (PostgreSQL refuses it in text)
    ("evt_a b", "customer.created", "cus_1"),
    ("nope", "customer.created", "cus_1"),
    ("evt_ok", "customer.created" + ".x" * 60, "cus_1"),  # longer than the type column
    ("evt_ok", "customer\u0000.created", "cus_1"),
    ("evt_ok", "customer.created", "cus_" + "b" * 300),
    ("evt_ok", "customer.created", "cus_\u0000"),
])
def test_finding_8_odd_event_id_is_400(app, server, secret, event_id, type_, object_id):
    """Issue 14: a signed event whose id, type or object id cannot be stored is refused, not a 500."""
    payload = event(type_, {"id": object_id, "object": "customer"}, event_id=event_id)
    status, body = post(server, payload, sign(payload, secret))
    assert (status, body) == (400, {"error": "not a Stripe event"})
    assert count(StripeEvent) == 0


def test_a_charge_naming_an_odd_payment_intent_is_ignored(app, server, secret):
    """The charge's `payment_intent` is a payload field the shape check above does not cover."""
    for odd in ("pi_a\u0000b", "pi_" + "x" * 600):
        payload = event("charge.refunded", {"id": "ch_1", "object": "charge", "payment_intent": odd})
        status, body = post(server, payload, sign(payload, secret))
        assert status == 200 and body["received"], body
    stored = db.session.scalars(select(StripeEvent)).all()
    assert [row.outcome for row in stored] == ["ignored: no payment intent id"] * 2


def test_a_live_mode_event_is_refused(app, server, secret):
    for payload in (event("customer.created", {"id": "cus_live", "object": "customer"}, livemode=True),
                    event("customer.created", {"id": "cus_live", "object": "customer", "livemode": True})):
        status, body = post(server, payload, sign(payload, secret))
        assert (status, body) == (400, {"error": "live-mode event refused"})
    assert count(StripeEvent) == 0


def test_only_post_and_no_csrf_token(app, make_app, secret):
    strict = make_app(WTF_CSRF_ENABLED=True)
    client = strict.test_client()
    payload = event("customer.created", {"id": "cus_strict", "object": "customer"})
    for _ in range(3):  # no CSRF token asked: the signature is Stripe's proof
        response = client.post("/stripe/webhook", data=payload, headers={"Stripe-Signature": sign(payload, secret)})
        assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["duplicate"] is True
    response = client.get("/stripe/webhook")
    assert response.status_code == 405 and response.is_json


# --- once each ---------------------------------------------------------------------------------------

def test_a_replay_is_answered_200_and_processed_once(app, server, localstripe, secret, campaign, monkeypatch):
    calls = counting(monkeypatch, "setup_intent.succeeded")
    _, _, pledge = pending_pledge(app, localstripe, campaign, "backer@example.com")
    payload = setup_event(pledge)
    first = post(server, payload, sign(payload, secret))
    assert first == (200, {"received": True, "id": json.loads(payload)["id"], "duplicate": False})
    # the same delivery again, and Stripe's own retry (the same event signed anew a little later)
    assert post(server, payload, sign(payload, secret))[1]["duplicate"] is True
    assert post(server, payload, sign(payload, secret, at=int(time.time()) + 5))[1]["duplicate"] is True
    row = stored(json.loads(payload)["id"])
    assert count(StripeEvent) == 1 and len(calls) == 1
    assert row.attempts == 1 and row.processed_at and row.claimed_at is None
    assert row.outcome == f"activated pledge {pledge.id}"
    assert state_of(pledge.id) == "active" and activations(pledge.id) == 1


def test_ten_concurrent_deliveries_process_once(app, server, localstripe, secret, campaign, monkeypatch):
    calls = counting(monkeypatch, "setup_intent.succeeded", pause=0.3)
    _, _, pledge = pending_pledge(app, localstripe, campaign, "backer@example.com")
    payload = setup_event(pledge)
    signature = sign(payload, secret)
    start = threading.Barrier(10)

    def deliver(_):
        start.wait()
        return post(server, payload, signature)

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(deliver, range(10)))
    assert [status for status, _ in answers] == [200] * 10
    assert sorted(body["duplicate"] for _, body in answers) == [False] + [True] * 9
    assert count(StripeEvent) == 1 and len(calls) == 1
    assert stored(json.loads(payload)["id"]).attempts == 1
    assert state_of(pledge.id) == "active" and activations(pledge.id) == 1
    assert db.session.get(Tier, campaign.tiers[0].id).claimed == 1


def test_a_failed_processing_is_done_again_on_the_next_delivery(app, server, localstripe, secret, campaign, monkeypatch):
    _, _, pledge = pending_pledge(app, localstripe, campaign, "backer@example.com")
    payload = setup_event(pledge)
    event_id = json.loads(payload)["id"]
    real = webhooks.HANDLERS["setup_intent.succeeded"]

    def unavailable(evt):
        raise gateway.StripeUnavailable(code="http_503")

    monkeypatch.setitem(webhooks.HANDLERS, "setup_intent.succeeded", unavailable)
    status, _ = post(server, payload, sign(payload, secret))
    assert status == 500  # so that Stripe delivers it again
    row = stored(event_id)
    assert row.processed_at is None and row.claimed_at is None and row.outcome == "failed: StripeUnavailable"
    assert state_of(pledge.id) == "pending"

    monkeypatch.setitem(webhooks.HANDLERS, "setup_intent.succeeded", real)
    assert post(server, payload, sign(payload, secret)) == (200, {"received": True, "id": event_id, "duplicate": False})
    row = stored(event_id)
    assert row.processed_at and row.attempts == 2 and row.outcome == f"activated pledge {pledge.id}"
    assert state_of(pledge.id) == "active" and activations(pledge.id) == 1
    assert post(server, payload, sign(payload, secret))[1]["duplicate"] is True


def test_a_claim_left_by_a_dead_process_is_taken_over_after_the_lease(app, server, secret):
    now = clock.utcnow()
    db.session.add_all([
        StripeEvent(id="evt_dead", type="customer.created", received_at=now - timedelta(hours=1), claimed_at=now - timedelta(hours=1)),
        StripeEvent(id="evt_busy", type="customer.created", received_at=now, claimed_at=now),
    ])
    db.session.commit()
    for event_id, duplicate in (("evt_dead", False), ("evt_busy", True)):
        payload = event("customer.created", {"id": "cus_x", "object": "customer"}, event_id=event_id)
        assert post(server, payload, sign(payload, secret))[1]["duplicate"] is duplicate
    dead, busy = stored("evt_dead"), stored("evt_busy")
    assert dead.processed_at and dead.attempts == 2 and dead.outcome == "ignored: not a type we act on"
    assert busy.processed_at is None and busy.attempts == 1  # still in the hands of its (living) process


# --- setup intents: never trust the payload, only move forward ---------------------------------------

def test_setup_succeeded_activates_a_pending_pledge(app, server, localstripe, secret, campaign):
    _, _, pledge = pending_pledge(app, localstripe, campaign, "backer@example.com")
    payload = setup_event(pledge)
    assert post(server, payload, sign(payload, secret))[0] == 200
    db.session.rollback()
    pledge = db.session.get(Pledge, pledge.id)
    assert pledge.state == "active" and pledge.card_last4 == "4242" and pledge.payment_method_id
    assert db.session.get(Tier, campaign.tiers[0].id).claimed == 1
    audit = db.session.scalar(select(PledgeEvent).where(PledgeEvent.pledge_id == pledge.id, PledgeEvent.action == "activate"))
    assert audit.actor_id is None and audit.note == "webhook"
    assert db.session.scalar(select(func.count(OutboxMessage.id)).where(OutboxMessage.kind == "pledge_confirmed")) == 1


@pytest.mark.parametrize("card", [None, CARD_DECLINE_ON_SETUP])
def test_a_setup_that_did_not_succeed_at_stripe_changes_nothing(app, server, localstripe, secret, campaign, card):
    _, _, pledge = pending_pledge(app, localstripe, campaign, "backer@example.com", card=card)
    payload = setup_event(pledge)  # says "succeeded"; Stripe says otherwise
    assert post(server, payload, sign(payload, secret))[0] == 200
    row = stored(json.loads(payload)["id"])
    assert row.outcome.startswith(f"ignored: pledge {pledge.id} stays pending (setup intent ") and row.processed_at
    assert state_of(pledge.id) == "pending" and activations(pledge.id) == 0
    assert db.session.get(Tier, campaign.tiers[0].id).claimed == 0


def test_a_setup_after_the_deadline_does_not_activate(app, server, localstripe, secret, campaign):
    _, _, pledge = pending_pledge(app, localstripe, campaign, "backer@example.com")
    clock.set_offset(timedelta(days=31))
    payload = setup_event(pledge)
    assert post(server, payload, sign(payload, secret))[0] == 200
    assert stored(json.loads(payload)["id"]).outcome.startswith(f"refused: pledge {pledge.id} is pending")
    assert state_of(pledge.id) == "pending" and activations(pledge.id) == 0
    assert db.session.get(Tier, campaign.tiers[0].id).claimed == 0


def test_setup_events_never_move_a_pledge_backward(app, server, localstripe, secret, campaign):
    client, url, pledge = pending_pledge(app, localstripe, campaign, "backer@example.com")
    assert client.post(url, data={"setup_intent": pledge.setup_intent_id}).status_code == 302
    assert state_of(pledge.id) == "active"
    for type_ in ("setup_intent.setup_failed", "setup_intent.succeeded"):
        payload = setup_event(pledge, type_, status="requires_payment_method")
        assert post(server, payload, sign(payload, secret))[0] == 200
        assert stored(json.loads(payload)["id"]).outcome == f"ignored: pledge {pledge.id} is active"
    assert client.post(f"/pledges/{pledge.id}/cancel").status_code == 302
    payload = setup_event(pledge)
    assert post(server, payload, sign(payload, secret))[0] == 200
    assert state_of(pledge.id) == "canceled" and activations(pledge.id) == 1
    unknown = event("setup_intent.succeeded", {"id": "seti_unknown", "object": "setup_intent", "status": "succeeded"})
    assert post(server, unknown, sign(unknown, secret))[0] == 200
    assert stored(json.loads(unknown)["id"]).outcome == "ignored: no pledge has this setup intent"


def test_the_webhook_and_the_backers_page_at_once_activate_once(app, server, localstripe, secret, campaign):
    client, url, pledge = pending_pledge(app, localstripe, campaign, "backer@example.com")
    payloads = [setup_event(pledge) for _ in range(4)]  # distinct events about the same SetupIntent
    start = threading.Barrier(len(payloads) + 1)

    def page():
        start.wait()
        return client.post(url, data={"setup_intent": pledge.setup_intent_id}).status_code

    def hook(payload):
        start.wait()
        return post(server, payload, sign(payload, secret))[0]

    with ThreadPoolExecutor(max_workers=len(payloads) + 1) as pool:
        from_page = pool.submit(page)
        from_hooks = list(pool.map(hook, payloads))
    assert from_page.result() == 302 and from_hooks == [200] * len(payloads)
    assert state_of(pledge.id) == "active" and activations(pledge.id) == 1
    assert db.session.get(Tier, campaign.tiers[0].id).claimed == 1
    pledge = db.session.get(Pledge, pledge.id)
    assert pledge.payment_method_id  # the card in use was not released by the request that lost
    method = gateway._client().stripe.v1.payment_methods.retrieve(pledge.payment_method_id)
    assert method.customer == pledge.backer.stripe_customer_id


# --- payment intents and charges: handed to settlement -----------------------------------------------

def test_payment_events_go_to_settlement(app, server, secret, localstripe):
    """A backer completes a charge's authentication; the payment_intent.succeeded event records it."""
    from datetime import timedelta

    from app import clock
    from app.settlement import services as settlement
    from tests.factories import make_campaign, make_user
    from tests.localstripe_fixture import CARD_AUTHENTICATE, browser_authenticate_payment
    from tests.test_pledges import backer, pledge_with_card

    campaign = make_campaign(make_user("owner@example.com"), "live", tiers=1, goal=1000)
    client = app.test_client()
    backer(client, "auth@example.com")
    pledge_with_card(client, localstripe, campaign, card=CARD_AUTHENTICATE, tier=campaign.tiers[0].id, amount="30")
    clock.set_offset(timedelta(days=31))
    settlement.run_pass()
    pledge = db.session.scalar(db.select(Pledge))
    assert pledge.state == "errored"
    client_secret = settlement.authentication_secret(pledge)
    assert browser_authenticate_payment(localstripe, client_secret) == "succeeded"
    intent_id = client_secret.split("_secret_")[0]
    cases = [
        ("payment_intent.succeeded", {"id": intent_id, "object": "payment_intent", "status": "succeeded"}),
        ("payment_intent.payment_failed", {"id": "pi_unknown", "object": "payment_intent", "status": "requires_payment_method"}),
        ("charge.refunded", {"id": "ch_five", "object": "charge", "payment_intent": None}),
    ]
    outcomes = []
    for type_, obj in cases:
        payload = event(type_, obj)
        assert post(server, payload, sign(payload, secret))[0] == 200
        outcomes.append(stored(json.loads(payload)["id"]).outcome)
    assert outcomes == ["settlement: collected", "ignored: pi_unknown is not one of our charges", "ignored: no payment intent id"]
    db.session.expire_all()
    assert db.session.get(Pledge, pledge.id).state == "collected"
