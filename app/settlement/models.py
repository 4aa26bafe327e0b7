"""ChargeAttempt: one try at collecting a pledge, recorded before Stripe is asked to move money."""
from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app import clock
from app.extensions import db
from app.pledges.models import Pledge


class AttemptStatus(enum.StrEnum):
    OPEN = "open"  # recorded; its PaymentIntent may not exist yet, or not be confirmed yet
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # declined or authentication required; a later attempt gets a new row
    CANCELED = "canceled"  # made harmless before a new attempt (it can never collect now)


class ChargeAttempt(db.Model):
    """The database is the guard against double charges (SETTLEMENT.md): only a PaymentIntent whose
    id is committed here is ever confirmed, and at most one attempt per pledge is open at a time."""

    __tablename__ = "charge_attempts"
    __table_args__ = (
        UniqueConstraint("pledge_id", "attempt", name="uq_charge_attempts_pledge_attempt"),
        Index("ix_charge_attempts_pledge_id", "pledge_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pledge_id: Mapped[int] = mapped_column(ForeignKey("pledges.id"), nullable=False)
    #: 1, 2, 3 … per pledge; part of the idempotency key sent to Stripe.
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    payment_intent_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    #: Random, made with the row: part of the idempotency key and of the PaymentIntent's metadata, so that no
    #: other attempt anywhere sends the same key (None on rows made before it existed: their creation time is used).
    token: Mapped[str | None] = mapped_column(String(32), default=lambda: uuid.uuid4().hex)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=AttemptStatus.OPEN)
    decline_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    #: Stripe's processing fee in minor units, when Stripe reports it in the charge's currency.
    fee_amount: Mapped[int | None] = mapped_column(BigInteger)
    charge_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)

    pledge: Mapped[Pledge] = relationship()
