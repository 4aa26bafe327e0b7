"""CampaignReport: a member tells the moderators that a live campaign breaks the rules."""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app import clock
from app.accounts.models import User
from app.campaigns.models import Campaign
from app.extensions import db


class ReportReason(enum.StrEnum):
    PROHIBITED = "prohibited"
    MISLEADING = "misleading"
    INTELLECTUAL_PROPERTY = "intellectual_property"
    FRAUD = "fraud"
    OFFENSIVE = "offensive"
    OTHER = "other"


class ReportResolution(enum.StrEnum):
    DISMISSED = "dismissed"
    SUSPENDED = "suspended"


class CampaignReport(db.Model):
    """One member's report on one campaign. Open until a moderator resolves every open report of the
    campaign at once (dismissed, or the campaign suspended); at most one open report per member and
    campaign, which the database guards with a partial unique index."""

    __tablename__ = "campaign_reports"
    __table_args__ = (
        Index(
            "uq_campaign_reports_open", "campaign_id", "reporter_id", unique=True,
            postgresql_where="resolved_at IS NULL", sqlite_where="resolved_at IS NULL",
        ),
        Index("ix_campaign_reports_campaign_resolved", "campaign_id", "resolved_at"),
        Index("ix_campaign_reports_open", "resolved_at", "campaign_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False)
    reporter_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    #: One of ReportReason.
    reason: Mapped[str] = mapped_column(String(32), nullable=False)
    #: The reporter's words: plain text, escaped wherever it is shown.
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)
    #: Moved when the reporter changes their open report.
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: One of ReportResolution, once resolved.
    resolution: Mapped[str | None] = mapped_column(String(16))
    #: The moderator's note (dismissal) or reason (suspension); for moderators, not told the reporter.
    resolution_note: Mapped[str] = mapped_column(Text, nullable=False, default="")

    campaign: Mapped[Campaign] = relationship()
    reporter: Mapped[User] = relationship(foreign_keys=[reporter_id])
    resolved_by: Mapped[User | None] = relationship(foreign_keys=[resolved_by_id])

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None
