"""localstripe's Stripe Connect (app/payments/localstripe_connect.py), through the official Stripe library
against the session's real localstripe server, and its onboarding page over plain HTTP.

The server is shared by the whole session: balances and lists are read relative to what they were, and
every transfer here uses its own transfer_group.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest
import stripe

from app.payments import localstripe_connect
from app.payments.localstripe_server import register_webhook
from tests.localstripe_fixture import Receiver

KEY = "sk_test_connect"
HOOK_ID = "connect-tests"
HOOK_SECRET = "whsec_connect_tests"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def client(localstripe: str) -> stripe.StripeClient:
    return stripe.StripeClient(KEY, base_addresses={"api": localstripe}, max_network_retries=0)


def new_account(client: stripe.StripeClient, **extra) -> stripe.Account:
    return client.v1.accounts.create(params={
        "type": "express", "country": "FR", "email": f"creator-{secrets.token_hex(3)}@example.com",
        "metadata": {"user": "42"}, "capabilities": {"transfers": {"requested": True}}, **extra,
    })


# --- the onboarding page, as a browser would use it --------------------------------------------------------

class _Page(HTMLParser):
    """What a person (or a screen reader) finds on the page: headings, the form, its buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[str] = []
        self.form: dict[str, str] = {}
        self.buttons: list[dict[str, str]] = []
        self.lang = ""
        self._in_heading = False
        self.legend = ""
        self._in_legend = False

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        if tag == "html":
            self.lang = attrs.get("lang", "")
        elif tag in ("h1", "h2"):
            self._in_heading = True
            self.headings.append("")
        elif tag == "form":
            self.form = attrs
        elif tag == "button":
            self.buttons.append(attrs | {"text": ""})
        elif tag == "legend":
            self._in_legend = True

    def handle_endtag(self, tag):
        if tag in ("h1", "h2"):
            self._in_heading = False
        elif tag == "legend":
            self._in_legend = False

    def handle_data(self, data):
        if self._in_heading:
            self.headings[-1] += data
        if self._in_legend:
            self.legend += data
        if self.buttons and self.lasttag == "button":
            self.buttons[-1]["text"] += data.strip()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def http(url: str, form: dict[str, str] | None = None) -> tuple[int, str, str]:
    """(status, Location header, body) without following redirects."""
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    try:
        with _opener.open(urllib.request.Request(url, data=data), timeout=10) as response:
            return response.status, response.headers.get("Location", ""), response.read().decode()
    except urllib.error.HTTPError as answer:
        return answer.code, answer.headers.get("Location", ""), answer.read().decode()


def onboarding_link(client: stripe.StripeClient, account_id: str) -> stripe.AccountLink:
    return client.v1.account_links.create(params={
        "account": account_id, "type": "account_onboarding",
        "refresh_url": "https://threshold.example/payouts/refresh", "return_url": "https://threshold.example/payouts/return",
    })


def press(link_url: str, button_text: str) -> tuple[int, str]:
    """Open the onboarding page and press one of its buttons, as the form says."""
    status, _, body = http(link_url)
    assert status == 200
    page = _Page()
    page.feed(body)
    button = next(b for b in page.buttons if b["text"] == button_text)
    target = urllib.parse.urljoin(link_url, page.form["action"])
    assert page.form["method"] == "post"
    status, location, _ = http(target, {button["name"]: button["value"]})
    return status, location


# --- accounts ---------------------------------------------------------------------------------------------

def test_a_new_express_account_is_restricted_until_onboarded(client):
    account = new_account(client)
    assert re.fullmatch(r"acct_[A-Za-z0-9]{16}", account.id)
    assert account.object == "account" and account.type == "express" and account.country == "FR"
    assert account.default_currency == "eur" and account.metadata.to_dict() == {"user": "42"}
    assert (account.charges_enabled, account.payouts_enabled, account.details_submitted) == (False, False, False)
    assert account.capabilities.to_dict() == {"transfers": "inactive"}
    requirements = account.requirements
    assert "external_account" in requirements.currently_due and "tos_acceptance.date" in requirements.currently_due
    assert set(requirements.currently_due) <= set(requirements.eventually_due)
    assert requirements.disabled_reason == "requirements.past_due"
    assert account.created <= time.time() and account.livemode is False

    updated = client.v1.accounts.update(account.id, params={"email": "new@example.com", "metadata": {"campaign": "7"}})
    assert updated.email == "new@example.com" and updated.metadata.to_dict() == {"user": "42", "campaign": "7"}
    again = client.v1.accounts.retrieve(account.id)
    assert again.email == "new@example.com" and again.metadata.to_dict() == {"user": "42", "campaign": "7"}
    assert client.v1.accounts.update(account.id, params={"metadata": {"user": ""}}).metadata.to_dict() == {"campaign": "7"}

    with pytest.raises(stripe.PermissionError) as unknown:
        client.v1.accounts.retrieve("acct_doesnotexist0000")
    assert unknown.value.error.code == "account_invalid" and unknown.value.http_status == 403
    with pytest.raises(stripe.InvalidRequestError) as odd:
        client.v1.accounts.create(params={"type": "express", "colour": "blue"})
    assert odd.value.code == "parameter_unknown" and odd.value.param == "colour"
    listed = client.v1.accounts.list(params={"limit": 100})
    assert account.id in [a.id for a in listed.data]


def test_onboarding_completed_enables_the_account(client):
    account = new_account(client)
    link = onboarding_link(client, account.id)
    assert link.object == "account_link" and link.expires_at > link.created
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/connect/onboarding/[\w-]+", link.url)

    status, _, body = http(link.url)
    page = _Page()
    page.feed(body)
    assert status == 200 and page.lang == "en"
    assert page.headings[0].startswith("Set up payouts for creator-")
    assert page.form.get("aria-labelledby") == "onboarding-title" and page.legend
    assert [b["text"] for b in page.buttons] == ["Complete onboarding", "Leave for now"]
    assert "external_account" in body  # what is due is listed

    assert press(link.url, "Complete onboarding") == (303, "https://threshold.example/payouts/return")
    done = client.v1.accounts.retrieve(account.id)
    assert (done.charges_enabled, done.payouts_enabled, done.details_submitted) == (True, True, True)
    assert done.requirements.currently_due == [] and done.requirements.disabled_reason is None
    assert done.capabilities.to_dict() == {"transfers": "active"}
    assert done.external_accounts.data[0].object == "bank_account"

    # An account link is single use: back to refresh_url, where the platform makes a new one.
    assert http(link.url)[:2] == (303, "https://threshold.example/payouts/refresh")


def test_onboarding_left_halfway_changes_nothing(client):
    account = new_account(client)
    link = onboarding_link(client, account.id)
    assert press(link.url, "Leave for now") == (303, "https://threshold.example/payouts/return")
    still = client.v1.accounts.retrieve(account.id)
    assert (still.payouts_enabled, still.details_submitted) == (False, False)
    assert still.requirements.currently_due == account.requirements.currently_due
    assert http(link.url)[:2] == (303, "https://threshold.example/payouts/refresh")


def test_expired_and_unknown_links(client, localstripe):
    account = new_account(client)
    link = onboarding_link(client, account.id)
    token = link.url.rsplit("/", 1)[1]
    urllib.request.urlopen(urllib.request.Request(f"{localstripe}/_config/connect/onboarding/{token}/expire", data=b""), timeout=10)
    assert http(link.url)[:2] == (303, "https://threshold.example/payouts/refresh")
    assert http(link.url, {"action": "complete"})[:2] == (303, "https://threshold.example/payouts/refresh")
    assert client.v1.accounts.retrieve(account.id).payouts_enabled is False
    assert http(f"{localstripe}/connect/onboarding/nosuchtoken")[0] == 404

    with pytest.raises(stripe.InvalidRequestError) as bad:
        client.v1.account_links.create(params={"account": "acct_nope", "type": "account_onboarding",
                                               "refresh_url": "https://x.example/r", "return_url": "https://x.example/b"})
    assert bad.value.code == "account_invalid"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.account_links.create(params={"account": account.id, "type": "account_onboarding",
                                               "return_url": "https://x.example/b"})
    assert missing.value.code == "parameter_missing" and missing.value.param == "refresh_url"


def set_requirements(base: str, account_id: str, due: bool) -> dict:
    request = urllib.request.Request(f"{base}/_config/connect/accounts/{account_id}/requirements",
                                     data=f"due={'true' if due else 'false'}".encode())
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def onboarded(client: stripe.StripeClient) -> stripe.Account:
    account = new_account(client)
    assert press(onboarding_link(client, account.id).url, "Complete onboarding")[0] == 303
    return account


def test_requirements_due_again_disable_payouts_until_given(client, localstripe):
    account = onboarded(client)
    shown = set_requirements(localstripe, account.id, True)
    assert shown["payouts_enabled"] is False and shown["requirements"]["currently_due"]
    again = client.v1.accounts.retrieve(account.id)
    assert again.payouts_enabled is False and again.charges_enabled is False
    assert again.requirements.currently_due == ["individual.verification.document"]
    assert again.requirements.disabled_reason == "requirements.past_due"
    assert again.capabilities.to_dict() == {"transfers": "inactive"} and again.details_submitted is True

    # A new onboarding link gives them; the hook can also clear them directly.
    assert press(onboarding_link(client, account.id).url, "Complete onboarding")[0] == 303
    assert client.v1.accounts.retrieve(account.id).payouts_enabled is True
    set_requirements(localstripe, account.id, True)
    assert set_requirements(localstripe, account.id, False)["payouts_enabled"] is True


# --- money in: charges, fees, balance ----------------------------------------------------------------------

def charge(client: stripe.StripeClient, amount: int, currency: str) -> stripe.PaymentIntent:
    """A PaymentIntent confirmed off-session on a saved test card, its charge's balance transaction expanded."""
    customer = client.v1.customers.create(params={"email": f"backer-{secrets.token_hex(3)}@example.com"})
    method = client.v1.payment_methods.create(params={
        "type": "card", "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
    client.v1.payment_methods.attach(method.id, params={"customer": customer.id})
    intent = client.v1.payment_intents.create(params={
        "amount": amount, "currency": currency, "customer": customer.id, "payment_method": method.id,
        "confirm": True, "off_session": True})
    assert intent.status == "succeeded"
    return client.v1.payment_intents.retrieve(intent.id, params={"expand": ["latest_charge.balance_transaction"]})


def available(client: stripe.StripeClient, currency: str) -> int:
    return next((b.amount for b in client.v1.balance.retrieve().available if b.currency == currency), 0)


@pytest.mark.parametrize(("amount", "currency", "fee"), [(4130, "usd", 150), (10_000, "eur", 320), (12_345, "jpy", 444)])
def test_charges_carry_stripe_processing_fee(client, amount, currency, fee):
    before = available(client, currency)
    intent = charge(client, amount, currency)
    txn = intent.latest_charge.balance_transaction
    assert txn.object == "balance_transaction" and txn.type == "charge" and txn.source == intent.latest_charge.id
    assert (txn.amount, txn.fee, txn.net, txn.currency) == (amount, fee, amount - fee, currency)
    assert [(d.type, d.amount, d.currency) for d in txn.fee_details] == [("stripe_fee", fee, currency)]
    assert client.v1.balance_transactions.retrieve(txn.id).fee == fee
    assert localstripe_connect.processing_fee(amount, currency) == fee
    assert available(client, currency) == before + amount - fee

    # A refund takes its amount back out of the balance (Stripe keeps the fee).
    client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 1000})
    assert available(client, currency) == before + amount - fee - 1000


def test_balance_has_stripe_shape(client):
    balance = client.v1.balance.retrieve()
    assert balance.object == "balance" and balance.livemode is False
    assert balance.available and all(isinstance(b.amount, int) and len(b.currency) == 3 for b in balance.available)
    assert {b.currency for b in balance.pending} == {b.currency for b in balance.available}


# --- money out: transfers and reversals --------------------------------------------------------------------

@pytest.fixture
def funded(client) -> tuple[stripe.Account, str]:
    """An onboarded account and a fresh transfer group, with at least 100 EUR available on the platform."""
    charge(client, 10_330, "eur")
    return onboarded(client), f"campaign-{secrets.token_hex(4)}"


def test_a_transfer_moves_money_once_per_idempotency_key(client, funded):
    account, group = funded
    before = available(client, "eur")
    params = {"amount": 5_000, "currency": "eur", "destination": account.id, "transfer_group": group,
              "description": "Campaign payout", "metadata": {"campaign": "7"}}
    first = client.v1.transfers.create(params=params, options={"idempotency_key": f"payout-{group}"})
    second = client.v1.transfers.create(params=params, options={"idempotency_key": f"payout-{group}"})
    assert first.id == second.id and re.fullmatch(r"tr_\w+", first.id)
    assert second.last_response.headers.get("Idempotent-Replayed") == "true"
    assert (first.amount, first.currency, first.destination, first.transfer_group) == (5_000, "eur", account.id, group)
    assert (first.amount_reversed, first.reversed, first.metadata.to_dict()) == (0, False, {"campaign": "7"})
    assert first.reversals.object == "list" and first.reversals.data == []
    assert first.description == "Campaign payout" and first.created <= time.time()
    listed = client.v1.transfers.list(params={"transfer_group": group})
    assert [t.id for t in listed.data] == [first.id]
    assert available(client, "eur") == before - 5_000

    txn = client.v1.balance_transactions.retrieve(first.balance_transaction)
    assert (txn.type, txn.amount, txn.fee, txn.net, txn.source) == ("transfer", -5_000, 0, -5_000, first.id)
    assert client.v1.transfers.retrieve(first.id, params={"expand": ["destination"]}).destination.id == account.id

    # The same key for another request is Stripe's idempotency_error; nothing is done.
    with pytest.raises(stripe.IdempotencyError):
        client.v1.transfers.create(params={**params, "amount": 6_000}, options={"idempotency_key": f"payout-{group}"})
    assert available(client, "eur") == before - 5_000

    # Accounts and reversals honour the key too.
    account_params = {"type": "express", "metadata": {"k": group}}
    same = client.v1.accounts.create(params=account_params, options={"idempotency_key": f"acct-{group}"})
    assert client.v1.accounts.create(params=account_params, options={"idempotency_key": f"acct-{group}"}).id == same.id
    assert client.v1.accounts.create(params=account_params).id != same.id  # a new key (the library's own): a new account
    r1 = client.v1.transfers.reversals.create(first.id, params={"amount": 100}, options={"idempotency_key": f"rev-{group}"})
    r2 = client.v1.transfers.reversals.create(first.id, params={"amount": 100}, options={"idempotency_key": f"rev-{group}"})
    assert r1.id == r2.id and client.v1.transfers.retrieve(first.id).amount_reversed == 100


def test_a_transfer_beyond_the_available_balance_is_refused(client, funded):
    account, group = funded
    too_much = available(client, "eur") + 1
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.transfers.create(params={"amount": too_much, "currency": "eur", "destination": account.id,
                                           "transfer_group": group})
    assert refused.value.http_status == 400 and refused.value.code == "balance_insufficient"
    assert refused.value.error.type == "invalid_request_error"
    # A currency the platform never charged in has nothing available.
    with pytest.raises(stripe.InvalidRequestError) as none:
        client.v1.transfers.create(params={"amount": 1, "currency": "sek", "destination": account.id})
    assert none.value.code == "balance_insufficient"
    assert client.v1.transfers.list(params={"transfer_group": group}).data == []


def test_a_transfer_needs_an_enabled_destination(client, funded, localstripe):
    account, group = funded
    waiting = new_account(client)
    params = {"amount": 100, "currency": "eur", "transfer_group": group}
    with pytest.raises(stripe.InvalidRequestError) as restricted:
        client.v1.transfers.create(params={**params, "destination": waiting.id})
    assert restricted.value.code == "insufficient_capabilities_for_transfer" and restricted.value.param == "destination"
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.transfers.create(params={**params, "destination": "acct_nosuchaccount00"})
    assert unknown.value.code == "resource_missing" and unknown.value.param == "destination"
    set_requirements(localstripe, account.id, True)
    with pytest.raises(stripe.InvalidRequestError) as disabled:
        client.v1.transfers.create(params={**params, "destination": account.id})
    assert disabled.value.code == "insufficient_capabilities_for_transfer"
    set_requirements(localstripe, account.id, False)
    assert client.v1.transfers.create(params={**params, "destination": account.id}).amount == 100
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.transfers.create(params={"currency": "eur", "destination": account.id})
    assert missing.value.code == "parameter_missing" and missing.value.param == "amount"


def test_reversals_partial_full_and_too_much(client, funded):
    account, group = funded
    transfer = client.v1.transfers.create(params={"amount": 3_000, "currency": "eur", "destination": account.id,
                                                  "transfer_group": group})
    before = available(client, "eur")
    partial = client.v1.transfers.reversals.create(transfer.id, params={"amount": 1_000, "metadata": {"why": "refund"}})
    assert re.fullmatch(r"trr_\w+", partial.id) and partial.object == "transfer_reversal"
    assert (partial.amount, partial.currency, partial.transfer, partial.metadata.to_dict()) == (1_000, "eur", transfer.id, {"why": "refund"})
    txn = client.v1.balance_transactions.retrieve(partial.balance_transaction)
    assert (txn.type, txn.amount, txn.net) == ("transfer_refund", 1_000, 1_000)
    after = client.v1.transfers.retrieve(transfer.id)
    assert (after.amount_reversed, after.reversed) == (1_000, False)
    assert [r.id for r in after.reversals.data] == [partial.id]
    assert available(client, "eur") == before + 1_000

    with pytest.raises(stripe.InvalidRequestError) as over:
        client.v1.transfers.reversals.create(transfer.id, params={"amount": 2_001})
    assert over.value.http_status == 400 and over.value.code == "amount_too_large"

    rest = client.v1.transfers.reversals.create(transfer.id)  # no amount: all that is left
    assert rest.amount == 2_000
    done = client.v1.transfers.retrieve(transfer.id)
    assert (done.amount_reversed, done.reversed) == (3_000, True)
    assert [r.id for r in client.v1.transfers.reversals.list(transfer.id).data] == [rest.id, partial.id]
    assert client.v1.transfers.reversals.retrieve(transfer.id, partial.id).amount == 1_000
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.transfers.reversals.create(transfer.id, params={"amount": 1})
    assert available(client, "eur") == before + 3_000


def test_transfers_listed_by_group_newest_first_in_pages(client, funded):
    account, group = funded
    other = f"{group}-other"
    made = [client.v1.transfers.create(params={"amount": 100 + i, "currency": "eur", "destination": account.id,
                                               "transfer_group": group}).id for i in range(5)]
    client.v1.transfers.create(params={"amount": 99, "currency": "eur", "destination": account.id, "transfer_group": other})
    newest_first = made[::-1]

    first = client.v1.transfers.list(params={"transfer_group": group, "limit": 2})
    assert [t.id for t in first.data] == newest_first[:2] and first.has_more is True and first.url == "/v1/transfers"
    second = client.v1.transfers.list(params={"transfer_group": group, "limit": 2, "starting_after": first.data[-1].id})
    assert [t.id for t in second.data] == newest_first[2:4] and second.has_more is True
    last = client.v1.transfers.list(params={"transfer_group": group, "limit": 2, "starting_after": second.data[-1].id})
    assert [t.id for t in last.data] == newest_first[4:] and last.has_more is False
    back = client.v1.transfers.list(params={"transfer_group": group, "limit": 2, "ending_before": last.data[0].id})
    assert [t.id for t in back.data] == newest_first[2:4]

    everything = client.v1.transfers.list(params={"transfer_group": group, "destination": account.id, "limit": 2})
    assert [t.id for t in everything.auto_paging_iter()] == newest_first
    assert client.v1.transfers.list(params={"destination": "acct_nobody0000000"}).data == []
    with pytest.raises(stripe.InvalidRequestError) as bad:
        client.v1.transfers.list(params={"limit": 101})
    assert bad.value.param == "limit"


# --- events ------------------------------------------------------------------------------------------------

def test_account_updated_is_sent_signed_to_webhooks(client, localstripe):
    receiver = Receiver()
    try:
        register_webhook(localstripe, HOOK_ID, receiver.url, HOOK_SECRET, events=["account.updated"])
        account = new_account(client)
        press(onboarding_link(client, account.id).url, "Complete onboarding")
        deadline = time.monotonic() + 10
        event = None
        while event is None and time.monotonic() < deadline:
            receiver.arrived.wait(0.2)
            for body, header in list(receiver.received):
                stripe.WebhookSignature.verify_header(body.decode(), header, HOOK_SECRET, 300)
                candidate = json.loads(body)
                if candidate["data"]["object"]["id"] == account.id:
                    event = candidate
        assert event is not None, "account.updated never arrived"
        assert event["type"] == "account.updated" and event["id"].startswith("evt_") and event["account"] == account.id
        shown = event["data"]["object"]
        assert shown["object"] == "account" and shown["payouts_enabled"] is True and shown["requirements"]["currently_due"] == []
        assert event["data"]["previous_attributes"]["payouts_enabled"] is False
    finally:
        register_webhook(localstripe, HOOK_ID, "http://127.0.0.1:9/", HOOK_SECRET, events=["none"])
        receiver.shutdown()
        receiver.server_close()


# --- a restart keeps it all --------------------------------------------------------------------------------

def _start_server(state_dir: Path) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "app.payments.localstripe_server", "--port", "0", "--state-dir", str(state_dir)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    line = process.stdout.readline() if process.stdout else ""
    match = re.search(r"http://127\.0\.0\.1:\d+", line)
    assert match, f"localstripe did not start: {line!r}"
    return process, match.group(0)


def _stop_server(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(10)


def test_the_demo_server_keeps_connect_state_across_a_restart(tmp_path):
    process, url = _start_server(tmp_path)
    try:
        client = stripe.StripeClient(KEY, base_addresses={"api": url}, max_network_retries=0)
        charge(client, 5_000, "eur")
        account = onboarded(client)
        transfer = client.v1.transfers.create(params={"amount": 1_000, "currency": "eur", "destination": account.id,
                                                      "transfer_group": "restart"}, options={"idempotency_key": "restart-1"})
        client.v1.transfers.reversals.create(transfer.id, params={"amount": 300})
        balance = available(client, "eur")
    finally:
        _stop_server(process)
    process, url = _start_server(tmp_path)
    try:
        client = stripe.StripeClient(KEY, base_addresses={"api": url}, max_network_retries=0)
        assert client.v1.accounts.retrieve(account.id).payouts_enabled is True
        kept = client.v1.transfers.retrieve(transfer.id)
        assert (kept.amount_reversed, kept.reversals.data[0].amount) == (300, 300)
        assert available(client, "eur") == balance
        # The idempotency key is remembered too.
        assert client.v1.transfers.create(params={"amount": 1_000, "currency": "eur", "destination": account.id,
                                                  "transfer_group": "restart"}, options={"idempotency_key": "restart-1"}).id == transfer.id
    finally:
        _stop_server(process)
