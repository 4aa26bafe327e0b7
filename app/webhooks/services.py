"""Stripe events, once each: claim the event id, hand the event to the area it concerns, record the outcome.

A webhook only ever tells us to look again: no handler trusts the event's payload. Each reads the object
from Stripe (through the pledges or settlement services) and moves a pledge forward or confirms what we
know, never backward. Events may come late, twice, at the same moment, or out of order; all are fine.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError

from app import clock
from app.extensions import db
from app.payments import gateway
from app.payments.gateway import Event
from app.webhooks.models import StripeEvent

log = logging.getLogger("threshold.webhooks")

#: A claim older than this belongs to a process that died mid-way: a later delivery may take it over.
CLAIM_LEASE = timedelta(minutes=10)
_OUTCOME_MAX = 255


@dataclass(frozen=True)
class Receipt:
    """What `receive` did with an event: processed it now (`duplicate` False), or found it known."""

    event_id: str
    duplicate: bool
    outcome: str


# --- the handlers ----------------------------------------------------------------------------

def _setup_intent(event: Event) -> str:
    """A card setup finished (Stripe only: localstripe sends no setup_intent events)."""
    setup_intent_id = event.object.get("id")
    if not gateway.looks_like_id(setup_intent_id, "seti"):
        return "ignored: no setup intent id"
    from app.pledges import services as pledges

    # Succeeded or failed, the payload is not the judge: the pledges service reads the SetupIntent from
    # Stripe (a late setup_failed may follow a retry that succeeded, and the other way round).
    return pledges.activate_from_webhook(setup_intent_id)


def _payment_intent(event: Event) -> str:
    return _to_settlement(event.object.get("id"))


def _charge(event: Event) -> str:
    payment_intent = event.object.get("payment_intent")
    if isinstance(payment_intent, dict):  # expanded
        payment_intent = payment_intent.get("id")
    return _to_settlement(payment_intent)


def _to_settlement(payment_intent_id: object) -> str:
    """Ask settlement to look at a PaymentIntent again; it reads the PaymentIntent's state from Stripe."""
    from app.settlement.services import record_from_stripe

    if not gateway.looks_like_id(payment_intent_id, "pi"):  # a field of the payload: NUL or 10 kB are possible
        return "ignored: no payment intent id"
    outcome = record_from_stripe(payment_intent_id)
    return f"settlement: {outcome}" if outcome else f"ignored: {payment_intent_id} is not one of our charges"


def _account(event: Event) -> str:
    """A creator's payout account changed: the payouts area reads it back from Stripe."""
    account_id = event.object.get("id")
    if not gateway.looks_like_id(account_id, "acct"):
        return "ignored: no account id"
    from app.payouts import services as payouts

    return payouts.apply_account_event(account_id)


#: Event type -> handler. Each returns a short outcome and commits its own work; it raises only when
#: the event should be delivered again later (e.g. Stripe did not answer).
HANDLERS: dict[str, Callable[[Event], str]] = {
    "setup_intent.succeeded": _setup_intent,
    "setup_intent.setup_failed": _setup_intent,
    "payment_intent.succeeded": _payment_intent,
    "payment_intent.payment_failed": _payment_intent,
    "charge.refunded": _charge,
    "account.updated": _account,
}


# --- once each -------------------------------------------------------------------------------

def receive(event: Event) -> Receipt:
    """Process a verified event unless its id was seen before; store its outcome. Commits.

    The row is inserted (and committed) before anything is done, so that of two concurrent deliveries
    only one gets past the primary key. A handler that raises gives its claim back and the exception
    propagates (answer 500: Stripe delivers the event again later).
    """
    now = clock.utcnow()
    object_id = event.object.get("id") if isinstance(event.object.get("id"), str) else None
    db.session.add(StripeEvent(id=event.id, type=event.type[:100], object_id=object_id and object_id[:255],
                               received_at=now, claimed_at=now, attempts=1))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        if not _take_over(event.id, now):
            return Receipt(event.id, duplicate=True, outcome="already received")
        log.info("webhook %s: processing it again after an earlier failure", event.id)
    handler = HANDLERS.get(event.type)
    try:
        outcome = handler(event) if handler else "ignored: not a type we act on"
    except Exception as error:
        db.session.rollback()
        if not isinstance(error, gateway.GatewayError) or isinstance(error, gateway.StripeUnavailable):
            _finish(event.id, f"failed: {type(error).__name__}", processed=False)
            log.warning("webhook %s (%s) failed; Stripe will deliver it again", event.id, event.type)
            raise
        # Stripe answered, and its answer will not change (an object of another account, say): done.
        outcome = f"refused by Stripe: {error.code}"
    _finish(event.id, outcome, processed=True)
    log.info("webhook %s (%s): %s", event.id, event.type, outcome)
    return Receipt(event.id, duplicate=False, outcome=outcome)


def _take_over(event_id: str, now) -> bool:
    """Claim a known event that nobody has finished: its processing failed, or its process died
    (claim older than the lease). Conditional, so of several deliveries at most one wins."""
    result = db.session.execute(
        update(StripeEvent)
        .where(
            StripeEvent.id == event_id,
            StripeEvent.processed_at.is_(None),
            or_(StripeEvent.claimed_at.is_(None), StripeEvent.claimed_at < now - CLAIM_LEASE),
        )
        .values(claimed_at=now, attempts=StripeEvent.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount == 1


def _finish(event_id: str, outcome: str, *, processed: bool) -> None:
    values = {"claimed_at": None, "outcome": outcome[:_OUTCOME_MAX]}
    if processed:
        values["processed_at"] = clock.utcnow()
    db.session.execute(
        update(StripeEvent).where(StripeEvent.id == event_id).values(**values).execution_options(synchronize_session=False)
    )
    db.session.commit()
