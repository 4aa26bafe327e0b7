"""Pledge rules (SPEC §4): create with a saved card, edit, cancel, release; tier claims; totals.

Stripe is called outside database transactions (a slow network never holds a lock), and every
decision that depends on the campaign's state or deadline is taken again inside the transaction
that writes it, with the campaign row locked (FOR SHARE on PostgreSQL; SQLite serialises writers).
"""
from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError

from app import clock, money
from app.accounts.models import User
from app.campaigns import services as campaigns
from app.campaigns import totals
from app.campaigns.models import Campaign, CampaignState, Tier
from app.extensions import db
from app.notifications import services as mail
from app.payments import declines, gateway
from app.pledges.models import HOLDING, TRANSITIONS, Pledge, PledgeEvent, PledgeState

P = PledgeState
log = logging.getLogger("threshold.pledges")


class PledgeError(ValueError):
    """A refused pledge action, with a message fit to show; `field` names the form field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# --- the state machine -----------------------------------------------------------------------

def transition(pledge: Pledge, action: str, actor: User | None, note: str = "") -> PledgeEvent:
    """Move a pledge by `action` if the table allows it; write the audit row. Does not commit."""
    current = PledgeState(pledge.state)
    target = TRANSITIONS.get((current, action))
    if target is None:
        raise PledgeError(_("This pledge is %(state)s, so that is not possible.", state=state_name(current)))
    now = clock.utcnow()
    if (current == P.ACTIVE) != (target == P.ACTIVE):  # the campaign's live counters follow
        sign = 1 if target == P.ACTIVE else -1
        totals.add(pledge.campaign_id, sign * pledge.amount, sign)
    pledge.state = target.value
    pledge.updated_at = now
    if target in (P.CANCELED, P.RELEASED, P.DROPPED):
        pledge.ended_at = now
    event = PledgeEvent(
        pledge_id=pledge.id, from_state=current.value, to_state=target.value, action=action,
        actor_id=actor.id if actor else None, amount=pledge.amount, note=note, created_at=now,
    )
    db.session.add(event)
    return event


def state_name(state: PledgeState | str) -> str:
    return {
        P.PENDING: _("Waiting for your card"),
        P.ACTIVE: _("Active"),
        P.CANCELED: _("Canceled"),
        P.RELEASED: _("Released"),
        P.CHARGING: _("Being collected"),
        P.COLLECTED: _("Collected"),
        P.ERRORED: _("Payment failed"),
        P.DROPPED: _("Dropped"),
        P.REFUNDED: _("Refunded"),
    }[PledgeState(state)]


# --- locks and claims ------------------------------------------------------------------------

def lock_campaign(campaign_id: int, *, exclusive: bool = False) -> Campaign:
    """Re-read the campaign inside the current transaction, locked against the deadline decision.

    PostgreSQL: FOR SHARE, so the settlement's FOR UPDATE waits for us (and we for it).
    SQLite: a no-op write first takes the database's write lock, so nothing changes under us.
    `exclusive=True` (deciding or closing the campaign) takes FOR UPDATE instead.
    """
    if db.engine.dialect.name == "sqlite":
        db.session.execute(update(Campaign).where(Campaign.id == campaign_id).values(id=Campaign.id))
        query = select(Campaign).where(Campaign.id == campaign_id)
    else:
        query = select(Campaign).where(Campaign.id == campaign_id).with_for_update(read=not exclusive)
    return db.session.execute(query.execution_options(populate_existing=True)).scalar_one()


def _check_open(campaign: Campaign) -> None:
    if campaign.state != CampaignState.LIVE.value:
        raise PledgeError(_("This campaign is not taking pledges."))
    if not campaign.is_open_for_pledges(clock.utcnow()):
        raise PledgeError(_("This campaign has reached its deadline: pledges can no longer be made or changed."))


def claim_tier(tier_id: int) -> bool:
    """Take one place in a tier; False when it is sold out (or gone). Conditional, so never oversold."""
    result = db.session.execute(
        update(Tier)
        .where(Tier.id == tier_id, Tier.deleted_at.is_(None), (Tier.quantity_limit.is_(None)) | (Tier.claimed < Tier.quantity_limit))
        .values(claimed=Tier.claimed + 1)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def unclaim_tier(tier_id: int | None, count: int = 1) -> None:
    if tier_id is not None and count:
        db.session.execute(
            update(Tier).where(Tier.id == tier_id).values(claimed=Tier.claimed - count).execution_options(synchronize_session=False)
        )


# --- checks shared by the forms --------------------------------------------------------------

#: Built once: the pledge form asks it on every visit.
_OPEN_PLEDGE = select(Pledge).where(
    Pledge.campaign_id == bindparam("campaign_id"), Pledge.backer_id == bindparam("backer_id"),
    Pledge.state.in_([s.value for s in HOLDING]),
)


def open_pledge(campaign: Campaign, backer: User) -> Pledge | None:
    """The backer's pledge that holds their place in this campaign, if any."""
    return db.session.scalar(_OPEN_PLEDGE, {"campaign_id": campaign.id, "backer_id": backer.id})


def check_backer(campaign: Campaign, backer: User) -> None:
    """Refuse a pledge nobody may make: one's own campaign, or a campaign not open."""
    if backer.id == campaign.creator_id:
        raise PledgeError(_("You cannot back your own campaign."))
    _check_open(campaign)


def check_choice(campaign: Campaign, tier_id: int | None, amount: int) -> Tier | None:
    """The tier chosen (None = no reward) and an amount it admits."""
    tier = None
    minimum = money.MIN_CHARGE[campaign.currency]
    if tier_id is not None:
        tier = campaigns.get_tier(campaign, tier_id)
        if tier is None:
            raise PledgeError(_("Choose one of this campaign’s rewards."), "tier")
        minimum = max(minimum, tier.amount)
    if amount < minimum:
        raise PledgeError(_("Pledge at least %(min)s.", min=money.format_money(minimum, campaign.currency)), "amount")
    if amount > money.MAX_CHARGE:
        raise PledgeError(_("Pledge at most %(max)s.", max=money.format_money(money.MAX_CHARGE, campaign.currency)), "amount")
    return tier


# --- creating a pledge: begin (save the card), then activate ---------------------------------

def _customer_for(backer: User) -> str:
    customer = gateway.ensure_customer(backer.email, backer.display_name, backer.stripe_customer_id)
    if customer != backer.stripe_customer_id:
        backer.stripe_customer_id = customer
        db.session.commit()
    return customer


def begin(campaign: Campaign, backer: User, tier_id: int | None, amount: int) -> tuple[Pledge, str]:
    """Start a pledge: a pending row and a SetupIntent for the browser; returns (pledge, client_secret).

    A second call (a double click, a retry) reuses the backer's pending pledge: one per campaign.
    """
    check_backer(campaign, backer)
    tier = check_choice(campaign, tier_id, amount)
    if tier is not None and tier.sold_out:
        raise PledgeError(_("This reward is sold out. Choose another, or pledge without a reward."), "tier")
    existing = open_pledge(campaign, backer)
    if existing is not None and existing.state != P.PENDING.value:
        raise PledgeError(_("You already back this campaign. You can change your pledge instead."))
    customer = _customer_for(backer)
    pledge = existing
    if pledge is None:
        pledge = Pledge(campaign_id=campaign.id, backer_id=backer.id, currency=campaign.currency, amount=amount, state=P.PENDING.value)
        db.session.add(pledge)
        try:
            db.session.commit()
        except IntegrityError:  # the same backer's other request got there first
            db.session.rollback()
            pledge = open_pledge(campaign, backer)
            if pledge is None or pledge.state != P.PENDING.value:
                raise PledgeError(_("You already back this campaign. You can change your pledge instead.")) from None
    setup = gateway.start_card_setup(customer, {"pledge": pledge.id, "campaign": campaign.id})
    pledge.tier_id = tier.id if tier else None
    pledge.amount = amount
    pledge.setup_intent_id = setup.id
    pledge.updated_at = clock.utcnow()
    db.session.commit()
    return pledge, setup.client_secret


def _saved_card(setup_intent_id: str, backer: User) -> gateway.SetupResult:
    """Ask Stripe how the backer's card setup went; a PledgeError unless the card is saved."""
    try:
        result = gateway.read_setup(setup_intent_id, backer.stripe_customer_id or "")
    except gateway.GatewayError as error:
        raise PledgeError(error.message) from None
    if not result.succeeded:
        raise PledgeError(declines.message_for(result.decline_code) if result.decline_code
                          else _("Your card was not saved. Please try again or use another card."))
    return result


def activate(pledge: Pledge, backer: User, setup_intent_id: str) -> Pledge:
    """Make a pending pledge active once Stripe says its card setup succeeded. Commits.

    The browser's word is never taken: the SetupIntent is the one we made for this pledge and is
    read back from Stripe; the deadline and the tier's quantity are checked in the same transaction.
    """
    if pledge.backer_id != backer.id:
        raise PledgeError(_("This is not your pledge."))
    if pledge.state == P.ACTIVE.value and setup_intent_id == pledge.setup_intent_id:
        return pledge  # a second submit of the same confirmation
    if pledge.state != P.PENDING.value:
        raise PledgeError(_("This pledge is %(state)s, so that is not possible.", state=state_name(pledge.state)))
    if not setup_intent_id or setup_intent_id != pledge.setup_intent_id:
        raise PledgeError(_("That card confirmation does not belong to this pledge. Please try again."))
    result = _saved_card(setup_intent_id, backer)
    _activate_saved(pledge, backer, result, actor=backer)
    return pledge


def activate_from_webhook(setup_intent_id: str) -> str:
    """Stripe's webhook says a card setup ended: activate the pending pledge it belongs to. Commits.

    The event's word is not taken either: the SetupIntent is read back from Stripe, and the pledge moves
    only if it is still pending, the SetupIntent succeeded, and the campaign still takes pledges (the
    same transaction as the backer's own confirmation). Never moves a pledge backward. Returns a short
    outcome for the webhook log; raises only StripeUnavailable (the event should come again later).
    """
    pledge = db.session.scalar(select(Pledge).where(Pledge.setup_intent_id == setup_intent_id))
    if pledge is None:
        return "ignored: no pledge has this setup intent"
    if pledge.state != P.PENDING.value:
        return f"ignored: pledge {pledge.id} is {pledge.state}"
    backer = pledge.backer
    try:
        result = gateway.read_setup(setup_intent_id, backer.stripe_customer_id or "")
    except gateway.StripeUnavailable:
        raise
    except gateway.GatewayError as error:
        return f"ignored: pledge {pledge.id} stays pending ({error.code})"
    if not result.succeeded:
        return f"ignored: pledge {pledge.id} stays pending (setup intent {result.status})"
    try:
        done = _activate_saved(pledge, backer, result, actor=None, note="webhook")
    except PledgeError as error:
        return f"refused: pledge {pledge.id} is {pledge.state} ({error})"
    return f"activated pledge {pledge.id}" if done else f"ignored: pledge {pledge.id} was already active"


def _activate_saved(pledge: Pledge, backer: User, result: gateway.SetupResult, actor: User | None, note: str = "") -> bool:
    """The one transaction that makes a pending pledge active once Stripe reported its card saved.

    Returns False when a concurrent confirmation of the same SetupIntent (the backer's page and
    Stripe's webhook arrive together) activated it first: the pledge row is re-read under a lock, so
    the tier is claimed and the audit row written once. Commits; on a refusal, releases the card.
    """
    try:
        campaign = lock_campaign(pledge.campaign_id, exclusive=True)
        _lock_pledge(pledge.id)
        if pledge.state == P.ACTIVE.value and pledge.setup_intent_id == result.id:
            db.session.rollback()
            return False  # done by the other request, with this very card: keep it
        if pledge.state != P.PENDING.value or pledge.setup_intent_id != result.id:
            raise PledgeError(_("This pledge is %(state)s, so that is not possible.", state=state_name(pledge.state)))
        _check_open(campaign)
        if pledge.tier_id is not None and not claim_tier(pledge.tier_id):
            raise PledgeError(_("Sorry, this reward sold out while you were entering your card. Choose another one."), "tier")
        pledge.payment_method_id = result.payment_method_id
        pledge.card_brand = result.card_brand
        pledge.card_last4 = result.card_last4
        pledge.activated_at = clock.utcnow()
        transition(pledge, "activate", actor, note)
        mail.queue_mail(backer, _l("You backed “%(title)s”", title=campaign.title), "pledge_confirmed", pledge=pledge, campaign=campaign)
        db.session.commit()
    except Exception:
        db.session.rollback()
        _release_card_quietly(result.payment_method_id)
        raise
    return True


def _lock_pledge(pledge_id: int) -> Pledge:
    """Re-read a pledge inside the current transaction (FOR UPDATE on PostgreSQL; on SQLite the
    transaction already holds the database's write lock), refreshing the object in the session."""
    query = select(Pledge).where(Pledge.id == pledge_id)
    if db.engine.dialect.name != "sqlite":
        query = query.with_for_update()
    return db.session.execute(query.execution_options(populate_existing=True)).scalar_one()


# --- managing an active pledge ---------------------------------------------------------------

def edit(pledge: Pledge, backer: User, tier_id: int | None, amount: int) -> Pledge:
    """Change the reward or amount of an active pledge before the deadline. Commits."""
    if pledge.backer_id != backer.id:
        raise PledgeError(_("This is not your pledge."))
    if pledge.state != P.ACTIVE.value:
        raise PledgeError(_("Only an active pledge can be changed."))
    campaign = lock_campaign(pledge.campaign_id, exclusive=True)
    try:
        _check_open(campaign)
        db.session.refresh(pledge)  # as it is now, under the lock
        if pledge.state != P.ACTIVE.value:
            raise PledgeError(_("Only an active pledge can be changed."))
        check_choice(campaign, tier_id, amount)
        if tier_id != pledge.tier_id:
            if tier_id is not None and not claim_tier(tier_id):
                raise PledgeError(_("This reward is sold out. Choose another, or pledge without a reward."), "tier")
            unclaim_tier(pledge.tier_id)
        before = (pledge.tier_id, pledge.amount)
        totals.add(campaign.id, amount - pledge.amount, 0)
        pledge.tier_id, pledge.amount = tier_id, amount
        pledge.updated_at = clock.utcnow()
        db.session.add(PledgeEvent(pledge_id=pledge.id, from_state=pledge.state, to_state=pledge.state, action="edit", actor_id=backer.id,
                                   amount=amount, note=f"tier {before[0]}→{tier_id}, amount {before[1]}→{amount}", created_at=pledge.updated_at))
        mail.queue_mail(backer, _l("Your pledge to “%(title)s” was changed", title=campaign.title), "pledge_edited", pledge=pledge, campaign=campaign)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return pledge


def begin_card_change(pledge: Pledge, backer: User) -> str:
    """A new SetupIntent to replace the card of an active pledge; returns its client secret."""
    if pledge.backer_id != backer.id:
        raise PledgeError(_("This is not your pledge."))
    if pledge.state != P.ACTIVE.value:
        raise PledgeError(_("Only an active pledge can change its card here."))
    _check_open(pledge.campaign)
    setup = gateway.start_card_setup(_customer_for(backer), {"pledge": pledge.id, "campaign": pledge.campaign_id, "purpose": "card_change"})
    pledge.pending_setup_intent_id = setup.id
    db.session.commit()
    return setup.client_secret


def finish_card_change(pledge: Pledge, backer: User, setup_intent_id: str) -> Pledge:
    """Switch an active pledge to the card saved by its pending SetupIntent; the old card is released."""
    if pledge.backer_id != backer.id:
        raise PledgeError(_("This is not your pledge."))
    if not setup_intent_id or setup_intent_id != pledge.pending_setup_intent_id:
        if setup_intent_id and setup_intent_id == pledge.setup_intent_id:
            return pledge  # already switched (a second submit)
        raise PledgeError(_("That card confirmation does not belong to this pledge. Please try again."))
    result = _saved_card(setup_intent_id, backer)
    old = pledge.payment_method_id
    campaign = lock_campaign(pledge.campaign_id)
    try:
        _check_open(campaign)
        if pledge.state != P.ACTIVE.value:
            raise PledgeError(_("Only an active pledge can change its card here."))
        pledge.setup_intent_id, pledge.pending_setup_intent_id = setup_intent_id, None
        pledge.payment_method_id, pledge.card_brand, pledge.card_last4 = result.payment_method_id, result.card_brand, result.card_last4
        pledge.updated_at = clock.utcnow()
        db.session.add(PledgeEvent(pledge_id=pledge.id, from_state=pledge.state, to_state=pledge.state, action="card", actor_id=backer.id,
                                   amount=pledge.amount, note=f"card {result.card_brand} {result.card_last4}", created_at=pledge.updated_at))
        db.session.commit()
    except Exception:
        db.session.rollback()
        _release_card_quietly(result.payment_method_id)
        raise
    if old and old != result.payment_method_id:
        _release_card_quietly(old)
    return pledge


# --- fixing a failed payment (after the deadline) ---------------------------------------------

def _check_fixable(pledge: Pledge, backer: User) -> None:
    """Only the backer, only an errored pledge, only inside the retry window (no deadline check: the
    campaign has ended; this pays what was promised before it)."""
    if pledge.backer_id != backer.id:
        raise PledgeError(_("This is not your pledge."))
    if pledge.state != P.ERRORED.value:
        raise PledgeError(_("Only a pledge whose payment failed can be fixed here; this one is %(state)s.", state=state_name(pledge.state).lower()))
    window = timedelta(days=current_app.config["PAYMENT_RETRY_DAYS"])
    if pledge.failed_at is None or clock.utcnow() >= pledge.failed_at + window:
        raise PledgeError(_("The time to fix this payment is over."))


def begin_payment_fix(pledge: Pledge, backer: User) -> str:
    """A new SetupIntent to save another card for an errored pledge; returns its client secret."""
    _check_fixable(pledge, backer)
    setup = gateway.start_card_setup(_customer_for(backer), {"pledge": pledge.id, "campaign": pledge.campaign_id, "purpose": "payment_fix"})
    pledge.pending_setup_intent_id = setup.id
    db.session.commit()
    return setup.client_secret


def finish_payment_fix(pledge: Pledge, backer: User, setup_intent_id: str) -> Pledge:
    """Save the card of the pending SetupIntent on an errored pledge (read back from Stripe); the old
    card is released. Does not charge: the settlement area does that next. Commits."""
    if pledge.backer_id != backer.id:
        raise PledgeError(_("This is not your pledge."))
    if not setup_intent_id or setup_intent_id != pledge.pending_setup_intent_id:
        if setup_intent_id and setup_intent_id == pledge.setup_intent_id:
            return pledge  # already saved (a second submit)
        raise PledgeError(_("That card confirmation does not belong to this pledge. Please try again."))
    _check_fixable(pledge, backer)
    result = _saved_card(setup_intent_id, backer)
    old = pledge.payment_method_id
    now = clock.utcnow()
    try:
        # Conditional: only while still errored and still waiting for this very setup (a settlement pass
        # may have collected or dropped the pledge meanwhile; a second tab may have switched cards).
        saved = db.session.execute(
            update(Pledge).where(Pledge.id == pledge.id, Pledge.state == P.ERRORED.value, Pledge.pending_setup_intent_id == setup_intent_id)
            .values(setup_intent_id=setup_intent_id, pending_setup_intent_id=None, payment_method_id=result.payment_method_id,
                    card_brand=result.card_brand, card_last4=result.card_last4, updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not saved:
            raise PledgeError(_("This pledge changed meanwhile: look at its state before trying again."))
        db.session.add(PledgeEvent(pledge_id=pledge.id, from_state=P.ERRORED.value, to_state=P.ERRORED.value, action="card", actor_id=backer.id,
                                   amount=pledge.amount, note=f"card {result.card_brand} {result.card_last4} (payment fix)", created_at=now))
        db.session.commit()
    except Exception:
        db.session.rollback()
        _release_card_quietly(result.payment_method_id)
        raise
    db.session.refresh(pledge)
    if old and old != result.payment_method_id:
        _release_card_quietly(old)
    return pledge


def cancel(pledge: Pledge, backer: User) -> Pledge:
    """Withdraw an active pledge before the deadline; its reward place and saved card are released. Commits."""
    if pledge.backer_id != backer.id:
        raise PledgeError(_("This is not your pledge."))
    campaign = lock_campaign(pledge.campaign_id, exclusive=True)
    try:
        _check_open(campaign)
        db.session.refresh(pledge)
        if pledge.state == P.PENDING.value:
            transition(pledge, "abandon", backer)
        else:
            transition(pledge, "cancel", backer)
            unclaim_tier(pledge.tier_id)
            mail.queue_mail(backer, _l("Your pledge to “%(title)s” was canceled", title=campaign.title), "pledge_canceled", pledge=pledge, campaign=campaign)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    if _release_card_quietly(pledge.payment_method_id):
        pledge.card_released_at = clock.utcnow()
        db.session.commit()
    return pledge


# --- the campaign closed early: release everything -------------------------------------------

def bulk_transition(campaign_id: int, from_state: PledgeState, action: str, now, note: str = "") -> int:
    """Move every pledge of a campaign in `from_state` by `action` (checked against the one table of
    transitions), with one audit row each, in two statements whatever the number of pledges.
    Does not commit; returns how many moved."""
    target = TRANSITIONS.get((from_state, action))
    if target is None:
        raise PledgeError(_("This pledge is %(state)s, so that is not possible.", state=state_name(from_state)))
    moved = db.session.execute(
        select(Pledge.id, Pledge.amount).where(Pledge.campaign_id == campaign_id, Pledge.state == from_state.value)
    ).all()
    if not moved:
        return 0
    if (from_state == P.ACTIVE) != (target == P.ACTIVE):
        sign = 1 if target == P.ACTIVE else -1
        totals.add(campaign_id, sign * sum(amount for _pid, amount in moved), sign * len(moved))
    values = {"state": target.value, "updated_at": now}
    if target in (P.CANCELED, P.RELEASED, P.DROPPED):
        values["ended_at"] = now
    if target == P.CHARGING:
        values["next_charge_at"] = now
    db.session.execute(
        update(Pledge).where(Pledge.campaign_id == campaign_id, Pledge.state == from_state.value).values(**values)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        PledgeEvent.__table__.insert(),
        [{"pledge_id": pid, "from_state": from_state.value, "to_state": target.value, "action": action, "actor_id": None,
          "amount": amount, "note": note, "created_at": now} for pid, amount in moved],
    )
    return len(moved)


def release_campaign(campaign: Campaign, reason: str = "") -> int:
    """Release every active (and pending) pledge of a campaign that will not be charged. Commits.

    Records the totals the campaign had when it stopped, frees the tier claims and emails the backers.
    The saved cards are released at Stripe by the settlement pass (in batches, with a lease), so that
    no web request waits on thousands of Stripe calls. Safe to run twice: the second finds nothing.
    """
    now = clock.utcnow()
    campaign = lock_campaign(campaign.id, exclusive=True)
    active = db.session.execute(
        select(func.coalesce(func.sum(Pledge.amount), 0), func.count())
        .where(Pledge.campaign_id == campaign.id, Pledge.state == P.ACTIVE.value)
    ).one()
    if campaign.pledged_at_deadline is None:
        campaign.pledged_at_deadline, campaign.backers_at_deadline = int(active[0]), int(active[1])
    for pledge in db.session.scalars(
        select(Pledge).where(Pledge.campaign_id == campaign.id, Pledge.state == P.ACTIVE.value)
    ):
        mail.queue_mail(pledge.backer, _l("“%(title)s” will not be charged", title=campaign.title), "pledge_released",
                        pledge=pledge, campaign=campaign, reason=reason)
    released = bulk_transition(campaign.id, P.ACTIVE, "release", now, reason)
    bulk_transition(campaign.id, P.PENDING, "abandon", now, reason)
    db.session.execute(update(Tier).where(Tier.campaign_id == campaign.id).values(claimed=0).execution_options(synchronize_session=False))
    db.session.commit()
    log.info("campaign %s: released %d pledges (%s)", campaign.id, released, campaign.state)
    return released


def _on_campaign_closed(campaign: Campaign, **_extra) -> None:
    release_campaign(campaign, reason=campaigns.state_name(campaign.state))


campaigns.campaign_closed.connect(_on_campaign_closed)


# --- helpers ---------------------------------------------------------------------------------

def _release_card_quietly(payment_method_id: str | None) -> bool:
    """Release a saved card at Stripe; a failure is logged, never shown (the settlement pass retries
    for canceled pledges, and a card not attached to a live pledge is never charged anyway)."""
    if not payment_method_id:
        return False
    try:
        gateway.release_card(payment_method_id)
    except gateway.GatewayError as error:
        log.warning("could not release card %s: %s", payment_method_id, error)
        return False
    return True


def get_for_backer(pledge_id: int, backer: User) -> Pledge | None:
    """The pledge if it belongs to `backer` (others get None, hence 404)."""
    return db.session.scalar(select(Pledge).where(Pledge.id == pledge_id, Pledge.backer_id == backer.id))


def backer_pledges(backer: User) -> list[Pledge]:
    from sqlalchemy.orm import joinedload

    return list(db.session.scalars(
        select(Pledge).where(Pledge.backer_id == backer.id, Pledge.state != P.PENDING.value)
        .options(joinedload(Pledge.campaign), joinedload(Pledge.tier)).order_by(Pledge.created_at.desc())
    ).unique())
