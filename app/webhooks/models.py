"""StripeEvent: every webhook event we accepted, stored once by Stripe's own id."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app import clock
from app.extensions import db


class StripeEvent(db.Model):
    """One Stripe event. Its id as primary key is the guard against processing it twice: the first
    delivery inserts the row and processes it; a replay, or a concurrent delivery, finds it there."""

    __tablename__ = "stripe_events"

    #: Stripe's event id (evt_…).
    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100), nullable=False)
    #: The id of the event's object (seti_…, pi_…, ch_…), for looking an event up by hand.
    object_id: Mapped[str | None] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)
    #: When the current processing began; None when nobody is processing it. A claim older than the
    #: lease (its process died) may be taken over by a later delivery of the same event.
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: How many times processing began (1 unless a failure or a crash made a later delivery retry it).
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    #: What came of it, in a few words ("activated pledge 12", "ignored: …", "failed: …").
    outcome: Mapped[str] = mapped_column(String(255), nullable=False, default="")

    def __repr__(self) -> str:
        return f"<StripeEvent {self.id} {self.type} {self.outcome!r}>"
