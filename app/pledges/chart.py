"""The creator's pledges-over-time chart: a small server-rendered SVG (no script, no library)."""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import Flask
from flask_babel import format_date
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy import DateTime, func, literal, select, union_all

from app import caching, clock, money
from app.campaigns.models import Campaign
from app.charts import AXIS, COLORS, PAD_B, PAD_L, PAD_R, PAD_T, H, W, svg, text
from app.extensions import db
from app.pledges.models import Pledge, PledgeState
from app.sqltime import seconds_between

#: Hours are counted from here (any fixed instant does: only whole hours matter).
_EPOCH = datetime(2000, 1, 1)


def _hour(column):
    """The hour `column` falls in, as whole hours since _EPOCH (the same SQL on SQLite and PostgreSQL)."""
    return seconds_between(column, literal(_EPOCH, DateTime)) // 3600


def _rows(campaign_ids: list[int]) -> dict[int, list[tuple[datetime, int]]]:
    """The changes of each campaign's pledged total, summed per hour: activations add, cancellations
    take away (released, charged or dropped pledges count to the end). One statement for several
    campaigns, and as many rows as hours with a change, not one per pledge (a campaign with 100,000
    backers draws the same sixty points)."""
    rows: dict[int, list[tuple[datetime, int]]] = {cid: [] for cid in campaign_ids}
    if campaign_ids:
        counted = (Pledge.campaign_id.in_(campaign_ids), Pledge.activated_at.is_not(None))
        started, stopped = _hour(Pledge.activated_at), _hour(Pledge.ended_at)
        changes = union_all(
            select(Pledge.campaign_id, started.label("at"), func.sum(Pledge.amount).label("change"))
            .where(*counted).group_by(Pledge.campaign_id, started),
            select(Pledge.campaign_id, stopped.label("at"), -func.sum(Pledge.amount))
            .where(*counted, Pledge.state == PledgeState.CANCELED.value, Pledge.ended_at.is_not(None))
            .group_by(Pledge.campaign_id, stopped),
        )
        for cid, at, change in db.session.execute(changes):
            rows[cid].append((_EPOCH + timedelta(hours=int(at)), int(change)))
    return rows


def series(campaign: Campaign, rows: list | None = None, now: datetime | None = None) -> list[tuple[datetime, int]]:
    """Pledged total through time, from launch to the deadline (or now): a pledge counts from the
    hour of its activation until the hour it was canceled (released, charged or dropped ones count to
    the end)."""
    if campaign.launched_at is None:
        return []
    now = now or clock.utcnow()
    end = min(now, campaign.deadline or now)
    if rows is None:
        rows = _rows([campaign.id])[campaign.id]
    changes = sorted(rows)
    # About sixty points whatever the length, at least an hour apart.
    step = max((end - campaign.launched_at) / 60, timedelta(hours=1))
    points, total, i, at = [], 0, 0, campaign.launched_at
    while True:
        at = min(at, end)
        while i < len(changes) and changes[i][0] <= at:
            total += changes[i][1]
            i += 1
        points.append((at, total))
        if at >= end:
            break
        at += step
    return points


def chart_svg(campaign: Campaign, rows: list | None = None, now: datetime | None = None) -> Markup:
    """An SVG line of the pledged total against the goal line, labelled for screen readers."""
    points = series(campaign, rows, now)
    if len(points) < 2:
        return Markup("")
    top = max(campaign.goal, max(total for _at, total in points)) * 1.1 or 1
    start, stop = points[0][0], points[-1][0]
    span = max((stop - start).total_seconds(), 1)

    def xy(at: datetime, total: int) -> tuple[float, float]:
        x = PAD_L + (W - PAD_L - PAD_R) * (at - start).total_seconds() / span
        y = PAD_T + (H - PAD_T - PAD_B) * (1 - total / top)
        return round(x, 1), round(y, 1)

    line = " ".join(f"{x},{y}" for x, y in (xy(at, total) for at, total in points))
    area = f"{PAD_L},{H - PAD_B} {line} {xy(*points[-1])[0]},{H - PAD_B}"
    goal_y = xy(start, campaign.goal)[1]
    locale_money = lambda amount: money.format_money(amount, campaign.currency, whole=True)  # noqa: E731
    label = _("Pledged over time: %(total)s of a %(goal)s goal", total=locale_money(points[-1][1]), goal=locale_money(campaign.goal))
    parts = [
        f'<line x1="{PAD_L}" y1="{H - PAD_B}" x2="{W - PAD_R}" y2="{H - PAD_B}" stroke="{AXIS}"/>',
        f'<line x1="{PAD_L}" y1="{goal_y}" x2="{W - PAD_R}" y2="{goal_y}" stroke="#dc3545" stroke-dasharray="6 4"/>',
        text(PAD_L - 6, goal_y + 4, locale_money(campaign.goal), anchor="end", fill="#dc3545"),
        f'<polygon points="{area}" fill="{COLORS[0]}" fill-opacity="0.12"/>',
        f'<polyline points="{line}" fill="none" stroke="{COLORS[0]}" stroke-width="2.5" stroke-linejoin="round"/>',
        text(PAD_L, H - 8, format_date(start, "medium")),
        text(W - PAD_R, H - 8, format_date(stop, "medium"), anchor="end"),
        text(PAD_L - 6, H - PAD_B, "0", anchor="end"),
    ]
    return svg(label, parts, css_class="pledge-chart")


def charts(campaigns: list[Campaign]) -> dict[int, Markup]:
    """The charts of several launched campaigns (the creator's dashboard). Each is drawn once per
    everything it is drawn from (`caching.cached`): the campaign's live counters and `updated_at` stand
    for its pledges' rows, since every change those show (an activation, a cancellation, an amount
    edited) moves the counters, and `updated_at` with them, in its own transaction (campaigns/totals.py);
    then goal, currency, launch, deadline, the minute it ends at, language and zone. The rows are read
    (one statement for all the campaigns) only when a chart is not in the cache."""
    launched = [c for c in campaigns if c.launched_at is not None]
    now = clock.utcnow()
    minute = now.replace(second=0, microsecond=0)  # a live chart is drawn again each minute, not each request
    read: dict[int, list[tuple[datetime, int]]] = {}

    def draw(campaign: Campaign) -> Markup:
        if not read:
            read.update(_rows([c.id for c in launched]))
        # Drawn up to `now`, not to the minute: a campaign launched (and even ended) within this minute
        # would otherwise end before it began and have no chart.
        return chart_svg(campaign, read[campaign.id], now)

    return {c.id: caching.cached("pledges-chart", c.id, c.updated_at, c.pledged_total, c.backers_count, c.goal, c.currency, c.launched_at, c.deadline, minute,
                                 make=lambda c=c: draw(c)) for c in launched}


def init_app(app: Flask) -> None:
    """Offer the charts to the campaign templates (campaigns sit below pledges and cannot import it)."""
    app.add_template_global(charts, "pledges_charts")
