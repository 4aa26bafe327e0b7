"""Bad input in the campaign and tier forms (SPEC §3, §7, §10): 422, a message next to the field,
the typed value kept, no row changed, never a 500. Money typed in major units, stored in minor units."""
from __future__ import annotations

import re

import pytest
from markupsafe import escape
from sqlalchemy import select

from app.campaigns.models import Campaign, Tier
from app.extensions import db
from tests.factories import login, make_user
from tests.test_campaigns_helpers import CAMPAIGN_FORM, TIER_FORM, build_campaign, field_block, snapshot

LONG = "x" * 100_000

# (field, typed value, a piece of the message shown next to the field; None: any message)
CAMPAIGN_CASES = [
    ("title", "", "Give your campaign a title."),
    ("title", "   ", "Give your campaign a title."),
    ("title", "x" * 81, "80 characters"),
    ("title", "é" * 81, "80 characters"),
    ("title", LONG, "80 characters"),
    ("blurb", "", "Sum the project up in a sentence."),
    ("blurb", "b" * 136, "135 characters"),
    ("blurb", LONG, "135 characters"),
    ("category", "", "Choose a category."),  # the empty first option: a clear message, not "not a valid choice"
    ("category", "nope", "Not a valid choice"),
    ("category", LONG, "Not a valid choice"),
    ("goal", "", "Enter the funding goal."),
    ("goal", "abc", "Enter the amount as a number"),
    ("goal", "-5", "The amount must be more than zero."),
    ("goal", "25.505", "Use at most 2 decimal places."),
    ("goal", "0", "The amount must be at least $0.50."),
    ("goal", "0.00", "The amount must be at least $0.50."),
    ("goal", "100000000.01", "The amount must be at most $100,000,000.00."),
    ("goal", "99999999999999999999", "The amount must be at most"),
    ("goal", "1e6", "Enter the amount as a number"),
    ("goal", "NaN", "Enter the amount as a number"),
    ("goal", "Infinity", "Enter the amount as a number"),
    ("goal", "5.000,50", "Enter the amount as a number"),
    ("goal", "５０００", "Enter the amount as a number"),
    ("goal", LONG, "Enter the amount as a number"),
    ("currency", "XXX", "Not a valid choice"),
    ("currency", "", "Not a valid choice"),
    ("duration_days", "", "Enter the number of days."),
    ("duration_days", "0", "Choose between 1 and 60 days."),
    ("duration_days", "61", "Choose between 1 and 60 days."),
    ("duration_days", "-1", "Choose between 1 and 60 days."),
    ("duration_days", "x", "Not a valid integer value."),
    ("duration_days", "1.5", "Not a valid integer value."),
    ("duration_days", "99999999999999999999", "Choose between 1 and 60 days."),
    ("duration_days", LONG, None),
    ("story", "s" * 50_001, "50000 characters"),
    ("story", LONG, "50000 characters"),
    ("risks", "r" * 10_001, "10000 characters"),
    ("risks", LONG, "10000 characters"),
]

TIER_CASES = [
    ("title", "", "Give the tier a title."),
    ("title", "t" * 81, "80 characters"),
    ("title", LONG, "80 characters"),
    ("description", "", "Say what backers of this tier get."),
    ("description", "d" * 2001, "2000 characters"),
    ("description", LONG, "2000 characters"),
    ("amount", "", "Enter the minimum pledge."),
    ("amount", "abc", "Enter the amount as a number"),
    ("amount", "-5", "The amount must be more than zero."),
    ("amount", "25.505", "Use at most 2 decimal places."),
    ("amount", "0", "The amount must be at least $0.50."),
    ("amount", "0.49", "The amount must be at least $0.50."),
    ("amount", "1000000", "The amount must be at most $999,999.99."),
    ("amount", "99999999999999999999", "The amount must be at most"),
    ("amount", LONG, "Enter the amount as a number"),
    ("quantity_limit", "0", "Enter a number from 1 to 1,000,000, or leave it empty."),
    ("quantity_limit", "-1", "Enter a number from 1 to 1,000,000, or leave it empty."),
    ("quantity_limit", "x", "Not a valid integer value."),
    ("quantity_limit", "2.5", "Not a valid integer value."),
    ("quantity_limit", "99999999999999999999", "Enter a number from 1 to 1,000,000, or leave it empty."),
    ("quantity_limit", LONG, None),
    ("estimated_delivery", "", "Enter the estimated delivery month"),
    ("estimated_delivery", "2027-13", "Use the form YYYY-MM"),
    ("estimated_delivery", "2027-00", "Use the form YYYY-MM"),
    ("estimated_delivery", "2027-3", "Use the form YYYY-MM"),
    ("estimated_delivery", "tomorrow", "Use the form YYYY-MM"),
    ("estimated_delivery", "99999-01", "Use the form YYYY-MM"),
    ("estimated_delivery", "2026-10", "The delivery month cannot be in the past."),
    ("estimated_delivery", "2001-01", "The delivery month cannot be in the past."),
    ("estimated_delivery", LONG, "Use the form YYYY-MM"),
    ("shipping_note", "s" * 201, "200 characters"),
    ("shipping_note", LONG, "200 characters"),
]


@pytest.fixture
def creator(app, client, frozen_clock):
    user = make_user("creator@example.com")
    login(client, user.email)
    return user


def _assert_refused(response, field: str, value: str, message: str | None, before) -> None:
    assert response.status_code == 422, response.status_code
    page = response.get_data(as_text=True)
    block = field_block(page, field)
    assert "is-invalid" in block and 'class="invalid-feedback d-block"' in block, block[:2000]
    if message:
        feedback = " ".join(re.findall(r'<div[^>]*class="invalid-feedback d-block"[^>]*>(.*?)</div>', block, re.S))
        assert message in str(escape(feedback)) or message in feedback, feedback
    if value and field not in ("category", "currency"):  # a select cannot show a value it does not offer
        assert str(escape(value)) in block, f"typed value of {field} not kept"
    assert snapshot() == before


@pytest.mark.parametrize(("field", "value", "message"), CAMPAIGN_CASES)
def test_new_campaign_refuses_bad_input(creator, client, field, value, message):
    before = snapshot()
    response = client.post("/campaigns/new", data=dict(CAMPAIGN_FORM, **{field: value}))
    _assert_refused(response, field, value, message, before)
    page = response.get_data(as_text=True)
    # the other fields keep what was typed
    assert 'value="A lantern that charges in the sun."' in page or field == "blurb"
    assert "We build **lanterns**." in page or field == "story"


@pytest.mark.parametrize(("field", "value", "message"), CAMPAIGN_CASES)
def test_edit_campaign_refuses_bad_input(creator, client, field, value, message):
    campaign = build_campaign(creator)
    before = snapshot()
    response = client.post(f"/campaigns/{campaign.slug}/edit", data=dict(CAMPAIGN_FORM, **{field: value}))
    _assert_refused(response, field, value, message, before)


def test_jpy_has_no_minor_unit(creator, client):
    before = snapshot()
    response = client.post("/campaigns/new", data=dict(CAMPAIGN_FORM, currency="JPY", goal="2500.5"))
    _assert_refused(response, "goal", "2500.5", "JPY has no cents: enter a whole number.", before)
    response = client.post("/campaigns/new", data=dict(CAMPAIGN_FORM, currency="JPY", goal="49"))
    _assert_refused(response, "goal", "49", "The amount must be at least ¥50.", before)


@pytest.mark.parametrize(("field", "value", "message"), TIER_CASES)
def test_new_tier_refuses_bad_input(creator, client, field, value, message):
    campaign = build_campaign(creator, tiers=0)
    before = snapshot()
    response = client.post(f"/campaigns/{campaign.slug}/tiers/new", data=dict(TIER_FORM, **{field: value}))
    _assert_refused(response, field, value, message, before)


@pytest.mark.parametrize(("field", "value", "message"), TIER_CASES)
def test_edit_tier_refuses_bad_input(creator, client, field, value, message):
    campaign = build_campaign(creator)
    before = snapshot()
    response = client.post(f"/campaigns/{campaign.slug}/tiers/{campaign.tiers[0].id}/edit", data=dict(TIER_FORM, **{field: value}))
    _assert_refused(response, field, value, message, before)


def test_jpy_tier_amount_is_whole(creator, client):
    campaign = build_campaign(creator, currency="JPY", goal=500_000)
    before = snapshot()
    response = client.post(f"/campaigns/{campaign.slug}/tiers/new", data=dict(TIER_FORM, amount="2500.5"))
    _assert_refused(response, "amount", "2500.5", "JPY has no cents: enter a whole number.", before)


def test_several_bad_fields_each_get_their_message(creator, client):
    before = snapshot()
    response = client.post("/campaigns/new", data=dict(CAMPAIGN_FORM, title="", goal="abc", duration_days="0", category="nope"))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    for field in ("title", "goal", "duration_days", "category"):
        assert "invalid-feedback" in field_block(page, field), field
    assert "invalid-feedback" not in field_block(page, "blurb")
    assert snapshot() == before


def test_missing_fields_altogether_are_refused_not_crashed(creator, client):
    before = snapshot()
    assert client.post("/campaigns/new", data={}).status_code == 422
    campaign = build_campaign(creator)
    before = snapshot()
    assert client.post(f"/campaigns/{campaign.slug}/edit", data={}).status_code == 422
    assert client.post(f"/campaigns/{campaign.slug}/tiers/new", data={}).status_code == 422
    assert client.post(f"/campaigns/{campaign.slug}/tiers/{campaign.tiers[0].id}/edit", data={}).status_code == 422
    assert client.post(f"/campaigns/{campaign.slug}/edit", data={"title": ["a", "b"], "goal": ["1", "2"]}).status_code == 422
    assert snapshot() == before


# --- odd but acceptable input ---------------------------------------------------------------------


UNICODE = {
    "title": "Ünïcødé lantern 🚀 日本の提灯 \u202eevil",
    "blurb": "Ça marche — 中文 — עברית — 👩‍👩‍👧",
    "story": "# Zalgo\n\nZ̷̢a̸l̶g̵o̴ and 🧨 and \u200b zero width",
    "risks": "Риски: всё может пойти не так.",
}


def test_unicode_text_is_kept_exactly(creator, client):
    response = client.post("/campaigns/new", data=dict(CAMPAIGN_FORM, **UNICODE))
    assert response.status_code == 302
    campaign = db.session.scalar(select(Campaign))
    for field, value in UNICODE.items():
        assert getattr(campaign, field) == value
    page = client.get(f"/campaigns/{campaign.slug}/edit").get_data(as_text=True)
    assert str(escape(UNICODE["title"])) in page


@pytest.mark.parametrize("field", ["title", "blurb", "story", "risks"])
def test_control_characters_never_reach_the_database(creator, client, field):
    """PostgreSQL refuses NUL in text: a NUL typed (or scripted) into any field is dropped, not a 500."""
    response = client.post("/campaigns/new", data=dict(CAMPAIGN_FORM, **{field: "Solar\x00 Lan\x01tern\x7f"}))
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    stored = getattr(db.session.scalar(select(Campaign)), field)
    assert "\x00" not in stored and "\x01" not in stored and "Solar" in stored and "Lan" in stored


@pytest.mark.parametrize("field", ["title", "description", "shipping_note"])
def test_control_characters_never_reach_the_database_in_tiers(creator, client, field):
    campaign = build_campaign(creator, tiers=0)
    response = client.post(f"/campaigns/{campaign.slug}/tiers/new", data=dict(TIER_FORM, **{field: "Early\x00 bird\x02"}))
    assert response.status_code == 302
    stored = getattr(db.session.scalar(select(Tier)), field)
    assert "\x00" not in stored and "\x02" not in stored and "Early" in stored


def test_nul_only_title_is_empty(creator, client):
    before = snapshot()
    response = client.post("/campaigns/new", data=dict(CAMPAIGN_FORM, title="\x00\x00"))
    assert response.status_code == 422 and "Give your campaign a title." in field_block(response.get_data(as_text=True), "title")
    assert snapshot() == before


def test_windows_line_ends_are_stored_as_newlines(creator, client):
    assert client.post("/campaigns/new", data=dict(CAMPAIGN_FORM, story="one\r\ntwo\r\n", risks="a\rb")).status_code == 302
    campaign = db.session.scalar(select(Campaign))
    assert campaign.story == "one\ntwo\n" and campaign.risks == "a\nb"


# --- money ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "typed", "stored", "shown"),
    [
        ("USD", "5,000.50", 500050, "5000.50"),
        ("USD", "5000", 500000, "5000"),
        ("USD", "$1,250.5", 125050, "1250.50"),
        ("EUR", " 99.99 ", 9999, "99.99"),
        ("GBP", "0.30", 30, "0.30"),
        ("CNY", "4", 400, "4"),
        ("JPY", "2500", 2500, "2500"),
        ("JPY", "1,000,000", 1_000_000, "1000000"),
        ("USD", "100000000", 10_000_000_000, "100000000"),
    ],
)
def test_goal_is_stored_in_minor_units_and_shown_as_typed(creator, client, currency, typed, stored, shown):
    response = client.post("/campaigns/new", data=dict(CAMPAIGN_FORM, currency=currency, goal=typed))
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    campaign = db.session.scalar(select(Campaign))
    assert (campaign.goal, campaign.currency) == (stored, currency)
    page = client.get(f"/campaigns/{campaign.slug}/edit").get_data(as_text=True)
    assert f'value="{shown}"' in field_block(page, "goal")
    # saving the form again as shown keeps the amount
    assert client.post(f"/campaigns/{campaign.slug}/edit", data=dict(CAMPAIGN_FORM, currency=currency, goal=shown)).status_code == 302
    db.session.expire_all()
    assert db.session.get(Campaign, campaign.id).goal == stored


@pytest.mark.parametrize(("currency", "typed", "stored", "shown"), [("USD", "25.50", 2550, "25.50"), ("JPY", "2500", 2500, "2500"), ("EUR", "1,000", 100000, "1000")])
def test_tier_amount_is_stored_in_minor_units_and_shown_as_typed(creator, client, currency, typed, stored, shown):
    campaign = build_campaign(creator, tiers=0, currency=currency, goal=500_000)
    response = client.post(f"/campaigns/{campaign.slug}/tiers/new", data=dict(TIER_FORM, amount=typed, quantity_limit=""))
    assert response.status_code == 302
    tier = db.session.scalar(select(Tier))
    assert tier.amount == stored and tier.quantity_limit is None and tier.estimated_delivery.isoformat() == "2030-03-01"
    page = client.get(f"/campaigns/{campaign.slug}/tiers/{tier.id}/edit").get_data(as_text=True)
    assert f'value="{shown}"' in field_block(page, "amount")
    assert 'value="2030-03"' in field_block(page, "estimated_delivery")


def test_a_tier_whose_delivery_month_has_passed_can_still_be_saved_unchanged(creator, client):
    """The month was in the future when typed; saving the tier again later must not trip on it."""
    from datetime import timedelta

    from app import clock

    campaign = build_campaign(creator, tiers=0)
    assert client.post(f"/campaigns/{campaign.slug}/tiers/new", data=dict(TIER_FORM, estimated_delivery="2027-01")).status_code == 302
    tier = db.session.scalar(select(Tier))
    clock.advance(timedelta(days=120))  # now March 2027
    response = client.post(f"/campaigns/{campaign.slug}/tiers/{tier.id}/edit", data=dict(TIER_FORM, estimated_delivery="2027-01", title="Renamed"))
    assert response.status_code == 302
    response = client.post(f"/campaigns/{campaign.slug}/tiers/{tier.id}/edit", data=dict(TIER_FORM, estimated_delivery="2027-02"))
    assert response.status_code == 422 and "cannot be in the past" in field_block(response.get_data(as_text=True), "estimated_delivery")


def test_currency_cannot_change_under_existing_tiers(creator, client):
    """Tier amounts are minor units of the campaign's currency: switching USD to JPY would turn $25.00 into ¥2,500."""
    campaign = build_campaign(creator, tiers=1)
    before = snapshot()
    response = client.post(f"/campaigns/{campaign.slug}/edit", data=dict(CAMPAIGN_FORM, currency="JPY"))
    assert response.status_code == 422
    assert "tiers" in field_block(response.get_data(as_text=True), "currency")
    assert snapshot() == before
    # without tiers the currency is free to change
    bare = build_campaign(creator, tiers=0, title="Bare")
    assert client.post(f"/campaigns/{bare.slug}/edit", data=dict(CAMPAIGN_FORM, title="Bare", currency="JPY", goal="50000")).status_code == 302
    db.session.expire_all()
    assert (db.session.get(Campaign, bare.id).currency, db.session.get(Campaign, bare.id).goal) == ("JPY", 50000)


def test_blurb_help_says_the_real_limit(creator, client):
    page = client.get("/campaigns/new").get_data(as_text=True)
    assert "135 characters" in field_block(page, "blurb") and 'maxlength="135"' in field_block(page, "blurb")
