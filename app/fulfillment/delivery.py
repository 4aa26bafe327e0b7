"""The honest delivery record (issue 17): how a funded campaign's rewards are reaching its backers, and a
creator's record across campaigns — computed from the fulfillment items, never typed in by anyone.

A reward is *due* once its tier's estimated month has ended, or once it has shipped. It is *on time* when
it shipped within its estimated month (or before); otherwise it is late by the whole months between the
estimated month and the month it shipped — or, not shipped yet, this month. Only rewards count (add-ons
have no estimate of their own); a tier without an estimated month is left out of the on-time figures.
Pledges are counted from the collected ones, so a pledge whose item rows are not made yet still counts as
not shipped.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import and_, case, extract, func, select

from app import clock
from app.accounts.models import User
from app.campaigns.models import Campaign, CampaignState, Tier
from app.extensions import db
from app.fulfillment.models import REWARD_ITEM, FulfillmentItem, ItemState
from app.pledges.models import Pledge, PledgeState

#: Item states that mean the reward has left the creator.
SHIPPED_STATES = (ItemState.SHIPPED.value, ItemState.DELIVERED.value, ItemState.PROBLEM.value)


def _month(day: date) -> int:
    return day.year * 12 + day.month


@dataclass(frozen=True)
class TierDelivery:
    """One tier's rewards after funding: how many backers are owed one, and how many shipped and arrived."""

    tier_id: int
    estimated: date | None
    backers: int
    shipped: int
    delivered: int
    today: date

    @property
    def shipped_pct(self) -> int:
        return round(100 * self.shipped / self.backers) if self.backers else 0

    @property
    def delivered_pct(self) -> int:
        return round(100 * self.delivered / self.backers) if self.backers else 0

    @property
    def late(self) -> bool:
        """The estimated month has passed with rewards not shipped."""
        return self.estimated is not None and _month(self.today) > _month(self.estimated) and self.shipped < self.backers


def _reward_items():
    """Collected pledges with a reward, each with its reward item if one is made (left join)."""
    return (
        select(Pledge.id)
        .join(Tier, Tier.id == Pledge.tier_id)
        .outerjoin(FulfillmentItem, and_(FulfillmentItem.pledge_id == Pledge.id, FulfillmentItem.item == REWARD_ITEM))
        .where(Pledge.state == PledgeState.COLLECTED.value)
    )


def _count(condition):
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def campaign_delivery(campaign: Campaign) -> dict[int, TierDelivery]:
    """Each rewarded tier's delivery figures by tier id, once the campaign is successful ({} before): one
    statement."""
    if campaign.state != CampaignState.SUCCESSFUL.value:
        return {}
    today = clock.utcnow().date()
    rows = db.session.execute(
        _reward_items()
        .with_only_columns(
            Tier.id, Tier.estimated_delivery, func.count(Pledge.id),
            _count(FulfillmentItem.state.in_(SHIPPED_STATES)), _count(FulfillmentItem.state == ItemState.DELIVERED.value))
        .where(Pledge.campaign_id == campaign.id)
        .group_by(Tier.id, Tier.estimated_delivery)
    )
    return {tier_id: TierDelivery(tier_id, estimated, int(backers), int(shipped), int(delivered), today)
            for tier_id, estimated, backers, shipped, delivered in rows}


@dataclass(frozen=True)
class DeliveryRecord:
    """A creator's rewards across their successful campaigns."""

    rewards: int  # owed to backers (collected pledges with a reward)
    delivered: int
    due: int  # the estimated month has ended, or it shipped
    on_time: int  # due and shipped within the estimated month
    months_late: int  # the late ones' months past their estimate, summed

    @property
    def on_time_pct(self) -> int | None:
        return round(100 * self.on_time / self.due) if self.due else None

    @property
    def average_months_late(self) -> float | None:
        """How late the late rewards were (or still are), in months, on average; None when none is late."""
        late = self.due - self.on_time
        return round(self.months_late / late, 1) if late else None


def creator_delivery(creator: User) -> DeliveryRecord:
    """One creator's delivery record in one statement, grouped by estimated month, shipped month and state
    (a few rows however many backers)."""
    shipped_year, shipped_month = extract("year", FulfillmentItem.shipped_on), extract("month", FulfillmentItem.shipped_on)
    rows = db.session.execute(
        _reward_items()
        .with_only_columns(Tier.estimated_delivery, shipped_year, shipped_month, FulfillmentItem.state, func.count(Pledge.id))
        .join(Campaign, Campaign.id == Pledge.campaign_id)
        .where(Campaign.creator_id == creator.id, Campaign.state == CampaignState.SUCCESSFUL.value)
        .group_by(Tier.estimated_delivery, shipped_year, shipped_month, FulfillmentItem.state)
    )
    now = _month(clock.utcnow().date())
    rewards = delivered = due = on_time = months_late = 0
    for estimated, year, month, state, n in rows:
        n = int(n)
        rewards += n
        delivered += n if state == ItemState.DELIVERED.value else 0
        if estimated is None:
            continue
        shipped = state in SHIPPED_STATES and year is not None
        lateness = (int(year) * 12 + int(month) if shipped else now) - _month(estimated)
        if not shipped and lateness <= 0:
            continue  # not due yet
        due += n
        if lateness <= 0:
            on_time += n
        else:
            months_late += lateness * n
    return DeliveryRecord(rewards, delivered, due, on_time, months_late)
