"""A creator's track record, computed from our own records (never typed in by anyone).

Launched counts the campaigns the public can see (live, successful, unsuccessful, canceled): drafts,
campaigns in review, rejected and suspended ones are not counted. "Updates after funding" counts the
updates the creator posted on their successful campaigns after the outcome was decided.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, select

from app import clock
from app.accounts.models import User
from app.campaigns.models import PUBLIC, Campaign, CampaignState
from app.community.models import CampaignUpdate
from app.extensions import db

S = CampaignState
LAUNCHED_STATES = sorted(s.value for s in PUBLIC)


@dataclass(frozen=True)
class TrackRecord:
    """What a creator has done on Threshold, as counts."""

    launched: int
    live: int
    funded: int
    unfunded: int
    canceled: int
    updates_after_funding: int
    member_since: datetime

    def account_age(self, now: datetime | None = None) -> timedelta:
        return max((now or clock.utcnow()) - self.member_since, timedelta(0))

    @property
    def success_rate(self) -> int | None:
        """Percent of the decided campaigns (funded + unfunded) that were funded; None before any."""
        decided = self.funded + self.unfunded
        return round(100 * self.funded / decided) if decided else None


def _counts():
    def n(condition):
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    return (
        n(Campaign.state.in_(LAUNCHED_STATES)),
        n(Campaign.state == S.LIVE.value),
        n(Campaign.state == S.SUCCESSFUL.value),
        n(Campaign.state == S.UNSUCCESSFUL.value),
        n(Campaign.state == S.CANCELED.value),
    )


def _updates_after_funding(creator_ids):
    """(creator id, updates) rows: updates on successful campaigns made after the decision."""
    return (
        select(Campaign.creator_id, func.count(CampaignUpdate.id))
        .join(CampaignUpdate, and_(CampaignUpdate.campaign_id == Campaign.id, CampaignUpdate.created_at > Campaign.ended_at))
        .where(Campaign.creator_id.in_(creator_ids), Campaign.state == S.SUCCESSFUL.value)
        .group_by(Campaign.creator_id)
    )


def track_record(user: User) -> TrackRecord:
    """One creator's record in one statement (the campaign page's budget is tight)."""
    updates = (
        select(func.count(CampaignUpdate.id))
        .join(Campaign, Campaign.id == CampaignUpdate.campaign_id)
        .where(Campaign.creator_id == user.id, Campaign.state == S.SUCCESSFUL.value, CampaignUpdate.created_at > Campaign.ended_at)
        .scalar_subquery()
    )
    row = db.session.execute(select(*_counts(), updates).where(Campaign.creator_id == user.id)).one()
    launched, live, funded, unfunded, canceled, after = (int(v or 0) for v in row)
    return TrackRecord(launched, live, funded, unfunded, canceled, after, user.created_at)


def track_records(users: list[User]) -> dict[int, TrackRecord]:
    """The records of several creators, by user id: two grouped statements whatever their number."""
    if not users:
        return {}
    ids = [u.id for u in users]
    counts = {
        row[0]: [int(v or 0) for v in row[1:]]
        for row in db.session.execute(select(Campaign.creator_id, *_counts()).where(Campaign.creator_id.in_(ids)).group_by(Campaign.creator_id))
    }
    after = {cid: int(n) for cid, n in db.session.execute(_updates_after_funding(ids))}
    records = {}
    for user in users:
        launched, live, funded, unfunded, canceled = counts.get(user.id, [0, 0, 0, 0, 0])
        records[user.id] = TrackRecord(launched, live, funded, unfunded, canceled, after.get(user.id, 0), user.created_at)
    return records


def public_campaigns(user: User, limit: int = 100) -> list[Campaign]:
    """The creator's campaigns anyone may see, live ones first, then the most recently ended."""
    return list(db.session.scalars(
        select(Campaign)
        .where(Campaign.creator_id == user.id, Campaign.state.in_(LAUNCHED_STATES))
        .order_by(case((Campaign.state == S.LIVE.value, 0), else_=1), Campaign.ended_at.desc(), Campaign.launched_at.desc(), Campaign.id.desc())
        .limit(limit)
    ))
