"""Pledged totals and backer counts, read from the pledges table.

`campaigns` sits below `pledges`, so it cannot import the pledge model. The pledges area registers
a provider here at start: a function returning a selectable with the columns `campaign_id`,
`pledged` and `backers` (active pledges only). Until one is registered, every total is zero.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, literal, select

from app.extensions import db

_provider: Callable[[], Select] | None = None


@dataclass(frozen=True, slots=True)
class Totals:
    pledged: int = 0
    backers: int = 0

    def percent(self, goal: int) -> int:
        """Whole percent funded (can pass 100)."""
        return (self.pledged * 100) // goal if goal > 0 else 0


ZERO = Totals()


def set_provider(provider: Callable[[], Select] | None) -> None:
    """Register the pledges area's totals query (None clears it)."""
    global _provider
    _provider = provider


def subquery():
    """The totals as a subquery (campaign_id, pledged, backers), or None without a provider."""
    return _provider().subquery("totals") if _provider else None


def for_campaigns(ids: Iterable[int]) -> dict[int, Totals]:
    """Totals of several campaigns in one statement: live sums for running campaigns, the snapshot
    taken when it ended for an ended one (its pledges have moved on from `active`)."""
    from app.campaigns.models import Campaign

    ids = list(ids)
    if not ids:
        return {}
    sub = subquery()
    if sub is None:
        query = select(Campaign.id, Campaign.pledged_at_deadline, Campaign.backers_at_deadline, literal(0).label("pledged"), literal(0).label("backers"))
    else:
        query = select(Campaign.id, Campaign.pledged_at_deadline, Campaign.backers_at_deadline, sub.c.pledged, sub.c.backers).outerjoin(
            sub, sub.c.campaign_id == Campaign.id
        )
    result = {}
    for row in db.session.execute(query.where(Campaign.id.in_(ids))):
        if row.pledged_at_deadline is not None:
            result[row.id] = Totals(int(row.pledged_at_deadline), int(row.backers_at_deadline or 0))
        else:
            result[row.id] = Totals(int(row.pledged or 0), int(row.backers or 0))
    return result


def for_campaign(campaign_id: int) -> Totals:
    return for_campaigns([campaign_id]).get(campaign_id, ZERO)


def sort_columns(sub) -> tuple[ColumnElement, ColumnElement]:
    """(pledged, backers) columns to order by: the snapshot of ended campaigns, else the live sums."""
    from sqlalchemy import func

    from app.campaigns.models import Campaign

    if sub is None:
        return func.coalesce(Campaign.pledged_at_deadline, 0), func.coalesce(Campaign.backers_at_deadline, 0)
    return (
        func.coalesce(Campaign.pledged_at_deadline, sub.c.pledged, 0),
        func.coalesce(Campaign.backers_at_deadline, sub.c.backers, 0),
    )
