"""Telling creators about new backers, as each creator chose (`User.email_new_backers`): a mail per
backer ("each", the default, queued in the transaction that makes the pledge active), one mail a day
per campaign ("digest", the job `send_digests`), or none ("off").

Neither mail names the backer nor gives their address: creators see no list of their backers' names
anywhere else, so the mail does not start one. The digest says how many and how much.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from app import clock
from app.accounts.models import User
from app.campaigns.models import Campaign, CampaignState
from app.extensions import db
from app.notifications.services import mail_batch, queue_mail
from app.pledges.models import BackerDigest, Pledge, PledgeState

P = PledgeState
S = CampaignState
#: A pledge made active that day counts in the digest while it still stands.
COUNTED = (P.ACTIVE.value, P.CHARGING.value, P.COLLECTED.value, P.ERRORED.value)
#: States a campaign that took pledges can be in (they all have a deadline).
LAUNCHED = (S.LIVE.value, S.SUCCESSFUL.value, S.UNSUCCESSFUL.value, S.CANCELED.value, S.SUSPENDED.value)
#: How many past days the digest job looks at: a worker stopped for a day still sends the missed digest.
CATCH_UP_DAYS = 2


def tell_creator(pledge: Pledge, campaign: Campaign) -> None:
    """Queue the creator's "new backer" mail when they want one per backer (in the caller's transaction)."""
    creator = campaign.creator
    if creator.email_new_backers != "each" or creator.id == pledge.backer_id:
        return
    queue_mail(creator, _l("New backer for “%(title)s”", title=campaign.title), "new_backer",
               category="backers", pledge=pledge, campaign=campaign, reader=creator)


def _day_start(moment: datetime) -> datetime:
    return datetime(moment.year, moment.month, moment.day)


def send_digests(now: datetime | None = None) -> int:
    """The job: for each of the last CATCH_UP_DAYS whole days (UTC), one mail per campaign whose creator
    chose the digest and that had new backers that day. The `backer_digests` row, written in the mail's
    transaction, makes a second mail for the same campaign and day impossible, so the worker may run
    this on every pass. Returns how many digests were queued."""
    today = _day_start(now or clock.utcnow())
    return sum(_send_day(today - timedelta(days=back)) for back in range(CATCH_UP_DAYS, 0, -1))


def _send_day(day: datetime) -> int:
    end = day + timedelta(days=1)
    sent_already = exists().where(BackerDigest.campaign_id == Pledge.campaign_id, BackerDigest.day == day)
    rows = db.session.execute(
        select(Pledge.campaign_id, func.count(Pledge.id), func.sum(Pledge.amount))
        .join(Campaign, Campaign.id == Pledge.campaign_id)
        .join(User, User.id == Campaign.creator_id)
        .where(User.email_new_backers == "digest", Campaign.state.in_(LAUNCHED), Campaign.deadline > day,
               Pledge.activated_at >= day, Pledge.activated_at < end, Pledge.state.in_(COUNTED), ~sent_already)
        .group_by(Pledge.campaign_id).order_by(Pledge.campaign_id)
    ).all()
    if not rows:
        db.session.rollback()
        return 0
    campaigns = {c.id: c for c in db.session.scalars(
        select(Campaign).where(Campaign.id.in_([r[0] for r in rows])).options(selectinload(Campaign.creator)))}
    sent = 0
    with mail_batch():
        for campaign_id, backers, amount in rows:
            campaign = campaigns[campaign_id]
            db.session.add(BackerDigest(campaign_id=campaign_id, day=day, backers=int(backers), amount=int(amount or 0),
                                        created_at=clock.utcnow()))
            queue_mail(campaign.creator, _l("New backers for “%(title)s”", title=campaign.title), "backer_digest",
                       category="backers", campaign=campaign, backers=int(backers), amount=int(amount or 0),
                       day=day.date(), reader=campaign.creator)
            try:
                db.session.commit()
            except IntegrityError:  # another worker sent this one first
                db.session.rollback()
                continue
            sent += 1
    return sent
