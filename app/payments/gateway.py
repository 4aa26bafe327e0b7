"""The one door to Stripe: our verbs (save a card, charge, release, refund, verify an event) in, our own
small frozen dataclasses out. No other module imports `stripe` or sees its objects.

The same code talks to Stripe's test mode or to localstripe (when `STRIPE_API_BASE` is set). Our launcher
(localstripe_server.py) makes localstripe honour idempotency keys as Stripe does, put the PaymentIntent in
a card error and list a customer's PaymentIntents; the remaining differences are absorbed here, so no
caller knows which one answers:

- it refuses `off_session` on a PaymentIntent confirm: we retry that confirm without it;
- it answers an off-session charge on a card that needs authentication with `status=requires_action`
  instead of a 402 `authentication_required`: both read as `needs_action`;
- it does not attach the payment method when a SetupIntent succeeds: we attach it if it is not;
- it returns `latest_charge` as an object, Stripe as an id (unless expanded): both are read.

A charge is one request (`charge`: create and confirm off-session) whose idempotency key comes from the
attempt row committed before it; resending it after a lost answer returns the first result. Keys live 24
hours at Stripe: after that, `find_charge` looks the attempt's PaymentIntent up by our metadata.

Every request is paced under `STRIPE_MAX_REQUESTS_PER_SECOND` (at most that many in any one second, for
the whole process, shared by all threads) and retried with exponential backoff and jitter on 429, 5xx and connection errors.
"""
from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
import urllib.request
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
import stripe
from flask import current_app
from flask_babel import lazy_gettext as _l

from app import money
from app.payments import declines

T = TypeVar("T")

# The stripe library logs every request and answer at INFO. Our own log lines name the campaign and
# pledge of each action; formatting two more lines per request cost settlement a tenth of its time.
logging.getLogger("stripe").setLevel(logging.WARNING)

LOCALSTRIPE_SECRET_KEY = "sk_test_localstripe"
LOCALSTRIPE_PUBLISHABLE_KEY = "pk_test_localstripe"
STRIPE_JS_URL = "https://js.stripe.com/v3/"
#: Stripe's own default: events older than this (by their signed timestamp) are refused.
WEBHOOK_TOLERANCE_SECONDS = 300
_ID = re.compile(r"^[A-Za-z0-9_]{3,255}$", re.ASCII)
#: How long Stripe keeps an idempotency key and its first answer (https://docs.stripe.com/api/idempotent_requests).
IDEMPOTENCY_KEY_LIFETIME = timedelta(hours=24)
#: A PaymentIntent in one of these states will not collect without the backer (new card or authentication).
_FAILED_STATES = frozenset({"requires_payment_method", "requires_action", "canceled"})


# --- Errors -----------------------------------------------------------------------------------------------

class GatewayError(Exception):
    """Stripe refused or could not do what we asked. `message` can be shown to a person; `code` is for
    code (Stripe's error or decline code, or ours); `detail` is Stripe's own wording, for the log."""

    default_message = _l("The payment could not be processed. Please try again later.")

    def __init__(self, message: str | None = None, code: str = "gateway_error", detail: str | None = None) -> None:
        # Translated now, in the language of the request (or email) that meets the error.
        self.message = str(message or self.default_message)
        self.code = code
        self.detail = detail
        super().__init__(f"{self.code}: {self.message}" + (f" ({detail})" if detail and detail != self.message else ""))


class CardDeclined(GatewayError):
    """The card was refused (declined, or the bank wants the cardholder to authenticate)."""

    default_message = declines.DECLINED


class IdempotencyConflict(GatewayError):
    """Stripe already saw this idempotency key with other parameters: it did nothing this time."""


class StripeUnavailable(GatewayError):
    """Stripe did not answer usefully (connection error, 5xx, 429) even after retries: try again later."""

    default_message = _l("The payment service is not answering right now. Please try again in a few minutes.")


class WebhookSignatureError(GatewayError):
    """A webhook payload whose signature does not verify against STRIPE_WEBHOOK_SECRET (answer 400)."""

    default_message = "The webhook signature does not verify."


# --- What we hand back ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SetupStart:
    """A SetupIntent made for the browser to confirm with Stripe.js."""

    id: str
    client_secret: str


@dataclass(frozen=True)
class SetupResult:
    """A SetupIntent as Stripe reports it; `succeeded` means the card is saved and attached for later."""

    id: str
    status: str
    succeeded: bool
    payment_method_id: str | None
    card_brand: str | None
    card_last4: str | None
    customer_id: str | None
    error_message: str | None  # Stripe's own words, for the log
    decline_code: str | None = None
    #: Stripe's fingerprint of the card number: the same card saved by two customers has the same one.
    card_fingerprint: str | None = None


@dataclass(frozen=True)
class ChargeState:
    """A PaymentIntent as Stripe reports it.

    At most one of `succeeded`, `needs_confirmation` and `failed` is true; none is true while Stripe is
    still `processing`. `failed` means this attempt will not collect without the backer: a decline
    (`decline_code` says which) or authentication asked by the bank, when `needs_action` is also true and
    `decline_code` is "authentication_required". `amount` is in minor units; `currency` upper case.
    """

    id: str
    status: str
    amount: int
    currency: str
    succeeded: bool
    needs_confirmation: bool
    needs_action: bool
    failed: bool
    decline_code: str | None
    error_message: str | None
    fee_amount: int | None
    charge_id: str | None
    #: Our ids (pledge, attempt) as the PaymentIntent carries them.
    metadata: dict | None = None


@dataclass(frozen=True)
class RefundResult:
    """A refund as Stripe reports it (`status` "succeeded" or "pending" are both fine)."""

    id: str
    status: str
    amount: int

    @property
    def counts(self) -> bool:
        """The money is on its way back (or back): anything but a failed or canceled refund."""
        return self.status not in ("failed", "canceled")


@dataclass(frozen=True)
class Event:
    """A verified webhook event; `object` is the event's `data.object` as plain JSON."""

    id: str
    type: str
    object: dict
    livemode: bool


# --- Pace and retries -------------------------------------------------------------------------------------

class Pacer:
    """Paces callers from any number of threads to at most `rate` requests started in any one second
    (a sliding window: for a rate under one a second, one request per 1/rate seconds).

    Stripe's limit is requests per second; a pace of one request every 1/rate seconds (a token bucket
    with a burst of one) never gave back the time a caller spent between requests, e.g. a settlement
    pass committing a batch: it kept settlement at 0.77-0.91 of the limit depending on the machine's
    load. A window lets the requests of the next batch use the slots of that pause, within the same
    second, and never more than `rate` in any second. A caller reserves the first free slot under
    the lock and sleeps until it outside the lock.
    """

    def __init__(self, rate: float) -> None:
        self._rate = float(rate)
        self._starts: deque[float] = deque()  # the slots taken in the last window, some maybe ahead of now
        self._lock = threading.Lock()

    def _window(self) -> tuple[int, float]:
        return (int(self._rate), 1.0) if self._rate >= 1 else (1, 1.0 / self._rate)

    def acquire(self, rate: float | None = None) -> float:
        """Wait for a slot (at `rate` per second, if given, from now on); returns its moment
        (`time.monotonic()`). A caller the scheduler wakes late starts a little after its slot."""
        with self._lock:
            if rate:
                self._rate = float(rate)
            limit, window = self._window()
            now = time.monotonic()
            while self._starts and self._starts[0] <= now - window:
                self._starts.popleft()
            at = now if len(self._starts) < limit else self._starts[-limit] + window
            self._starts.append(at)
        if at > now:
            time.sleep(at - now)
        return at


#: One pacer for the whole process: Stripe's limit is per account, not per thread or per app.
_pacer = Pacer(rate=20.0)


def _unavailable(exc: stripe.StripeError) -> bool:
    """Stripe did not answer usefully: connection error, 429, 5xx, or 409 (another request with the
    same idempotency key still running; Stripe's library retries it too): worth trying again later."""
    if isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError):
        return True
    return isinstance(exc, stripe.APIError) and ((exc.http_status or 0) >= 500 or exc.http_status == 409)


def _worth_retrying_now(exc: stripe.StripeError) -> bool:
    # Stripe says so when a retry would only replay the same answer (an idempotent replay of a 500).
    if str((exc.headers or {}).get("stripe-should-retry", "")).lower() == "false":
        return False
    return getattr(exc, "should_retry", True) is not False  # e.g. an SSL error is not a blip


def _request(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Make one Stripe request, paced, retrying 429, 5xx and connection errors with backoff and jitter.

    POSTs must carry an idempotency key in `options` that stays the same across these retries, so that
    Stripe answers a retried request with the first result instead of doing it twice. Raises
    StripeUnavailable when the tries are used up: the request may or may not have been done.
    """
    config = current_app.config
    tries = 1 + int(config.get("STRIPE_MAX_RETRIES", 4))
    base = float(config.get("STRIPE_RETRY_BASE_SECONDS", 0.5))
    ceiling = float(config.get("STRIPE_RETRY_MAX_SECONDS", 8.0))
    rate = float(config.get("STRIPE_MAX_REQUESTS_PER_SECOND") or 20.0)
    for attempt in range(tries):
        _pacer.acquire(rate)
        try:
            return call(*args, **kwargs)
        except stripe.StripeError as exc:
            if not _unavailable(exc):
                raise
            if attempt == tries - 1 or not _worth_retrying_now(exc):
                code = f"http_{exc.http_status}" if exc.http_status else "connection_error"
                raise StripeUnavailable(code=code, detail=str(exc)) from exc
            # Equal jitter: at least half the exponential delay, so that many threads hitting a 429 at
            # once spread out instead of coming back together.
            delay = min(ceiling, base * 2**attempt)
            time.sleep(delay / 2 + random.uniform(0, delay / 2))
    raise AssertionError("unreachable")  # pragma: no cover


def _new_key(purpose: str) -> str:
    """An idempotency key for a request that has no natural id of ours (kept across its retries)."""
    return f"{purpose}-{uuid.uuid4()}"


# --- The client -------------------------------------------------------------------------------------------

@dataclass
class _Client:
    settings: tuple
    stripe: stripe.StripeClient
    #: False once the server (localstripe) refused `off_session` on confirm: skip that request next time.
    confirm_takes_off_session: bool = True


_clients_lock = threading.Lock()


def _client() -> _Client:
    """The Stripe client for the current app, built on first use (and again if its settings change)."""
    config = current_app.config
    base = (config.get("STRIPE_API_BASE") or "").rstrip("/")
    key = config.get("STRIPE_SECRET_KEY") or (LOCALSTRIPE_SECRET_KEY if base else "")
    timeout = float(config.get("STRIPE_TIMEOUT_SECONDS", 30))
    settings = (key, base, timeout)
    holder = current_app.extensions.get("threshold_stripe")
    if holder is not None and holder.settings == settings:
        return holder
    if not key:
        raise GatewayError(_l("Payments are not configured."), "not_configured", "STRIPE_SECRET_KEY is empty")
    if not key.startswith(("sk_test_", "rk_test_")):
        raise GatewayError(_l("Payments are not configured."), "live_key", "only Stripe test keys are accepted")
    with _clients_lock:
        holder = current_app.extensions.get("threshold_stripe")
        if holder is not None and holder.settings == settings:
            return holder  # another thread built it meanwhile
        holder = _Client(
            settings=settings,
            stripe=stripe.StripeClient(
                key,
                base_addresses={"api": base} if base else None,
                # Retries are ours (_request), with our idempotency keys and our pace.
                max_network_retries=0,
                http_client=stripe.RequestsClient(timeout=timeout, session=_http_session(base or "https://api.stripe.com")),
            ),
        )
        current_app.extensions["threshold_stripe"] = holder
    return holder


def _http_session(base: str) -> requests.Session:
    """The HTTP session for Stripe: proxies read from the environment once, here. By default requests
    reads the environment and looks for ~/.netrc on every request (a tenth of the CPU of a charge);
    the API key is our only credential, and the proxy settings do not change while we run."""
    session = requests.Session()
    session.trust_env = False
    host = urlsplit(base).hostname or ""
    if not urllib.request.proxy_bypass(host):
        session.proxies.update({k: v for k, v in urllib.request.getproxies().items() if k in ("http", "https")})
    return session


def _plain(obj: Any) -> dict:
    """A Stripe object as plain JSON data; refuses anything from live mode (we run in test mode only)."""
    data = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    if data.get("livemode") is True:
        raise GatewayError(code="livemode", detail=f"{data.get('object')} {data.get('id')} is a live-mode object")
    return data


def _check_id(value: str | None, prefix: str, what: str) -> str:
    if not isinstance(value, str) or not value.startswith(prefix) or not _ID.match(value):
        raise GatewayError(_l("That payment reference is not valid."), "invalid_id", f"{value!r} is not a {prefix}… id")
    return value


def _error_data(exc: stripe.StripeError) -> dict:
    body = exc.json_body if isinstance(exc.json_body, dict) else {}
    error = body.get("error")
    return error if isinstance(error, dict) else {}


def _translate(exc: stripe.StripeError) -> GatewayError:
    """Stripe's exception as ours, with a message fit for a person."""
    data = _error_data(exc)
    detail = data.get("message") or str(exc)
    if isinstance(exc, stripe.CardError):
        code = data.get("decline_code") or data.get("code") or "card_declined"
        return CardDeclined(declines.message_for(code), code, detail)
    if exc.http_status == 404:
        return GatewayError(_l("That payment record was not found."), "not_found", detail)
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return GatewayError(_l("Payments are not configured correctly."), "authentication", detail)
    return GatewayError(code=data.get("code") or "invalid_request", detail=detail)


def _stripe(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`_request`, with Stripe's remaining exceptions turned into ours."""
    try:
        return _request(call, *args, **kwargs)
    except stripe.StripeError as exc:
        raise _translate(exc) from exc


# --- Customers and saved cards ----------------------------------------------------------------------------

def ensure_customer(email: str, name: str, existing_id: str | None = None) -> str:
    """The id of the Stripe customer for this person: `existing_id` if it still exists, else one found by
    email, else a new one."""
    customers = _client().stripe.v1.customers
    if existing_id:
        try:
            found = _plain(_stripe(customers.retrieve, _check_id(existing_id, "cus_", "customer")))
            if not found.get("deleted"):
                return found["id"]
        except GatewayError as exc:
            if exc.code not in ("not_found", "invalid_id"):
                raise
        # Deleted, or unknown to this Stripe account (another environment): find or make one.
    page = _plain(_stripe(customers.list, params={"email": email, "limit": 1}))
    for customer in page.get("data") or ():
        return _plain(customer)["id"]
    made = _stripe(customers.create, params={"email": email, "name": name},
                   options={"idempotency_key": _new_key("customer")})
    return _plain(made)["id"]


def delete_customer(customer_id: str) -> None:
    """Delete a Stripe customer (account deletion): its saved cards go with it. Gone already is fine."""
    try:
        _stripe(_client().stripe.v1.customers.delete, _check_id(customer_id, "cus_", "customer"))
    except GatewayError as exc:
        if exc.code != "not_found":
            raise


def rename_customer(customer_id: str, email: str, name: str) -> None:
    """Replace a Stripe customer's email and name (account deletion of a member whose charges the
    books must keep reconciling: the customer stays, without the person's name or address)."""
    _stripe(_client().stripe.v1.customers.update, _check_id(customer_id, "cus_", "customer"),
            params={"email": email, "name": name}, options={"idempotency_key": _new_key("customer-rename")})


def start_card_setup(customer_id: str, metadata: dict[str, str]) -> SetupStart:
    """Make a SetupIntent that saves a card of this customer for charging later, off-session."""
    intent = _plain(_stripe(
        _client().stripe.v1.setup_intents.create,
        params={
            "customer": _check_id(customer_id, "cus_", "customer"),
            "usage": "off_session",
            "payment_method_types": ["card"],
            "metadata": {str(k): str(v) for k, v in metadata.items()},
        },
        options={"idempotency_key": _new_key("setup")},
    ))
    return SetupStart(id=intent["id"], client_secret=intent["client_secret"])


def read_setup(setup_intent_id: str, expected_customer_id: str) -> SetupResult:
    """Ask Stripe how a SetupIntent went (never trust the browser's word).

    Refuses (GatewayError) a SetupIntent of another customer, e.g. an id forged in a form. After a
    success, attaches the card to the customer if Stripe has not (localstripe does not); a card refused
    at that point raises CardDeclined.
    """
    _check_id(expected_customer_id, "cus_", "customer")
    client = _client().stripe
    intent = _plain(_stripe(client.v1.setup_intents.retrieve, _check_id(setup_intent_id, "seti_", "card setup"),
                            params={"expand": ["payment_method"]}))
    if intent.get("customer") != expected_customer_id:
        raise GatewayError(_l("This card setup belongs to someone else."), "wrong_customer",
                           f"{intent['id']} is not for {expected_customer_id}")
    method = intent.get("payment_method")
    if isinstance(method, str):  # not expanded (should not happen, but costs one request to tolerate)
        method = _plain(_stripe(client.v1.payment_methods.retrieve, method))
    method = _plain(method) if method else None
    succeeded = intent["status"] == "succeeded"
    if succeeded and method:
        owner = method.get("customer")
        if owner is None:
            method = _plain(_stripe(
                client.v1.payment_methods.attach, method["id"], params={"customer": expected_customer_id},
                options={"idempotency_key": f"attach-{method['id']}-{expected_customer_id}"},
            ))
        elif owner != expected_customer_id:
            raise GatewayError(_l("This card belongs to someone else."), "wrong_customer",
                               f"{method['id']} is attached to {owner}")
    card = (method or {}).get("card") or {}
    error = intent.get("last_setup_error") or {}
    return SetupResult(
        id=intent["id"],
        status=intent["status"],
        succeeded=succeeded,
        payment_method_id=method["id"] if method else None,
        card_brand=card.get("brand"),
        card_last4=card.get("last4"),
        customer_id=intent.get("customer"),
        error_message=error.get("message"),
        decline_code=error.get("decline_code") or error.get("code"),
        card_fingerprint=card.get("fingerprint"),
    )


def release_card(payment_method_id: str) -> None:
    """Detach a saved card from its customer, so it can never be charged again; done already is fine."""
    try:
        _stripe(_client().stripe.v1.payment_methods.detach, _check_id(payment_method_id, "pm_", "card"),
                options={"idempotency_key": f"detach-{payment_method_id}"})
    except GatewayError as exc:
        # Gone, or "not attached to a customer so detachment is impossible": either way it is released.
        if exc.code != "not_found" and "not attached" not in (exc.detail or ""):
            raise


# --- Charges ----------------------------------------------------------------------------------------------

def attempt_stamp(made: datetime) -> str:
    """The token of an attempt row made before attempts had one of their own: its creation time."""
    return made.strftime("%Y%m%dT%H%M%S%f")


def charge_key(pledge_id: int | str, attempt: int, token: str) -> str:
    """The idempotency key of a pledge's charge attempt, derived from the attempt row committed before
    the request (pledge, number, and the row's random token): the same attempt always sends the same key,
    and an attempt of another database sharing the Stripe account (a reset demo, a colleague's test data,
    where pledge ids start again at 1 — or a test suite whose clock stands still) never does."""
    return f"pledge-{pledge_id}-attempt-{attempt}-{token}"


def _charge_metadata(pledge_id: int | str, attempt: int, token: str) -> dict[str, str]:
    return {"pledge": str(pledge_id), "attempt": str(attempt), "attempt_token": token}


def charge(pledge_id: int | str, attempt: int, token: str, amount: int, currency: str, customer_id: str,
           payment_method_id: str) -> ChargeState:
    """Charge a saved card off-session in ONE request: a PaymentIntent created and confirmed at once,
    under the attempt's idempotency key (`charge_key`). Returns its state; a decline is not an exception
    but a `failed` state with its decline code, as `confirm_charge` reports it.

    Sending it again with the same arguments while Stripe keeps the key (24 hours) cannot charge twice:
    Stripe answers with the first result (the same PaymentIntent, or the same decline). So the caller
    commits the attempt row first, and after a lost answer sends exactly the same request again
    (docs/money-path.md). An `IdempotencyConflict` says the key was used with other parameters.
    """
    currency = currency.upper()
    if currency not in money.EXPONENTS:
        raise GatewayError(_l("This currency is not supported."), "invalid_currency", currency)
    if isinstance(amount, bool) or not isinstance(amount, int) or not money.MIN_CHARGE[currency] <= amount <= money.MAX_CHARGE:
        # Stripe would refuse it too (amount_too_small / amount_too_large); localstripe would not.
        raise GatewayError(_l("The amount is outside what can be charged."), "invalid_amount", f"{amount} {currency}")
    params = {
        "amount": amount,
        "currency": currency.lower(),
        "customer": _check_id(customer_id, "cus_", "customer"),
        "payment_method": _check_id(payment_method_id, "pm_", "card"),
        "payment_method_types": ["card"],
        "confirm": True,
        "off_session": True,
        "metadata": _charge_metadata(pledge_id, attempt, token),
        "expand": _EXPAND_FEE,
    }
    try:
        intent = _request(_client().stripe.v1.payment_intents.create, params=params,
                          options={"idempotency_key": charge_key(pledge_id, attempt, token)})
    except stripe.CardError as exc:
        # Stripe's 402 carries the PaymentIntent it made (requires_payment_method); so does the offline
        # Stripe's. A replay of the key returns the same error, so the same PaymentIntent.
        data = _error_data(exc)
        made = data.get("payment_intent")
        if not isinstance(made, dict) or not made.get("id"):
            raise _translate(exc) from exc
        if made.get("livemode") is True:
            raise GatewayError(code="livemode", detail=f"payment_intent {made['id']} is a live-mode object") from exc
        return _declined(_charge_state(made), data)
    except stripe.IdempotencyError as exc:
        raise IdempotencyConflict(code="idempotency_error", detail=str(exc)) from exc
    except stripe.StripeError as exc:
        raise _translate(exc) from exc
    return _charge_state(_plain(intent))


def _declined(state: ChargeState, error: dict) -> ChargeState:
    """A PaymentIntent's state read with the card error that came with it (Stripe's 402)."""
    code = error.get("decline_code") or error.get("code") or "card_declined"
    if code == "authentication_required":
        state = replace(state, needs_action=True)
    return replace(state, failed=not state.succeeded, decline_code=state.decline_code or code,
                   error_message=state.error_message or error.get("message"))


def find_charge(customer_id: str, pledge_id: int | str, attempt: int, token: str) -> ChargeState | None:
    """The PaymentIntent of a charge attempt, found among the customer's own by the metadata `charge`
    gives it (pledge, attempt, the attempt row's token), or None when Stripe has none. Asked once the
    attempt's idempotency key may have expired: a resent request would then charge again. Pages through
    all of the customer's PaymentIntents, newest first: a rare recovery, and a cut by creation time would
    trust our clock and Stripe's to agree, where a wrong None means a second charge."""
    wanted = _charge_metadata(pledge_id, attempt, token)
    params: dict[str, Any] = {"customer": _check_id(customer_id, "cus_", "customer"), "limit": 100}
    while True:
        page = _plain(_stripe(_client().stripe.v1.payment_intents.list, params=params))
        items = [_plain(item) for item in page.get("data") or ()]
        for item in items:
            if {k: (item.get("metadata") or {}).get(k) for k in wanted} == wanted:
                return read_charge(item["id"])  # with its fee: the list does not expand it
        if not page.get("has_more") or not items:
            return None
        params = {**params, "starting_after": items[-1]["id"]}


_EXPAND_FEE = ["latest_charge.balance_transaction"]


def read_charge(payment_intent_id: str) -> ChargeState:
    """Ask Stripe for a PaymentIntent's current state (before confirming it, and to finish an attempt)."""
    intent = _stripe(_client().stripe.v1.payment_intents.retrieve, _check_id(payment_intent_id, "pi_", "charge"),
                     params={"expand": _EXPAND_FEE})
    return _charge_state(_plain(intent))


def confirm_charge(payment_intent_id: str) -> ChargeState:
    """Confirm a PaymentIntent off-session (the backer is not there) and report the outcome.

    A decline is not an exception: it comes back as `failed`, with the decline code. Only a
    PaymentIntent whose id is saved in our database may be confirmed. Settlement now charges in one
    request (`charge`); this finishes an attempt left unconfirmed by the earlier two-step design (a
    release deployed in the middle of a settlement).
    """
    holder = _client()
    confirm = holder.stripe.v1.payment_intents.confirm
    _check_id(payment_intent_id, "pi_", "charge")
    try:
        intent = None
        if holder.confirm_takes_off_session:
            try:
                intent = _request(confirm, payment_intent_id, params={"off_session": True, "expand": _EXPAND_FEE},
                                  options={"idempotency_key": f"{payment_intent_id}-confirm-off-session"})
            except stripe.InvalidRequestError as exc:
                if "Unexpected off_session" not in (_error_data(exc).get("message") or ""):
                    raise
                # localstripe: the PaymentIntent was made for this saved card, so a plain confirm charges it
                # the same way (and answers requires_action where Stripe would say authentication_required).
                holder.confirm_takes_off_session = False
        if intent is None:
            intent = _request(confirm, payment_intent_id, params={"expand": _EXPAND_FEE},
                              options={"idempotency_key": f"{payment_intent_id}-confirm"})
    except stripe.CardError as exc:
        # The error carries the PaymentIntent; its expanded fee is not there, so read it again.
        return _declined(read_charge(payment_intent_id), _error_data(exc))
    except stripe.InvalidRequestError as exc:
        # Most likely no longer waiting for confirmation: an earlier try whose answer was lost, or another
        # worker, confirmed it. Its current state is the answer; if it is still waiting, the error is real.
        state = read_charge(payment_intent_id)
        if state.needs_confirmation:
            raise _translate(exc) from exc
        return state
    except stripe.StripeError as exc:
        raise _translate(exc) from exc
    return _charge_state(_plain(intent))


def cancel_charge(payment_intent_id: str) -> ChargeState:
    """Cancel a PaymentIntent that has not collected, so that it never can; report its final state.

    Settlement calls this before starting a new attempt for a pledge, so that a backer finishing an
    old authentication and an automatic retry can never both collect. If the PaymentIntent succeeded
    meanwhile, nothing is canceled and the state says `succeeded`: record it, do not retry.
    """
    state = read_charge(payment_intent_id)
    if state.succeeded or state.status == "canceled":
        return state
    try:
        intent = _request(_client().stripe.v1.payment_intents.cancel, payment_intent_id, params={"expand": _EXPAND_FEE},
                          options={"idempotency_key": f"{payment_intent_id}-cancel"})
    except stripe.InvalidRequestError as exc:
        # Already moved on (succeeded or canceled by another worker): its current state is the answer.
        state = read_charge(payment_intent_id)
        if state.succeeded or state.status == "canceled":
            return state
        raise _translate(exc) from exc
    except stripe.StripeError as exc:
        raise _translate(exc) from exc
    return _charge_state(_plain(intent))


def charge_client_secret(payment_intent_id: str) -> str:
    """The secret the backer's browser needs to authenticate a charge (Stripe.js confirmCardPayment)."""
    intent = _plain(_stripe(_client().stripe.v1.payment_intents.retrieve, _check_id(payment_intent_id, "pi_", "charge")))
    return intent["client_secret"]


def _charge_state(intent: dict) -> ChargeState:
    status = intent["status"]
    currency = (intent.get("currency") or "").upper()
    charge = intent.get("latest_charge")
    charge_id = charge if isinstance(charge, str) else (charge or {}).get("id")
    fee = None
    if isinstance(charge, dict):
        txn = charge.get("balance_transaction")
        # The fee is in the account's settlement currency; report it only when that is the charge's own.
        if isinstance(txn, dict) and (txn.get("currency") or "").upper() == currency:
            fee = txn.get("fee")
    error = intent.get("last_payment_error") or {}
    needs_action = status == "requires_action" or (
        status == "requires_payment_method" and "authentication_required" in (error.get("code"), error.get("decline_code"))
    )
    if needs_action:
        decline_code = "authentication_required"
        message = error.get("message") or "The bank asks the cardholder to authenticate this payment."
    else:
        decline_code = error.get("decline_code") or error.get("code")
        message = error.get("message")
        if status == "canceled":
            decline_code = decline_code or "canceled"
    return ChargeState(
        id=intent["id"],
        status=status,
        amount=int(intent["amount"]),
        currency=currency,
        succeeded=status == "succeeded",
        needs_confirmation=status == "requires_confirmation",
        needs_action=needs_action,
        failed=status in _FAILED_STATES,
        decline_code=decline_code,
        error_message=message,
        fee_amount=fee,
        charge_id=charge_id,
        metadata=dict(intent.get("metadata") or {}),
    )


def refund(payment_intent_or_charge_id: str, amount: int | None = None, *, idempotency_key: str) -> RefundResult:
    """Refund a collected charge, in full or `amount` minor units; the key comes from our own ids
    (e.g. f"refund-{payment_intent_id}") so that a retry never refunds twice."""
    target = payment_intent_or_charge_id
    if isinstance(target, str) and target.startswith("ch_"):
        params: dict[str, Any] = {"charge": _check_id(target, "ch_", "charge")}
    else:
        params = {"payment_intent": _check_id(target, "pi_", "charge")}
    if amount is not None:
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise GatewayError(_l("The refund amount must be more than zero."), "invalid_amount")
        params["amount"] = amount
    made = _plain(_stripe(_client().stripe.v1.refunds.create, params=params,
                          options={"idempotency_key": idempotency_key}))
    return RefundResult(id=made["id"], status=made.get("status") or "pending", amount=int(made["amount"]))


def read_refunds(payment_intent_id: str) -> list[RefundResult]:
    """The refunds already made of a PaymentIntent's charge, newest first (failed ones included: see
    `RefundResult.counts`). Asked before refunding again after an interrupted refund: idempotency keys
    expire after 24 hours, so Stripe's own record is the answer."""
    page = _plain(_stripe(_client().stripe.v1.refunds.list,
                          params={"payment_intent": _check_id(payment_intent_id, "pi_", "charge"), "limit": 100}))
    refunds = [_plain(item) for item in page.get("data") or ()]
    return [RefundResult(id=r["id"], status=r.get("status") or "pending", amount=int(r["amount"])) for r in refunds]


def find_charges(customer_id: str) -> list[ChargeState]:
    """Every PaymentIntent of a customer that Stripe charged, with its metadata (reconciliation: a
    charge Stripe has that we do not). Read through the customer's charges, which both Stripe and
    localstripe list by customer."""
    intents: list[str] = []
    params: dict[str, Any] = {"customer": _check_id(customer_id, "cus_", "customer"), "limit": 100}
    while True:
        page = _plain(_stripe(_client().stripe.v1.charges.list, params=params))
        items = [_plain(item) for item in page.get("data") or ()]
        intents += [item["payment_intent"] for item in items
                    if item.get("payment_intent") and item.get("status") == "succeeded" and item["payment_intent"] not in intents]
        if not page.get("has_more") or not items:
            return [read_charge(intent) for intent in intents]
        params = {**params, "starting_after": items[-1]["id"]}


# --- Connect: payout accounts and transfers -----------------------------------------------------------

@dataclass(frozen=True)
class PayoutAccountState:
    """A connected (Express) account as Stripe reports it: whether it can be paid, and what Stripe
    still needs from its owner (`requirements_due`: Stripe's field names, currently or past due)."""

    id: str
    country: str
    currency: str
    details_submitted: bool
    payouts_enabled: bool
    requirements_due: tuple[str, ...]
    disabled_reason: str | None


@dataclass(frozen=True)
class TransferState:
    """A Transfer to a connected account: `amount` and `amount_reversed` in minor units."""

    id: str
    amount: int
    currency: str
    destination: str
    amount_reversed: int
    metadata: dict


def _account_state(data: dict) -> PayoutAccountState:
    requirements = data.get("requirements") or {}
    due = tuple(sorted({*(requirements.get("currently_due") or ()), *(requirements.get("past_due") or ())}))
    return PayoutAccountState(
        id=data["id"], country=(data.get("country") or "").upper(), currency=(data.get("default_currency") or "").upper(),
        details_submitted=bool(data.get("details_submitted")), payouts_enabled=bool(data.get("payouts_enabled")),
        requirements_due=due, disabled_reason=requirements.get("disabled_reason"),
    )


def account_state(data: dict) -> PayoutAccountState:
    """The state of an account from an event's object (`account.updated`), as `read_payout_account` gives it."""
    return _account_state(data)


def create_payout_account(user_id: int, email: str, country: str, currency: str) -> PayoutAccountState:
    """A new Express connected account for a creator, asking for the transfers capability. A double
    click may make two at Stripe: the database keeps one per creator, and an account nobody uses
    moves no money."""
    made = _plain(_stripe(
        _client().stripe.v1.accounts.create,
        params={
            "type": "express", "country": country.upper(), "email": email, "default_currency": currency.lower(),
            "capabilities": {"transfers": {"requested": True}},
            "metadata": {"user": str(user_id)},
        },
        options={"idempotency_key": _new_key(f"user-{user_id}-account")},
    ))
    return _account_state(made)


def read_payout_account(account_id: str) -> PayoutAccountState:
    """Ask Stripe for a connected account's state (never trust a return URL)."""
    return _account_state(_plain(_stripe(_client().stripe.v1.accounts.retrieve, _check_id(account_id, "acct_", "account"))))


def onboarding_link(account_id: str, return_url: str, refresh_url: str) -> str:
    """The address of Stripe's hosted onboarding for an account (single use, short-lived)."""
    link = _plain(_stripe(
        _client().stripe.v1.account_links.create,
        params={"account": _check_id(account_id, "acct_", "account"), "return_url": return_url, "refresh_url": refresh_url,
                "type": "account_onboarding"},
        options={"idempotency_key": _new_key("account-link")},
    ))
    return link["url"]


def _transfer_state(data: dict) -> TransferState:
    destination = data.get("destination")
    if isinstance(destination, dict):
        destination = destination.get("id")
    return TransferState(id=data["id"], amount=int(data["amount"]), currency=(data.get("currency") or "").upper(),
                         destination=destination or "", amount_reversed=int(data.get("amount_reversed") or 0),
                         metadata=dict(data.get("metadata") or {}))


def create_transfer(amount: int, currency: str, account_id: str, *, group: str, metadata: dict[str, str],
                    idempotency_key: str) -> TransferState:
    """Move `amount` from the platform's balance to a connected account. The key comes from our own
    payout row (SETTLEMENT.md's discipline): a retry never pays twice."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise GatewayError(_l("The amount is outside what can be paid."), "invalid_amount", f"{amount} {currency}")
    made = _plain(_stripe(
        _client().stripe.v1.transfers.create,
        params={"amount": amount, "currency": currency.lower(), "destination": _check_id(account_id, "acct_", "account"),
                "transfer_group": group, "metadata": metadata},
        options={"idempotency_key": idempotency_key},
    ))
    return _transfer_state(made)


def find_transfers(group: str) -> list[TransferState]:
    """Every transfer Stripe has made for a transfer group (asked before paying again after an
    interrupted transfer: keys expire, Stripe's record is the answer)."""
    found: list[TransferState] = []
    params: dict[str, Any] = {"transfer_group": group, "limit": 100}
    while True:
        page = _plain(_stripe(_client().stripe.v1.transfers.list, params=params))
        items = [_plain(item) for item in page.get("data") or ()]
        found += [_transfer_state(item) for item in items]
        if not page.get("has_more") or not items:
            return found
        params = {**params, "starting_after": items[-1]["id"]}


def reverse_transfer(transfer_id: str, amount: int, *, metadata: dict[str, str], idempotency_key: str) -> str:
    """Take `amount` back from a transfer (before refunding a backer after the payout); returns the
    reversal's id."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise GatewayError(_l("The amount is outside what can be paid."), "invalid_amount", str(amount))
    made = _plain(_stripe(
        _client().stripe.v1.transfers.reversals.create, _check_id(transfer_id, "tr_", "transfer"),
        params={"amount": amount, "metadata": metadata}, options={"idempotency_key": idempotency_key},
    ))
    return made["id"]


# --- Webhooks ---------------------------------------------------------------------------------------------

#: The shapes of what an event names (Stripe's ids are a prefix, "_" and letters and digits).
_EVENT_ID = re.compile(r"evt_[A-Za-z0-9_]{1,251}")
_EVENT_TYPE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)+")
_OBJECT_ID = re.compile(r"[a-z]{2,8}_[A-Za-z0-9_]{1,240}")


def looks_like_id(value: object, prefix: str) -> bool:
    """True for a Stripe id with this prefix ("pi", "seti"): safe to look up and to store."""
    return isinstance(value, str) and value.startswith(prefix + "_") and _OBJECT_ID.fullmatch(value) is not None


def verify_webhook(payload: bytes, sig_header: str | None) -> Event:
    """Check a webhook's Stripe-Signature against STRIPE_WEBHOOK_SECRET and read its event.

    Raises WebhookSignatureError when it does not verify (answer 400), GatewayError for a live-mode event.
    """
    secret = current_app.config.get("STRIPE_WEBHOOK_SECRET") or ""
    if not secret:
        raise WebhookSignatureError(code="no_webhook_secret", detail="STRIPE_WEBHOOK_SECRET is empty")
    try:
        stripe.WebhookSignature.verify_header(payload, sig_header, secret, WEBHOOK_TOLERANCE_SECONDS)
        data = json.loads(payload)
    except (stripe.SignatureVerificationError, UnicodeDecodeError) as exc:
        raise WebhookSignatureError(code="bad_signature", detail=str(exc)) from exc
    except ValueError as exc:  # signed, yet not JSON
        raise GatewayError(code="bad_payload", detail=str(exc)) from exc
    obj = data.get("data", {}).get("object") if isinstance(data, dict) and isinstance(data.get("data"), dict) else None
    if not (isinstance(obj, dict) and isinstance(data.get("id"), str) and isinstance(data.get("type"), str)):
        raise GatewayError(code="bad_payload", detail="not a Stripe event")
    # Signed is not well-formed: ids and types are stored in bounded columns (and PostgreSQL refuses NUL).
    if not (_EVENT_ID.fullmatch(data["id"]) and len(data["type"]) <= 100 and _EVENT_TYPE.fullmatch(data["type"])):
        raise GatewayError(code="bad_payload", detail="event id or type of an unknown shape")
    if "id" in obj and not (isinstance(obj["id"], str) and _OBJECT_ID.fullmatch(obj["id"])):
        raise GatewayError(code="bad_payload", detail="object id of an unknown shape")
    if data.get("livemode") is True or obj.get("livemode") is True:
        raise GatewayError(code="livemode", detail=f"live-mode event {data['id']}")
    return Event(id=data["id"], type=data["type"], object=obj, livemode=False)


# --- For the pages ----------------------------------------------------------------------------------------

def stripe_js_url() -> str:
    """Where the card form loads Stripe.js from (localstripe serves its own under STRIPE_API_BASE)."""
    config = current_app.config
    if config.get("STRIPE_JS_URL"):
        return config["STRIPE_JS_URL"]
    base = (config.get("STRIPE_API_BASE") or "").rstrip("/")
    return f"{base}/js.stripe.com/v3/" if base else STRIPE_JS_URL


def publishable_key() -> str:
    """The key Stripe.js is started with ("pk_test_localstripe" against localstripe without keys)."""
    config = current_app.config
    return config.get("STRIPE_PUBLISHABLE_KEY") or (LOCALSTRIPE_PUBLISHABLE_KEY if config.get("STRIPE_API_BASE") else "")
