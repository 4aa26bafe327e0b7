"""The backer fixes a failed payment (SPEC §4): authenticate the charge, or give another card.

`pledges` saves the new card (it sits below `settlement` and cannot charge); this module then asks the
settlement pass's own code to charge at once, under a lease, so that a pass running meanwhile and the
backer's request never both charge.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import func, select

from app import clock
from app.accounts.models import User
from app.campaigns import services as campaigns_services
from app.campaigns.models import Campaign, CampaignState
from app.extensions import db
from app.i18n import day_filter
from app.payments import declines, gateway
from app.pledges import services as pledges
from app.pledges.models import Pledge, PledgeState
from app.settlement import services

P = PledgeState
log = logging.getLogger("threshold.settlement")


@dataclass(frozen=True)
class PaymentFix:
    """What the backer's pledge page shows for an errored pledge."""

    #: Why the bank refused, in the backer's language (None when it asks for authentication instead).
    message: str | None
    #: The end of the retry window: after it, the pledge is dropped.
    retry_until: datetime
    #: The window is still open.
    can_fix: bool
    #: Set when the bank asked the backer to authenticate: Stripe.js confirms the charge with it.
    client_secret: str | None
    payment_method_id: str | None
    #: Stripe did not answer while the page was made (the authentication button cannot be shown now).
    stripe_unavailable: bool = False


def retry_until(pledge: Pledge) -> datetime | None:
    """When the retry window of an errored pledge closes."""
    if pledge.failed_at is None:
        return None
    return pledge.failed_at + timedelta(days=current_app.config["PAYMENT_RETRY_DAYS"])


@dataclass(frozen=True)
class BackerStatus:
    """A pledge's state in the backer's words (issue 18): what happened to their money, not our state's
    name. `tone` is a Bootstrap colour: red only for a refusal, amber when the backer must act."""

    label: str
    tone: str


def backer_status(pledge: Pledge) -> BackerStatus:
    state = PledgeState(pledge.state)
    if state == P.ERRORED:
        last = services.last_failure(pledge)
        if last is not None and last.decline_code == "authentication_required":
            return BackerStatus(_("Action needed: confirm your payment with your bank"), "warning")
        return BackerStatus(_("Payment failed"), "danger")
    if state == P.COLLECTED:
        return BackerStatus(_("Paid on %(date)s", date=day_filter(pledge.collected_at or pledge.updated_at)), "success")
    if state == P.RELEASED:
        if pledge.campaign.state == CampaignState.UNSUCCESSFUL.value:
            return BackerStatus(_("Not charged — the campaign did not reach its goal"), "secondary")
        return BackerStatus(_("Not charged — the campaign was stopped"), "secondary")
    if state == P.DROPPED:
        return BackerStatus(_("Not charged — the payment was not completed in time"), "secondary")
    if state == P.CANCELED:
        if pledge.activated_at is None:  # the card was declined or abandoned at pledge time: it never started
            return BackerStatus(_("Not started"), "secondary")
        return BackerStatus(_("Canceled — not charged"), "secondary")
    if state == P.CHARGING:
        return BackerStatus(_("Being charged"), "info")
    return BackerStatus(pledges.state_name(state), "success" if state == P.ACTIVE else "secondary")


def payment_fix(pledge: Pledge) -> PaymentFix | None:
    """The failure and the ways to fix it, for an errored pledge (None for any other)."""
    until = retry_until(pledge)
    if pledge.state != P.ERRORED.value or until is None:
        return None
    last = services.last_failure(pledge)
    can_fix = clock.utcnow() < until
    secret, unavailable = None, False
    if can_fix:
        try:
            secret = services.authentication_secret(pledge)
        except gateway.GatewayError as error:
            log.warning("pledge %s: no authentication secret: %s", pledge.id, error)
            unavailable = True
    return PaymentFix(
        # Authentication asked by the bank is explained by the page's confirm button, not as a refusal.
        message=declines.message_for(last.decline_code) if last and last.decline_code != "authentication_required" else None,
        retry_until=until, can_fix=can_fix, client_secret=secret, payment_method_id=pledge.payment_method_id,
        stripe_unavailable=unavailable,
    )


def confirm_authenticated(pledge: Pledge) -> str:
    """The backer authenticated the charge in the browser: read its PaymentIntent from Stripe (never
    the browser's word) and record it if it collected. Returns the pledge's state afterwards."""
    if pledge.state != P.ERRORED.value:
        return pledge.state
    last = services.last_failure(pledge)
    if last is None or not last.payment_intent_id:
        return pledge.state
    return services.record_from_stripe(last.payment_intent_id) or pledge.state


def fix_with_new_card(pledge: Pledge, backer: User, setup_intent_id: str) -> str | None:
    """Save the new card (pledges checks it at Stripe), then charge it at once.

    Returns the charge's outcome ("collected", "errored", "processing", "postponed"), or None when a
    settlement pass holds the pledge right now (it will use the new card on its next attempt).
    Raises PledgeError when the card cannot be saved for this pledge.
    """
    pledges.finish_payment_fix(pledge, backer, setup_intent_id)
    return services.retry_now(pledge)


# --- the creator's dashboard -----------------------------------------------------------------

def _payment_problems(campaigns: list[Campaign]) -> dict[int, str]:
    """Funded campaigns with payments that failed and can still be fixed (one grouped statement): the
    creator may want to encourage those backers in an update."""
    funded = [c.id for c in campaigns]
    rows = db.session.execute(select(Pledge.campaign_id, func.count()).where(
        Pledge.campaign_id.in_(funded), Pledge.state == P.ERRORED.value).group_by(Pledge.campaign_id))
    return {cid: ngettext("%(num)d backer’s payment failed: they are asked to fix it.",
                          "%(num)d backers’ payments failed: they are asked to fix them.", n) for cid, n in rows}


campaigns_services.attention_checks.append((frozenset({CampaignState.SUCCESSFUL.value}), _payment_problems))
