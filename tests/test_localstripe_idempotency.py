"""The offline Stripe honours idempotency keys as Stripe does (app/payments/localstripe_stripe_like.py),
over real HTTP with the stripe library, as the one-request charge and its recovery rely on: the same key
and parameters get the first answer (errors included) without doing anything again; other parameters
get 400 idempotency_error; keys are per API key and expire; a declined charge's error names its
PaymentIntent; a customer's PaymentIntents can be listed."""
from __future__ import annotations

import threading
import uuid

import pytest
import stripe

from app.payments import localstripe_stripe_like
from tests.localstripe_fixture import CARD_DECLINE_ON_CHARGE, CARD_OK


def client(localstripe: str, key: str = "sk_test_idempotency", retries: int = 0) -> stripe.StripeClient:
    return stripe.StripeClient(key, base_addresses={"api": localstripe}, max_network_retries=retries)


def customer_with_card(stripe_client: stripe.StripeClient, number: str = CARD_OK) -> tuple[str, str]:
    customer = stripe_client.v1.customers.create(params={"email": f"{uuid.uuid4().hex[:8]}@example.com"})
    method = stripe_client.v1.payment_methods.create(params={
        "type": "card", "card": {"number": number.replace(" ", ""), "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
    stripe_client.v1.payment_methods.attach(method.id, params={"customer": customer.id})
    return customer.id, method.id


def charge_params(customer: str, method: str, amount: int = 1500) -> dict:
    return {"amount": amount, "currency": "usd", "customer": customer, "payment_method": method,
            "payment_method_types": ["card"], "confirm": True, "off_session": True,
            "metadata": {"pledge": "1", "attempt": "1"}}


def intents_of(stripe_client: stripe.StripeClient, customer: str) -> list:
    return list(stripe_client.v1.payment_intents.list(params={"customer": customer, "limit": 100}).data)


def test_same_key_same_request_replays_the_first_answer(localstripe):
    api = client(localstripe)
    customer, method = customer_with_card(api)
    key = f"charge-{uuid.uuid4()}"
    first = api.v1.payment_intents.create(params=charge_params(customer, method), options={"idempotency_key": key})
    again = api.v1.payment_intents.create(params=charge_params(customer, method), options={"idempotency_key": key})
    assert first.status == "succeeded" and again.id == first.id and again.to_dict() == first.to_dict()
    assert first.last_response.headers.get("Idempotent-Replayed") is None
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert [i.id for i in intents_of(api, customer)] == [first.id]  # charged once


def test_same_key_other_parameters_is_an_idempotency_error(localstripe):
    api = client(localstripe)
    customer, method = customer_with_card(api)
    key = f"charge-{uuid.uuid4()}"
    first = api.v1.payment_intents.create(params=charge_params(customer, method), options={"idempotency_key": key})
    with pytest.raises(stripe.IdempotencyError) as refused:
        api.v1.payment_intents.create(params=charge_params(customer, method, 1600), options={"idempotency_key": key})
    assert refused.value.http_status == 400 and key in str(refused.value)
    with pytest.raises(stripe.IdempotencyError):  # another path with the same key
        api.v1.customers.create(params={"email": "x@example.com"}, options={"idempotency_key": key})
    assert [i.id for i in intents_of(api, customer)] == [first.id]


def test_keys_belong_to_their_api_key(localstripe):
    one, other = client(localstripe, "sk_test_account_one"), client(localstripe, "sk_test_account_two")
    customer, method = customer_with_card(one)
    key = f"charge-{uuid.uuid4()}"
    first = one.v1.payment_intents.create(params=charge_params(customer, method), options={"idempotency_key": key})
    second = other.v1.payment_intents.create(params=charge_params(customer, method), options={"idempotency_key": key})
    assert first.id != second.id


def test_a_declined_charge_names_its_payment_intent_and_replays_the_same_error(localstripe):
    api = client(localstripe)
    customer, method = customer_with_card(api, CARD_DECLINE_ON_CHARGE)
    key = f"charge-{uuid.uuid4()}"
    errors = []
    for _ in range(2):
        with pytest.raises(stripe.CardError) as declined:
            api.v1.payment_intents.create(params=charge_params(customer, method), options={"idempotency_key": key})
        errors.append(declined.value)
    first, replay = errors
    assert first.http_status == replay.http_status == 402
    assert first.json_body == replay.json_body
    error = first.json_body["error"]
    assert error["type"] == "card_error" and error["code"] == "card_declined" and error["decline_code"]
    assert error["payment_intent"]["status"] == "requires_payment_method"
    assert first.error.payment_intent.id == error["payment_intent"]["id"]  # as the stripe library reads it
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert [i.id for i in intents_of(api, customer)] == [error["payment_intent"]["id"]]


def test_a_request_that_failed_validation_is_not_kept(localstripe):
    api = client(localstripe)
    key = f"bad-{uuid.uuid4()}"
    for _ in range(2):  # Stripe keeps no answer for a request that executed nothing: each is checked anew
        with pytest.raises(stripe.InvalidRequestError) as refused:
            api.v1.payment_intents.create(params={"amount": 1500, "currency": "usd", "confirm": "maybe"},
                                          options={"idempotency_key": key})
        assert refused.value.headers.get("Idempotent-Replayed") is None


def test_an_expired_key_is_a_new_request(localstripe, monkeypatch):
    api = client(localstripe)
    customer, method = customer_with_card(api)
    key = f"charge-{uuid.uuid4()}"
    first = api.v1.payment_intents.create(params=charge_params(customer, method), options={"idempotency_key": key})
    monkeypatch.setattr(localstripe_stripe_like, "IDEMPOTENCY_SECONDS", 0)  # a day later, for the server
    second = api.v1.payment_intents.create(params=charge_params(customer, method), options={"idempotency_key": key})
    assert second.id != first.id and second.last_response.headers.get("Idempotent-Replayed") is None


def test_the_same_key_from_many_threads_at_once_charges_once(localstripe):
    """Concurrent requests with one key: each gets the first answer (or Stripe's 409 while the first is
    running, which the library retries): one PaymentIntent in the end."""
    customer, method = customer_with_card(client(localstripe))
    key = f"charge-{uuid.uuid4()}"
    answers: list[str] = []

    def send() -> None:
        made = client(localstripe, retries=5).v1.payment_intents.create(params=charge_params(customer, method),
                                                                         options={"idempotency_key": key})
        answers.append(made.id)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 8 and len(set(answers)) == 1
    assert [i.id for i in intents_of(client(localstripe), customer)] == answers[:1]


def test_payment_intents_listed_by_customer_newest_first_in_pages(localstripe):
    api = client(localstripe)
    customer, method = customer_with_card(api)
    other_customer, other_method = customer_with_card(api)
    made = [api.v1.payment_intents.create(params=charge_params(customer, method, 1000 + n)).id for n in range(3)]
    api.v1.payment_intents.create(params=charge_params(other_customer, other_method))
    first = api.v1.payment_intents.list(params={"customer": customer, "limit": 2})
    assert [i.id for i in first.data] == made[::-1][:2] and first.has_more
    rest = api.v1.payment_intents.list(params={"customer": customer, "limit": 2, "starting_after": first.data[-1].id})
    assert [i.id for i in rest.data] == made[:1] and not rest.has_more
