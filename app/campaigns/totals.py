"""Pledged totals and backer counts of campaigns.

A live campaign's figures are two counters on its row, `pledged_total` and `backers_count`: the sum
and count of its active pledges, moved by the pledge service in the same transaction as every pledge
that becomes or stops being active (the stateful test checks they always equal the rows). Reading
them costs nothing, and sorting by them needs no aggregate over the pledges table. An ended campaign
shows the figures it had when it ended (`pledged_at_deadline`, `backers_at_deadline`).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, update

from app import clock
from app.campaigns.models import Campaign
from app.extensions import db


@dataclass(frozen=True, slots=True)
class Totals:
    pledged: int = 0
    backers: int = 0

    def percent(self, goal: int) -> int:
        """Whole percent funded (can pass 100)."""
        return (self.pledged * 100) // goal if goal > 0 else 0


ZERO = Totals()


def of(campaign: Campaign) -> Totals:
    """The figures a campaign shows: the snapshot once it ended, else its live counters."""
    if campaign.pledged_at_deadline is not None:
        return Totals(int(campaign.pledged_at_deadline), int(campaign.backers_at_deadline or 0))
    return Totals(int(campaign.pledged_total or 0), int(campaign.backers_count or 0))


def for_campaigns(campaigns: Iterable[Campaign]) -> dict[int, Totals]:
    return {c.id: of(c) for c in campaigns}


def add(campaign_id: int, amount: int, backers: int) -> None:
    """Move the live counters (inside the caller's transaction, which holds the campaign row)."""
    if amount or backers:
        db.session.execute(
            update(Campaign).where(Campaign.id == campaign_id)
            .values(pledged_total=Campaign.pledged_total + amount, backers_count=Campaign.backers_count + backers,
                    updated_at=clock.utcnow())  # public pages showing it are cached by this version
            .execution_options(synchronize_session=False)
        )


def sort_columns() -> tuple[ColumnElement, ColumnElement]:
    """(pledged, backers) to order listings by: the snapshot of ended campaigns, else the counters."""
    return (func.coalesce(Campaign.pledged_at_deadline, Campaign.pledged_total),
            func.coalesce(Campaign.backers_at_deadline, Campaign.backers_count))
