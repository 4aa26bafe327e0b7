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
    """Totals of several campaigns in one statement."""
    ids = list(ids)
    sub = subquery()
    if sub is None or not ids:
        return {}
    rows = db.session.execute(select(sub.c.campaign_id, sub.c.pledged, sub.c.backers).where(sub.c.campaign_id.in_(ids)))
    return {row.campaign_id: Totals(int(row.pledged or 0), int(row.backers or 0)) for row in rows}


def for_campaign(campaign_id: int) -> Totals:
    return for_campaigns([campaign_id]).get(campaign_id, ZERO)


def sort_columns(sub) -> tuple[ColumnElement, ColumnElement]:
    """(pledged, backers) columns to order by, zero where a campaign has no pledges."""
    if sub is None:
        return literal(0), literal(0)
    from sqlalchemy import func

    return func.coalesce(sub.c.pledged, 0), func.coalesce(sub.c.backers, 0)
