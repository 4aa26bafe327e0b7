"""A Hypothesis state machine over the money model (issue 7): pledge, edit, cancel, move the clock,
settle partway, crash the settle, replay a webhook — against the real services and a real localstripe.
After every step: each tier's claimed = its active pledges and never above its limit; the campaign's
live counters (the totals shown) = the sum of its active pledge rows; nobody is charged on a campaign
that did not fund; at most one successful charge per pledge (our rows and localstripe's own).

CI runs 200 examples per database; a longer run: `STATEFUL_EXAMPLES=2000 .venv/bin/python -m pytest tests/test_money_stateful.py`.
"""
from __future__ import annotations

import os
from datetime import datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, multiple, rule, run_state_machine_as_test
from sqlalchemy import func, select

from app import clock
from app.campaigns import totals
from app.campaigns.models import Campaign, Tier
from app.extensions import db
from app.payments import gateway
from app.pledges import services as pledges
from app.pledges.models import Pledge
from app.settlement import services as settlement
from app.settlement.models import ChargeAttempt
from tests.conftest import WEBHOOK_SECRET, _empty_tables
from tests.factories import make_campaign, make_user
from tests.localstripe_fixture import CARD_AUTHENTICATE, CARD_DECLINE_ON_CHARGE, CARD_OK, browser_confirm_setup
from tests.test_webhooks import event, sign


class _Killed(BaseException):
    """The settle process dying (not an error our code could catch)."""


EXAMPLES = int(os.environ.get("STATEFUL_EXAMPLES", "200"))
START = datetime(2026, 11, 23, 12, 0)
CARDS = [CARD_OK, CARD_OK, CARD_AUTHENTICATE, CARD_DECLINE_ON_CHARGE]


def test_the_money_model_keeps_its_invariants(app, localstripe):
    client = app.test_client()

    class Money(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            _empty_tables()
            clock.freeze(START)
            creator = make_user("creator@example.com")
            # A goal of $60: a few pledges fund it, one or two do not.
            self.campaign = make_campaign(creator, "live", tiers=2, goal=6000)
            limited = self.campaign.tiers[1]
            limited.quantity_limit = 2
            db.session.commit()
            self.tier_ids = [t.id for t in self.campaign.tiers]
            self.backers = [make_user(f"b{n}@example.com") for n in range(4)]

        def teardown(self):
            db.session.rollback()
            clock.freeze(None)

        def _campaign(self) -> Campaign:
            return db.session.get(Campaign, self.campaign.id, populate_existing=True)

        backing = Bundle("backing")

        @rule(target=backing, who=st.integers(0, 3), tier=st.sampled_from([None, 0, 1]), extra=st.integers(0, 3000), card=st.sampled_from(CARDS))
        def pledge(self, who, tier, extra, card):
            backer, campaign = self.backers[who], self._campaign()
            tier_id = self.tier_ids[tier] if tier is not None else None
            minimum = 2500 * (tier + 1) if tier is not None else 500
            try:
                pledge, secret = pledges.begin(campaign, backer, pledges.Choice(tier_id, minimum + extra))
            except pledges.PledgeError:
                return multiple()  # closed, sold out, already backing: refused, nothing to check here
            setup_id = secret.split("_secret_")[0]
            browser_confirm_setup(localstripe, setup_id, card)
            try:
                pledges.activate(pledge, backer, setup_id)
            except pledges.PledgeError:
                return multiple()
            return who

        @rule(who=backing, tier=st.sampled_from([None, 0, 1]), extra=st.integers(0, 3000))
        def edit(self, who, tier, extra):
            pledge = pledges.open_pledge(self._campaign(), self.backers[who])
            if pledge is None:
                return
            try:
                pledges.edit(pledge, self.backers[who], pledges.Choice(self.tier_ids[tier] if tier is not None else None,
                                                                       (2500 * (tier + 1) if tier is not None else 500) + extra))
            except pledges.PledgeError:
                db.session.rollback()

        @rule(who=backing)
        def cancel(self, who):
            pledge = pledges.open_pledge(self._campaign(), self.backers[who])
            if pledge is None:
                return
            try:
                pledges.cancel(pledge, self.backers[who])
            except pledges.PledgeError:
                db.session.rollback()

        @rule(hours=st.sampled_from([1, 6, 24, 24, 24, 24 * 8, 24 * 31]))
        def move_the_clock(self, hours):
            clock.advance(timedelta(hours=hours))

        @rule()
        def settle(self):
            settlement.run_pass()

        @rule()
        def settle_partway(self):
            """One leased batch of one pledge, as a pass cut short would do."""
            summary = settlement.Summary()
            now = clock.utcnow()
            settlement.decide_due_campaigns(summary, now)
            for pledge_id in settlement.claim(settlement._due_for_charge(now), now, 1):
                owner = db.session.scalar(select(Pledge.lease_owner).where(Pledge.id == pledge_id))
                settlement.charge_pledge(pledge_id, owner, summary, now)

        @rule()
        def crash_the_settle(self):
            """A pass killed after Stripe took the charge request, before its answer (the PaymentIntent id
            and the outcome) was committed: the next pass sends it again under the same key."""
            now = clock.utcnow()
            settlement.decide_due_campaigns(settlement.Summary(), now)
            real_charge = gateway.charge

            def charge_then_die(*args, **kwargs):
                real_charge(*args, **kwargs)
                raise _Killed  # ... the process dies here, its lease still held

            for pledge_id in settlement.claim(settlement._due_for_charge(now), now, 1):
                owner = db.session.scalar(select(Pledge.lease_owner).where(Pledge.id == pledge_id))
                gateway.charge = charge_then_die
                try:
                    settlement.charge_pledge(pledge_id, owner, settlement.Summary(), now)
                except _Killed:
                    db.session.rollback()
                finally:
                    gateway.charge = real_charge

        @rule()
        def replay_a_webhook(self):
            intent = db.session.scalar(select(ChargeAttempt.payment_intent_id).where(ChargeAttempt.payment_intent_id.is_not(None)).limit(1))
            if intent is None:
                return
            payload = event("payment_intent.succeeded", {"id": intent, "object": "payment_intent"})
            for _ in range(2):
                response = client.post("/stripe/webhook", data=payload, headers={"Stripe-Signature": sign(payload, WEBHOOK_SECRET),
                                                                                 "Content-Type": "application/json"})
                assert response.status_code == 200

        @invariant()
        def tiers_hold_exactly_their_active_pledges(self):
            for tier in db.session.scalars(select(Tier).where(Tier.campaign_id == self.campaign.id).execution_options(populate_existing=True)):
                active = db.session.scalar(select(func.count()).where(Pledge.tier_id == tier.id, Pledge.state == "active"))
                if self._campaign().state == "live":
                    assert tier.claimed == active, (tier.id, tier.claimed, active)
                assert tier.quantity_limit is None or tier.claimed <= tier.quantity_limit

        @invariant()
        def totals_shown_are_the_rows(self):
            campaign = self._campaign()
            pledged, backers = db.session.execute(
                select(func.coalesce(func.sum(Pledge.amount), 0), func.count()).where(Pledge.campaign_id == campaign.id, Pledge.state == "active")
            ).one()
            assert (campaign.pledged_total, campaign.backers_count) == (pledged, backers)
            if campaign.state == "live":
                assert totals.of(campaign) == totals.Totals(pledged, backers)
            else:
                assert totals.of(campaign).pledged == campaign.pledged_at_deadline

        @invariant()
        def nobody_pays_for_an_unfunded_campaign(self):
            if self._campaign().state in ("unsuccessful", "canceled", "suspended"):
                assert db.session.scalar(select(func.count(ChargeAttempt.id))) == 0

        @invariant()
        def at_most_one_successful_charge_per_pledge(self):
            counts = db.session.execute(
                select(ChargeAttempt.pledge_id, func.count()).where(ChargeAttempt.status == "succeeded").group_by(ChargeAttempt.pledge_id)
            ).all()
            assert all(n == 1 for _pid, n in counts), counts
            collected = db.session.scalar(select(func.count()).where(Pledge.state.in_(["collected", "refunded"])))
            assert collected == len(counts)

    run_state_machine_as_test(Money, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=15, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    ))
