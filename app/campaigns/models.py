"""Campaign, Tier, Addon, ShippingDestination and CampaignEvent, with the campaign state machine (SPEC §2)."""
from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app import clock
from app.accounts.models import User
from app.extensions import db


class CampaignState(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    CHANGES_REQUESTED = "changes_requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    LIVE = "live"
    SUCCESSFUL = "successful"
    UNSUCCESSFUL = "unsuccessful"
    CANCELED = "canceled"
    SUSPENDED = "suspended"


S = CampaignState

#: The one table of allowed transitions: (from, action) -> to. Nothing else changes a state.
TRANSITIONS: dict[tuple[CampaignState, str], CampaignState] = {
    (S.DRAFT, "submit"): S.SUBMITTED,
    (S.CHANGES_REQUESTED, "submit"): S.SUBMITTED,
    (S.SUBMITTED, "approve"): S.APPROVED,
    (S.SUBMITTED, "request_changes"): S.CHANGES_REQUESTED,
    (S.SUBMITTED, "reject"): S.REJECTED,
    (S.APPROVED, "launch"): S.LIVE,
    (S.LIVE, "succeed"): S.SUCCESSFUL,
    (S.LIVE, "fail"): S.UNSUCCESSFUL,
    (S.LIVE, "cancel"): S.CANCELED,
    (S.LIVE, "suspend"): S.SUSPENDED,
}

#: States a creator may edit the content of (everything), and the states after launch
#: (story, images and risks only; tiers by SPEC §2's rules).
EDITABLE = frozenset({S.DRAFT, S.CHANGES_REQUESTED})
LAUNCHED = frozenset({S.LIVE, S.SUCCESSFUL, S.UNSUCCESSFUL, S.CANCELED, S.SUSPENDED})
#: States anyone may see.
PUBLIC = frozenset({S.LIVE, S.SUCCESSFUL, S.UNSUCCESSFUL, S.CANCELED})
ENDED = frozenset({S.SUCCESSFUL, S.UNSUCCESSFUL, S.CANCELED, S.SUSPENDED})

CATEGORIES: tuple[str, ...] = (
    "art", "comics", "crafts", "design", "fashion", "film", "food", "games",
    "music", "photography", "publishing", "technology", "theater", "community",
)


def open_for_pledges(state: str, deadline: datetime | None, now: datetime) -> bool:
    """Live and before the deadline (server time): a campaign, or the facts of one cached for its page."""
    return state == S.LIVE.value and deadline is not None and now < deadline


class Campaign(db.Model):
    """A creator's project; its money fields are integer minor units of `currency`."""

    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint("goal > 0", name="goal_positive"),
        CheckConstraint("duration_days > 0", name="duration_positive"),
        CheckConstraint("pledged_total >= 0 AND backers_count >= 0", name="totals_not_negative"),
        Index("ix_campaigns_state_deadline", "state", "deadline"),
        Index("ix_campaigns_state_launched_at", "state", "launched_at"),
        Index("ix_campaigns_creator_id", "creator_id"),
        Index("ix_campaigns_updated_at", "updated_at"),  # the public page cache's version
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Made from the first title and never changed, so links keep working.
    slug: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    creator_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    title: Mapped[str] = mapped_column(String(80), nullable=False)
    blurb: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    category: Mapped[str] = mapped_column(String(32), nullable=False, default="design")
    #: The goal in minor units of `currency`; fixed at launch.
    goal: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False, default="USD")
    duration_days: Mapped[int] = mapped_column(Integer, nullable=False, default=30)
    #: Markdown (info["markdown"]: a column that may show uploaded images, see campaigns.services.discard_cover).
    story: Mapped[str] = mapped_column(Text, nullable=False, default="", info={"markdown": True})
    risks: Mapped[str] = mapped_column(Text, nullable=False, default="", info={"markdown": True})
    #: Random file name of the re-encoded cover under UPLOAD_FOLDER/covers.
    cover: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(20), nullable=False, default=S.DRAFT)
    #: A moderator's pick for the home page.
    featured: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime)
    launched_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: launched_at + duration_days, set at launch and never changed.
    deadline: Mapped[datetime | None] = mapped_column(DateTime)
    #: When the outcome (successful/unsuccessful) was decided, or the campaign was stopped.
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: The sum and count of its active pledges, moved by the pledge service in the same transaction
    #: as each pledge that becomes or stops being active (see campaigns/totals.py).
    pledged_total: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    backers_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    #: The sum and count of active pledges when the campaign ended (decided, canceled or suspended);
    #: ended campaigns show these, since their pledges have moved on from `active`.
    pledged_at_deadline: Mapped[int | None] = mapped_column(BigInteger)
    backers_at_deadline: Mapped[int | None] = mapped_column(Integer)

    creator: Mapped[User] = relationship(lazy="joined", innerjoin=True)
    tiers: Mapped[list[Tier]] = relationship(
        back_populates="campaign",
        order_by="(Tier.amount, Tier.id)",
        primaryjoin="and_(Tier.campaign_id == Campaign.id, Tier.deleted_at.is_(None))",
        viewonly=True,
    )
    addons: Mapped[list[Addon]] = relationship(
        order_by="(Addon.amount, Addon.id)",
        primaryjoin="and_(Addon.campaign_id == Campaign.id, Addon.deleted_at.is_(None))",
        viewonly=True,
    )
    events: Mapped[list[CampaignEvent]] = relationship(
        back_populates="campaign", order_by="CampaignEvent.id", cascade="all, delete-orphan"
    )

    @property
    def status(self) -> CampaignState:
        return CampaignState(self.state)

    @property
    def is_public(self) -> bool:
        return self.status in PUBLIC

    @property
    def is_editable(self) -> bool:
        return self.status in EDITABLE

    @property
    def is_launched(self) -> bool:
        return self.status in LAUNCHED

    def is_open_for_pledges(self, now: datetime) -> bool:
        return open_for_pledges(self.state, self.deadline, now)

    def __repr__(self) -> str:
        return f"<Campaign {self.id} {self.slug} {self.state}>"


class LimitedStock:
    """What tiers and add-ons share: `quantity_limit` (None = unlimited) and the units `claimed`."""

    quantity_limit: int | None
    claimed: int

    @property
    def remaining(self) -> int | None:
        return None if self.quantity_limit is None else max(self.quantity_limit - self.claimed, 0)

    @property
    def sold_out(self) -> bool:
        return self.quantity_limit is not None and self.claimed >= self.quantity_limit


class Tier(LimitedStock, db.Model):
    """A funding tier (reward): a minimum pledge and an optional limited quantity."""

    __tablename__ = "tiers"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("claimed >= 0", name="claimed_not_negative"),
        CheckConstraint("quantity_limit IS NULL OR quantity_limit > 0", name="limit_positive"),
        CheckConstraint("quantity_limit IS NULL OR claimed <= quantity_limit", name="claimed_within_limit"),
        Index("ix_tiers_campaign_id", "campaign_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False)
    title: Mapped[str] = mapped_column(String(80), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    #: The minimum pledge for this tier, minor units of the campaign's currency.
    amount: Mapped[int] = mapped_column(Integer, nullable=False)
    #: None = unlimited.
    quantity_limit: Mapped[int | None] = mapped_column(Integer)
    #: Active pledges holding this tier; moved only by conditional updates in the pledge service.
    claimed: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    #: First day of the estimated delivery month.
    estimated_delivery: Mapped[date | None] = mapped_column(Date)
    #: A free-text note for backers ("EU and US only"); where the reward ships is `ships` and `destinations`.
    shipping_note: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    #: False: nothing to send (digital, an event, a thank-you). True: ships to `destinations` only.
    ships: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)
    #: Removed tiers are kept (pledges may point at them) but never shown.
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)

    campaign: Mapped[Campaign] = relationship(back_populates="tiers", foreign_keys=[campaign_id])
    destinations: Mapped[list[ShippingDestination]] = relationship(order_by="ShippingDestination.country", viewonly=True)


#: The tiers an add-on is offered with; none at all means every tier.
addon_tiers = Table(
    "addon_tiers",
    db.metadata,
    Column("addon_id", ForeignKey("addons.id", ondelete="CASCADE"), primary_key=True),
    Column("tier_id", ForeignKey("tiers.id", ondelete="CASCADE"), primary_key=True),
)


class Addon(LimitedStock, db.Model):
    """An extra a backer can add to a pledge, by quantity: its price per unit, an optional limit, and
    where it ships (per unit or once per pledge)."""

    __tablename__ = "addons"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("claimed >= 0", name="claimed_not_negative"),
        CheckConstraint("quantity_limit IS NULL OR quantity_limit > 0", name="limit_positive"),
        CheckConstraint("quantity_limit IS NULL OR claimed <= quantity_limit", name="claimed_within_limit"),
        CheckConstraint("shipping_per IN ('unit', 'pledge')", name="shipping_per_known"),
        Index("ix_addons_campaign_id", "campaign_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False)
    title: Mapped[str] = mapped_column(String(80), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    #: The price of one unit, minor units of the campaign's currency.
    amount: Mapped[int] = mapped_column(Integer, nullable=False)
    #: Units on offer; None = unlimited.
    quantity_limit: Mapped[int | None] = mapped_column(Integer)
    #: Units held by active pledges; moved only by conditional updates (services.claim_addon).
    claimed: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    ships: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    #: "unit": the destination's cost for every unit; "pledge": once, whatever the quantity.
    shipping_per: Mapped[str] = mapped_column(String(8), nullable=False, default="unit")
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)
    #: Removed add-ons are kept (pledges may point at them) but never shown.
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)

    destinations: Mapped[list[ShippingDestination]] = relationship(order_by="ShippingDestination.country", viewonly=True)
    #: The tiers it is offered with (removed ones included: filter on `deleted_at`); empty = all.
    tiers: Mapped[list[Tier]] = relationship(secondary=addon_tiers, order_by="(Tier.amount, Tier.id)", viewonly=True)

    @property
    def for_all_tiers(self) -> bool:
        return not self.tiers

    @property
    def tier_ids(self) -> frozenset[int]:
        """The tiers it is offered with that are still shown (a removed tier's link stays, unused)."""
        return frozenset(tier.id for tier in self.tiers if tier.deleted_at is None)

    def offered_with(self, tier_id: int | None) -> bool:
        """Whether a pledge for `tier_id` may add it (a pledge without a reward: only add-ons for all tiers)."""
        return self.for_all_tiers or tier_id in self.tier_ids


class ShippingDestination(db.Model):
    """Where a tier or an add-on ships and what that costs: a country (ISO 3166-1 alpha-2), or ZZ for
    the rest of the world."""

    __tablename__ = "shipping_destinations"
    __table_args__ = (
        CheckConstraint("cost >= 0", name="cost_not_negative"),
        CheckConstraint("(tier_id IS NULL) <> (addon_id IS NULL)", name="one_owner"),
        UniqueConstraint("tier_id", "country"),
        UniqueConstraint("addon_id", "country"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tier_id: Mapped[int | None] = mapped_column(ForeignKey("tiers.id", ondelete="CASCADE"))
    addon_id: Mapped[int | None] = mapped_column(ForeignKey("addons.id", ondelete="CASCADE"))
    country: Mapped[str] = mapped_column(String(2), nullable=False)
    #: Minor units of the campaign's currency; zero ships free.
    cost: Mapped[int] = mapped_column(Integer, nullable=False)


class CampaignEvent(db.Model):
    """The audit log: one row per state change (and per moderator action such as featuring)."""

    __tablename__ = "campaign_events"
    __table_args__ = (Index("ix_campaign_events_campaign_id", "campaign_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False)
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20), nullable=False)
    action: Mapped[str] = mapped_column(String(32), nullable=False)
    #: None means the system (the settlement pass).
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)

    campaign: Mapped[Campaign] = relationship(back_populates="events")
    actor: Mapped[User | None] = relationship()
