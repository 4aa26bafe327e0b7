"""payments.gateway against a real localstripe server over HTTP (no mocks of Stripe), plus its pace and
retries against a small faulty HTTP server placed in front of localstripe."""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from flask import Flask

import config as app_config
from app import create_app
from app.payments import gateway
from app.payments.gateway import CardDeclined, GatewayError, Pacer, StripeUnavailable, WebhookSignatureError
from app.payments.localstripe_server import register_webhook
from tests.localstripe_fixture import (
    CARD_AUTHENTICATE,
    CARD_DECLINE_ON_CHARGE,
    CARD_DECLINE_ON_SETUP,
    CARD_OK,
    Receiver,
    browser_client,
    browser_confirm_setup,
)

ROOT = Path(__file__).resolve().parent.parent
WEBHOOK_SECRET = "whsec_test"


def make_app(base_url: str, **overrides) -> Flask:
    config = app_config.TestConfig()
    config.SQLALCHEMY_DATABASE_URI = "sqlite://"
    config.STRIPE_API_BASE = base_url
    config.STRIPE_SECRET_KEY = "sk_test_x"
    config.STRIPE_PUBLISHABLE_KEY = ""
    config.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    config.STRIPE_MAX_REQUESTS_PER_SECOND = 1000.0  # the pace has its own tests below
    config.STRIPE_RETRY_BASE_SECONDS = 0.01
    config.STRIPE_RETRY_MAX_SECONDS = 0.05
    for key, value in overrides.items():
        setattr(config, key, value)
    return create_app(config)


@pytest.fixture(scope="module")
def gateway_app(localstripe: str) -> Flask:
    return make_app(localstripe)


@pytest.fixture
def ctx(gateway_app: Flask) -> Iterator[Flask]:
    with gateway_app.app_context():
        yield gateway_app


def new_customer() -> str:
    return gateway.ensure_customer(f"backer-{uuid.uuid4().hex[:10]}@example.test", "Ada Backer")


def saved_card(base_url: str, customer_id: str, number: str = CARD_OK) -> str:
    """Save a card the way a pledge does: SetupIntent, the browser confirms, we check; returns its pm id."""
    setup = gateway.start_card_setup(customer_id, {"pledge": "1"})
    assert browser_confirm_setup(base_url, setup.id, number) == "succeeded"
    result = gateway.read_setup(setup.id, customer_id)
    assert result.succeeded and result.payment_method_id
    return result.payment_method_id


# --- Customers and cards ----------------------------------------------------------------------------------

def test_ensure_customer_makes_one_then_finds_it(ctx):
    email = f"ada-{uuid.uuid4().hex[:8]}@example.test"
    made = gateway.ensure_customer(email, "Ada")
    assert made.startswith("cus_")
    assert gateway.ensure_customer(email, "Ada") == made  # found by email
    assert gateway.ensure_customer("someone-else@example.test", "X", existing_id=made) == made
    # A stored id that Stripe no longer knows: found again by email.
    assert gateway.ensure_customer(email, "Ada", existing_id="cus_doesnotexist") == made


def test_save_card_succeeds_and_attaches_it(ctx, localstripe):
    customer = new_customer()
    setup = gateway.start_card_setup(customer, {"pledge": "7", "campaign": "3"})
    assert setup.id.startswith("seti_") and setup.client_secret.startswith(setup.id + "_secret_")
    before = gateway.read_setup(setup.id, customer)
    assert before.status == "requires_payment_method" and not before.succeeded

    assert browser_confirm_setup(localstripe, setup.id, CARD_OK) == "succeeded"
    result = gateway.read_setup(setup.id, customer)
    assert result.succeeded and result.status == "succeeded"
    assert (result.card_brand, result.card_last4, result.customer_id) == ("visa", "4242", customer)
    # localstripe leaves it unattached; the gateway attached it, as Stripe would have.
    assert browser_client(localstripe).v1.payment_methods.retrieve(result.payment_method_id).customer == customer
    assert gateway.read_setup(setup.id, customer) == result  # reading again changes nothing


def test_save_card_that_asks_for_authentication(ctx, localstripe):
    customer = new_customer()
    setup = gateway.start_card_setup(customer, {})
    assert browser_confirm_setup(localstripe, setup.id, CARD_AUTHENTICATE, authenticate=None) == "requires_action"
    waiting = gateway.read_setup(setup.id, customer)
    assert waiting.status == "requires_action" and not waiting.succeeded

    failed = gateway.start_card_setup(customer, {})
    assert browser_confirm_setup(localstripe, failed.id, CARD_AUTHENTICATE, authenticate=False) == "canceled"
    assert not gateway.read_setup(failed.id, customer).succeeded

    done = gateway.start_card_setup(customer, {})
    assert browser_confirm_setup(localstripe, done.id, CARD_AUTHENTICATE, authenticate=True) == "succeeded"
    result = gateway.read_setup(done.id, customer)
    assert result.succeeded and result.card_last4 == "3184"


def test_card_refused_at_setup(ctx, localstripe):
    customer = new_customer()
    setup = gateway.start_card_setup(customer, {})
    assert browser_confirm_setup(localstripe, setup.id, CARD_DECLINE_ON_SETUP) == "canceled"
    assert not gateway.read_setup(setup.id, customer).succeeded


def test_setup_of_another_customer_is_refused(ctx, localstripe):
    victim, forger = new_customer(), new_customer()
    setup = gateway.start_card_setup(victim, {})
    browser_confirm_setup(localstripe, setup.id, CARD_OK)
    with pytest.raises(GatewayError) as refused:
        gateway.read_setup(setup.id, forger)
    assert refused.value.code == "wrong_customer"
    assert browser_client(localstripe).v1.payment_methods.list(params={"customer": forger, "type": "card"}).data == []

    with pytest.raises(GatewayError) as unknown:
        gateway.read_setup("seti_doesnotexist", forger)
    assert unknown.value.code == "not_found"
    with pytest.raises(GatewayError) as malformed:
        gateway.read_setup("seti_../../v1/customers", forger)
    assert malformed.value.code == "invalid_id"


def test_release_card_detaches_it_and_twice_is_fine(ctx, localstripe):
    customer = new_customer()
    card = saved_card(localstripe, customer)
    gateway.release_card(card)
    assert browser_client(localstripe).v1.payment_methods.retrieve(card).customer is None
    gateway.release_card(card)
    gateway.release_card("pm_doesnotexist")


# --- Charges ----------------------------------------------------------------------------------------------

def unconfirmed(localstripe: str, customer: str, card: str, amount: int) -> str:
    """A PaymentIntent created but not confirmed, as the earlier two-step settlement left them (and as a
    release deployed mid-settlement may find one): what `confirm_charge` finishes."""
    return browser_client(localstripe).v1.payment_intents.create(params={
        "amount": amount, "currency": "usd", "customer": customer, "payment_method": card,
        "payment_method_types": ["card"], "confirm": False}).id


@pytest.mark.parametrize(("amount", "currency"), [(2550, "USD"), (5000, "JPY")])
def test_charge_saved_card_in_one_request(ctx, localstripe, amount, currency):
    customer = new_customer()
    card = saved_card(localstripe, customer)
    started = uuid.uuid4().hex  # the attempt row's token
    state = gateway.charge(41, 1, started, amount, currency, customer, card)
    assert state.id.startswith("pi_")
    assert state.succeeded and state.status == "succeeded"
    assert (state.amount, state.currency) == (amount, currency)
    assert not (state.failed or state.needs_action or state.needs_confirmation)
    assert state.charge_id and state.charge_id.startswith("ch_")
    # Stripe's fee as its balance transaction reports it (localstripe: the list price, 2.9% + 30¢; 3.6% in yen).
    assert state.fee_amount == {"USD": 74 + 30, "JPY": 180}[currency]
    assert gateway.read_charge(state.id) == state
    metadata = browser_client(localstripe).v1.payment_intents.retrieve(state.id).metadata
    assert (metadata["pledge"], metadata["attempt"]) == ("41", "1")
    # The same attempt sent again (its answer was lost): the same PaymentIntent, not a second charge.
    assert gateway.charge(41, 1, started, amount, currency, customer, card) == state
    assert gateway.find_charge(customer, 41, 1, started) == state
    assert gateway.find_charge(customer, 41, 2, started) is None


def test_charge_with_the_key_of_other_parameters_is_refused(ctx, localstripe):
    customer = new_customer()
    card, other_card = saved_card(localstripe, customer), saved_card(localstripe, customer)
    started = uuid.uuid4().hex  # the attempt row's token
    made = gateway.charge(47, 1, started, 1500, "USD", customer, card)
    with pytest.raises(gateway.IdempotencyConflict):
        gateway.charge(47, 1, started, 1500, "USD", customer, other_card)
    assert gateway.find_charge(customer, 47, 1, started).id == made.id


def test_unconfirmed_charge_waits_for_confirmation_and_confirms_once(ctx, localstripe):
    customer = new_customer()
    card = saved_card(localstripe, customer)
    intent = unconfirmed(localstripe, customer, card, 1000)
    state = gateway.read_charge(intent)
    assert state.needs_confirmation and state.status == "requires_confirmation"
    assert not (state.succeeded or state.failed or state.needs_action) and state.charge_id is None

    assert gateway.confirm_charge(intent).succeeded
    # A second confirm (a lost answer, another worker) reports the state instead of charging again.
    again = gateway.confirm_charge(intent)
    assert again.succeeded and again.charge_id == gateway.read_charge(intent).charge_id


def test_off_session_charge_that_needs_authentication(ctx, localstripe):
    customer = new_customer()
    card = saved_card(localstripe, customer, CARD_AUTHENTICATE)
    state = gateway.charge(43, 1, uuid.uuid4().hex, 2500, "USD", customer, card)
    assert state.needs_action and state.failed and not state.succeeded
    assert state.decline_code == "authentication_required"
    assert state.error_message
    assert gateway.read_charge(state.id) == state


def test_off_session_charge_declined(ctx, localstripe):
    """Stripe's 402 card error names the PaymentIntent it made; its replay under the key is the same error."""
    customer = new_customer()
    card = saved_card(localstripe, customer, CARD_DECLINE_ON_CHARGE)
    started = uuid.uuid4().hex  # the attempt row's token
    state = gateway.charge(44, 1, started, 2500, "USD", customer, card)
    assert state.id.startswith("pi_")
    assert state.failed and not (state.succeeded or state.needs_action or state.needs_confirmation)
    assert state.status == "requires_payment_method"
    assert state.decline_code == "card_declined"
    assert state.error_message == "Your card was declined."
    assert gateway.read_charge(state.id).decline_code == "card_declined"
    assert gateway.charge(44, 1, started, 2500, "USD", customer, card).id == state.id


def test_unconfirmed_charge_declined_on_confirm(ctx, localstripe):
    customer = new_customer()
    card = saved_card(localstripe, customer, CARD_DECLINE_ON_CHARGE)
    intent = unconfirmed(localstripe, customer, card, 2500)
    state = gateway.confirm_charge(intent)
    assert state.failed and state.decline_code == "card_declined" and state.id == intent


def test_charges_from_many_threads(gateway_app, localstripe):
    """Settlement charges several pledges at once, each thread in its own app context."""
    with gateway_app.app_context():
        customer = new_customer()
        card = saved_card(localstripe, customer)
    started = uuid.uuid4().hex  # the attempt row's token
    results: dict[int, gateway.ChargeState] = {}

    def settle(n: int) -> None:
        with gateway_app.app_context():
            results[n] = gateway.charge(100 + n, 1, started, 1000 + n, "USD", customer, card)

    threads = [threading.Thread(target=settle, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({state.id for state in results.values()}) == 8
    assert all(state.succeeded for state in results.values())
    assert sorted(state.amount for state in results.values()) == [1000 + n for n in range(8)]


def test_charge_amount_checked_before_stripe(ctx):
    with pytest.raises(GatewayError) as small:
        gateway.charge(1, 1, uuid.uuid4().hex, 49, "USD", "cus_x", "pm_x")
    assert small.value.code == "invalid_amount"
    with pytest.raises(GatewayError):
        gateway.charge(1, 1, uuid.uuid4().hex, 1.5, "USD", "cus_x", "pm_x")  # type: ignore[arg-type]
    with pytest.raises(GatewayError) as currency:
        gateway.charge(1, 1, uuid.uuid4().hex, 5000, "XXX", "cus_x", "pm_x")
    assert currency.value.code == "invalid_currency"


def test_refund_in_part_then_by_charge_id(ctx, localstripe):
    customer = new_customer()
    card = saved_card(localstripe, customer)
    state = gateway.charge(45, 1, uuid.uuid4().hex, 3000, "USD", customer, card)
    intent = state.id

    partial = gateway.refund(intent, 500, idempotency_key="pledge-45-refund-1")
    assert partial.id.startswith("re_") and (partial.status, partial.amount) == ("succeeded", 500)
    full = gateway.refund(state.charge_id, idempotency_key="pledge-45-refund-2")
    assert full.amount == 3000  # localstripe: "the rest" is the whole amount again; Stripe would refuse it

    with pytest.raises(GatewayError):
        gateway.refund(intent, 0, idempotency_key="pledge-45-refund-3")


def test_refund_of_a_declined_charge_is_refused(ctx, localstripe):
    customer = new_customer()
    card = saved_card(localstripe, customer, CARD_DECLINE_ON_CHARGE)
    intent = gateway.charge(46, 1, uuid.uuid4().hex, 2500, "USD", customer, card).id
    with pytest.raises(GatewayError) as refused:
        gateway.refund(intent, idempotency_key="pledge-46-refund")
    assert not isinstance(refused.value, CardDeclined)


# --- Webhooks ---------------------------------------------------------------------------------------------

def signed(payload: bytes, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    """A Stripe-Signature header for `payload`, made with Stripe's scheme (t=…,v1=HMAC-SHA256)."""
    at = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{at}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


def event_payload(livemode: bool = False) -> bytes:
    return json.dumps({
        "id": "evt_test_1", "object": "event", "type": "payment_intent.succeeded", "livemode": livemode,
        "data": {"object": {"id": "pi_1", "object": "payment_intent", "status": "succeeded", "livemode": livemode}},
    }).encode()


def test_webhook_signed_with_the_secret_verifies(ctx):
    payload = event_payload()
    event = gateway.verify_webhook(payload, signed(payload))
    assert (event.id, event.type, event.livemode) == ("evt_test_1", "payment_intent.succeeded", False)
    assert event.object["id"] == "pi_1"


BAD_SIGNATURES = {
    "other secret": lambda: signed(event_payload(), secret="whsec_other"),
    "replayed long after": lambda: signed(event_payload(), at=int(time.time()) - 3600),
    "another body": lambda: signed(event_payload() + b" "),
    "garbage": lambda: "t=1,v1=deadbeef",
    "empty": lambda: "",
    "missing": lambda: None,
}


@pytest.mark.parametrize("case", list(BAD_SIGNATURES))  # stable ids, so parallel workers collect the same tests
def test_webhook_with_a_bad_signature_is_refused(ctx, case):
    header = BAD_SIGNATURES[case]()
    with pytest.raises(WebhookSignatureError):
        gateway.verify_webhook(event_payload(), header)


def test_webhook_without_a_secret_configured_is_refused(gateway_app):
    with gateway_app.app_context():
        gateway_app.config["STRIPE_WEBHOOK_SECRET"] = ""
        try:
            payload = event_payload()
            with pytest.raises(WebhookSignatureError):
                gateway.verify_webhook(payload, signed(payload))
        finally:
            gateway_app.config["STRIPE_WEBHOOK_SECRET"] = WEBHOOK_SECRET


def test_livemode_webhook_is_refused(ctx):
    payload = event_payload(livemode=True)
    with pytest.raises(GatewayError) as refused:
        gateway.verify_webhook(payload, signed(payload))
    assert refused.value.code == "livemode" and not isinstance(refused.value, WebhookSignatureError)


def test_localstripe_webhook_verifies(ctx, localstripe):
    receiver = Receiver()
    try:
        register_webhook(localstripe, "gateway-test", receiver.url, WEBHOOK_SECRET, events=["customer.created"])
        customer = new_customer()
        deadline = time.monotonic() + 10
        event = None
        while event is None and time.monotonic() < deadline:
            receiver.arrived.wait(0.2)
            for body, header in receiver.received:
                candidate = gateway.verify_webhook(body, header)
                if candidate.object.get("id") == customer:
                    event = candidate
        assert event is not None, "localstripe did not deliver customer.created"
        assert event.type == "customer.created" and event.id.startswith("evt_") and not event.livemode
    finally:
        # Point the hook somewhere harmless: localstripe cannot forget one.
        register_webhook(localstripe, "gateway-test", "http://127.0.0.1:9/", WEBHOOK_SECRET, events=["none"])
        receiver.shutdown()
        receiver.server_close()


# --- Pace and retries -------------------------------------------------------------------------------------

def _starts_from_threads(pacer: Pacer, threads: int, each: int) -> list[float]:
    """The slots the calls were given, from `threads` threads at once."""
    starts: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(each):
            slot = pacer.acquire()
            assert time.monotonic() >= slot  # no call goes before its slot
            with lock:
                starts.append(slot)

    running = [threading.Thread(target=work) for _ in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
    return sorted(starts)


def test_the_pacer_lets_at_most_rate_calls_start_in_any_second_from_many_threads():
    rate = 20
    starts = _starts_from_threads(Pacer(rate=rate), threads=4, each=11)  # 44 calls: three windows
    assert max(sum(1 for t in starts[n:] if t < start + 1.0) for n, start in enumerate(starts)) <= rate
    assert starts[-1] - starts[0] >= 2.0  # the 41st to 44th waited for the third second
    assert starts[rate - 1] - starts[0] < 0.5  # the first second's calls went at once


def test_the_pacer_gives_back_a_pause_within_the_second_and_no_more():
    """A caller that paused (a settlement pass committing a batch) gets the pause's slots back at once,
    as long as the last second holds fewer than `rate` calls; a rate under one is one call per 1/rate s."""
    def wait(pacer: Pacer, rate: float | None = None) -> float:
        before = time.monotonic()
        return pacer.acquire(rate) - before

    pacer = Pacer(rate=10)
    waits = [wait(pacer) for _ in range(5)]
    time.sleep(0.3)
    waits += [wait(pacer) for _ in range(5)]  # ten in the second: no wait yet
    assert max(waits) < 0.01
    assert wait(pacer) > 0.6  # the eleventh waits for the first one's second to pass
    slow = Pacer(rate=0.5)
    assert wait(slow) < 0.01 and wait(slow) > 1.9  # under one a second: one per 1/rate seconds
    assert wait(slow, rate=50) < 0.01  # a new rate applies at once


def test_requests_to_stripe_are_paced(localstripe):
    rate, calls = 5.0, 11  # five in the first second, five in the second, the eleventh in the third
    app = make_app(localstripe, STRIPE_MAX_REQUESTS_PER_SECOND=rate)
    with app.app_context():
        customer = new_customer()
        time.sleep(1.0)  # new_customer's own requests leave the window
        started = time.monotonic()
        for _ in range(calls):
            gateway.ensure_customer("x@example.test", "X", existing_id=customer)
        elapsed = time.monotonic() - started
    assert 2.0 <= elapsed < 3.0


class FaultyStripe(ThreadingHTTPServer):
    """Stands in front of localstripe: answers the scripted failures first, then passes requests on."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.script: list[tuple[int, dict]] = []
        self.seen: list[tuple[str, str, str | None]] = []
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def _handle(handler) -> None:
                body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
                with lock:
                    self.seen.append((handler.command, handler.path, handler.headers.get("Idempotency-Key")))
                    scripted = self.script.pop(0) if self.script else None
                if scripted:
                    status, answer = scripted
                    data = json.dumps(answer).encode()
                else:
                    forward = urllib.request.Request(
                        self.upstream + handler.path, data=body if handler.command == "POST" else None,
                        method=handler.command,
                        headers={k: v for k, v in handler.headers.items() if k.lower() in ("authorization", "content-type")},
                    )
                    try:
                        with urllib.request.urlopen(forward, timeout=10) as response:
                            status, data = response.status, response.read()
                    except urllib.error.HTTPError as exc:
                        status, data = exc.code, exc.read()
                handler.send_response(status)
                handler.send_header("Content-Type", "application/json")
                handler.send_header("Content-Length", str(len(data)))
                handler.end_headers()
                handler.wfile.write(data)

            do_GET = do_POST = do_DELETE = _handle

            def log_message(handler, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def faulty(localstripe: str) -> Iterator[FaultyStripe]:
    server = FaultyStripe(localstripe)
    yield server
    server.shutdown()
    server.server_close()


OOPS = {"error": {"type": "api_error", "message": "Something went wrong on Stripe's end."}}
SLOW_DOWN = {"error": {"type": "invalid_request_error", "code": "rate_limit", "message": "Too many requests."}}


def test_5xx_and_429_are_retried_with_the_same_idempotency_key(faulty):
    app = make_app(faulty.url)
    with app.app_context():
        faulty.script = [(500, OOPS), (503, OOPS), (429, SLOW_DOWN)]
        customer = new_customer()  # list (3 failures, then through), then create
        assert customer.startswith("cus_")
        faulty.script = [(500, OOPS), (500, OOPS)]
        setup = gateway.start_card_setup(customer, {"pledge": "9"})
    posts = [seen for seen in faulty.seen if seen[0] == "POST"]
    assert [path for _, path, _ in posts] == ["/v1/customers", "/v1/setup_intents", "/v1/setup_intents", "/v1/setup_intents"]
    keys = {key for _, path, key in posts if path == "/v1/setup_intents"}
    assert len(keys) == 1 and None not in keys  # one key across the retries: Stripe does it once
    assert setup.id.startswith("seti_")


def test_off_session_confirm_falls_back_once_per_client(faulty, localstripe):
    """localstripe refuses `off_session` on confirm: the first confirm learns it, later ones skip it."""
    app = make_app(faulty.url)
    with app.app_context():
        customer = new_customer()
        card = saved_card(localstripe, customer)
        first, second = (unconfirmed(localstripe, customer, card, 1500) for n in (1, 2))
        assert gateway.confirm_charge(first).succeeded
        assert gateway.confirm_charge(second).succeeded
    confirms = [path for method, path, _ in faulty.seen if path.endswith("/confirm")]
    assert confirms == [f"/v1/payment_intents/{first}/confirm"] * 2 + [f"/v1/payment_intents/{second}/confirm"]


def test_stripe_unavailable_after_the_retries(faulty):
    app = make_app(faulty.url, STRIPE_MAX_RETRIES=2)
    with app.app_context():
        faulty.script = [(500, OOPS)] * 3
        with pytest.raises(StripeUnavailable) as failed:
            gateway.read_charge("pi_anything")
        assert failed.value.code == "http_500" and failed.value.message
    assert len(faulty.seen) == 3


def test_connection_refused_is_unavailable(localstripe):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free once closed: nothing listens there
    app = make_app(f"http://127.0.0.1:{port}", STRIPE_MAX_RETRIES=1)
    with app.app_context(), pytest.raises(StripeUnavailable) as failed:
        gateway.read_setup("seti_anything", "cus_anything")
    assert failed.value.code == "connection_error"


def test_livemode_object_is_refused(faulty):
    app = make_app(faulty.url)
    with app.app_context():
        faulty.script = [(200, {"id": "cus_live", "object": "customer", "livemode": True})]
        with pytest.raises(GatewayError) as refused:
            gateway.ensure_customer("live@example.test", "Live", existing_id="cus_live")
    assert refused.value.code == "livemode"


# --- Settings and the server ------------------------------------------------------------------------------

def test_keys_and_stripe_js_for_localstripe(localstripe):
    app = make_app(localstripe, STRIPE_SECRET_KEY="", STRIPE_JS_URL="")
    with app.app_context():
        assert gateway.publishable_key() == "pk_test_localstripe"
        assert gateway.stripe_js_url() == f"{localstripe}/js.stripe.com/v3/"
        assert new_customer().startswith("cus_")  # the dummy secret key works
        with urllib.request.urlopen(gateway.stripe_js_url(), timeout=5) as response:
            assert b"confirmCardSetup" in response.read()
    app = make_app("", STRIPE_SECRET_KEY="", STRIPE_PUBLISHABLE_KEY="pk_test_abc", STRIPE_JS_URL="")
    with app.app_context():
        assert gateway.publishable_key() == "pk_test_abc"
        assert gateway.stripe_js_url() == "https://js.stripe.com/v3/"
        with pytest.raises(GatewayError) as unconfigured:
            new_customer()
        assert unconfigured.value.code == "not_configured"


def test_server_command_keeps_its_state_in_its_folder(tmp_path):
    default_pickle = Path("/tmp/localstripe.pickle")
    before = default_pickle.stat().st_mtime if default_pickle.exists() else None

    def serve() -> tuple[subprocess.Popen, str]:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.payments.localstripe_server", "--port", "0", "--state-dir", str(tmp_path)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
        line = process.stdout.readline().strip()
        assert line.startswith("localstripe listening on http://127.0.0.1:"), line
        return process, line.rsplit(" ", 1)[1]

    def stop(process: subprocess.Popen) -> None:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0

    process, url = serve()
    try:
        customer = browser_client(url).v1.customers.create(params={"email": "kept@example.test"}).id
    finally:
        stop(process)
    assert (tmp_path / "localstripe.pickle").exists()

    process, url = serve()
    try:
        assert browser_client(url).v1.customers.retrieve(customer).email == "kept@example.test"
    finally:
        stop(process)
    after = default_pickle.stat().st_mtime if default_pickle.exists() else None
    assert after == before  # localstripe's own /tmp file was never written
