"""Shipping addresses: one per pledge that ships, kept apart from the pledge so that who may read it
and when it is erased are decided in one place (`app.fulfillment.addresses`)."""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app import clock
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
