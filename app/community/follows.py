"""Saved campaigns ("Remind me"): a member saves a live campaign, finds it on their pledges page, and is
mailed once, 48 hours before its deadline — unless they back it by then or turned reminders off.

The reminder is a job (`remind_due`) the worker runs on every pass, so nobody is reminded later than one
pass after the 48-hour mark. Saving changes nothing the public page shows, so it does not move the
campaign's version: a visitor's cached page has a "Log in to save" link and nothing of anyone's own.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, case, delete, exists, select, update
from sqlalchemy.exc import IntegrityError

from app import clock, database
from app.accounts.models import User
from app.campaigns.models import Campaign, CampaignState
from app.community.models import CampaignFollow
from app.community.services import BACKER_STATES, CommunityError, Forbidden, _member
from app.extensions import db
from app.notifications.services import mail_batch, queue_mail
from app.pledges.models import Pledge

#: How long before the deadline a saved campaign's reminder goes out.
REMIND_BEFORE = timedelta(hours=48)
#: How many saved campaigns the pledges page lists.
SAVED_LIMIT = 50


def follow(campaign: Campaign, user: User) -> CampaignFollow:
    """Save a live campaign for `user` (saving it twice keeps the one row). Commits."""
    if not _member(user):
        raise Forbidden(_("Log in to save a campaign."))
    if user.id == campaign.creator_id:
        raise CommunityError(_("You cannot save your own campaign."))
    if not campaign.is_open_for_pledges(clock.utcnow()):
        raise CommunityError(_("Only a live campaign can be saved."))
    for _attempt in range(2):  # two clicks racing: the loser finds the winner's row
        row = db.session.scalar(select(CampaignFollow).where(
            CampaignFollow.campaign_id == campaign.id, CampaignFollow.user_id == user.id))
        if row is not None:
            return row
        row = CampaignFollow(campaign_id=campaign.id, user_id=user.id, created_at=clock.utcnow())
        db.session.add(row)
        _saved_list_changed(user)
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            continue
        return row
    raise CommunityError(_("The campaign could not be saved. Try again."))


def unfollow(campaign: Campaign, user: User) -> bool:
    """Remove a saved campaign, whatever its state; False when it was not saved. Commits."""
    if not _member(user):
        raise Forbidden(_("Log in to save a campaign."))
    removed = db.session.execute(
        delete(CampaignFollow).where(CampaignFollow.campaign_id == campaign.id, CampaignFollow.user_id == user.id)
        .execution_options(synchronize_session=False)
    ).rowcount
    if removed:
        _saved_list_changed(user)
    db.session.commit()
    return bool(removed)


def _saved_list_changed(user: User) -> None:
    """Move the member's `saved_version`, in the transaction that saves or removes (the key of their
    saved list: a cached pledges page shows the change at the member's next request, in any process)."""
    db.session.execute(update(User).where(User.id == user.id).values(saved_version=User.saved_version + 1)
                       .execution_options(synchronize_session=False))


#: Built once (every visit to /me/pledges runs it): the four columns the list shows, as rows.
_SAVED = (
    select(Campaign.slug, Campaign.title, Campaign.state, Campaign.deadline)
    .join(CampaignFollow, CampaignFollow.campaign_id == Campaign.id)
    .where(CampaignFollow.user_id == bindparam("user_id"))
    .order_by(case((Campaign.state == CampaignState.LIVE.value, 0), else_=1), Campaign.deadline, Campaign.id)
    .limit(bindparam("limit"))
)


def saved_campaigns(user: User | None, limit: int = SAVED_LIMIT) -> tuple:
    """The member's saved campaigns (slug, title, state, deadline): live ones first, the soonest
    deadline first. One query; a tuple of named tuples, so that the list can key its rendering."""
    if not _member(user):
        return ()
    return tuple(database.read_all(db.engine, _SAVED, {"user_id": user.id, "limit": limit}))  # no transaction, no ORM


def remind_due(now: datetime | None = None, batch: int = 500) -> int:
    """The job: mail each follower of a live campaign whose deadline is at most 48 hours away, once.

    Skipped: members who turned reminders off, who back the campaign (an active or collected pledge),
    and the creator. Each batch is one transaction that queues its mail and stamps `reminded_at`; on
    PostgreSQL the rows are claimed with SKIP LOCKED, so two workers never mail the same follower.
    Returns how many reminders were queued.
    """
    now = now or clock.utcnow()
    backs = exists().where(Pledge.campaign_id == CampaignFollow.campaign_id, Pledge.backer_id == CampaignFollow.user_id,
                           Pledge.state.in_(BACKER_STATES))
    queued = 0
    while True:
        claim = (
            select(CampaignFollow, Campaign, User)
            .join(Campaign, Campaign.id == CampaignFollow.campaign_id)
            .join(User, User.id == CampaignFollow.user_id)
            .where(CampaignFollow.reminded_at.is_(None), Campaign.state == CampaignState.LIVE.value,
                   Campaign.deadline > now, Campaign.deadline <= now + REMIND_BEFORE,
                   User.email_reminders.is_(True), User.id != Campaign.creator_id, ~backs)
            .order_by(CampaignFollow.id).limit(batch)
        )
        if db.engine.dialect.name == "postgresql":
            claim = claim.with_for_update(skip_locked=True, of=CampaignFollow)
        rows = db.session.execute(claim).all()
        if not rows:
            db.session.rollback()
            return queued
        try:
            with mail_batch():
                for follow_row, campaign, member in rows:
                    queue_mail(member, _l("“%(title)s” ends in less than two days", title=campaign.title),
                               "campaign_reminder", category="reminders", campaign=campaign, reader=member)
                    follow_row.reminded_at = now
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise
        queued += len(rows)
