"""Logs (issue 19): one line per request with its id; the id is returned, kept from a trusted proxy when
well formed, and follows a pledge to the worker's lines about charging it."""
from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from app import clock, logs
from app.extensions import db
from app.pledges.models import Pledge
from app.settlement import services as settlement
from tests.factories import fresh_email, make_campaign, make_user
from tests.localstripe_fixture import CARD_DECLINE_ON_CHARGE, CARD_OK
from tests.test_pledges import backer, pledge_with_card

GENERATED = re.compile(r"[0-9a-f]{32}")


def _request_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "threshold.requests"]


def test_a_request_gets_an_id_returned_and_logged_on_one_line(client, caplog):
    caplog.set_level(logging.INFO)
    response = client.get("/healthz")
    request_id = response.headers[logs.HEADER]
    assert GENERATED.fullmatch(request_id)
    [line] = _request_lines(caplog)
    assert line.request_id == request_id
    assert re.fullmatch(r"GET /healthz 200 \d+\.\dms user=-", line.getMessage())
    formatted = logging.Formatter(logs.FORMAT).format(line)
    assert f"INFO [{request_id}] threshold.requests: GET /healthz 200 " in formatted
    # the next request has its own id
    assert client.get("/healthz").headers[logs.HEADER] != request_id
    # a request refused for its Host has its id and its line too
    refused = client.get("/healthz", headers={"Host": "evil.example"})
    assert refused.status_code == 400 and GENERATED.fullmatch(refused.headers[logs.HEADER])
    assert _request_lines(caplog)[-1].request_id == refused.headers[logs.HEADER]
    assert _request_lines(caplog)[-1].getMessage().startswith("GET /healthz 400 ")


def test_every_line_of_a_request_carries_its_id_and_the_member(client, caplog):
    member = backer(client, fresh_email("logs"))
    caplog.set_level(logging.INFO)
    stripe = client.application.test_client()  # Stripe's call carries no member's cookie
    response = stripe.post("/stripe/webhook", data=b"{}", headers={"Stripe-Signature": "t=1,v1=forged"})
    assert response.status_code == 400
    lines = [r for r in caplog.records if r.name in ("threshold.webhooks", "threshold.requests")]
    assert [r.name for r in lines] == ["threshold.webhooks", "threshold.requests"]
    assert {r.request_id for r in lines} == {response.headers[logs.HEADER]}
    assert re.fullmatch(r"POST /stripe/webhook 400 \d+\.\dms user=-", lines[-1].getMessage())  # Stripe's call
    client.get("/me/pledges")
    assert re.fullmatch(rf"GET /me/pledges 200 \d+\.\dms user={member.id}", _request_lines(caplog)[-1].getMessage())
    # outside any request, lines say so
    logging.getLogger("threshold.test").warning("no request here")
    assert caplog.records[-1].request_id == "-"


@pytest.mark.parametrize(
    "proxies,given,kept",
    [
        (1, "3f2a9c0e5b7d4e1f8a6b2c9d0e1f2a3b", True),  # nginx's $request_id
        (1, "7c0b6f1e-2d3a-4b5c-9e8f-0a1b2c3d4e5f", True),  # a UUID
        (1, "short", False),
        (1, "a" * 65, False),
        (1, "abc def ghi jkl", False),
        (1, "abcdefgh]: INFO forged", False),  # would read as another line's prefix
        (0, "3f2a9c0e5b7d4e1f8a6b2c9d0e1f2a3b", False),  # no proxy: the client's header is not believed
    ],
)
def test_an_incoming_id_is_kept_only_from_a_trusted_proxy_and_well_formed(make_app, caplog, proxies, given, kept):
    client = make_app(TRUSTED_PROXIES=proxies).test_client()
    caplog.set_level(logging.INFO)
    returned = client.get("/healthz", headers={logs.HEADER: given}).headers[logs.HEADER]
    assert (returned == given) is kept
    if not kept:
        assert GENERATED.fullmatch(returned)
    assert _request_lines(caplog)[-1].request_id == returned


def test_the_worker_logs_a_pledge_with_the_id_of_the_request_that_made_it(app, localstripe, caplog):
    creator = make_user(fresh_email("creator"))
    campaign = make_campaign(creator, "live", tiers=1, goal=5000, currency="USD")
    ids, clients = {}, {}
    for card, amount in ((CARD_OK, "40"), (CARD_DECLINE_ON_CHARGE, "41")):
        client = clients[amount] = app.test_client()
        backer(client, fresh_email("b"))
        response, status = pledge_with_card(client, localstripe, campaign, card=card, tier=campaign.tiers[0].id, amount=amount)
        assert status == "succeeded" and response.status_code == 302
        ids[int(amount) * 100] = response.headers[logs.HEADER]  # the card's confirmation: the last change
    made = db.session.scalar(select(Pledge).where(Pledge.amount == 4000))
    assert made.request_id == ids[4000]
    # An edit is the last change now; reading the pledge's page changes nothing.
    edited = clients["40"].post(f"/pledges/{made.id}/edit", data={"tier": str(campaign.tiers[0].id), "amount": "45"})
    assert edited.status_code == 302
    assert clients["40"].get(f"/pledges/{made.id}").status_code == 200
    ids[4500] = edited.headers[logs.HEADER]
    del ids[4000]
    db.session.expire_all()
    pledges = {p.amount: p for p in db.session.scalars(select(Pledge))}
    assert {amount: p.request_id for amount, p in pledges.items()} == ids
    assert len(set(ids.values())) == 2

    clock.set_offset(timedelta(days=31))
    caplog.set_level(logging.INFO)
    settlement.run_pass()
    worker = [r for r in caplog.records if r.name == "threshold.settlement" and " pledge " in f" {r.getMessage()}"]
    for amount, pledge in pledges.items():
        about = [r for r in worker if re.search(rf"\bpledge {pledge.id}\b", r.getMessage())]
        assert about, f"no worker line about pledge {pledge.id}"
        assert {r.request_id for r in about} == {ids[amount]}
    outcomes = {r.request_id: r.getMessage() for r in worker}
    assert "collected" in outcomes[ids[4500]] and "errored" in outcomes[ids[4100]]
    # a line about the campaign as a whole names no pledge's request
    decided = [r for r in caplog.records if r.name == "threshold.settlement" and "decided" in r.getMessage()]
    assert decided and {r.request_id for r in decided} == {"-"}
