"""Payout accounts, payouts (one transfer per funded campaign), holds and the ledger."""
from __future__ import annotations

import enum
import secrets
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app import clock
from app.accounts.models import User
from app.campaigns.models import Campaign
from app.extensions import db


class PayoutAccount(db.Model):
    """A creator's Stripe connected account (Express). Its state is Stripe's, copied here when read
    from Stripe after onboarding and from `account.updated` events — never from a return URL."""

    __tablename__ = "payout_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False, unique=True)
    stripe_account_id: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    country: Mapped[str] = mapped_column(String(2), nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    details_submitted: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    #: Stripe can send money to it: a campaign may launch, a payout may be made.
    payouts_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    #: What Stripe still needs from the creator (its field names, comma-separated); empty when nothing.
    requirements_due: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)
    refreshed_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)

    user: Mapped[User] = relationship()

    @property
    def due(self) -> list[str]:
        return [item for item in self.requirements_due.split(",") if item]


class PayoutState(enum.StrEnum):
    DUE = "due"  # the amount is fixed; nothing asked of Stripe yet
    SENDING = "sending"  # committed before Stripe hears of it: a pass that finds it asks Stripe first
    PAID = "paid"
    FAILED = "failed"  # Stripe refused (e.g. the platform's balance): tried again later with a new key
    NOTHING = "nothing"  # nothing to pay (fees and refunds took it all)


class Payout(db.Model):
    """The one transfer of a funded campaign's money to its creator (exactly once, SETTLEMENT.md's
    discipline: the row and its idempotency key are committed before Stripe is asked)."""

    __tablename__ = "payouts"
    __table_args__ = (Index("ix_payouts_state", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), nullable=False, unique=True)
    #: Minor units of `currency`: collected − refunded − platform fee − Stripe's fees, when it became due.
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default=PayoutState.DUE)
    #: 1, 2 … each refused try gets a new idempotency key.
    tries: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    #: Random, fixed when the row is made: keys stay the same across retries of a try, yet never
    #: repeat those of another database that reused this id (a restored backup, a test run).
    key_seed: Mapped[str] = mapped_column(String(16), nullable=False, default=lambda: secrets.token_hex(8))
    stripe_account_id: Mapped[str | None] = mapped_column(String(64))
    transfer_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    #: A pass holds this payout until then; another may take it after.
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(32))
    next_try_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(DateTime)

    campaign: Mapped[Campaign] = relationship()

    @property
    def idempotency_key(self) -> str:
        return f"payout-{self.id}-{self.key_seed}-try-{self.tries}"


class PayoutHold(db.Model):
    """A hold on a campaign's payout: by a moderator (with a note) or automatic (risk signals, the
    reason in `note`). Released when `released_at` is set; each hold and release is also an audit row
    of the campaign."""

    __tablename__ = "payout_holds"
    __table_args__ = (Index("ix_payout_holds_campaign_id", "campaign_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), nullable=False)
    #: "moderator" or "risk".
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    note: Mapped[str] = mapped_column(Text, nullable=False)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)
    released_at: Mapped[datetime | None] = mapped_column(DateTime)
    released_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    release_note: Mapped[str] = mapped_column(Text, nullable=False, default="")


class LedgerKind(enum.StrEnum):
    CHARGE = "charge"  # + money in from a backer
    FEE = "fee"  # − Stripe's processing fee of a charge
    REFUND = "refund"  # − money back to a backer
    TRANSFER = "transfer"  # − money out to the creator
    REVERSAL = "reversal"  # + money taken back from the creator (before a refund after payout)


class LedgerEntry(db.Model):
    """One money movement of a campaign, tied to its Stripe object. Amounts are positive; the kind
    says which way the money went. Written once per (kind, Stripe id)."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("kind", "stripe_id", name="uq_ledger_entries_kind_stripe_id"),
        Index("ix_ledger_entries_campaign_id", "campaign_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), nullable=False)
    pledge_id: Mapped[int | None] = mapped_column(ForeignKey("pledges.id"))
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    stripe_id: Mapped[str] = mapped_column(String(64), nullable=False)
    #: A fee Stripe did not report (the report's estimate at its list price).
    estimated: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    occurred_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)


class ReconciliationRun(db.Model):
    """One reconciliation of the ledger with Stripe: what was checked and every difference found."""

    __tablename__ = "reconciliation_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ran_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)
    #: The one campaign checked, or None for all.
    campaign_slug: Mapped[str | None] = mapped_column(String(100))
    checked: Mapped[int] = mapped_column(Integer, nullable=False)
    differences: Mapped[int] = mapped_column(Integer, nullable=False)
    details: Mapped[str] = mapped_column(Text, nullable=False, default="")
