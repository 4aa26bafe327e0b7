"""Shipping addresses: one per pledge that ships, kept apart from the pledge so that who may read it
and when it is erased are decided in one place (`app.fulfillment.addresses`); and the backer survey
(issue 17): one per successful campaign, its questions, each collected pledge's request and answers
(`app.fulfillment.surveys`)."""
from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Column, Date, DateTime, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app import clock
from app.campaigns.models import Addon, Campaign, Tier
from app.extensions import db
from app.pledges.models import Pledge

#: The longest value any address field keeps (a form refuses longer ones).
FIELD_MAX = 200


class ErasureReason(enum.StrEnum):
    DELIVERED = "delivered"  # ADDRESS_RETENTION_DAYS after delivery
    REQUEST = "request"  # the backer asked
    ACCOUNT = "account"  # the backer's account was deleted


class ShippingAddress(db.Model):
    """Where a collected pledge's reward goes. The personal fields are blanked when erased; the row
    stays, so that the pages can say when (and why) it was erased."""

    __tablename__ = "shipping_addresses"
    __table_args__ = (Index("ix_shipping_addresses_delivered_at", "delivered_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pledge_id: Mapped[int] = mapped_column(ForeignKey("pledges.id", ondelete="CASCADE"), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(FIELD_MAX), nullable=False, default="")
    line1: Mapped[str] = mapped_column(String(FIELD_MAX), nullable=False, default="")
    line2: Mapped[str] = mapped_column(String(FIELD_MAX), nullable=False, default="")
    city: Mapped[str] = mapped_column(String(FIELD_MAX), nullable=False, default="")
    #: State, province, prefecture … as the country's postal data names it ('' where none is used).
    region: Mapped[str] = mapped_column(String(FIELD_MAX), nullable=False, default="")
    postal_code: Mapped[str] = mapped_column(String(FIELD_MAX), nullable=False, default="")
    #: ISO 3166-1 alpha-2: always the pledge's `country`, the destination paid for. Kept on erasure.
    country: Mapped[str] = mapped_column(String(2), nullable=False)
    #: E.164 ("+33612345678"), or '' when none was given.
    phone: Mapped[str] = mapped_column(String(32), nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)
    #: When the items reached the backer (set by fulfillment); erasure counts ADDRESS_RETENTION_DAYS from here.
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: When the personal fields were blanked, and why (an ErasureReason).
    erased_at: Mapped[datetime | None] = mapped_column(DateTime)
    erased_reason: Mapped[str | None] = mapped_column(String(16))

    pledge: Mapped[Pledge] = relationship()

    @property
    def erased(self) -> bool:
        return self.erased_at is not None

    def __repr__(self) -> str:
        return f"<ShippingAddress {self.id} pledge={self.pledge_id} {self.country}>"


# --- the backer survey --------------------------------------------------------------------------

class SurveyState(enum.StrEnum):
    DRAFT = "draft"  # the creator writes the questions
    SENT = "sent"  # backers answer (and may change their answers)
    LOCKED = "locked"  # answers are final: the creator ships


class QuestionKind(enum.StrEnum):
    TEXT = "text"  # free text
    CHOICE = "choice"  # one of the options
    CHOICES = "choices"  # any number of the options (at least one when required)


#: The limits of a question and of an answer (the services refuse anything beyond them).
PROMPT_MAX = 300
OPTION_MAX = 100
OPTIONS_MIN, OPTIONS_MAX = 2, 20
ANSWER_MAX = 2000


class Survey(db.Model):
    """The one survey of a successful campaign."""

    __tablename__ = "surveys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False, unique=True)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default=SurveyState.DRAFT)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    locked_at: Mapped[datetime | None] = mapped_column(DateTime)

    campaign: Mapped[Campaign] = relationship()
    questions: Mapped[list[SurveyQuestion]] = relationship(
        order_by="(SurveyQuestion.position, SurveyQuestion.id)", cascade="all, delete-orphan", back_populates="survey")

    def __repr__(self) -> str:
        return f"<Survey {self.id} campaign={self.campaign_id} {self.state}>"


# Whom a question is for: link tables (not a JSON list) so that the database keeps them true — a
# link to a tier or add-on of the campaign, gone with it — and "questions for this tier" is a join.
# No link at all means every backer.
survey_question_tiers = Table(
    "survey_question_tiers",
    db.metadata,
    Column("question_id", ForeignKey("survey_questions.id", ondelete="CASCADE"), primary_key=True),
    Column("tier_id", ForeignKey("tiers.id", ondelete="CASCADE"), primary_key=True),
)
survey_question_addons = Table(
    "survey_question_addons",
    db.metadata,
    Column("question_id", ForeignKey("survey_questions.id", ondelete="CASCADE"), primary_key=True),
    Column("addon_id", ForeignKey("addons.id", ondelete="CASCADE"), primary_key=True),
)


class SurveyQuestion(db.Model):
    """One question: free text or options, for every backer or only for chosen tiers and/or add-ons."""

    __tablename__ = "survey_questions"
    __table_args__ = (Index("ix_survey_questions_survey_id", "survey_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"), nullable=False)
    #: Its place in the survey, from 0.
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    kind: Mapped[str] = mapped_column(String(16), nullable=False, default=QuestionKind.TEXT)
    prompt: Mapped[str] = mapped_column(String(PROMPT_MAX), nullable=False)
    #: The options of a choice question, in order ([] for a text question).
    options: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    required: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)

    survey: Mapped[Survey] = relationship(back_populates="questions")
    tiers: Mapped[list[Tier]] = relationship(secondary=survey_question_tiers, order_by="Tier.id")
    addons: Mapped[list[Addon]] = relationship(secondary=survey_question_addons, order_by="Addon.id")

    @property
    def for_everyone(self) -> bool:
        return not self.tiers and not self.addons

    def __repr__(self) -> str:
        return f"<SurveyQuestion {self.id} {self.kind} survey={self.survey_id}>"


class SurveyRequest(db.Model):
    """The survey sent to one collected pledge: when, when answered, when last reminded."""

    __tablename__ = "survey_requests"
    __table_args__ = (Index("ix_survey_requests_due", "answered_at", "last_reminded_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"), nullable=False)
    pledge_id: Mapped[int] = mapped_column(ForeignKey("pledges.id", ondelete="CASCADE"), nullable=False, unique=True)
    sent_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: The last reminder (None: none yet; the next is due a week after `sent_at`).
    last_reminded_at: Mapped[datetime | None] = mapped_column(DateTime)

    survey: Mapped[Survey] = relationship()
    pledge: Mapped[Pledge] = relationship()

    def __repr__(self) -> str:
        return f"<SurveyRequest {self.id} pledge={self.pledge_id}>"


class SurveyAnswer(db.Model):
    """A pledge's answer to one question: `text` for a text question, `choices` (the options chosen,
    one for a `choice` question) otherwise."""

    __tablename__ = "survey_answers"
    __table_args__ = (UniqueConstraint("pledge_id", "question_id"), Index("ix_survey_answers_question_id", "question_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pledge_id: Mapped[int] = mapped_column(ForeignKey("pledges.id", ondelete="CASCADE"), nullable=False)
    question_id: Mapped[int] = mapped_column(ForeignKey("survey_questions.id", ondelete="CASCADE"), nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False, default="")
    choices: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)

    question: Mapped[SurveyQuestion] = relationship()

    @property
    def value(self) -> str | list[str]:
        return self.choices if self.question.kind == QuestionKind.CHOICES else (
            self.choices[0] if self.choices else self.text)


# --- fulfillment: what was shipped, and whether it arrived ----------------------------------------

class ItemState(enum.StrEnum):
    NOT_STARTED = "not_started"
    SHIPPED = "shipped"  # carrier, tracking, date
    DELIVERED = "delivered"  # marked by the backer, or automatically DELIVERED_AFTER_DAYS after shipping
    PROBLEM = "problem"  # the backer reported one (lost, damaged, wrong item): a thread with the creator


class ProblemKind(enum.StrEnum):
    LOST = "lost"
    DAMAGED = "damaged"
    WRONG_ITEM = "wrong_item"


IS = ItemState

#: The one table of allowed moves of a pledge item: (from, action) -> to. Shipping again corrects the
#: tracking, or sends a replacement after a problem; the creator may close a problem as delivered.
ITEM_TRANSITIONS: dict[tuple[ItemState, str], ItemState] = {
    (IS.NOT_STARTED, "ship"): IS.SHIPPED,
    (IS.SHIPPED, "ship"): IS.SHIPPED,
    (IS.SHIPPED, "deliver"): IS.DELIVERED,
    (IS.SHIPPED, "report"): IS.PROBLEM,
    (IS.DELIVERED, "report"): IS.PROBLEM,
    (IS.PROBLEM, "ship"): IS.SHIPPED,
    (IS.PROBLEM, "deliver"): IS.DELIVERED,
}

#: The item of a pledge that is its reward (the add-ons' items are "addon-<id>").
REWARD_ITEM = "reward"
ITEM_KEY_MAX = 32
CARRIER_MAX = 100
TRACKING_MAX = 500
PROBLEM_MAX = 2000


class FulfillmentItem(db.Model):
    """One thing a collected pledge is owed: its reward, or one add-on line (all its units), and how far
    it has come. Counted by state for the creator's fulfillment page and the campaign's delivery record."""

    __tablename__ = "fulfillment_items"
    __table_args__ = (
        UniqueConstraint("pledge_id", "item"),
        Index("ix_fulfillment_items_campaign_state", "campaign_id", "state"),
        Index("ix_fulfillment_items_shipped", "state", "shipped_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pledge_id: Mapped[int] = mapped_column(ForeignKey("pledges.id", ondelete="CASCADE"), nullable=False)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False)
    #: REWARD_ITEM or "addon-<addon id>": the name the routes and the CSV use.
    item: Mapped[str] = mapped_column(String(ITEM_KEY_MAX), nullable=False)
    tier_id: Mapped[int | None] = mapped_column(ForeignKey("tiers.id"))
    addon_id: Mapped[int | None] = mapped_column(ForeignKey("addons.id"))
    quantity: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default=ItemState.NOT_STARTED)
    carrier: Mapped[str] = mapped_column(String(CARRIER_MAX), nullable=False, default="")
    #: A tracking number, or a link (https only) to the carrier's tracking page.
    tracking: Mapped[str] = mapped_column(String(TRACKING_MAX), nullable=False, default="")
    #: The day it left (the creator's word), and when we recorded it (for the automatic delivery).
    shipped_on: Mapped[date | None] = mapped_column(Date)
    shipped_at: Mapped[datetime | None] = mapped_column(DateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: "backer", "creator" or "auto" (DELIVERED_AFTER_DAYS after shipping).
    delivered_by: Mapped[str | None] = mapped_column(String(16))
    problem: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)

    pledge: Mapped[Pledge] = relationship()
    tier: Mapped[Tier | None] = relationship()
    addon: Mapped[Addon | None] = relationship()

    def __repr__(self) -> str:
        return f"<FulfillmentItem {self.id} pledge={self.pledge_id} {self.item} {self.state}>"


class FulfillmentEvent(db.Model):
    """The audit row of every move of an item (who, from, to, when)."""

    __tablename__ = "fulfillment_events"
    __table_args__ = (Index("ix_fulfillment_events_item_id", "item_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("fulfillment_items.id", ondelete="CASCADE"), nullable=False)
    from_state: Mapped[str] = mapped_column(String(16), nullable=False)
    to_state: Mapped[str] = mapped_column(String(16), nullable=False)
    action: Mapped[str] = mapped_column(String(16), nullable=False)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)


class ProblemMessage(db.Model):
    """One message of the thread about an item's problem, between its backer and the campaign's creator
    (moderators read it)."""

    __tablename__ = "problem_messages"
    __table_args__ = (Index("ix_problem_messages_item_id", "item_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("fulfillment_items.id", ondelete="CASCADE"), nullable=False)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)
