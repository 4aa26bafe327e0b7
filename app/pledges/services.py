"""Pledge rules (SPEC §4): create with a saved card, edit, cancel, release; tier claims; totals.

Stripe is called outside database transactions (a slow network never holds a lock), and every
decision that depends on the campaign's state or deadline is taken again inside the transaction
that writes it, with the campaign row locked (FOR SHARE on PostgreSQL; SQLite serialises writers).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, selectinload

from app import clock, database, money
from app.accounts.models import User
from app.campaigns import services as campaigns
from app.campaigns import shipping, totals
from app.campaigns.models import Addon, Campaign, CampaignState, Tier
from app.extensions import db
from app.notifications import services as mail
from app.payments import declines, gateway
from app.pledges import backer_mail, composition
from app.pledges.models import HOLDING, TRANSITIONS, Pledge, PledgeAddon, PledgeEvent, PledgeState

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


#: Built once (a list of pledges names one state a row: translating all nine each time was most of it).
_STATE_NAMES = {
    P.PENDING: _l("Waiting for your card"),
    P.ACTIVE: _l("Active"),
    P.CANCELED: _l("Canceled"),
    P.RELEASED: _l("Released"),
    P.CHARGING: _l("Being collected"),
    P.COLLECTED: _l("Collected"),
    P.ERRORED: _l("Payment failed"),
    P.DROPPED: _l("Dropped"),
    P.REFUNDED: _l("Refunded"),
}


def state_name(state: PledgeState | str) -> str:
    return str(_STATE_NAMES[PledgeState(state)])


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


_OPEN_PLEDGE_STATE = select(Pledge.state).where(*_OPEN_PLEDGE.whereclause.clauses)


def open_pledge(campaign: Campaign, backer: User) -> Pledge | None:
    """The backer's pledge that holds their place in this campaign, if any."""
    return db.session.scalar(_OPEN_PLEDGE, {"campaign_id": campaign.id, "backer_id": backer.id})


def may_start(campaign, backer: User) -> bool:
    """Whether `backer` may start a pledge on `campaign` now and holds no place in it yet (a pending
    pledge, whose card was never saved, holds none): the rules of check_backer and the form's redirect
    to an open pledge, asked in one read (the campaign may be its cached facts)."""
    if backer.id == campaign.creator_id or not campaign.is_open_for_pledges(clock.utcnow()):
        return False
    row = database.read_one(db.engine, _OPEN_PLEDGE_STATE, {"campaign_id": campaign.id, "backer_id": backer.id})
    return row is None or row[0] == P.PENDING.value


def check_backer(campaign: Campaign, backer: User) -> None:
    """Refuse a pledge nobody may make: one's own campaign, or a campaign not open."""
    if backer.id == campaign.creator_id:
        raise PledgeError(_("You cannot back your own campaign."))
    _check_open(campaign)


@dataclass(frozen=True)
class Choice:
    """What a backer chose on the pledge form, before the service checks and adds it up.

    `amount`: a pledge without a reward (or, with a reward, the reward and bonus together from a
    client that sends no `bonus`). `shown_total`: the total the page showed, when it sent one."""

    tier_id: int | None = None
    amount: int | None = None
    bonus: int = 0
    quantities: Mapping[int, int] = field(default_factory=dict)
    country: str | None = None
    shown_total: int | None = None

    @classmethod
    def of(cls, pledge: Pledge) -> Choice:
        """A saved pledge's choice (for its edit form)."""
        return cls(tier_id=pledge.tier_id, amount=pledge.reward_amount if pledge.tier_id is None else None,
                   bonus=pledge.bonus_amount, quantities=pledge.addon_quantities(), country=pledge.country)


def _addon_field(addon_id: int) -> str:
    return f"addons-{addon_id}"


def _no_shipping_error(error: composition.NoShipping, country: str | None) -> PledgeError:
    if not country:
        return PledgeError(_("Choose the country your reward ships to."), "country")
    place = shipping.country_name(country)
    if isinstance(error.item, Addon):
        return PledgeError(_("“%(title)s” does not ship to %(country)s.", title=error.item.title, country=place), _addon_field(error.item.id))
    return PledgeError(_("This reward does not ship to %(country)s. Choose another country or another reward.", country=place), "country")


def compose(campaign: Campaign, choice: Choice, pledge: Pledge | None = None) -> tuple[Tier | None, composition.Composition]:
    """Check a backer's choice against what the campaign offers and add it up (SPEC §12). `pledge`:
    the pledge being changed (the add-on units it already holds count as available to it).

    Raises PledgeError naming the field: an unknown reward or add-on, an add-on not offered with the
    reward, more units than are left, a destination something chosen does not ship to, a total out
    of bounds, or a total other than the one the page showed."""
    currency = campaign.currency
    minimum = money.MIN_CHARGE[currency]
    tier = None
    if choice.tier_id is not None:
        tier = campaigns.get_tier(campaign, choice.tier_id)
        if tier is None:
            raise PledgeError(_("Choose one of this campaign’s rewards."), "tier")
        reward, bonus = tier.amount, choice.bonus
        if choice.amount is not None:  # reward and bonus in one amount
            if choice.amount < tier.amount:
                raise PledgeError(_("Pledge at least %(min)s.", min=money.format_money(max(minimum, tier.amount), currency)), "amount")
            bonus = choice.amount - tier.amount
    else:
        reward, bonus = choice.amount or 0, 0
        if reward < minimum:
            raise PledgeError(_("Pledge at least %(min)s.", min=money.format_money(minimum, currency)), "amount")
    offered = {addon.id: addon for addon in campaign.addons}
    held = pledge.addon_quantities() if pledge is not None else {}
    quantities = {}
    for addon_id, quantity in choice.quantities.items():
        addon = offered.get(addon_id)
        if addon is None:
            raise PledgeError(_("This add-on is not offered by this campaign."), _addon_field(addon_id))
        if not addon.offered_with(choice.tier_id):
            raise PledgeError(_("“%(title)s” cannot be added to this reward.", title=addon.title), _addon_field(addon_id))
        if addon.remaining is not None and quantity > addon.remaining + held.get(addon_id, 0):
            left = addon.remaining + held.get(addon_id, 0)
            raise PledgeError(ngettext("Only %(num)d is left.", "Only %(num)d are left.", left) if left else _("Sold out."), _addon_field(addon_id))
        quantities[addon] = quantity
    try:
        result = composition.compose(reward, tier, quantities, choice.country, bonus)
    except composition.NoShipping as error:
        raise _no_shipping_error(error, choice.country) from None
    if result.total < minimum:
        raise PledgeError(_("Pledge at least %(min)s.", min=money.format_money(minimum, currency)), "amount" if tier is None else "bonus")
    if result.total > money.MAX_CHARGE:
        raise PledgeError(_("The total may be at most %(max)s.", max=money.format_money(money.MAX_CHARGE, currency)), "total")
    if choice.shown_total is not None and choice.shown_total != result.total:
        raise PledgeError(_("The total is now %(total)s, not what the page showed: something changed while you were choosing. "
                            "Check the summary, then pledge again.", total=money.format_money(result.total, currency)), "total")
    return tier, result


def ships_anything(campaign: Campaign) -> bool:
    """Whether any reward or add-on of the campaign ships (then the form asks for a destination)."""
    return any(item.ships for item in (*campaign.tiers, *campaign.addons))


def destination_countries(campaign: Campaign) -> list[tuple[str, str]]:
    """The countries a backer may choose: every country when something ships to the rest of the
    world, else those some reward or add-on ships to; (code, name) in the reader's language."""
    listed = {d.country for item in (*campaign.tiers, *campaign.addons) if item.ships for d in item.destinations}
    return [(code, name) for code, name in shipping.countries() if shipping.WORLD in listed or code in listed]


def offer_for_script(campaign: Campaign) -> dict:
    """What the pledge page's script adds up (composition.js): prices, destinations, which add-ons go
    with which reward, and the words of the summary in the reader's language."""
    def destinations(item) -> dict[str, int]:
        return {d.country: d.cost for d in item.destinations} if item.ships else {}

    return {
        "currency": campaign.currency,
        "exponent": money.exponent(campaign.currency),
        "tiers": {str(t.id): {"title": t.title, "amount": t.amount, "ships": t.ships, "to": destinations(t)} for t in campaign.tiers},
        "addons": {
            str(a.id): {"title": a.title, "amount": a.amount, "ships": a.ships, "per": a.shipping_per, "to": destinations(a),
                        "tiers": None if a.for_all_tiers else sorted(a.tier_ids)}
            for a in campaign.addons
        },
        "labels": {
            "none": _("Pledge without a reward"),
            # Placeholders the script fills in (gettext without arguments leaves them as they are).
            "addon": _("%(title)s × %(num)s"),
            "shipping": _("Shipping to %(country)s"),
            "choose_country": _("Shipping: choose your country"),
            "bonus": _("Bonus support"),
        },
    }


def _apply(pledge: Pledge, tier: Tier | None, result: composition.Composition) -> None:
    """Write a composition onto a pledge: its parts, its country and its add-on lines."""
    pledge.tier_id = tier.id if tier else None
    pledge.amount = result.total
    pledge.reward_amount, pledge.addons_amount = result.reward, result.addons
    pledge.shipping_amount, pledge.bonus_amount = result.shipping, result.bonus
    pledge.country = result.country
    lines = {line.addon_id: line for line in pledge.addons}
    pledge.addons = [
        _line(lines.get(new.addon_id) or PledgeAddon(addon_id=new.addon_id), new) for new in result.addon_lines
    ]


def _line(row: PledgeAddon, new: composition.AddonLine) -> PledgeAddon:
    row.quantity, row.unit_amount, row.shipping_amount = new.quantity, new.unit_amount, new.shipping
    return row


def _claim_addons(changes: Mapping[int, int]) -> None:
    """Take (positive) or give back (negative) add-on units; PledgeError when fewer are left."""
    for addon_id, change in sorted(changes.items()):
        if change > 0 and not campaigns.claim_addon(addon_id, change):
            raise PledgeError(_("Sorry, this add-on sold out while you were choosing. Lower the quantity."), _addon_field(addon_id))
        if change < 0:
            campaigns.release_addon(addon_id, -change)


def release_claims(pledge: Pledge) -> None:
    """Give back the reward place and the add-on units a pledge held (it will not be charged)."""
    unclaim_tier(pledge.tier_id)
    _claim_addons({addon_id: -quantity for addon_id, quantity in pledge.addon_quantities().items()})


# --- creating a pledge: begin (save the card), then activate ---------------------------------

def _customer_for(backer: User) -> str:
    customer = gateway.ensure_customer(backer.email, backer.display_name, backer.stripe_customer_id)
    if customer != backer.stripe_customer_id:
        backer.stripe_customer_id = customer
        db.session.commit()
    return customer


def begin(campaign: Campaign, backer: User, choice: Choice) -> tuple[Pledge, str]:
    """Start a pledge: a pending row and a SetupIntent for the browser; returns (pledge, client_secret).

    A second call (a double click, a retry) reuses the backer's pending pledge: one per campaign.
    Nothing is claimed until the card is saved (`activate`).
    """
    check_backer(campaign, backer)
    tier, result = compose(campaign, choice)
    if tier is not None and tier.sold_out:
        raise PledgeError(_("This reward is sold out. Choose another, or pledge without a reward."), "tier")
    existing = open_pledge(campaign, backer)
    if existing is not None and existing.state != P.PENDING.value:
        raise PledgeError(_("You already back this campaign. You can change your pledge instead."))
    customer = _customer_for(backer)
    pledge = existing
    if pledge is None:
        pledge = Pledge(campaign_id=campaign.id, backer_id=backer.id, currency=campaign.currency, amount=result.total, state=P.PENDING.value)
        db.session.add(pledge)
        try:
            db.session.commit()
        except IntegrityError:  # the same backer's other request got there first
            db.session.rollback()
            pledge = open_pledge(campaign, backer)
            if pledge is None or pledge.state != P.PENDING.value:
                raise PledgeError(_("You already back this campaign. You can change your pledge instead.")) from None
    setup = gateway.start_card_setup(customer, {"pledge": pledge.id, "campaign": campaign.id})
    _apply(pledge, tier, result)
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
        _claim_addons(pledge.addon_quantities())
        pledge.payment_method_id = result.payment_method_id
        pledge.card_brand = result.card_brand
        pledge.card_last4 = result.card_last4
        pledge.card_fingerprint = result.card_fingerprint
        pledge.activated_at = clock.utcnow()
        transition(pledge, "activate", actor, note)
        mail.queue_mail(backer, _l("You backed “%(title)s”", title=campaign.title), "pledge_confirmed", pledge=pledge, campaign=campaign)
        backer_mail.tell_creator(pledge, campaign)
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

def edit(pledge: Pledge, backer: User, choice: Choice) -> Pledge:
    """Change any part of an active pledge before the deadline: reward, add-ons, destination,
    amount or bonus. Limits are checked again; only the difference in units is claimed. Commits."""
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
        tier, result = compose(campaign, choice, pledge)
        tier_id = tier.id if tier else None
        if tier_id != pledge.tier_id:
            if tier_id is not None and not claim_tier(tier_id):
                raise PledgeError(_("This reward is sold out. Choose another, or pledge without a reward."), "tier")
            unclaim_tier(pledge.tier_id)
        before, held = _summary(pledge), pledge.addon_quantities()
        wanted = {line.addon_id: line.quantity for line in result.addon_lines}
        _claim_addons({addon_id: wanted.get(addon_id, 0) - held.get(addon_id, 0) for addon_id in held.keys() | wanted.keys()})
        totals.add(campaign.id, result.total - pledge.amount, 0)
        _apply(pledge, tier, result)
        pledge.updated_at = clock.utcnow()
        db.session.add(PledgeEvent(pledge_id=pledge.id, from_state=pledge.state, to_state=pledge.state, action="edit", actor_id=backer.id,
                                   amount=pledge.amount, note=f"{before} → {_summary(pledge)}", created_at=pledge.updated_at))
        mail.queue_mail(backer, _l("Your pledge to “%(title)s” was changed", title=campaign.title), "pledge_edited", pledge=pledge, campaign=campaign)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return pledge


def _summary(pledge: Pledge) -> str:
    """A pledge's choice in a few words, for the audit row."""
    addons = ",".join(f"{line.addon_id}x{line.quantity}" for line in pledge.addons) or "-"
    return f"tier {pledge.tier_id} addons {addons} to {pledge.country or '-'} total {pledge.amount}"


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
        pledge.card_fingerprint = result.card_fingerprint
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
                    card_brand=result.card_brand, card_last4=result.card_last4, card_fingerprint=result.card_fingerprint,
                    updated_at=now)
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
            release_claims(pledge)
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
    free_claims(campaign.id)
    db.session.commit()
    log.info("campaign %s: released %d pledges (%s)", campaign.id, released, campaign.state)
    return released


def free_claims(campaign_id: int) -> None:
    """No pledge of the campaign holds anything any more: every tier and add-on is back to unclaimed."""
    for model in (Tier, Addon):
        db.session.execute(update(model).where(model.campaign_id == campaign_id).values(claimed=0).execution_options(synchronize_session=False))


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


def breakdown(pledge: Pledge) -> list[tuple[str, int]]:
    """A pledge's lines as (label, minor units), in the reader's language: the reward, each add-on,
    shipping, bonus support. They add up to `pledge.amount`."""
    lines = [(pledge.tier.title if pledge.tier else _("No reward"), pledge.reward_amount)]
    lines += [(_("%(title)s × %(num)s", title=line.addon.title, num=line.quantity), line.amount) for line in pledge.addons]
    if pledge.country:
        lines.append((_("Shipping to %(country)s", country=shipping.country_name(pledge.country)), pledge.shipping_amount))
    if pledge.bonus_amount:
        lines.append((_("Bonus support"), pledge.bonus_amount))
    return lines


def get_for_backer(pledge_id: int, backer: User) -> Pledge | None:
    """The pledge if it belongs to `backer` (others get None, hence 404)."""
    return db.session.scalar(select(Pledge).where(Pledge.id == pledge_id, Pledge.backer_id == backer.id))


def _backers_own(backer_id):
    """The backer's pledges, never those whose card was not saved (still pending, or abandoned: a card
    declined at pledge time), since they never were a pledge. `backer_id`: an id or a bound parameter."""
    return (Pledge.backer_id == backer_id, Pledge.state != P.PENDING.value,
            or_(Pledge.state != P.CANCELED.value, Pledge.activated_at.is_not(None)))


def backer_pledges(backer: User) -> list[Pledge]:
    """The backer's pledges (`_backers_own`), newest first."""
    return list(db.session.scalars(
        select(Pledge).where(*_backers_own(backer.id))
        .options(joinedload(Pledge.campaign), joinedload(Pledge.tier), selectinload(Pledge.addons).joinedload(PledgeAddon.addon))
        .order_by(Pledge.created_at.desc())
    ).unique())


#: What a row of /me/pledges shows of the pledge itself, read without loading it: the list's cache key.
#: Its own columns shown and its `updated_at` (moved by every edit, card change and transition: add-ons
#: included). What a row shows of the campaign, its rewards and add-ons (titles, state, deadline) is in
#: the key through the campaigns' version (`caching._version`, which every change to them moves, as it
#: does for the public pages): the rows are read from pledges alone, a member's few by their index, not
#: joined to their campaigns and rewards (which was more than half of PostgreSQL's work for the page).
_ROWS = (select(Pledge.id, Pledge.updated_at, Pledge.state, Pledge.amount, Pledge.currency, Pledge.tier_id,
                Pledge.card_last4, Pledge.country, Pledge.bonus_amount, Pledge.addons_amount, Pledge.shipping_amount,
                Pledge.activated_at, Pledge.collected_at, Pledge.failed_at)
         .where(*_backers_own(bindparam("backer_id"))).order_by(Pledge.created_at.desc()))  # built once: every visit runs it


class BackerPledges:
    """/me/pledges: the key of each row (`rows`, one light statement, newest first: together the list's
    cache key, named tuples hashable as they are), and the pledges themselves (`pledge(id)`) loaded all at
    once, only when the list is not in the fragment cache."""

    def __init__(self, backer: User):
        self.backer = backer
        self.rows = tuple(database.read_all(db.engine, _ROWS, {"backer_id": backer.id}))  # no transaction, no ORM
        states = {row.state for row in self.rows}
        self.errored, self.collected = P.ERRORED.value in states, P.COLLECTED.value in states
        #: Everything the page shows is in `rows` (not a charge's last attempt, not shipped items).
        self.keyed = not self.errored and not self.collected
        self._pledges: dict[int, Pledge] | None = None

    def pledge(self, pledge_id: int) -> Pledge:
        if self._pledges is None:
            self._pledges = {pledge.id: pledge for pledge in backer_pledges(self.backer)}
        return self._pledges[pledge_id]
