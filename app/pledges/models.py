"""Pledge and PledgeEvent, with the pledge state machine (SPEC §4)."""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, event, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app import clock, logs
from app.accounts.models import User
from app.campaigns.models import Addon, Campaign, Tier
from app.extensions import db


class PledgeState(enum.StrEnum):
    PENDING = "pending"  # a card setup is under way; counts for nothing
    ACTIVE = "active"  # card saved; counts towards the total
    CANCELED = "canceled"  # the backer withdrew before the deadline
    RELEASED = "released"  # the campaign did not fund, or was canceled or suspended
    CHARGING = "charging"  # the campaign funded; the charge is due
    COLLECTED = "collected"
    ERRORED = "errored"  # the charge failed; the backer can fix it within the retry window
    DROPPED = "dropped"  # the retry window ran out
    REFUNDED = "refunded"  # a moderator refunded a collected pledge


P = PledgeState

#: The one table of allowed moves: (from, action) -> to.
TRANSITIONS: dict[tuple[PledgeState, str], PledgeState] = {
    (P.PENDING, "activate"): P.ACTIVE,
    (P.PENDING, "abandon"): P.CANCELED,
    (P.ACTIVE, "cancel"): P.CANCELED,
    (P.ACTIVE, "release"): P.RELEASED,
    (P.ACTIVE, "charge"): P.CHARGING,
    (P.CHARGING, "collect"): P.COLLECTED,
    (P.CHARGING, "fail"): P.ERRORED,
    (P.ERRORED, "collect"): P.COLLECTED,
    (P.ERRORED, "fail"): P.ERRORED,
    (P.ERRORED, "drop"): P.DROPPED,
    (P.COLLECTED, "refund"): P.REFUNDED,
}

#: States that hold a place in "one pledge per backer per campaign".
HOLDING = (P.PENDING, P.ACTIVE, P.CHARGING, P.COLLECTED, P.ERRORED)
#: States in which the backer still has a say before the deadline.
EDITABLE = (P.ACTIVE,)

def _whole_amount(context) -> int:
    """A pledge made without its parts (older code, tests) is all reward."""
    return context.get_current_parameters()["amount"]


_holding_sql = "state IN ('pending', 'active', 'charging', 'collected', 'errored')"


class Pledge(db.Model):
    """A backer's pledge to a campaign: an amount in minor units of the campaign's currency."""

    __tablename__ = "pledges"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        # One live pledge per backer per campaign; canceled, released and dropped ones stay as history.
        Index(
            "uq_pledges_one_per_backer", "campaign_id", "backer_id", unique=True,
            sqlite_where=text(_holding_sql), postgresql_where=text(_holding_sql),
        ),
        Index("ix_pledges_campaign_state", "campaign_id", "state"),
        Index("ix_pledges_backer_id", "backer_id"),
        Index("ix_pledges_tier_id", "tier_id"),
        Index("ix_pledges_due", "state", "next_charge_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), nullable=False)
    backer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    #: None = no reward ("back it because you believe in it").
    tier_id: Mapped[int | None] = mapped_column(ForeignKey("tiers.id"))
    #: The total, what settlement charges: reward + add-ons + shipping + bonus (SPEC §12).
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    #: The parts of `amount`, kept so that reports, exports and mails can show the breakdown.
    #: The reward: the tier's minimum, or the whole amount of a pledge without a reward.
    reward_amount: Mapped[int] = mapped_column(BigInteger, nullable=False, default=_whole_amount)
    #: Add-ons' prices × quantities (their lines are `addons`).
    addons_amount: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    #: Shipping of the reward and of the add-ons to `country`.
    shipping_amount: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    bonus_amount: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    #: Where the reward and add-ons ship (ISO 3166-1 alpha-2); None when nothing ships.
    country: Mapped[str | None] = mapped_column(String(2))
    state: Mapped[str] = mapped_column(String(16), nullable=False, default=P.PENDING)
    #: The SetupIntent that saved (or is saving) the card; a card change makes a new one.
    setup_intent_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    #: A new card being set up for an active pledge (the old one stays until this succeeds).
    pending_setup_intent_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    payment_method_id: Mapped[str | None] = mapped_column(String(64))
    card_brand: Mapped[str | None] = mapped_column(String(32))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    #: Stripe's fingerprint of the card (a risk signal: several backers paying with one card).
    card_fingerprint: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(DateTime)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)

    # --- settlement (see SETTLEMENT.md) ---
    #: A settlement worker holds this pledge until then; another may take it after.
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)
    #: Which pass holds the lease: host:pid:token per claim (or "backer", "refund-…").
    lease_owner: Mapped[str | None] = mapped_column(String(32))
    #: When the next charge attempt is due (charging: at once; errored: the daily retry).
    next_charge_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: The first failed charge: the retry window (PAYMENT_RETRY_DAYS) counts from here.
    failed_at: Mapped[datetime | None] = mapped_column(DateTime)
    collected_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: The saved card was released at Stripe (pledges that will never be charged).
    card_released_at: Mapped[datetime | None] = mapped_column(DateTime)
    refund_id: Mapped[str | None] = mapped_column(String(64))
    #: The id of the request that made or last changed the pledge (set on every write made in a
    #: request, below): the worker's log lines about the pledge carry it (app/logs.py).
    request_id: Mapped[str | None] = mapped_column(String(64))

    campaign: Mapped[Campaign] = relationship()
    backer: Mapped[User] = relationship()
    tier: Mapped[Tier | None] = relationship()
    addons: Mapped[list[PledgeAddon]] = relationship(order_by="PledgeAddon.addon_id", cascade="all, delete-orphan")

    @property
    def reward_shipping(self) -> int:
        """The part of the shipping that is the reward's (the rest is the add-ons')."""
        return self.shipping_amount - sum(line.shipping_amount for line in self.addons)

    def addon_quantities(self) -> dict[int, int]:
        return {line.addon_id: line.quantity for line in self.addons}

    @property
    def status(self) -> PledgeState:
        return PledgeState(self.state)

    def __repr__(self) -> str:
        return f"<Pledge {self.id} {self.state} {self.amount} {self.currency}>"


@event.listens_for(Pledge, "before_insert")
@event.listens_for(Pledge, "before_update")
def _remember_request(_mapper, _connection, pledge: Pledge) -> None:
    """Whatever a request writes to a pledge (made, edited, confirmed, card changed, canceled), the
    pledge keeps that request's id; writes outside a request (the worker's) leave it as it is."""
    if request_id := logs.current_request_id():
        pledge.request_id = request_id


class PledgeAddon(db.Model):
    """One add-on line of a pledge: the units held and what they cost when the pledge was made or
    last changed (a later price change does not move an existing pledge)."""

    __tablename__ = "pledge_addons"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        Index("ix_pledge_addons_addon_id", "addon_id"),
    )

    pledge_id: Mapped[int] = mapped_column(ForeignKey("pledges.id", ondelete="CASCADE"), primary_key=True)
    addon_id: Mapped[int] = mapped_column(ForeignKey("addons.id"), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    #: The price of one unit, minor units of the pledge's currency.
    unit_amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    #: This line's shipping to the pledge's country (per unit × quantity, or once).
    shipping_amount: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)

    addon: Mapped[Addon] = relationship()

    @property
    def amount(self) -> int:
        return self.unit_amount * self.quantity


class PledgeEvent(db.Model):
    """The pledge audit log: every state change and edit, with who did it."""

    __tablename__ = "pledge_events"
    __table_args__ = (Index("ix_pledge_events_pledge_id", "pledge_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pledge_id: Mapped[int] = mapped_column(ForeignKey("pledges.id", ondelete="CASCADE"), nullable=False)
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16), nullable=False)
    action: Mapped[str] = mapped_column(String(32), nullable=False)
    #: None means the system (settlement, webhooks).
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: The amount after the change (minor units), for the creator's pledges-over-time chart.
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)


class BackerDigest(db.Model):
    """One creator's daily digest of new backers for one campaign and one day (UTC): the row is written in
    the transaction that queues the mail, and the unique key makes a second mail for that day impossible."""

    __tablename__ = "backer_digests"
    __table_args__ = (Index("uq_backer_digests_campaign_day", "campaign_id", "day", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False)
    #: The day covered, as its first instant (UTC midnight).
    day: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    #: What the mail said: new backers that day and what they pledged (minor units).
    backers: Mapped[int] = mapped_column(Integer, nullable=False)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)
