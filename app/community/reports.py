"""Reports to moderators: members report a live campaign; moderators resolve every open report of a
campaign at once, by dismissing them (with a note) or by suspending the campaign (with a reason),
which goes through `campaigns.services.suspend` and so releases the pledges as any suspension does.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from app import clock
from app.accounts.models import User
from app.accounts.services import moderators_to_mail
from app.campaigns import services as campaigns
from app.campaigns.models import Campaign, CampaignState
from app.community.report_models import CampaignReport, ReportReason, ReportResolution
from app.extensions import db
from app.notifications.services import mail_batch, queue_mail

NOTE_MAX = 2000
RESOLUTION_NOTE_MAX = 5000
#: How many resolved reports the review page lists under the open ones.
HISTORY_LIMIT = 20
#: How many reported campaigns the moderation queue lists.
QUEUE_LIMIT = 100

#: The reasons a member can pick, in the order the form shows them.
REASONS: dict[str, object] = {
    ReportReason.PROHIBITED.value: _l("Prohibited item or activity"),
    ReportReason.MISLEADING.value: _l("Misleading or false claims"),
    ReportReason.INTELLECTUAL_PROPERTY.value: _l("Intellectual property infringement"),
    ReportReason.FRAUD.value: _l("Spam or fraud"),
    ReportReason.OFFENSIVE.value: _l("Offensive or hateful content"),
    ReportReason.OTHER.value: _l("Something else"),
}

RESOLUTIONS = (ReportResolution.DISMISSED.value, ReportResolution.SUSPENDED.value)


class ReportError(ValueError):
    """A refused report action, with a message fit to show; `field` names the form field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def reason_label(reason: str) -> str:
    return str(REASONS.get(reason, reason))


def resolution_label(resolution: str | None) -> str:
    return {ReportResolution.DISMISSED.value: _("dismissed"), ReportResolution.SUSPENDED.value: _("campaign suspended")}.get(
        resolution or "", resolution or "")


# --- members ---------------------------------------------------------------------------------

def refusal(campaign: Campaign, member: User) -> str | None:
    """Why `member` may not report `campaign` now (a message), or None when they may."""
    if member.id == campaign.creator_id:
        return _("You cannot report your own campaign.")
    if campaign.status != CampaignState.LIVE:
        return _("Only a live campaign can be reported; this one is %(state)s.", state=campaigns.state_name(campaign.state).lower())
    return None


def open_report(campaign: Campaign, member: User) -> CampaignReport | None:
    """The member's open report on the campaign, if any."""
    return db.session.scalar(
        select(CampaignReport).where(CampaignReport.campaign_id == campaign.id, CampaignReport.reporter_id == member.id,
                                     CampaignReport.resolved_at.is_(None))
    )


def report(campaign: Campaign, member: User, reason: str, note: str) -> tuple[CampaignReport, bool]:
    """File a report, or update the member's open one on this campaign; returns (report, created). Commits."""
    problem = refusal(campaign, member)
    if problem:
        raise ReportError(problem)
    if reason not in REASONS:
        raise ReportError(_("Choose a reason."), "reason")
    note = (note or "").strip()
    if not note:
        raise ReportError(_("Tell the moderators what is wrong."), "note")
    if len(note) > NOTE_MAX:
        raise ReportError(_("Keep the note under %(max)d characters.", max=NOTE_MAX), "note")
    now = clock.utcnow()
    for _attempt in range(2):  # two first reports racing: the loser updates the winner's row
        existing = open_report(campaign, member)
        if existing is not None:
            existing.reason, existing.note, existing.updated_at = reason, note, now
            db.session.commit()
            return existing, False
        row = CampaignReport(campaign_id=campaign.id, reporter_id=member.id, reason=reason, note=note,
                             created_at=now, updated_at=now)
        db.session.add(row)
        _tell_moderators(campaign, member, reason)
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            continue
        return row, True
    raise ReportError(_("Your report could not be saved. Try again."))


def _tell_moderators(campaign: Campaign, member: User, reason: str) -> None:
    """Mail the moderators who want it about a new report (in the caller's transaction: a report that is
    not saved mails no one). A report the member only changes is not new: no mail."""
    subject = _l("New report on “%(title)s”", title=campaign.title)
    with mail_batch():
        for moderator in moderators_to_mail(except_id=member.id):
            queue_mail(moderator, subject, "moderation_report", campaign=campaign, reason=REASONS[reason], reader=moderator)


# --- moderators ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reported:
    """A campaign with open reports, for the moderation queue."""

    campaign: Campaign
    count: int
    latest: datetime


def reported_campaigns(limit: int = QUEUE_LIMIT) -> list[Reported]:
    """Campaigns with open reports, most-reported first, then the most recently reported. One query."""
    counts = (
        select(CampaignReport.campaign_id, func.count().label("n"), func.max(CampaignReport.created_at).label("latest"))
        .where(CampaignReport.resolved_at.is_(None))
        .group_by(CampaignReport.campaign_id)
        .subquery()
    )
    rows = db.session.execute(
        select(Campaign, counts.c.n, counts.c.latest)
        .join(counts, counts.c.campaign_id == Campaign.id)
        .order_by(counts.c.n.desc(), counts.c.latest.desc(), Campaign.id)
        .limit(limit)
    ).all()
    return [Reported(campaign, int(n), latest) for campaign, n, latest in rows]


def campaign_reports(campaign: Campaign, history: int = HISTORY_LIMIT) -> tuple[list[CampaignReport], list[CampaignReport]]:
    """(open reports oldest first, the latest resolved ones newest first), people loaded. Two queries
    plus one for the people."""
    opened = list(db.session.scalars(
        select(CampaignReport).where(CampaignReport.campaign_id == campaign.id, CampaignReport.resolved_at.is_(None))
        .order_by(CampaignReport.created_at, CampaignReport.id)
        .options(selectinload(CampaignReport.reporter))
    ))
    resolved = list(db.session.scalars(
        select(CampaignReport).where(CampaignReport.campaign_id == campaign.id, CampaignReport.resolved_at.is_not(None))
        .order_by(CampaignReport.resolved_at.desc(), CampaignReport.id.desc()).limit(history)
        .options(selectinload(CampaignReport.reporter), selectinload(CampaignReport.resolved_by))
    ))
    return opened, resolved


def _close_open(campaign: Campaign, moderator: User, resolution: str, note: str) -> int:
    """Mark every open report of the campaign resolved (in the caller's transaction); how many."""
    return db.session.execute(
        update(CampaignReport)
        .where(CampaignReport.campaign_id == campaign.id, CampaignReport.resolved_at.is_(None))
        .values(resolved_at=clock.utcnow(), resolved_by_id=moderator.id, resolution=resolution, resolution_note=note)
        .execution_options(synchronize_session=False)
    ).rowcount


def dismiss(campaign: Campaign, moderator: User, note: str) -> int:
    """Close the campaign's open reports without acting on the campaign; the note is required. Commits."""
    if not moderator.is_moderator:
        raise ReportError(_("Only moderators can resolve reports."))
    note = (note or "").strip()
    if not note:
        raise ReportError(_("Write a note saying why the reports are dismissed."), "note")
    if len(note) > RESOLUTION_NOTE_MAX:
        raise ReportError(_("Keep the note under %(max)d characters.", max=RESOLUTION_NOTE_MAX), "note")
    closed = _close_open(campaign, moderator, ReportResolution.DISMISSED.value, note)
    if not closed:
        db.session.rollback()
        raise ReportError(_("This campaign has no open reports."))
    db.session.commit()
    return closed


def suspend(campaign: Campaign, moderator: User, reason: str) -> int:
    """Suspend the campaign through `campaigns.services.suspend` (audit row, pledges released) and close
    its open reports in the same transaction; returns how many were closed. Commits.

    Raises `campaigns.services.CampaignError` when the suspension is refused (nothing is closed then).
    """
    reason = (reason or "").strip()
    closed = _close_open(campaign, moderator, ReportResolution.SUSPENDED.value, reason)
    try:
        campaigns.suspend(campaign, moderator, reason)  # commits the closed reports with the transition
    except campaigns.CampaignError:
        db.session.rollback()  # a refused suspension closes nothing
        raise
    return closed


def open_count(campaign: Campaign) -> int:
    return int(db.session.scalar(
        select(func.count()).select_from(CampaignReport)
        .where(CampaignReport.campaign_id == campaign.id, CampaignReport.resolved_at.is_(None))
    ) or 0)
