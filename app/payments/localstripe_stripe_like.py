"""Where localstripe answers unlike Stripe and our money path depends on it: idempotency keys, the
PaymentIntent inside a card error, and a customer's PaymentIntents.

Settlement charges in one request (create and confirm, off-session) keyed by the committed attempt row
(docs/money-path.md): recovery after a lost answer resends the same request with the same key and must
get the first answer back. localstripe ignores keys, so this module, imported once by
localstripe_server.py, adds to localstripe's aiohttp app (before it serves):

* **Idempotency-Key** on every ``POST /v1/…``, as Stripe documents it: the first answer to a key (status
  and body, errors included, unless the request failed validation: a 400 that executed nothing) is kept
  per API key for ``IDEMPOTENCY_SECONDS`` (24 hours; ``LOCALSTRIPE_IDEMPOTENCY_SECONDS`` in the
  environment shortens it); the same key with the same method, path and parameters gets that answer
  again without anything being done, with ``Idempotent-Replayed: true``; with another method, path or
  parameters, 400 ``idempotency_error``; while the first request with a key is still running, a second
  gets 409 ``idempotency_error`` (``Stripe-Should-Retry: true``), which is what Stripe answers.
* A **402 card error** from creating or confirming a PaymentIntent says ``type: card_error`` and carries
  the PaymentIntent (``error.payment_intent``, status ``requires_payment_method``) and its
  ``decline_code``, as Stripe's does; localstripe's own says ``invalid_request_error`` and names only the
  charge.
* ``GET /v1/payment_intents?customer=cus_…`` lists that customer's PaymentIntents, newest first, paged
  with ``limit`` and ``starting_after`` (localstripe answers 400 to the filter).

What it does not model: keys on GET or DELETE (Stripe ignores them there too), Stripe's comparison of
parameters beyond their values (we compare the decoded form), the `created` filter on lists.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from localstripe import resources
    from localstripe import server as ls_server
    from localstripe.errors import UserError, json_response

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: How long an idempotency key is remembered (Stripe: 24 hours). Read at every request, so a test may
#: change it in this process; the environment sets it for a localstripe started as a command.
IDEMPOTENCY_SECONDS = float(os.environ.get("LOCALSTRIPE_IDEMPOTENCY_SECONDS") or 24 * 3600)
#: Where the kept answers live in localstripe's store (no ":" so that no object list sees it); saved
#: and loaded with the store, so a restarted demo server still knows its keys.
_STORE_KEY = "_idempotency"
#: Keys whose first request is still running (this server's single event loop: no lock needed).
_in_flight: set[tuple[str, str]] = set()


def _kept() -> dict[tuple[str, str], dict[str, Any]]:
    """The kept answers, expired ones dropped. They are in the order they were kept, so the expired
    ones are at the front: dropping them costs nothing per request however many keys there are."""
    cache = resources.store.get(_STORE_KEY)
    if not isinstance(cache, dict):
        cache = {}
        dict.__setitem__(resources.store, _STORE_KEY, cache)
    oldest = time.time() - IDEMPOTENCY_SECONDS
    while cache:
        first = next(iter(cache))
        if cache[first]["at"] > oldest:
            break
        del cache[first]
    return cache


def _error(status: int, message: str, **headers: str) -> web.Response:
    response = json_response({"error": {"type": "idempotency_error", "message": message}}, status=status)
    response.headers.update(headers)
    return response


async def _answer(handler: Handler, request: web.Request) -> tuple[web.StreamResponse, bool]:
    """The handler's response, and whether Stripe would keep it for the key: anything that executed
    (a success, a 402 decline, a refusal the handler marks `executed`), not a request that failed
    validation (4xx) or a server error of the fake itself."""
    try:
        response = await handler(request)
    except UserError as error:
        kept = error.code == 402 or bool(getattr(error, "executed", False))
        return error.to_response(), kept
    return response, response.status < 400


@web.middleware
async def idempotency(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Honour the Idempotency-Key header of a POST the way Stripe does (see the module's docstring)."""
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or not key or not request.path.startswith("/v1/"):
        return await handler(request)
    data = await ls_server.get_post_data(request) or {}
    fingerprint = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
    scope = (ls_server.get_api_key(request) or "", key)
    seen = _kept().get(scope)
    if seen is not None and seen["at"] > time.time() - IDEMPOTENCY_SECONDS:
        if (seen["method"], seen["path"], seen["fingerprint"]) != (request.method, request.path, fingerprint):
            return _error(400, "Keys for idempotent requests can only be used with the same parameters they were "
                          f"first used with. Try using a key other than '{key}' if you meant to execute a different request.")
        replay = web.Response(body=seen["body"], status=seen["status"], content_type="application/json")
        replay.headers.update({"Idempotency-Key": key, "Idempotent-Replayed": "true"})
        return replay
    if scope in _in_flight:
        return _error(409, "There is currently another in-progress request using this Idempotent Key (that probably "
                      f"means you submitted twice, and the other request is still going through): {key}. Please try "
                      "again later.", **{"Stripe-Should-Retry": "true"})
    _in_flight.add(scope)
    try:
        response, keep = await _answer(handler, request)
    finally:
        _in_flight.discard(scope)
    if keep and isinstance(response, web.Response):
        _kept()[scope] = {"method": request.method, "path": request.path, "fingerprint": fingerprint,
                          "status": response.status, "body": bytes(response.body or b""), "at": time.time()}
    response.headers["Idempotency-Key"] = key
    return response


_CHARGING_PATHS = ("/v1/payment_intents",)


@web.middleware
async def card_errors_name_the_payment_intent(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A declined PaymentIntent create or confirm: Stripe's card error, with the PaymentIntent in it."""
    try:
        return await handler(request)
    except UserError as error:
        body = error.body.get("error") or {}
        if error.code != 402 or request.method != "POST" or not request.path.startswith(_CHARGING_PATHS):
            raise
        charge = resources.store.get(f"charge:{body.get('charge')}")
        intent = resources.store.get(f"payment_intent:{getattr(charge, 'payment_intent', None)}")
        if intent is not None:
            body["type"] = "card_error"
            body.setdefault("decline_code", "generic_decline" if body.get("code") == "card_declined" else body.get("code"))
            body["payment_intent"] = intent._export()
        raise


@web.middleware
async def payment_intents_of_a_customer(request: web.Request, handler: Handler) -> web.StreamResponse:
    """``GET /v1/payment_intents?customer=…``: that customer's PaymentIntents, newest first."""
    if request.method != "GET" or request.path != "/v1/payment_intents" or "customer" not in request.query:
        return await handler(request)
    query = ls_server.unflatten_data(request.query)
    customer, limit, after = query.pop("customer"), query.pop("limit", None), query.pop("starting_after", None)
    query.pop("expand", None)
    if query:
        raise UserError(400, "Unexpected " + ", ".join(query))
    listed = resources.List("/v1/payment_intents", limit=limit, starting_after=after)
    listed._list = [obj for key, obj in reversed(list(resources.store.items()))
                    if key.startswith("payment_intent:") and obj.customer == customer]
    return json_response(listed._export())


for _middleware in (idempotency, card_errors_name_the_payment_intent, payment_intents_of_a_customer):
    if _middleware not in ls_server.app.middlewares:  # once, however often this module is loaded
        ls_server.app.middlewares.append(_middleware)
