"""pytest plugin: one real localstripe server per test session (per xdist worker), and the browser's part.

Registered from conftest.py with ``pytest_plugins = ["tests.localstripe_fixture"]``. The `localstripe`
fixture yields the base URL to put in STRIPE_API_BASE. Tests play the browser with
`browser_confirm_setup`: Stripe.js would create the card's PaymentMethod and confirm the SetupIntent
(with 3-D Secure where the card asks for it); this does the same over HTTP with the Stripe library.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import stripe

from app.payments.localstripe_server import LocalStripe, click_through_onboarding

#: Test cards (https://docs.stripe.com/testing), as localstripe knows them.
CARD_OK = "4242 4242 4242 4242"
CARD_AUTHENTICATE = "4000 0027 6000 3184"  # 3-D Secure on setup, and again on every off-session charge
CARD_DECLINE_ON_CHARGE = "4000 0000 0000 0341"  # saves fine, then every charge is declined
CARD_DECLINE_ON_SETUP = "4000 0000 0000 0002"  # refused when saved


@pytest.fixture(scope="session")
def localstripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a localstripe server on 127.0.0.1 (a free port), its state in a temporary folder."""
    server = LocalStripe(port=0, state_dir=tmp_path_factory.mktemp("localstripe"))
    url = server.start()
    yield url
    server.stop()


def browser_client(base_url: str) -> stripe.StripeClient:
    """A Stripe client standing in for Stripe.js in the backer's browser."""
    return stripe.StripeClient("sk_test_browser", base_addresses={"api": base_url}, max_network_retries=0)


def browser_confirm_setup(base_url: str, setup_intent_id: str, card_number: str, *, authenticate: bool | None = True) -> str:
    """Save `card_number` on a SetupIntent as the card form would; returns the SetupIntent's status.

    When the card asks for 3-D Secure: `authenticate=True` completes it, False fails it (the dialog's
    two buttons), None leaves the SetupIntent waiting in `requires_action`.
    """
    client = browser_client(base_url)
    method = client.v1.payment_methods.create(params={
        "type": "card",
        "card": {"number": card_number.replace(" ", ""), "exp_month": 12, "exp_year": 2034, "cvc": "123"},
    })
    intent = client.v1.setup_intents.retrieve(setup_intent_id)
    try:
        intent = client.v1.setup_intents.confirm(
            setup_intent_id, params={"payment_method": method.id, "client_secret": intent.client_secret}
        )
    except stripe.CardError:
        return client.v1.setup_intents.retrieve(setup_intent_id).status
    if intent.status == "requires_action" and authenticate is not None:
        action = client.v1.setup_intents.confirm if authenticate else client.v1.setup_intents.cancel
        intent = action(setup_intent_id, params={"client_secret": intent.client_secret})
    return intent.status


def browser_authenticate_payment(base_url: str, client_secret: str, *, success: bool = True) -> str:
    """What localstripe's Stripe.js does for confirmCardPayment on a charge that needs 3-D Secure:
    answer the dialog ("Complete authentication" or "Fail authentication"); returns the new status."""
    import json
    import urllib.request

    intent_id = client_secret.split("_secret_")[0]
    request = urllib.request.Request(
        f"{base_url}/v1/payment_intents/{intent_id}/_authenticate?success={'true' if success else 'false'}",
        data=json.dumps({"key": "pk_test_browser", "client_secret": client_secret}).encode(), method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["status"]


def browser_onboard(onboarding_url: str, action: str = "complete") -> str:
    """What the creator does on Stripe's hosted onboarding (localstripe's page): "complete" it or
    "leave" it halfway. Returns where the page sends the browser back (our return URL)."""
    return click_through_onboarding(onboarding_url, action)


def onboard(user) -> None:
    """Give a creator a payout account that can receive money, through Stripe's (localstripe's)
    hosted onboarding, as a creator would: what a campaign needs before launch."""
    from app.payouts import services as payouts

    if payouts.can_receive(user):
        return
    browser_onboard(payouts.start_onboarding(user, "US"))
    payouts.refresh_account(payouts.account_for(user))


class Receiver(ThreadingHTTPServer):
    """A tiny webhook endpoint that keeps what localstripe sends it (body and Stripe-Signature)."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, str]] = []
        self.arrived = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(handler) -> None:
                body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
                self.received.append((body, handler.headers.get("Stripe-Signature", "")))
                self.arrived.set()
                handler.send_response(200)
                handler.send_header("Content-Length", "0")
                handler.end_headers()

            def log_message(handler, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/stripe/webhook"
