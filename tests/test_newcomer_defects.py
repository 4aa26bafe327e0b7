"""Two defects a newcomer met (issue 19): a card declined at pledge time later read "You canceled this
pledge", and a pass after a killed one said "nothing to do" while pledges waited under its lease."""
from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from app import clock
from app.extensions import db
from app.pledges.models import Pledge
from app.settlement import services as settlement
from tests.factories import fresh_email, make_campaign, make_user
from tests.localstripe_fixture import CARD_DECLINE_ON_SETUP, CARD_OK
from tests.test_pledges import backer, pledge_with_card


def test_a_card_declined_at_pledge_time_never_reads_as_a_canceled_pledge(app, client, localstripe):
    campaign = make_campaign(make_user(fresh_email("creator")), "live", goal=100000)
    backer(client, fresh_email("declined"))
    _response, status = pledge_with_card(client, localstripe, campaign, card=CARD_DECLINE_ON_SETUP, tier=campaign.tiers[0].id)
    assert status != "succeeded"
    clock.set_offset(timedelta(days=31))  # the deadline passes: the unfinished pledge is abandoned
    try:
        settlement.run_pass()
    finally:
        clock.reset()
    pledge = db.session.scalar(select(Pledge))
    assert pledge.state == "canceled" and pledge.activated_at is None
    mine = client.get("/me/pledges").get_data(as_text=True)
    assert "You canceled this pledge" not in mine and campaign.title not in mine
    assert "You have not backed a campaign yet." in mine
    page = client.get(f"/pledges/{pledge.id}").get_data(as_text=True)
    assert "You canceled this pledge" not in page
    assert "Your card was not saved" in page and "never started" in page and "Not started" in page


def test_a_pledge_the_backer_canceled_still_says_so(app, client, localstripe):
    campaign = make_campaign(make_user(fresh_email("creator")), "live", goal=100000)
    backer(client, fresh_email("canceler"))
    pledge_with_card(client, localstripe, campaign, card=CARD_OK, tier=campaign.tiers[0].id)
    pledge = db.session.scalar(select(Pledge))
    assert client.post(f"/pledges/{pledge.id}/cancel").status_code == 302
    assert "You canceled this pledge" in client.get("/me/pledges").get_data(as_text=True)


def test_a_pass_says_which_pledges_a_killed_pass_holds_by_whom_and_until_when(app, localstripe):
    campaign = make_campaign(make_user(fresh_email("creator")), "live", goal=1000)
    for n in range(2):
        client = app.test_client()
        backer(client, fresh_email(f"held{n}"))
        pledge_with_card(client, localstripe, campaign, card=CARD_OK, tier=campaign.tiers[0].id, amount="30")
    now = clock.utcnow() + timedelta(days=31)
    summary = settlement.Summary()
    settlement.decide_due_campaigns(summary, now)
    assert summary.decided == {campaign.id: "successful"}
    # A pass leases the pledges, then dies before charging them.
    held = settlement.claim(settlement._due_for_charge(now), now, 50)
    assert len(held) == 2
    owner = db.session.scalar(select(Pledge.lease_owner).where(Pledge.id == held[0]))
    assert re.fullmatch(r"[^:]+:\d+:[0-9a-f]{8}", owner)  # host:pid:token, to find the process

    lines = settlement.run_pass(now + timedelta(minutes=1)).lines()
    assert lines != ["nothing to do"]
    until = now + settlement.LEASE
    [line] = lines
    assert line.startswith(f"campaign {campaign.id}: 2 pledge(s) waiting, held by pass {owner} until {until:%Y-%m-%d %H:%M}")
    assert "UTC" in line and "the first pass after that charges them" in line

    # Once the lease is over, the next pass charges them, and has nothing held to report.
    lines = settlement.run_pass(until + timedelta(seconds=1)).lines()
    assert lines == [f"campaign {campaign.id}: 2 collected"]
