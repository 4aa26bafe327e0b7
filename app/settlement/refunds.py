"""A moderator refunds a collected pledge (fraud, dispute), with a note (SPEC §4).

Crash-safe like a charge (SETTLEMENT.md): the intent to refund is committed first, as a
`refund_requested` audit row, while the pledge's lease keeps a second request out. Only then is Stripe
asked, and a request that finds an earlier intent asks Stripe which refunds the charge already has
before making one, so a refund done at Stripe whose answer was lost is recorded, never repeated.
"""
from __future__ import annotations

import logging
import secrets

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select, update

from app import clock
from app.accounts.models import User
from app.extensions import db
from app.notifications import services as mail
from app.payments import gateway
from app.pledges import services as pledges
from app.pledges.models import Pledge, PledgeEvent, PledgeState
from app.settlement.models import AttemptStatus, ChargeAttempt
from app.settlement.services import LEASE

P = PledgeState
log = logging.getLogger("threshold.settlement")

#: The audit row written (and committed) before Stripe is asked to refund.
REFUND_REQUESTED = "refund_requested"


class RefundError(ValueError):
    """A refused refund, with a message fit to show; `field` names the form field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def collected_charge(pledge: Pledge) -> ChargeAttempt | None:
    """The charge attempt that collected this pledge."""
    return db.session.scalar(
        select(ChargeAttempt).where(ChargeAttempt.pledge_id == pledge.id, ChargeAttempt.status == AttemptStatus.SUCCEEDED.value)
        .order_by(ChargeAttempt.attempt.desc()).limit(1)
    )


def _not_collected(pledge: Pledge) -> RefundError:
    return RefundError(_("Only a collected pledge can be refunded; this one is %(state)s.", state=pledges.state_name(pledge.state).lower()))


def refund(pledge: Pledge, moderator: User, note: str) -> Pledge:
    """Refund a collected pledge in full at Stripe and record it: state `refunded`, the refund's id,
    an audit row with the note and the moderator, and an email to the backer. Commits."""
    note = (note or "").strip()
    if not getattr(moderator, "is_moderator", False):
        raise RefundError(_("Only a moderator can refund a pledge."))
    if not note:
        raise RefundError(_("Write why this pledge is refunded: the note is kept in the audit log."), "note")
    if pledge.state != P.COLLECTED.value:
        raise _not_collected(pledge)
    charge = collected_charge(pledge)
    if charge is None or not charge.payment_intent_id:
        raise RefundError(_("No collected charge was found for this pledge."))
    intent_id = charge.payment_intent_id

    # 1. Claim the pledge and record the intent to refund, before Stripe hears of it.
    now = clock.utcnow()
    owner = "refund-" + secrets.token_hex(6)
    earlier = db.session.scalar(select(PledgeEvent.id).where(PledgeEvent.pledge_id == pledge.id, PledgeEvent.action == REFUND_REQUESTED).limit(1))
    taken = db.session.execute(
        update(Pledge).where(Pledge.id == pledge.id, Pledge.state == P.COLLECTED.value,
                             or_(Pledge.lease_until.is_(None), Pledge.lease_until < now))
        .values(lease_until=now + LEASE, lease_owner=owner).execution_options(synchronize_session=False)
    ).rowcount
    if not taken:
        db.session.rollback()
        db.session.refresh(pledge)
        if pledge.state != P.COLLECTED.value:
            raise _not_collected(pledge)
        raise RefundError(_("A refund of this pledge is already under way. Look again in a few minutes."))
    db.session.add(PledgeEvent(pledge_id=pledge.id, from_state=P.COLLECTED.value, to_state=P.COLLECTED.value, action=REFUND_REQUESTED,
                               actor_id=moderator.id, amount=charge.amount, note=note, created_at=now))
    db.session.commit()

    # 2. Stripe: an earlier request may have refunded and died before recording it; ask first.
    try:
        result = None
        if earlier is not None:
            result = next((r for r in gateway.read_refunds(intent_id) if r.counts), None)
        if result is None:
            result = gateway.refund(intent_id, idempotency_key=f"refund-{intent_id}")  # unique at Stripe, whatever database
    except gateway.GatewayError as error:
        db.session.rollback()
        db.session.execute(update(Pledge).where(Pledge.id == pledge.id, Pledge.lease_owner == owner)
                           .values(lease_until=None, lease_owner=None).execution_options(synchronize_session=False))
        db.session.commit()
        log.warning("pledge %s: refund refused or not answered: %s", pledge.id, error)
        raise RefundError(error.message) from None
    return _record(pledge, owner, moderator, note, result, charge.amount)


def _record(pledge: Pledge, owner: str, moderator: User, note: str, result: gateway.RefundResult, charged: int) -> Pledge:
    """One transaction: the pledge refunded (if we still hold it), the audit row, the backer's email."""
    held = db.session.execute(
        update(Pledge).where(Pledge.id == pledge.id, Pledge.lease_owner == owner, Pledge.state == P.COLLECTED.value)
        .values(lease_until=None, lease_owner=None).execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(pledge)
    if not held:  # our lease ran out and another request finished the job (it asked Stripe first)
        db.session.rollback()
        db.session.refresh(pledge)
        if pledge.state == P.REFUNDED.value:
            return pledge
        raise RefundError(_("A refund of this pledge is already under way. Look again in a few minutes."))
    pledges.transition(pledge, "refund", moderator, note)
    pledge.refund_id = result.id
    campaign = pledge.campaign
    mail.queue_mail(pledge.backer, _l("Your pledge to “%(title)s” was refunded", title=campaign.title), "pledge_refunded",
                    pledge=pledge, campaign=campaign, amount=result.amount)
    campaign.updated_at = clock.utcnow()  # the public page's collected figure changed: a new cache version
    db.session.commit()
    if result.amount != charged:
        log.warning("pledge %s: refund %s is %s of a %s charge", pledge.id, result.id, result.amount, charged)
    log.info("pledge %s refunded by moderator %s: %s %s %s", pledge.id, moderator.id, result.id, result.amount, pledge.currency)
    return pledge


def refundable_pledges(campaign_id: int, limit: int = 200) -> list[Pledge]:
    """The collected and refunded pledges of a campaign, for the moderator's list (oldest first)."""
    from sqlalchemy.orm import joinedload

    return list(db.session.scalars(
        select(Pledge).where(Pledge.campaign_id == campaign_id, Pledge.state.in_([P.COLLECTED.value, P.REFUNDED.value]))
        .options(joinedload(Pledge.backer)).order_by(Pledge.collected_at, Pledge.id).limit(limit)
    ))
