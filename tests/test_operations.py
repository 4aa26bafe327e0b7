"""The operators' figures (issue 19): the moderators' operations page and the public stats page.

The figures are checked against data built by hand, row by row, with its dates in known weeks: two
currencies, a charge that failed and was collected on a retry, one that failed for good, a refund, a
backer of two campaigns, reports open and closed. The statements are counted: the same number with
this data and with many times more.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from itertools import count

import pytest
from sqlalchemy import select

from app import caching
from app.campaigns.models import Campaign, CampaignEvent
from app.community.report_models import CampaignReport
from app.extensions import db
from app.operations import figures
from app.pledges.models import Pledge, PledgeEvent
from app.settlement.models import ChargeAttempt
from tests.factories import login, make_user
from tests.queries import counting

#: The frozen clock's Monday (tests/conftest.py); a 4-week period starts three Mondays before.
NOW = datetime(2026, 11, 23, 12, 0)
W0, W1, W2, W3 = (datetime(2026, 11, 2) + timedelta(weeks=i) for i in range(4))
BEFORE = datetime(2026, 10, 5)
_slugs = count(1)


def _campaign(creator, state: str, currency: str, goal: int, category: str, *, ended=None, pledged=0) -> Campaign:
    n = next(_slugs)
    live = state == "live"
    campaign = Campaign(slug=f"ops-{n}", creator_id=creator.id, title=f"Ops {n}", category=category, goal=goal, currency=currency,
                        state=state, launched_at=BEFORE, deadline=BEFORE + timedelta(days=30), ended_at=ended,
                        pledged_total=pledged if live else 0, pledged_at_deadline=None if live else pledged)
    db.session.add(campaign)
    db.session.flush()
    return campaign


def _event(campaign, action: str, at: datetime) -> None:
    db.session.add(CampaignEvent(campaign_id=campaign.id, from_state="x", to_state="y", action=action, created_at=at))


def _pledge(campaign, backer, amount: int, activated, state: str = "active") -> Pledge:
    pledge = Pledge(campaign_id=campaign.id, backer_id=backer.id, amount=amount, currency=campaign.currency, state=state,
                    activated_at=activated, created_at=activated or NOW)
    db.session.add(pledge)
    db.session.flush()
    return pledge


def _attempt(pledge, attempt: int, status: str, at: datetime) -> None:
    db.session.add(ChargeAttempt(pledge_id=pledge.id, attempt=attempt, amount=pledge.amount, currency=pledge.currency,
                                 status=status, created_at=at, finished_at=at if status != "open" else None))


def build() -> dict:
    """The hand-built data (see the module's docstring); each call adds another copy, with new people."""
    creator, moderator = make_user(), make_user(moderator=True)
    a, b, c, d, e, f = (make_user() for _ in range(6))
    c1 = _campaign(creator, "successful", "USD", 500_000, "design", ended=W1 + timedelta(days=3), pledged=600_000)
    c2 = _campaign(creator, "unsuccessful", "USD", 50_000, "design", ended=W2 + timedelta(days=1), pledged=10_000)
    c3 = _campaign(creator, "successful", "EUR", 2_000_000, "games", ended=W2 + timedelta(days=2), pledged=2_500_000)
    c4 = _campaign(creator, "live", "USD", 100_000, "games", pledged=30_000)
    _campaign(creator, "canceled", "USD", 100_000, "art", ended=BEFORE, pledged=7_000)
    _campaign(creator, "suspended", "USD", 100_000, "art", ended=W1, pledged=1_000)  # counted nowhere
    # Reviews: 4 h, 2 h, 24 h, 15 days (submitted before the period) -> median 14 h.
    _event(c1, "submit", W0 + timedelta(hours=10))
    _event(c1, "approve", W0 + timedelta(hours=14))
    _event(c1, "launch", W0 + timedelta(days=1))
    _event(c1, "succeed", W1 + timedelta(days=3))
    _event(c2, "submit", W1 + timedelta(hours=8))
    _event(c2, "request_changes", W1 + timedelta(hours=10))
    _event(c2, "submit", W1 + timedelta(days=1, hours=8))
    _event(c2, "approve", W1 + timedelta(days=2, hours=8))
    _event(c2, "launch", W1 + timedelta(days=2, hours=9))
    _event(c3, "submit", W0 - timedelta(days=14))
    _event(c3, "approve", W0 + timedelta(days=1))
    # Pledges: a backs two campaigns; b's charge fails then succeeds; c (EUR) is refunded; d's fails for good.
    pa1 = _pledge(c1, a, 10_000, W0, "collected")
    _pledge(c4, a, 5_000, W2 + timedelta(days=1))
    pb = _pledge(c1, b, 20_000, W0 + timedelta(days=2), "collected")
    _pledge(c1, b, 1_000, W0 + timedelta(days=1), "canceled")  # pledged, then withdrawn: one campaign still
    pc = _pledge(c3, c, 30_000, W1 + timedelta(days=1), "refunded")
    pd = _pledge(c2, d, 2_501, W1 + timedelta(days=3), "errored")
    _pledge(c4, e, 9_000, None, "pending")  # never active: counts nowhere
    old = _pledge(c1, f, 4_000, BEFORE, "collected")  # before the period
    _attempt(pa1, 1, "succeeded", W1 + timedelta(days=3))
    _attempt(pb, 1, "failed", W1 + timedelta(days=3))
    _attempt(pb, 2, "succeeded", W1 + timedelta(days=4))
    _attempt(pc, 1, "succeeded", W2)
    _attempt(pd, 1, "failed", W2 + timedelta(days=1))
    _attempt(pd, 2, "canceled", W2 + timedelta(days=2))
    _attempt(old, 1, "succeeded", BEFORE + timedelta(days=1))
    db.session.add(PledgeEvent(pledge_id=pc.id, from_state="collected", to_state="refunded", action="refund",
                               actor_id=moderator.id, amount=30_000, created_at=W3 + timedelta(hours=9)))
    # Reports: one closed (week 0), two open (weeks 2 and 3), one before the period.
    for at, resolved in ((W0 + timedelta(hours=1), W0 + timedelta(hours=2)), (W2, None), (W3, None), (BEFORE, None)):
        db.session.add(CampaignReport(campaign_id=c4.id, reporter_id=make_user().id, reason="other", created_at=at, resolved_at=resolved,
                                      resolution="dismissed" if resolved else None))
    db.session.commit()
    return {"moderator": moderator, "member": a, "creator": creator}


def test_the_figures_match_the_data_built_by_hand(app, frozen_clock):
    build()
    got = figures.operations(4)
    assert got.period.start == W0 and got.period.week_starts == [W0, W1, W2, W3]
    eur, usd = got.money  # by currency code
    assert (usd.currency, usd.pledged, usd.pledges) == ("USD", [31_000, 2_501, 5_000, 0], [3, 1, 1, 0])
    assert usd.collected == [0, 30_000, 0, 0] and usd.collected_total == 30_000
    assert usd.average_pledge == 7_700  # 38,501 / 5, rounded
    assert (eur.currency, eur.pledged, eur.collected, eur.average_pledge) == ("EUR", [0, 30_000, 0, 0], [0, 0, 30_000, 0], 30_000)
    assert got.funnel == {"submit": [1, 2, 0, 0], "approve": [2, 1, 0, 0], "launch": [1, 1, 0, 0], "succeed": [0, 1, 0, 0]}
    overall = got.outcomes.overall
    assert (overall.ended, overall.funded, overall.rate) == (3, 2, 67)
    assert [(category, o.ended, o.funded, o.rate) for category, o in got.outcomes.by_category] == [("games", 1, 1, 100), ("design", 2, 1, 50)]
    assert [(size, o.rate) for size, o in got.outcomes.by_goal] == [(("EUR", 2), 100), (("USD", 0), 0), (("USD", 1), 100)]
    assert got.review.decisions == 4 and got.review.median == 14 * 3600
    assert got.review.weekly == [(4 * 3600 + 15 * 86400) / 2, 13 * 3600, 0, 0]
    assert got.repeat.by_campaigns == {1: 3, 2: 1, 3: 0, 4: 0, 5: 0}
    assert (got.repeat.backers, got.repeat.repeat, got.repeat.share) == (4, 1, 25)
    assert (got.charges.charged, got.charges.failed, got.charges.recovered) == ([0, 2, 2, 0], [0, 1, 1, 0], [0, 1, 0, 0])
    assert (got.charges.failure_rate, got.charges.recovery_rate) == (50, 50)
    assert [(r.currency, r.count, r.amount) for r in got.refunds] == [("EUR", [0, 0, 0, 1], [0, 0, 0, 30_000])]
    assert (got.reports.made, got.reports.still_open, got.reports.closed) == ([1, 0, 1, 1], [0, 0, 1, 1], 1)


def test_the_public_figures(app, frozen_clock):
    build()
    stats = figures.public_stats()
    assert (stats.launched, stats.live, stats.funded) == (5, 1, 2)  # the suspended one is not public
    assert stats.outcomes.overall.rate == 50  # 2 funded of 4 ended (funded, not funded, canceled)
    assert stats.pledged == {"EUR": 2_500_000, "USD": 647_000}
    assert stats.pledged_to_funded == {"EUR": 2_500_000, "USD": 600_000}
    assert [(category, o.rate) for category, o in stats.outcomes.by_category] == [("games", 100), ("design", 50), ("art", 0)]


def test_an_empty_period_has_no_rates_and_weeks_of_nothing(app, frozen_clock):
    got = figures.operations(12)
    assert got.money == [] and got.refunds == [] and got.funnel["submit"] == [0] * 12
    assert got.outcomes.overall.rate is None and got.review.median is None and got.repeat.share is None
    assert got.charges.failure_rate is None and got.reports.made == [0] * 12
    with pytest.raises(ValueError):
        figures.period(5)


def _page_statements(client) -> int:
    client.get("/moderation/operations?weeks=4")  # warm: a connection's first statements are not the page's
    with counting() as statements:
        assert client.get("/moderation/operations?weeks=4").status_code == 200
    return len(statements)


def test_the_statements_do_not_grow_with_the_data(app, client, frozen_clock):
    people = build()
    login(client, people["moderator"].email)
    with counting() as few:
        small = figures.operations(4)
    page_few = _page_statements(client)
    for _copy in range(5):
        build()
    with counting() as many:
        large = figures.operations(4)
    page_many = _page_statements(client)
    assert len(few) == len(many) == figures.STATEMENTS, (len(few), len(many))
    assert sum(large.money[1].pledged) == 6 * sum(small.money[1].pledged)  # the data did grow
    assert page_few == page_many <= figures.STATEMENTS + 3  # + the page's own reads (the member's session)


def _text(response) -> str:
    return response.get_data(as_text=True)


@pytest.mark.parametrize("accept,words", [
    ("en", ("Operations", "Pledged and collected", "Repeat backers", "Week by week")),
    ("fr", ("Opérations", "Promis et encaissé", "Contributeurs fidèles", "Semaine par semaine")),
    ("zh-CN", ("运营数据", "支持金额与已扣款金额", "回头支持者", "逐周数据")),
])
def test_the_operations_page_in_three_languages(app, client, frozen_clock, accept, words):
    people = build()
    login(client, people["moderator"].email)
    response = client.get("/moderation/operations?weeks=4", headers={"Accept-Language": accept})
    page = _text(response)
    assert response.status_code == 200
    for word in words:
        assert word in page, word
    # Every chart is an image with a name, and its values are in a table beside it.
    charts = re.findall(r'<svg class="chart[^"]*" [^>]*role="img" aria-label="([^"]+)"', page)
    assert len(charts) == 12, charts  # 2 money + 2 averages (USD, EUR), funnel, 2 rates, review, repeat, charges, refunds, reports
    assert page.count("<table") == 12
    assert "<script" not in page.split("<main", 1)[1].split("</main>", 1)[0]
    assert 'href="/moderation/operations"' in page  # in the moderators' navigation


def test_the_operations_page_shows_the_figures(app, client, frozen_clock):
    people = build()
    login(client, people["moderator"].email)
    page = _text(client.get("/moderation/operations?weeks=4", headers={"Accept-Language": "en"}))
    assert "$385.01 pledged in 5 pledges" in page and "$300.00 collected" in page
    assert "€300.00 pledged in 1 pledge" in page
    assert "$77.00 on average" in page
    assert "67% of the 3 campaigns that ended in this period were funded." in page
    assert "Median 14 hours from submission to decision, over 4 decisions." in page
    assert "1 of 4 backers backed two campaigns or more in this period (25%)." in page
    assert "Of 4 pledges charged, 2 failed first (50%); 1 of those were collected later (50%)." in page
    assert "1 refund, €300.00" in page
    assert "3 reports made in this period: 2 still open, 1 closed." in page
    assert "under $1,000" in page and "€10,000 to €100,000" in page


@pytest.mark.parametrize("weeks", ["5", "abc", "%00", "-12", "9" * 30])
def test_a_period_not_offered_is_refused_next_to_the_field(app, client, frozen_clock, weeks):
    moderator = make_user(moderator=True)
    login(client, moderator.email)
    response = client.get(f"/moderation/operations?weeks={weeks}", headers={"Accept-Language": "en"})
    page = _text(response)
    assert response.status_code == 422
    assert 'aria-invalid="true"' in page and "Choose one of the periods in the list." in page
    assert "Pledged and collected" in page  # the default period's figures are still shown


def test_only_moderators_see_the_operations_page(app, client, frozen_clock):
    people = build()
    assert client.get("/moderation/operations").status_code == 302  # to the login page
    for who in ("member", "creator"):
        other = app.test_client()
        login(other, people[who].email)
        assert other.get("/moderation/operations").status_code == 403
        assert 'href="/moderation/operations"' not in _text(other.get("/"))


@pytest.mark.parametrize("accept,words", [
    ("en", ("Threshold in figures", "Campaigns funded", "Success rate by category", "Design")),
    ("fr", ("Threshold en chiffres", "Campagnes financées", "Taux de réussite par catégorie", "Design")),
    ("zh-CN", ("Threshold 数据一览", "众筹成功的项目", "各类别成功率", "设计")),
])
def test_the_stats_page_in_three_languages(app, client, frozen_clock, accept, words):
    build()
    response = client.get("/stats", headers={"Accept-Language": accept})
    page = _text(response)
    assert response.status_code == 200
    for word in words:
        assert word in page, word
    assert len(re.findall(r'<svg class="chart[^"]*" [^>]*role="img" aria-label="[^"]+"', page)) == 1
    assert 'href="/stats"' in page  # the footer's link


def test_the_stats_page_says_only_public_facts(app, client, frozen_clock):
    people = build()
    page = _text(client.get("/stats", headers={"Accept-Language": "en"}))
    assert "$6,470" in page and "€25,000" in page and "$6,000" in page
    assert "Success rate: 50%" in page
    for name in (people["member"].display_name, people["member"].email):
        assert name not in page


def test_the_stats_page_is_cached_for_visitors_until_the_campaigns_change(app, make_app, frozen_clock):
    build()
    caching.clear()
    cached = make_app(PUBLIC_PAGE_CACHE_SECONDS=60)
    visitor = cached.test_client()
    try:
        with cached.app_context():
            first = _text(visitor.get("/stats"))
            with counting() as statements:
                again = _text(visitor.get("/stats"))
            assert again == first and len(statements) == 1  # only the campaigns' version
            campaign = db.session.scalar(db.select(Campaign).where(Campaign.state == "live"))
            campaign.state, campaign.ended_at, campaign.pledged_at_deadline = "successful", NOW, 30_000
            campaign.updated_at = NOW + timedelta(seconds=1)
            db.session.commit()
            assert "Success rate: 60%" in _text(visitor.get("/stats"))
    finally:
        caching.clear()


def test_weeks_are_cut_at_monday_midnight_utc_on_every_database(app, frozen_clock):
    """The one dialect switch (seconds_between): a row at Monday 00:00:00 is in the week it starts, one a
    microsecond before is in the week before; in JPY (no minor unit) a ¥1,000 goal is in the 1,000 bucket."""
    creator, backer = make_user(), make_user()
    yen = _campaign(creator, "successful", "JPY", 1_000, "food", ended=W3 - timedelta(microseconds=1), pledged=1_500)
    _pledge(yen, backer, 700, W1 - timedelta(microseconds=1))
    _pledge(_campaign(creator, "live", "JPY", 5_000, "food"), backer, 300, W1)
    db.session.commit()
    got = figures.operations(4)
    assert got.money[0].pledged == [700, 300, 0, 0] and got.money[0].currency == "JPY"
    assert [(size, o.ended) for size, o in got.outcomes.by_goal] == [(("JPY", 1), 1)]
    assert figures.goal_bucket_bounds("JPY", 1) == (1_000, 10_000) and figures.goal_bucket_bounds("USD", 3) == (10_000_000, None)
    # The ended campaign is in week 2 (its last microsecond), not week 3.
    assert db.session.scalar(select(figures.period(4).week(Campaign.ended_at)).where(Campaign.id == yen.id)) == 2
