"""CampaignUpdate, Comment, FaqEntry and CampaignQuestion: what creators and backers say on a campaign;
CampaignFollow: a member saved a campaign to be reminded before its deadline."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app import clock
from app.accounts.models import User
from app.campaigns.models import Campaign
from app.extensions import db


class CampaignUpdate(db.Model):
    """A creator's news to backers: Markdown, public or for backers only, mailed to backers in batches."""

    __tablename__ = "campaign_updates"
    __table_args__ = (
        Index("ix_campaign_updates_campaign_created", "campaign_id", "created_at"),
        Index("ix_campaign_updates_fanned_out_at", "fanned_out_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    title: Mapped[str] = mapped_column(String(120), nullable=False)
    #: Markdown, rendered through app.content.markdown.
    body: Mapped[str] = mapped_column(Text, nullable=False, info={"markdown": True})
    #: Only backers (active or collected pledge), the creator and moderators read the body.
    backers_only: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    #: The creator's news about delivering the rewards: shown beside the campaign's delivery record.
    delivery_news: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=sa_false())
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)
    edited_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: The mail fan-out's cursor: every backer whose pledge id is at most this has had the mail queued.
    fanout_after_pledge_id: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    #: When the fan-out finished; None while the update still waits for (part of) its mail.
    fanned_out_at: Mapped[datetime | None] = mapped_column(DateTime)

    campaign: Mapped[Campaign] = relationship()
    author: Mapped[User] = relationship()


class Comment(db.Model):
    """A comment on a campaign, or a reply to one (one level deep: `parent_id` is always top-level)."""

    __tablename__ = "comments"
    __table_args__ = (
        # The page's two reads: a campaign's newest top-level comments, and the replies of some of them.
        Index("ix_comments_campaign_parent_id", "campaign_id", "parent_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    #: The top-level comment this replies to; None for a top-level comment.
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("comments.id", ondelete="CASCADE"))
    #: Plain text, escaped when shown.
    body: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)
    #: Deleted by its author: shown as a placeholder so that replies keep their place.
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: Hidden by a moderator, with the note the author and moderators see.
    hidden_at: Mapped[datetime | None] = mapped_column(DateTime)
    hidden_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    hidden_note: Mapped[str] = mapped_column(Text, nullable=False, default="")

    campaign: Mapped[Campaign] = relationship()
    author: Mapped[User] = relationship(foreign_keys=[author_id])


class FaqEntry(db.Model):
    """A question and its answer (Markdown) on the campaign page, in the creator's order."""

    __tablename__ = "faq_entries"
    __table_args__ = (Index("ix_faq_entries_campaign_position", "campaign_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False)
    question: Mapped[str] = mapped_column(String(300), nullable=False)
    #: Markdown.
    answer: Mapped[str] = mapped_column(Text, nullable=False, info={"markdown": True})
    #: Lower first; ties broken by id.
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)


class CampaignQuestion(db.Model):
    """A backer's question to the creator: private until the creator answers or publishes it to the FAQ."""

    __tablename__ = "campaign_questions"
    __table_args__ = (
        Index("ix_campaign_questions_campaign_created", "campaign_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False)
    asker_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    #: Plain text.
    body: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)
    #: The creator's answer (Markdown), mailed to the asker.
    answer: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: The FAQ entry made from it, when the creator published it.
    faq_entry_id: Mapped[int | None] = mapped_column(ForeignKey("faq_entries.id", ondelete="SET NULL"))

    campaign: Mapped[Campaign] = relationship()
    asker: Mapped[User] = relationship()


class CampaignFollow(db.Model):
    """A member saved a campaign ("Remind me"): it is listed on their pledges page, and they are mailed
    once, 48 hours before its deadline, unless they back it by then or turned reminders off."""

    __tablename__ = "campaign_follows"
    __table_args__ = (
        UniqueConstraint("campaign_id", "user_id", name="uq_campaign_follows_campaign_user"),
        Index("ix_campaign_follows_user_created", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)
    #: When the deadline reminder was queued; None until then (it is sent once).
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime)

    campaign: Mapped[Campaign] = relationship()
    user: Mapped[User] = relationship()
