"""The creator's pledges-over-time chart."""
from __future__ import annotations

import re
from datetime import timedelta

from app import charts, clock
from app.extensions import db
from app.pledges import chart
from app.pledges.models import Pledge
from tests.factories import make_campaign, make_user


def test_series_follows_activations_and_cancellations(app, frozen_clock):
    campaign = make_campaign(make_user(), "live", goal=10000)
    start = campaign.launched_at
    backers = [make_user() for _ in range(3)]
    rows = [
        Pledge(campaign_id=campaign.id, backer_id=backers[0].id, amount=3000, currency="USD", state="active", activated_at=start + timedelta(hours=5)),
        Pledge(campaign_id=campaign.id, backer_id=backers[1].id, amount=2000, currency="USD", state="canceled",
               activated_at=start + timedelta(days=1), ended_at=start + timedelta(days=2)),
        Pledge(campaign_id=campaign.id, backer_id=backers[2].id, amount=500, currency="USD", state="pending"),
    ]
    db.session.add_all(rows)
    db.session.commit()
    clock.advance(timedelta(days=3))
    points = chart.series(campaign)
    assert points[0] == (start, 0)
    assert points[-1] == (clock.utcnow(), 3000)
    assert max(total for _at, total in points) == 5000  # both active between day 1 and day 2
    assert all(b >= a for (a, _), (b, _) in zip(points, points[1:], strict=False))
    svg = chart.charts([campaign])[campaign.id]
    assert svg.startswith("<svg") and "<polyline" in svg and "$100" in svg and 'role="img"' in svg


def test_no_chart_before_launch(app):
    draft = make_campaign(make_user(), "draft")
    assert chart.charts([draft]) == {}
    assert chart.chart_svg(draft) == ""


def test_line_and_bar_charts_are_named_images_with_escaped_text():
    line = charts.line_chart("Two <lines>", ["Mon 1", "Mon 8", "Mon 15"], [("A & B", [0, 5, 10]), ("C", [10, 0, 0])], str)
    assert line.startswith('<svg class="chart" ') and 'role="img" aria-label="Two &lt;lines&gt;"' in line
    assert "<title>Two &lt;lines&gt;</title>" in line and line.count("<polyline") == 2 and "A &amp; B" in line
    assert 'points="96.0,192.0 360.0,113.0 624.0,34.0"' in line  # 0 on the axis, 10 the top (under the legend)
    bars = charts.bar_chart("Rates", [("Art", 50, "50%"), ("Games", 100, "100%")], top=100, desc="Half and all")
    assert "<desc>Half and all</desc>" in bars and bars.count("<rect") == 2
    widths = [float(w) for w in re.findall(r'<rect [^>]*width="([\d.]+)"', bars)]
    assert widths[1] == 2 * widths[0] > 0
    assert charts.line_chart("One point", ["Mon 1"], [("A", [1])], str) == "" and charts.bar_chart("None", []) == ""


def test_a_campaign_launched_within_this_minute_has_its_chart(app, frozen_clock):
    """The dashboard's charts are drawn again each minute; one launched (even ended) within the current
    minute is still drawn up to now, not up to the minute's start, before its launch (a browser journey
    that launched, pledged and ended a campaign within one minute found no chart)."""
    clock.advance(timedelta(seconds=10))
    campaign = make_campaign(make_user(), "live", goal=10000)
    clock.advance(timedelta(seconds=30))
    assert campaign.launched_at.second == 10
    assert "<svg" in chart.charts([campaign])[campaign.id]
