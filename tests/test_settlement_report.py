"""The creator's money report and backer CSV, against a campaign settled through localstripe."""
from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app import clock
from app.campaigns.models import Campaign
from app.extensions import db
from app.pledges.models import Pledge
from app.settlement import refunds, report
from app.settlement import services as settlement
from app.settlement.models import ChargeAttempt
from tests.factories import login, make_campaign, make_user
from tests.localstripe_fixture import CARD_AUTHENTICATE, CARD_DECLINE_ON_CHARGE, CARD_OK
from tests.queries import counting
from tests.test_pledges import pledge_with_card

#: (email, display name, card, amount typed): the names try formula injection in the CSV.
BACKERS = [
    ("kept@example.com", "=HYPERLINK(\"http://evil.example\",\"click\")", CARD_OK, "41.30"),
    ("refunded@example.com", "@SUM(A1:A9)", CARD_OK, "41.50"),
    ("auth@example.com", "+Ada Auth", CARD_AUTHENTICATE, "43"),
    ("declined@example.com", "-Dee Declined", CARD_DECLINE_ON_CHARGE, "44"),
]


def _pledge(app, localstripe, campaign, email, name, card, amount):
    client = app.test_client()
    make_user(email, name=name)
    login(client, email)
    pledge_with_card(client, localstripe, campaign, card=card, tier=campaign.tiers[0].id, amount=amount)
    return client


@pytest.fixture
def settled(app, localstripe):
    """A funded $100 campaign after settlement: one pledge collected, one collected then refunded, one
    errored (waiting for authentication), one dropped; plus one canceled before the deadline."""
    creator = make_user("creator@example.com", name="Cat Creator")
    campaign = make_campaign(creator, "live", tiers=1, goal=10000, currency="USD", title="Solar Lantern")
    for email, name, card, amount in BACKERS:
        _pledge(app, localstripe, campaign, email, name, card, amount)
    quitter = _pledge(app, localstripe, campaign, "quitter@example.com", "Quinn Quitter", CARD_OK, "30")
    quitter.post(f"/pledges/{db.session.scalar(select(Pledge.id).where(Pledge.amount == 3000))}/cancel")
    clock.set_offset(timedelta(days=31))
    settlement.run_pass()
    # The declined pledge's retry window started eight days ago: the next pass drops it.
    db.session.execute(update(Pledge).where(Pledge.amount == 4400).values(failed_at=clock.utcnow() - timedelta(days=8)))
    db.session.commit()
    settlement.run_pass()
    moderator = make_user("mod@example.com", moderator=True)
    refunds.refund(db.session.scalar(select(Pledge).where(Pledge.amount == 4150)), moderator, "Card reported stolen")
    db.session.expire_all()
    return db.session.get(Campaign, campaign.id)


def _states():
    return dict(db.session.execute(select(Pledge.amount, Pledge.state)).all())


def test_report_numbers(app, settled):
    assert _states() == {4130: "collected", 4150: "refunded", 4300: "errored", 4400: "dropped", 3000: "canceled"}
    # localstripe reports each charge's fee in the charge's currency (2.9% + 30¢, as Stripe's list
    # price): 41.30 and 41.50 both cost 1.50. No estimate needed.
    assert set(db.session.scalars(select(ChargeAttempt.fee_amount).where(ChargeAttempt.status == "succeeded"))) == {150}
    r = report.money_report(settled)
    assert (r.currency, r.funded) == ("USD", True)
    assert (r.pledged_at_deadline, r.backers_at_deadline) == (4130 + 4150 + 4300 + 4400, 4)
    assert (r.collected, r.collected_count) == (4130 + 4150, 2)
    assert (r.errored, r.errored_count) == (4300, 1)
    assert (r.dropped, r.dropped_count) == (4400, 1)
    assert (r.refunded, r.refunded_count) == (4150, 1)
    assert (r.charging, r.charging_count) == (0, 0)
    # 5% of the 41.30 kept is 2.065: half up to the cent gives 2.07 (banker's rounding would give 2.06).
    assert r.platform_fee_percent == 5 and r.platform_fee == 207
    assert (r.stripe_fee, r.stripe_fee_estimated) == (300, False)  # the refunded charge's fee is not given back
    assert r.net_payout == 4130 - 207 - 300
    assert all(isinstance(v, int) for v in (r.collected, r.platform_fee, r.stripe_fee, r.net_payout))


def test_report_takes_two_statements(app, settled):
    with counting() as statements:
        report.money_report(settled)
    assert len(statements) == 2


def test_stripe_fee_estimated_when_stripe_did_not_report_it(app, settled):
    kept = db.session.scalar(select(Pledge.id).where(Pledge.amount == 4130))
    db.session.execute(update(ChargeAttempt).where(ChargeAttempt.pledge_id == kept, ChargeAttempt.status == "succeeded").values(fee_amount=None))
    db.session.commit()
    r = report.money_report(settled)
    # 2.9% of 41.30 = 1.1977 -> 1.20, plus 0.30 per charge; the refunded charge's reported fee (1.50) stays.
    assert (r.stripe_fee, r.stripe_fee_estimated) == (150 + 150, True)
    assert r.net_payout == 4130 - 207 - 300
    creator = app.test_client()
    login(creator, "creator@example.com")
    page = creator.get("/me/campaigns").get_data(as_text=True)
    assert "stripe-fee-estimate" in page and ">estimate<" in page and "$3.00" in page


def test_fee_estimates_and_rounding():
    assert report.estimate_stripe_fee(4130, 1, "USD") == 150
    assert report.estimate_stripe_fee(10_000, 2, "EUR") == 290 + 60
    assert report.estimate_stripe_fee(10_000, 3, "JPY") == 360  # 3.6%, no fixed part
    assert report.estimate_stripe_fee(125, 1, "JPY") == 5  # 4.5 -> 5, half up


def test_platform_fee_percent_is_a_setting(app, settled, monkeypatch):
    monkeypatch.setitem(app.config, "PLATFORM_FEE_PERCENT", 2.5)
    r = report.money_report(settled)
    assert r.platform_fee == 103  # 2.5% of 41.30 = 1.0325
    assert r.net_payout == 4130 - 103 - 300


def test_unsuccessful_campaign_report(app, localstripe):
    creator = make_user("creator@example.com")
    campaign = make_campaign(creator, "live", tiers=1, goal=1_000_000)
    _pledge(app, localstripe, campaign, "b@example.com", "Bea", CARD_OK, "40")
    clock.set_offset(timedelta(days=31))
    settlement.run_pass()
    db.session.expire_all()
    r = report.money_report(db.session.get(Campaign, campaign.id))
    assert (r.funded, r.pledged_at_deadline, r.backers_at_deadline) == (False, 4000, 1)
    assert (r.collected, r.platform_fee, r.stripe_fee, r.net_payout) == (0, 0, 0, 0)
    assert report.money_report(make_campaign(creator, "live")) is None  # only ended campaigns have one
    rows = list(csv.reader(io.StringIO(report.backers_csv(db.session.get(Campaign, campaign.id)))))
    assert [row[5] for row in rows[1:]] == ["released"]  # released at the deadline: it was active then


def test_pages_show_the_report(app, settled):
    creator = app.test_client()
    login(creator, "creator@example.com")
    mine = creator.get("/me/campaigns").get_data(as_text=True)
    for text in ("Money report", "Pledged at the deadline", "$169.80", "Collected", "$82.80", "$43.00", "$44.00", "$41.50",
                 "Platform fee (5%)", "$2.07", "Stripe processing fee", "Net payout", "$36.23", "Download backers (CSV)",
                 f"/campaigns/{settled.slug}/backers.csv"):
        assert text in mine, text
    assert "stripe-fee-estimate" not in mine
    manage = creator.get(f"/campaigns/{settled.slug}/edit").get_data(as_text=True)
    assert "Net payout" in manage and "$36.23" in manage
    # The moderator sees the same report, and the collected pledges with a refund link.
    moderator = app.test_client()
    login(moderator, "mod@example.com")
    review = moderator.get(f"/moderation/campaigns/{settled.slug}").get_data(as_text=True)
    kept = db.session.scalar(select(Pledge.id).where(Pledge.amount == 4130))
    gone = db.session.scalar(select(Pledge.id).where(Pledge.amount == 4150))
    assert "Net payout" in review and "$36.23" in review
    assert f"/moderation/pledges/{kept}/refund" in review and f"/moderation/pledges/{gone}/refund" not in review
    # The public page: the outcome, pledged at the deadline and collected; no report.
    public = app.test_client().get(f"/campaigns/{settled.slug}").get_data(as_text=True)
    assert 'outcome">Funded<' in public
    assert "$169.80" in public and "$41.30 collected so far" in public and "Net payout" not in public


def test_backers_csv(app, settled):
    creator = app.test_client()
    login(creator, "creator@example.com")
    response = creator.get(f"/campaigns/{settled.slug}/backers.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == f'attachment; filename="{settled.slug}-backers.csv"'
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["Name", "Email", "Reward", "Amount", "Currency", "Status", "Pledged at (UTC)", "Collected at (UTC)",
                       "Reward amount", "Add-ons amount", "Shipping", "Bonus support", "Destination country"]
    body = {row[1]: row for row in rows[1:]}
    assert set(body) == {"kept@example.com", "refunded@example.com", "auth@example.com", "declined@example.com"}  # not the canceled one
    kept = body["kept@example.com"]
    # Formula injection: a cell starting with = + - @ is prefixed with a quote, the rest kept as typed.
    assert kept[0] == "'=HYPERLINK(\"http://evil.example\",\"click\")"
    assert body["refunded@example.com"][0] == "'@SUM(A1:A9)"
    assert body["auth@example.com"][0] == "'+Ada Auth" and body["declined@example.com"][0] == "'-Dee Declined"
    assert kept[2:6] == ["Tier 1", "41.30", "USD", "collected"]
    assert [body[e][5] for e in ("refunded@example.com", "auth@example.com", "declined@example.com")] == ["refunded", "errored", "dropped"]
    pledge = db.session.scalar(select(Pledge).where(Pledge.amount == 4130))
    assert kept[6] == pledge.activated_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert kept[7] == pledge.collected_at.strftime("%Y-%m-%dT%H:%M:%SZ") and kept[7].endswith("Z")
    assert body["auth@example.com"][7] == ""
    # The parts (no add-ons and nothing shipped here): the reward's price, and the rest as bonus.
    assert kept[8:13] == [report.plain_amount(pledge.reward_amount, "USD"), "0.00", "0.00", report.plain_amount(pledge.bonus_amount, "USD"), ""]
    assert pledge.reward_amount + pledge.bonus_amount == 4130 and pledge.reward_amount == pledge.tier.amount


def test_csv_cells_and_amounts():
    assert [report._cell(v) for v in ("=1+2", "+1", "-1", "@x", "\tx", "plain", None, "a=b")] == [
        "'=1+2", "'+1", "'-1", "'@x", "'\tx", "plain", "", "a=b"]
    assert (report.plain_amount(4130, "USD"), report.plain_amount(2500, "JPY"), report.plain_amount(5, "EUR")) == ("41.30", "2500", "0.05")


def test_backers_csv_permissions(app, settled):
    url = f"/campaigns/{settled.slug}/backers.csv"
    moderator = app.test_client()
    login(moderator, "mod@example.com")
    assert moderator.get(url).status_code == 200
    member = app.test_client()
    login(member, "kept@example.com")  # even a backer of the campaign
    assert member.get(url).status_code == 403
    visitor = app.test_client().get(url)
    assert visitor.status_code == 302 and "/auth/login" in visitor.headers["Location"]
    assert member.get("/campaigns/no-such-campaign/backers.csv").status_code == 404
    draft = make_campaign(db.session.get(Campaign, settled.id).creator, "draft")
    assert member.get(f"/campaigns/{draft.slug}/backers.csv").status_code == 404  # not public: not even its existence
    creator = app.test_client()
    login(creator, "creator@example.com")
    response = creator.get(f"/campaigns/{draft.slug}/backers.csv")
    assert response.status_code == 200 and len(response.get_data(as_text=True).splitlines()) == 1
