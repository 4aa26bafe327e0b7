"""Stripe Connect for localstripe: Express accounts, their hosted onboarding, transfers and reversals,
processing fees on charges and a real platform balance.

localstripe (our offline Stripe) has no Connect. Importing this module (localstripe_server.py does, once)
adds to localstripe's aiohttp app, before it serves:

* ``POST /v1/accounts``, ``GET /v1/accounts``, ``GET|POST /v1/accounts/{id}``: Express accounts, created
  restricted (requirements due, no charges, no payouts, ``capabilities.transfers`` "inactive").
* ``POST /v1/account_links`` (type ``account_onboarding``): a single-use link, valid 5 minutes, to
  ``/connect/onboarding/{token}``, the stand-in for Stripe's hosted onboarding. Its form completes the
  onboarding (account enabled, ``account.updated`` sent) or leaves it halfway; either way it sends the
  browser to ``return_url``. A used or expired link sends it to ``refresh_url``; an unknown one is a 404.
* ``POST /v1/transfers``, ``GET /v1/transfers`` (``destination``, ``transfer_group``, paginated, newest
  first), ``GET|POST /v1/transfers/{id}``; ``POST|GET /v1/transfers/{id}/reversals``,
  ``GET /v1/transfers/{id}/reversals/{reversal}``. A transfer needs the destination's ``transfers``
  capability active and enough available platform balance in its currency.
* Fees: every charge's balance transaction carries Stripe's standard card fee (2.9% + 30 minor units;
  JPY 3.6%), so ``net`` is what the platform keeps. Transfers and reversals have balance transactions too
  (types ``transfer`` and ``transfer_refund``).
* ``GET /v1/balance``: the platform's available balance per currency, the sum of its balance transactions'
  ``net`` (charges less fees, refunds, transfers, reversals). Everything is available at once.
* Idempotency: every POST above honours ``Idempotency-Key`` as Stripe does, like every other POST of the
  offline Stripe (localstripe_stripe_like.py); a refusal marked `executed` is kept under its key.
* Test and demo hooks (no API key, like localstripe's own ``/_config``):
  ``POST /_config/connect/accounts/{id}/requirements`` with ``due=true|false`` (and optional
  ``fields[]``) makes requirements past due again (account disabled) or clears them;
  ``POST /_config/connect/onboarding/{token}/expire`` expires an account link.
* Events ``account.updated``, ``transfer.created``, ``transfer.updated``, ``transfer.reversed`` go to
  localstripe's registered webhooks, signed by localstripe's own machinery.

Everything lives in localstripe's store (``resources.store``), so it is saved and loaded with it.
"""
from __future__ import annotations

import copy
import html
import re
import secrets
import time
import warnings
from collections.abc import Awaitable, Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from aiohttp import web

with warnings.catch_warnings():
    # localstripe registers plain functions as aiohttp handlers, which aiohttp warns about once per route.
    warnings.simplefilter("ignore", DeprecationWarning)
    from localstripe import resources
    from localstripe import server as ls_server
    from localstripe.errors import UserError
    from localstripe.webhooks import schedule_webhook

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: How long an account link stays usable (Stripe: "a few minutes").
ACCOUNT_LINK_SECONDS = 300

#: Stripe's standard card processing fee as (percent, fixed minor units); other currencies as DEFAULT_FEE.
PROCESSING_FEES: dict[str, tuple[Decimal, int]] = {"jpy": (Decimal("3.6"), 0)}
DEFAULT_FEE: tuple[Decimal, int] = (Decimal("2.9"), 30)

#: What a new Express account has to give in onboarding (typical of an individual; Stripe's list varies
#: by country). eventually_due also names what a larger volume would ask for.
ONBOARDING_FIELDS = [
    "business_profile.mcc", "business_profile.url", "business_type", "external_account",
    "individual.address.city", "individual.address.line1", "individual.address.postal_code",
    "individual.dob.day", "individual.dob.month", "individual.dob.year", "individual.email",
    "individual.first_name", "individual.last_name", "individual.phone", "tos_acceptance.date", "tos_acceptance.ip",
]
LATER_FIELDS = ["individual.id_number", "individual.verification.document"]
#: What the requirements hook asks for again when not told which fields.
DUE_AGAIN_FIELDS = ["individual.verification.document"]

DEFAULT_CURRENCIES = {
    "US": "usd", "GB": "gbp", "JP": "jpy", "CN": "cny", "CA": "cad", "AU": "aud", "CH": "chf", "SG": "sgd",
    "HK": "hkd", "NZ": "nzd", "SE": "sek", "NO": "nok", "DK": "dkk", "PL": "pln",
}
EURO_COUNTRIES = {"AT", "BE", "CY", "DE", "EE", "ES", "FI", "FR", "GR", "HR", "IE", "IT", "LT", "LU", "LV", "MT",
                  "NL", "PT", "SI", "SK"}


# --- errors -----------------------------------------------------------------------------------------------

class ConnectError(UserError):
    """A Stripe-shaped error: ``{"error": {"type", "code", "message", "param", "doc_url"}}``.

    `executed` marks a refusal made after the request was accepted (e.g. ``balance_insufficient``):
    Stripe saves those under the request's idempotency key, unlike a request that failed validation.
    """

    def __init__(self, status: int, message: str, code: str | None = None, *, param: str | None = None,
                 type: str = "invalid_request_error", executed: bool = False) -> None:
        contents: dict[str, Any] = {}
        if code:
            contents["code"] = code
            contents["doc_url"] = f"https://docs.stripe.com/error-codes/{code.replace('_', '-')}"
        if param:
            contents["param"] = param
        super().__init__(status, message, contents)
        self.body["error"]["type"] = type
        self.executed = executed


def _missing(name: str) -> ConnectError:
    return ConnectError(400, f"Missing required param: {name}.", "parameter_missing", param=name)


def _invalid(name: str, message: str, code: str = "parameter_invalid_string_empty") -> ConnectError:
    return ConnectError(400, message, code, param=name)


# --- parameters -------------------------------------------------------------------------------------------

async def _post_data(request: web.Request) -> dict[str, Any]:
    data = await ls_server.get_post_data(request) or {}
    if not isinstance(data, dict):
        raise ConnectError(400, "Invalid request body.")
    return data


def _query(request: web.Request) -> dict[str, Any]:
    return ls_server.unflatten_data(request.query) or {}


def _only(data: dict[str, Any], allowed: set[str]) -> list[str] | None:
    """Refuse unknown parameters (as Stripe does); return `expand` if given."""
    for key in data:
        if key not in allowed and key != "expand":
            raise ConnectError(400, f"Received unknown parameter: {key}", "parameter_unknown", param=key)
    expand = data.get("expand")
    if expand is not None and not (isinstance(expand, list) and all(isinstance(e, str) for e in expand)):
        raise _invalid("expand", "Invalid array", "parameter_invalid_empty")
    return expand


def _string(data: dict[str, Any], name: str, *, required: bool = False, max_length: int = 5000) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise _missing(name)
        return None
    if not isinstance(value, str):
        raise _invalid(name, f"Invalid string: {value!r}")
    if len(value) > max_length:
        raise _invalid(name, f"Invalid string: too long (at most {max_length} characters)")
    return value


def _integer(data: dict[str, Any], name: str, *, required: bool = False, minimum: int = 1) -> int | None:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise _missing(name)
        return None
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and re.fullmatch(r"-?\d{1,15}", value))):
        raise _invalid(name, f"Invalid integer: {value}", "parameter_invalid_integer")
    number = int(value)
    if number < minimum:
        raise _invalid(name, f"This value must be greater than or equal to {minimum}.", "parameter_invalid_integer")
    return number


def _boolean(data: dict[str, Any], name: str) -> bool | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _invalid(name, f"Invalid boolean: {value}", "parameter_invalid_empty")


def _currency(data: dict[str, Any], name: str = "currency", *, required: bool = True) -> str | None:
    value = _string(data, name, required=required)
    if value is None:
        return None
    if not re.fullmatch(r"[A-Za-z]{3}", value):
        raise _invalid(name, f"Invalid currency: {value}")
    return value.lower()


def _url(data: dict[str, Any], name: str) -> str:
    value = _string(data, name, required=True, max_length=2048)
    assert value is not None
    if not re.fullmatch(r"https?://[^\s]+", value):
        raise ConnectError(400, "Not a valid URL", "url_invalid", param=name)
    return value


def _metadata(value: Any, current: dict[str, str] | None = None) -> dict[str, str]:
    """Stripe's metadata update: keys merge, a key set to "" goes, metadata="" empties it."""
    result = dict(current or {})
    if value is None:
        return result
    if value == "":
        return {}
    if not isinstance(value, dict):
        raise _invalid("metadata", "Invalid object", "parameter_invalid_empty")
    for key, item in value.items():
        if not isinstance(item, str):
            raise _invalid(f"metadata[{key}]", "Invalid string", "parameter_invalid_empty")
        if len(key) > 40:
            raise _invalid("metadata", f"Metadata keys can have up to 40 characters; '{key}' has {len(key)}.")
        if len(item) > 500:
            raise _invalid(f"metadata[{key}]", "Metadata values can have up to 500 characters.")
        if item == "":
            result.pop(key, None)
        else:
            result[key] = item
    if len(result) > 50:
        raise _invalid("metadata", "You can specify up to 50 keys.")
    return result


def _json(obj: Any, status: int = 200) -> web.Response:
    return ls_server.json_response(obj, status=status)


# --- fees, balance transactions, the platform balance ----------------------------------------------------

def processing_fee(amount: int, currency: str) -> int:
    """Stripe's standard fee on a card charge of `amount` minor units (percent rounded half up, plus fixed)."""
    if amount <= 0:
        return 0
    percent, fixed = PROCESSING_FEES.get(currency.lower(), DEFAULT_FEE)
    return int((Decimal(amount) * percent / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)) + fixed


def _with_processing_fee(original: Callable[..., None]) -> Callable[..., None]:
    """Wrap localstripe's BalanceTransaction constructor: a charge's transaction carries its fee."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if self.type == "charge":
            self.fee = processing_fee(self.amount, self.currency)
            self.fee_details = [{"amount": self.fee, "application": None, "currency": self.currency.lower(),
                                 "description": "Stripe processing fees", "type": "stripe_fee"}] if self.fee else []

    __init__._connect_fees = True  # type: ignore[attr-defined]
    return __init__


if not getattr(resources.BalanceTransaction.__init__, "_connect_fees", False):
    resources.BalanceTransaction.__init__ = _with_processing_fee(resources.BalanceTransaction.__init__)


def _balance_transaction(amount: int, currency: str, source: str, type: str, reporting_category: str,
                         description: str | None) -> resources.BalanceTransaction:
    """A balance transaction of a kind localstripe's constructor refuses (transfers and their reversals)."""
    txn = resources.BalanceTransaction.__new__(resources.BalanceTransaction)
    resources.StripeObject.__init__(txn)  # id, created, livemode; kept in the store
    txn.amount = amount
    txn.available_on = txn.created
    txn.currency = currency
    txn.description = description
    txn.exchange_rate = None
    txn.fee = 0
    txn.fee_details = []
    txn.reporting_category = reporting_category
    txn.source = source
    txn.status = "available"
    txn.type = type
    return txn


def platform_balance() -> dict[str, int]:
    """Available platform balance per (lower-case) currency: the sum of every balance transaction's net."""
    totals: dict[str, int] = {}
    for key, txn in list(resources.store.items()):
        if key.startswith("balance_transaction:") and getattr(txn, "status", None) == "available":
            currency = txn.currency.lower()
            totals[currency] = totals.get(currency, 0) + txn.amount - (txn.fee or 0)
    return totals


def _balance_export(self: Any, expand: Any = None) -> dict[str, Any]:
    totals = platform_balance() or {"usd": 0}
    currencies = sorted(totals)
    return {
        "object": "balance",
        "livemode": False,
        "available": [{"amount": totals[c], "currency": c, "source_types": {"card": totals[c]}} for c in currencies],
        "pending": [{"amount": 0, "currency": c, "source_types": {"card": 0}} for c in currencies],
        "connect_reserved": [{"amount": 0, "currency": c} for c in currencies],
    }


# localstripe's GET /v1/balance answers its Balance object's export (a fixed 20 EUR): make it the real one.
resources.Balance._export = _balance_export


# --- objects ----------------------------------------------------------------------------------------------

def _new_id(prefix: str, length: int = 24) -> str:
    return prefix + resources.random_id(length)


class _ConnectObject:
    """Mixed into a StripeObject (before it): an export that never shares a list or dict with the live
    object (events keep a snapshot), and an order for lists, newest first. The classes stay direct
    subclasses of StripeObject, which is where localstripe looks up an id's class to expand it."""

    id: str
    created: int

    def __init__(self, id: str) -> None:
        super().__init__(id=id)  # type: ignore[call-arg]
        self._order = time.time_ns()

    def _export(self, expand: Any = None) -> dict[str, Any]:
        return copy.deepcopy(super()._export(expand=expand))  # type: ignore[misc]

    def _sort_key(self) -> tuple[int, int]:
        return (self.created, getattr(self, "_order", 0))


class Account(_ConnectObject, resources.StripeObject):
    """A connected Express account (https://docs.stripe.com/api/accounts/object)."""

    object = "account"
    _id_prefix = "acct_"

    def __init__(self, *, country: str, default_currency: str, email: str | None, metadata: dict[str, str],
                 capabilities: list[str], business_type: str | None, business_profile: dict[str, Any]) -> None:
        super().__init__(_new_id("acct_", 16))
        self.type = "express"
        self.country = country
        self.default_currency = default_currency
        self.email = email
        self.metadata = metadata
        self.business_type = business_type
        self.business_profile = {"mcc": None, "name": None, "product_description": None, "support_address": None,
                                 "support_email": None, "support_phone": None, "support_url": None, "url": None,
                                 **business_profile}
        self.capabilities = {name: "inactive" for name in capabilities}
        self.charges_enabled = False
        self.payouts_enabled = False
        self.details_submitted = False
        self.controller = {"type": "application", "is_controller": True, "fees": {"payer": "application_express"},
                           "losses": {"payments": "application"}, "requirement_collection": "stripe",
                           "stripe_dashboard": {"type": "express"}}
        self.requirements = _requirements(ONBOARDING_FIELDS, ONBOARDING_FIELDS + LATER_FIELDS, past_due=True)
        self.future_requirements = _requirements([], [], past_due=False)
        self.settings = {
            "dashboard": {"display_name": None, "timezone": "Etc/UTC"},
            "payouts": {"debit_negative_balances": True, "schedule": {"delay_days": 2, "interval": "daily"},
                        "statement_descriptor": None},
        }
        self.tos_acceptance = {"date": None}
        self._bank_accounts: list[dict[str, Any]] = []

    @property
    def external_accounts(self) -> dict[str, Any]:
        return {"object": "list", "data": copy.deepcopy(self._bank_accounts), "has_more": False,
                "total_count": len(self._bank_accounts), "url": f"/v1/accounts/{self.id}/external_accounts"}

    def _enable(self) -> None:
        """What a completed onboarding gives: everything submitted, verified and enabled."""
        self.details_submitted = True
        self.charges_enabled = True
        self.payouts_enabled = True
        self.requirements = _requirements([], [], past_due=False)
        self.capabilities = {name: "active" for name in self.capabilities}
        if self.tos_acceptance.get("date") is None:
            self.tos_acceptance = {"date": int(time.time()), "ip": "127.0.0.1", "user_agent": "localstripe"}
        if not self._bank_accounts:
            self._bank_accounts = [{
                "id": _new_id("ba_"), "object": "bank_account", "account": self.id, "account_holder_name": None,
                "account_holder_type": None, "bank_name": "STRIPE TEST BANK", "country": self.country,
                "currency": self.default_currency, "default_for_currency": True, "fingerprint": secrets.token_hex(8),
                "last4": "6789", "metadata": {}, "routing_number": "110000000", "status": "new",
            }]

    def _require(self, fields: list[str]) -> None:
        """Requirements past due again: the account is disabled until they are given (a new onboarding)."""
        self.charges_enabled = False
        self.payouts_enabled = False
        self.requirements = _requirements(fields, sorted(set(fields) | set(self.requirements["eventually_due"])),
                                          past_due=True)
        self.capabilities = {name: "inactive" for name in self.capabilities}


def _requirements(currently_due: list[str], eventually_due: list[str], *, past_due: bool) -> dict[str, Any]:
    return {
        "alternatives": [],
        "current_deadline": None,
        "currently_due": list(currently_due),
        "disabled_reason": "requirements.past_due" if past_due and currently_due else None,
        "errors": [],
        "eventually_due": list(eventually_due),
        "past_due": list(currently_due) if past_due else [],
        "pending_verification": [],
    }


class AccountLink(_ConnectObject, resources.StripeObject):
    """An onboarding link (https://docs.stripe.com/api/account_links/object); kept under its secret token."""

    object = "account_link"

    def __init__(self, *, account: str, refresh_url: str, return_url: str, url: str, token: str) -> None:
        super().__init__(token)
        self.expires_at = self.created + ACCOUNT_LINK_SECONDS
        self.url = url
        self._account = account
        self._refresh_url = refresh_url
        self._return_url = return_url
        self._used = False

    def _usable(self) -> bool:
        return not self._used and time.time() < self.expires_at

    def _export(self, expand: Any = None) -> dict[str, Any]:
        return {"object": "account_link", "created": self.created, "expires_at": self.expires_at, "url": self.url}


class Transfer(_ConnectObject, resources.StripeObject):
    """Money sent from the platform's balance to a connected account (https://docs.stripe.com/api/transfers/object)."""

    object = "transfer"
    _id_prefix = "tr_"

    def __init__(self, *, amount: int, currency: str, destination: str, description: str | None,
                 transfer_group: str | None, metadata: dict[str, str]) -> None:
        super().__init__(_new_id("tr_"))
        self.amount = amount
        self.amount_reversed = 0
        self.currency = currency
        self.description = description
        self.destination = destination
        self.destination_payment = _new_id("py_")
        self.metadata = metadata
        self.reversed = False
        self.source_transaction = None
        self.source_type = "card"
        self.transfer_group = transfer_group
        self.balance_transaction = _balance_transaction(-amount, currency, self.id, "transfer", "transfer", description).id

    @property
    def reversals(self) -> dict[str, Any]:
        return _page(f"/v1/transfers/{self.id}/reversals", _reversals_of(self.id), limit=10, total_count=True)


class TransferReversal(_ConnectObject, resources.StripeObject):
    """A transfer given back to the platform, in part or whole (https://docs.stripe.com/api/transfer_reversals/object)."""

    object = "transfer_reversal"
    _id_prefix = "trr_"

    def __init__(self, *, transfer: Transfer, amount: int, description: str | None, metadata: dict[str, str]) -> None:
        super().__init__(_new_id("trr_"))
        self.amount = amount
        self.currency = transfer.currency
        self.destination_payment_refund = _new_id("pyr_")
        self.metadata = metadata
        self.source_refund = None
        self.transfer = transfer.id
        self._description = description
        self.balance_transaction = _balance_transaction(
            amount, transfer.currency, self.id, "transfer_refund", "transfer_reversal", description).id


def _all(cls: type[_ConnectObject]) -> list[Any]:
    prefix = cls.object + ":"
    items = [obj for key, obj in list(resources.store.items()) if key.startswith(prefix)]
    return sorted(items, key=lambda obj: obj._sort_key(), reverse=True)


def _reversals_of(transfer_id: str) -> list[TransferReversal]:
    return [r for r in _all(TransferReversal) if r.transfer == transfer_id]


def _page(url: str, items: list[Any], *, limit: int = 10, starting_after: Any = None, ending_before: Any = None,
          expand: list[str] | None = None, total_count: bool = False) -> dict[str, Any]:
    """A Stripe list object of `items` (already newest first), cut at the cursors."""
    if starting_after is not None:
        items = [i for i in items if i._sort_key() < starting_after._sort_key()]
        page, has_more = items[:limit], len(items) > limit
    elif ending_before is not None:
        items = [i for i in items if i._sort_key() > ending_before._sort_key()]
        page, has_more = items[-limit:], len(items) > limit
    else:
        page, has_more = items[:limit], len(items) > limit
    listed = {"object": "list", "data": [i._export(expand=expand) for i in page], "has_more": has_more, "url": url}
    if total_count:
        listed["total_count"] = len(items)
    return listed


def _list_params(data: dict[str, Any], cls: type[_ConnectObject], noun: str) -> dict[str, Any]:
    limit = _integer(data, "limit", minimum=1) or 10
    if limit > 100:
        raise _invalid("limit", "This value must be less than or equal to 100.", "parameter_invalid_integer")
    cursors = {}
    for name in ("starting_after", "ending_before"):
        value = _string(data, name)
        if value is not None:
            found = resources.store.get(f"{cls.object}:{value}")
            if found is None:
                raise ConnectError(400, f"No such {noun}: '{value}'", "resource_missing", param=name)
            cursors[name] = found
    return {"limit": limit, **cursors}


def _account(account_id: str, *, param: str | None = None) -> Account:
    """The account, or Stripe's answer for an account the key cannot see."""
    account = resources.store.get(f"account:{account_id}")
    if not isinstance(account, Account):
        raise ConnectError(403 if param is None else 400,
                           f"The provided key does not have access to account '{account_id}' (or that account does "
                           "not exist). Application access may have been revoked.", "account_invalid", param=param)
    return account


def _transfer(transfer_id: str) -> Transfer:
    transfer = resources.store.get(f"transfer:{transfer_id}")
    if not isinstance(transfer, Transfer):
        raise ConnectError(404, f"No such transfer: '{transfer_id}'", "resource_missing", param="id")
    return transfer


# --- events -----------------------------------------------------------------------------------------------

def _send_event(type: str, obj: _ConnectObject, previous: dict[str, Any] | None = None,
                account: str | None = None) -> resources.Event:
    """An event through localstripe's own machinery (stored, listed, signed for each registered webhook)."""
    event = resources.Event(type, obj)
    if previous:
        event.data["previous_attributes"] = previous
    if account:
        event.account = account  # as Stripe does for an event about a connected account
    schedule_webhook(event)
    return event


def _changed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in before.items() if after.get(key) != value}


def _account_updated(account: Account, before: dict[str, Any]) -> None:
    previous = _changed(before, account._export())
    if previous:
        _send_event("account.updated", account, previous, account=account.id)


# --- accounts ---------------------------------------------------------------------------------------------

ACCOUNT_CREATE_PARAMS = {"type", "country", "default_currency", "email", "metadata", "capabilities", "business_type",
                         "business_profile"}
BUSINESS_PROFILE_FIELDS = {"mcc", "name", "product_description", "support_email", "support_phone", "support_url", "url"}


def _business_profile(value: Any) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise _invalid("business_profile", "Invalid object", "parameter_invalid_empty")
    for key, item in value.items():
        if key not in BUSINESS_PROFILE_FIELDS:
            raise ConnectError(400, f"Received unknown parameter: business_profile[{key}]", "parameter_unknown",
                               param=f"business_profile[{key}]")
        if not isinstance(item, str):
            raise _invalid(f"business_profile[{key}]", "Invalid string")
    return {key: item or None for key, item in value.items()}


async def create_account(request: web.Request) -> web.Response:
    data = await _post_data(request)
    expand = _only(data, ACCOUNT_CREATE_PARAMS)
    kind = _string(data, "type") or "express"
    if kind != "express":
        raise _invalid("type", f"localstripe models Express accounts only, not '{kind}'.", "parameter_invalid_empty")
    country = (_string(data, "country") or "US").upper()
    if not re.fullmatch(r"[A-Z]{2}", country):
        raise ConnectError(400, f"Country '{country}' is unknown.", "country_unsupported", param="country")
    default_currency = _currency(data, "default_currency", required=False) or (
        "eur" if country in EURO_COUNTRIES else DEFAULT_CURRENCIES.get(country, "usd"))
    email = _string(data, "email")
    if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
        raise ConnectError(400, "Invalid email address: " + email, "email_invalid", param="email")
    business_type = _string(data, "business_type")
    if business_type not in (None, "individual", "company", "non_profit", "government_entity"):
        raise _invalid("business_type", f"Invalid business_type: {business_type}")
    capabilities = data.get("capabilities") or {}
    if not isinstance(capabilities, dict):
        raise _invalid("capabilities", "Invalid object", "parameter_invalid_empty")
    requested = []
    for name, wanted in capabilities.items():
        if not isinstance(wanted, dict) or set(wanted) - {"requested"}:
            raise _invalid(f"capabilities[{name}]", "Invalid object", "parameter_invalid_empty")
        if _boolean(wanted, "requested"):
            requested.append(name)
    account = Account(country=country, default_currency=default_currency, email=email,
                      metadata=_metadata(data.get("metadata")), capabilities=sorted(requested),
                      business_type=business_type, business_profile=_business_profile(data.get("business_profile")))
    return _json(account._export(expand=expand))


async def list_accounts(request: web.Request) -> web.Response:
    data = _query(request)
    expand = _only(data, {"limit", "starting_after", "ending_before", "created"})
    if "created" in data:
        raise ConnectError(400, "localstripe does not filter accounts by created.", "parameter_unknown", param="created")
    return _json(_page("/v1/accounts", _all(Account), expand=expand, **_list_params(data, Account, "account")))


async def retrieve_account(request: web.Request) -> web.Response:
    data = _query(request)
    expand = _only(data, set())
    return _json(_account(request.match_info["id"])._export(expand=expand))


async def update_account(request: web.Request) -> web.Response:
    account = _account(request.match_info["id"])
    data = await _post_data(request)
    expand = _only(data, {"email", "metadata", "business_profile", "business_type"})
    before = account._export()
    if "email" in data:
        email = _string(data, "email")
        if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
            raise ConnectError(400, "Invalid email address: " + email, "email_invalid", param="email")
        account.email = email
    if "metadata" in data:
        account.metadata = _metadata(data["metadata"], account.metadata)
    if "business_profile" in data:
        account.business_profile = {**account.business_profile, **_business_profile(data["business_profile"])}
    if "business_type" in data:
        account.business_type = _string(data, "business_type")
    _account_updated(account, before)
    return _json(account._export(expand=expand))


# --- account links and the hosted onboarding --------------------------------------------------------------

async def create_account_link(request: web.Request) -> web.Response:
    data = await _post_data(request)
    _only(data, {"account", "refresh_url", "return_url", "type", "collect", "collection_options"})
    account = _account(_string(data, "account", required=True) or "", param="account")
    kind = _string(data, "type", required=True)
    if kind != "account_onboarding":
        raise _invalid("type", f"Express accounts only take account links of type account_onboarding, not '{kind}'.")
    refresh_url, return_url = _url(data, "refresh_url"), _url(data, "return_url")
    token = secrets.token_urlsafe(24)
    url = f"{request.scheme}://{request.host}/connect/onboarding/{token}"
    link = AccountLink(account=account.id, refresh_url=refresh_url, return_url=return_url, url=url, token=token)
    return _json(link._export())


def _link(token: str) -> AccountLink | None:
    link = resources.store.get(f"account_link:{token}")
    return link if isinstance(link, AccountLink) else None


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · localstripe Connect</title>
<link rel="icon" href="data:,">
<style>
body {{ font-family: system-ui, sans-serif; max-width: 36rem; margin: 2rem auto; padding: 0 1rem; color: #1a1a1a; }}
button {{ font: inherit; padding: .6rem 1rem; margin: .25rem .5rem .25rem 0; border-radius: .4rem; border: 1px solid #635bff; }}
button[value=complete] {{ background: #635bff; color: #fff; }}
button[value=leave] {{ background: #fff; color: #3b34c4; }}
button:focus-visible {{ outline: 3px solid #1a1a1a; outline-offset: 2px; }}
.note {{ color: #4a4a4a; }}
</style>
</head>
<body>
<main>
{body}
</main>
</body>
</html>
"""


def _html(title: str, body: str, status: int = 200) -> web.Response:
    return web.Response(text=_PAGE.format(title=html.escape(title), body=body), status=status, content_type="text/html")


def _not_found() -> web.Response:
    return _html("Link not found", "<h1>This onboarding link does not exist</h1>"
                 "<p>Ask the platform for a new link.</p>", status=404)


async def onboarding_page(request: web.Request) -> web.StreamResponse:
    """Stripe's hosted onboarding, in miniature: complete it, or leave it halfway."""
    link = _link(request.match_info["token"])
    if link is None:
        return _not_found()
    if not link._usable():
        raise web.HTTPSeeOther(link._refresh_url)
    account = _account(link._account)
    due = account.requirements["currently_due"]
    items = "".join(f"<li><code>{html.escape(field)}</code></li>" for field in due)
    who = html.escape(account.email or account.id)
    body = f"""<h1 id="onboarding-title">Set up payouts for {who}</h1>
<p class="note">This is localstripe's stand-in for Stripe's hosted Express onboarding (test mode: nothing is checked).</p>
<section aria-labelledby="due-title">
<h2 id="due-title">Information Stripe needs</h2>
{f'<ul>{items}</ul>' if due else '<p>Nothing is due: you can confirm your details.</p>'}
</section>
<form method="post" action="/connect/onboarding/{html.escape(link.id)}" aria-labelledby="onboarding-title">
<fieldset>
<legend>Finish now, or come back later</legend>
<button type="submit" name="action" value="complete">Complete onboarding</button>
<button type="submit" name="action" value="leave">Leave for now</button>
</fieldset>
</form>"""
    return _html(f"Set up payouts for {account.email or account.id}", body)


async def onboarding_submit(request: web.Request) -> web.StreamResponse:
    link = _link(request.match_info["token"])
    if link is None:
        return _not_found()
    if not link._usable():
        raise web.HTTPSeeOther(link._refresh_url)
    form = await request.post()
    action = form.get("action")
    if action not in ("complete", "leave"):
        return _html("Choose an action", "<h1>Choose “Complete onboarding” or “Leave for now”</h1>", status=400)
    link._used = True
    if action == "complete":
        account = _account(link._account)
        before = account._export()
        account._enable()
        _account_updated(account, before)
    raise web.HTTPSeeOther(link._return_url)


# --- test and demo hooks ------------------------------------------------------------------------------------

async def config_requirements(request: web.Request) -> web.Response:
    """``due=true`` (optionally ``fields[]=...``): requirements past due, the account disabled; ``due=false``:
    requirements cleared, the account enabled as after onboarding. Sends ``account.updated``."""
    account = resources.store.get(f"account:{request.match_info['id']}")
    if not isinstance(account, Account):
        raise ConnectError(404, f"No such account: '{request.match_info['id']}'", "resource_missing")
    data = await _post_data(request)
    due = _boolean(data, "due")
    if due is None:
        raise _missing("due")
    fields = data.get("fields") or DUE_AGAIN_FIELDS
    if isinstance(fields, str):
        fields = [fields]
    if not (isinstance(fields, list) and all(isinstance(f, str) and f for f in fields)):
        raise _invalid("fields", "Invalid array", "parameter_invalid_empty")
    before = account._export()
    if due:
        account._require(list(fields))
    else:
        account._enable()
    _account_updated(account, before)
    return _json(account._export())


async def config_expire_link(request: web.Request) -> web.Response:
    link = _link(request.match_info["token"])
    if link is None:
        raise ConnectError(404, "No such account link", "resource_missing")
    link.expires_at = min(link.expires_at, int(time.time()) - 1)
    return _json(link._export())


# --- transfers and reversals ------------------------------------------------------------------------------

TRANSFER_PARAMS = {"amount", "currency", "destination", "transfer_group", "metadata", "description"}


async def create_transfer(request: web.Request) -> web.Response:
    data = await _post_data(request)
    expand = _only(data, TRANSFER_PARAMS)
    amount = _integer(data, "amount", required=True, minimum=1)
    currency = _currency(data)
    destination = _string(data, "destination", required=True)
    description = _string(data, "description")
    transfer_group = _string(data, "transfer_group")
    metadata = _metadata(data.get("metadata"))
    assert amount is not None and currency is not None and destination is not None
    account = resources.store.get(f"account:{destination}")
    if not isinstance(account, Account):
        raise ConnectError(400, f"No such destination: '{destination}'", "resource_missing", param="destination")
    if account.capabilities.get("transfers") != "active" or not account.payouts_enabled:
        raise ConnectError(400, "Your destination account needs to have at least one of the following capabilities "
                           "enabled: transfers, crypto_transfers, legacy_payments",
                           "insufficient_capabilities_for_transfer", param="destination", executed=True)
    available = platform_balance().get(currency, 0)
    if available < amount:
        raise ConnectError(400, "You have insufficient available funds in your Stripe account. Try adding funds "
                           "directly to your available balance by creating Charges using the 4000000000000077 test "
                           "card. See: https://stripe.com/docs/testing#available-balance",
                           "balance_insufficient", executed=True)
    transfer = Transfer(amount=amount, currency=currency, destination=account.id, description=description,
                        transfer_group=transfer_group, metadata=metadata)
    _send_event("transfer.created", transfer)
    return _json(transfer._export(expand=expand))


async def list_transfers(request: web.Request) -> web.Response:
    data = _query(request)
    expand = _only(data, {"destination", "transfer_group", "limit", "starting_after", "ending_before", "created"})
    if "created" in data:
        raise ConnectError(400, "localstripe does not filter transfers by created.", "parameter_unknown", param="created")
    cursors = _list_params(data, Transfer, "transfer")
    items = _all(Transfer)
    destination, group = _string(data, "destination"), _string(data, "transfer_group")
    if destination is not None:
        items = [t for t in items if t.destination == destination]
    if group is not None:
        items = [t for t in items if t.transfer_group == group]
    return _json(_page("/v1/transfers", items, expand=expand, **cursors))


async def retrieve_transfer(request: web.Request) -> web.Response:
    expand = _only(_query(request), set())
    return _json(_transfer(request.match_info["id"])._export(expand=expand))


async def update_transfer(request: web.Request) -> web.Response:
    transfer = _transfer(request.match_info["id"])
    data = await _post_data(request)
    expand = _only(data, {"description", "metadata"})
    before = transfer._export()
    if "description" in data:
        transfer.description = _string(data, "description")
    if "metadata" in data:
        transfer.metadata = _metadata(data["metadata"], transfer.metadata)
    previous = _changed(before, transfer._export())
    if previous:
        _send_event("transfer.updated", transfer, previous)
    return _json(transfer._export(expand=expand))


async def create_reversal(request: web.Request) -> web.Response:
    transfer = _transfer(request.match_info["id"])
    data = await _post_data(request)
    expand = _only(data, {"amount", "description", "metadata", "refund_application_fee"})
    _boolean(data, "refund_application_fee")  # accepted; there are no application fees here
    left = transfer.amount - transfer.amount_reversed
    amount = _integer(data, "amount", minimum=1)
    if left <= 0:
        raise ConnectError(400, f"Transfer {transfer.id} has already been fully reversed.", "amount_too_large",
                           param="amount")
    if amount is None:
        amount = left
    if amount > left:
        raise ConnectError(400, f"You cannot reverse {amount} of transfer {transfer.id}: only {left} "
                           f"{transfer.currency.upper()} (in minor units) is left to reverse.", "amount_too_large",
                           param="amount")
    reversal = TransferReversal(transfer=transfer, amount=amount, description=_string(data, "description"),
                                metadata=_metadata(data.get("metadata")))
    transfer.amount_reversed += amount
    transfer.reversed = transfer.amount_reversed >= transfer.amount
    _send_event("transfer.reversed", transfer)
    return _json(reversal._export(expand=expand))


async def list_reversals(request: web.Request) -> web.Response:
    transfer = _transfer(request.match_info["id"])
    data = _query(request)
    expand = _only(data, {"limit", "starting_after", "ending_before"})
    cursors = _list_params(data, TransferReversal, "transfer reversal")
    return _json(_page(f"/v1/transfers/{transfer.id}/reversals", _reversals_of(transfer.id), expand=expand, **cursors))


async def retrieve_reversal(request: web.Request) -> web.Response:
    transfer = _transfer(request.match_info["id"])
    expand = _only(_query(request), set())
    reversal = resources.store.get(f"transfer_reversal:{request.match_info['reversal']}")
    if not isinstance(reversal, TransferReversal) or reversal.transfer != transfer.id:
        raise ConnectError(404, f"No such transfer reversal: '{request.match_info['reversal']}'", "resource_missing",
                           param="id")
    return _json(reversal._export(expand=expand))


# --- registration -------------------------------------------------------------------------------------------

ONBOARDING_PREFIX = "/connect/onboarding/"


@web.middleware
async def _auth_except_onboarding(request: web.Request, handler: Handler) -> web.StreamResponse:
    """localstripe's API-key check, except on the onboarding pages (the account holder's browser has no key)."""
    if request.path.startswith(ONBOARDING_PREFIX):
        return await handler(request)
    return await ls_server.auth_middleware(request, handler)


ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", "/v1/accounts", create_account),
    ("GET", "/v1/accounts", list_accounts),
    ("GET", "/v1/accounts/{id}", retrieve_account),
    ("POST", "/v1/accounts/{id}", update_account),
    ("POST", "/v1/account_links", create_account_link),
    ("GET", ONBOARDING_PREFIX + "{token}", onboarding_page),
    ("POST", ONBOARDING_PREFIX + "{token}", onboarding_submit),
    ("POST", "/_config/connect/accounts/{id}/requirements", config_requirements),
    ("POST", "/_config/connect/onboarding/{token}/expire", config_expire_link),
    ("POST", "/v1/transfers", create_transfer),
    ("GET", "/v1/transfers", list_transfers),
    ("GET", "/v1/transfers/{id}", retrieve_transfer),
    ("POST", "/v1/transfers/{id}", update_transfer),
    ("POST", "/v1/transfers/{id}/reversals", create_reversal),
    ("GET", "/v1/transfers/{id}/reversals", list_reversals),
    ("GET", "/v1/transfers/{id}/reversals/{reversal}", retrieve_reversal),
]


def _register(app: web.Application) -> None:
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
    middlewares = app.middlewares
    middlewares[middlewares.index(ls_server.auth_middleware)] = _auth_except_onboarding


if ls_server.auth_middleware in ls_server.app.middlewares:  # once, however often this module is loaded
    _register(ls_server.app)
