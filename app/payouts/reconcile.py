"""Reconciliation (SPEC §13): our ledger against Stripe's own record, campaign by campaign.

Every charge, refund, transfer and reversal Stripe has for a campaign must be in the ledger with the
same amount, and every ledger row must be at Stripe. Differences are listed, never corrected here:
someone must look (`flask --app wsgi reconcile`, daily in the worker; moderators see the last run).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from app import clock
from app.accounts.models import User
from app.campaigns.models import Campaign, CampaignState
from app.extensions import db
from app.payments import gateway
from app.payouts import services
from app.payouts.models import LedgerEntry, LedgerKind, Payout, ReconciliationRun
from app.pledges.models import Pledge

K = LedgerKind


@dataclass(frozen=True)
class Difference:
    campaign: str
    kind: str
    stripe_id: str
    ours: int | None
    stripe: int | None

    def __str__(self) -> str:
        if self.ours is None:
            return f"{self.campaign}: {self.kind} {self.stripe_id} of {self.stripe} at Stripe is not in our ledger"
        if self.stripe is None:
            return f"{self.campaign}: {self.kind} {self.stripe_id} of {self.ours} in our ledger is not at Stripe"
        return f"{self.campaign}: {self.kind} {self.stripe_id} is {self.ours} in our ledger but {self.stripe} at Stripe"


def _stripe_side(campaign: Campaign) -> dict[tuple[str, str], int]:
    """(kind, Stripe id) -> amount, as Stripe has them for this campaign."""
    pledge_ids = {str(pid) for pid in db.session.scalars(select(Pledge.id).where(Pledge.campaign_id == campaign.id))}
    customers = db.session.scalars(
        select(User.stripe_customer_id).join(Pledge, Pledge.backer_id == User.id)
        .where(Pledge.campaign_id == campaign.id, User.stripe_customer_id.is_not(None)).distinct()
    ).all()
    found: dict[tuple[str, str], int] = {}
    for customer in customers:
        for charge in gateway.find_charges(customer):
            if (charge.metadata or {}).get("pledge") not in pledge_ids or not charge.succeeded:
                continue
            found[(K.CHARGE.value, charge.id)] = charge.amount
            for refund in gateway.read_refunds(charge.id):
                if refund.counts:
                    found[(K.REFUND.value, refund.id)] = refund.amount
    payout = db.session.scalar(select(Payout).where(Payout.campaign_id == campaign.id))
    if payout is not None:
        for transfer in gateway.find_transfers(services.transfer_group(payout)):
            found[(K.TRANSFER.value, transfer.id)] = transfer.amount
            if transfer.amount_reversed:
                found[(K.REVERSAL.value, transfer.id)] = transfer.amount_reversed
    return found


def _our_side(campaign: Campaign) -> dict[tuple[str, str], int]:
    rows = db.session.execute(select(LedgerEntry.kind, LedgerEntry.stripe_id, LedgerEntry.amount, LedgerEntry.pledge_id)
                              .where(LedgerEntry.campaign_id == campaign.id, LedgerEntry.kind != K.FEE.value)).all()
    ours: dict[tuple[str, str], int] = {}
    transfer = next((stripe_id for kind, stripe_id, _a, _p in rows if kind == K.TRANSFER.value), None)
    for kind, stripe_id, amount, _pledge in rows:
        if kind == K.REVERSAL.value:  # Stripe reports what was reversed per transfer, in all
            key = (kind, transfer or stripe_id)
            ours[key] = ours.get(key, 0) + amount
        else:
            ours[(kind, stripe_id)] = amount
    return ours


def check(campaign: Campaign) -> list[Difference]:
    """The differences between the campaign's ledger and Stripe (the ledger is brought up to date
    with what settlement recorded first)."""
    services.refresh_ledger(campaign)
    ours, theirs = _our_side(campaign), _stripe_side(campaign)
    return [Difference(campaign.slug, kind, stripe_id, ours.get((kind, stripe_id)), theirs.get((kind, stripe_id)))
            for kind, stripe_id in sorted(ours.keys() | theirs.keys())
            if ours.get((kind, stripe_id)) != theirs.get((kind, stripe_id))]


def run(slug: str | None = None) -> tuple[int, list[Difference]]:
    """Check one campaign (by slug) or every campaign that moved money; record the run. Commits.
    Returns how many campaigns were checked, and the differences."""
    query = select(Campaign).where(Campaign.state.in_([CampaignState.SUCCESSFUL.value, CampaignState.UNSUCCESSFUL.value]))
    if slug:
        query = select(Campaign).where(Campaign.slug == slug)
    checked = list(db.session.scalars(query.order_by(Campaign.id)))
    differences = [difference for campaign in checked for difference in check(campaign)]
    db.session.add(ReconciliationRun(ran_at=clock.utcnow(), campaign_slug=slug, checked=len(checked),
                                     differences=len(differences), details="\n".join(map(str, differences))))
    db.session.commit()
    return len(checked), differences


def last_run() -> ReconciliationRun | None:
    return db.session.scalar(select(ReconciliationRun).order_by(ReconciliationRun.id.desc()).limit(1))
