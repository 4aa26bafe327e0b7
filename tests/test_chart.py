"""The creator's pledges-over-time chart."""
from __future__ import annotations

from datetime import timedelta

from app import clock
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
