"""Shipping per tier (issue 15 part A, SPEC §12): the country list and costs helper, the tier form's
destination rows (bad input next to its row, nothing saved), the rules after launch, and where the
pages show it (campaign page, creator's page, moderators' review, submit)."""
from __future__ import annotations

import re

import pytest
from flask_babel import force_locale
from hypothesis import given
from hypothesis import strategies as st
from markupsafe import escape
from sqlalchemy import select, text

from app import money
from app.campaigns import services, shipping
from app.campaigns.models import ShippingDestination, Tier
from app.campaigns.services import CampaignError
from app.extensions import db
from tests.factories import login, make_user
from tests.test_campaigns_helpers import OFFER_TABLES, TIER_FORM, build_campaign, moderator, snapshot, tier_input

# --- the pure helpers -----------------------------------------------------------------------


def test_shipping_cost_takes_the_country_first_then_the_rest_of_the_world():
    rows = [shipping.Destination("FR", 600), shipping.Destination("ZZ", 1500), shipping.Destination("DE", 0)]
    assert shipping.shipping_cost(rows, "FR") == 600
    assert shipping.shipping_cost(rows, "DE") == 0  # free is a cost, not "does not ship"
    assert shipping.shipping_cost(rows, "JP") == 1500
    assert shipping.shipping_cost(rows[:1] + rows[2:], "JP") is None
    assert shipping.shipping_cost([], "FR") is None


COUNTRY = st.sampled_from(["FR", "DE", "US", "JP", "CN", "ZZ"])


@given(rows=st.dictionaries(COUNTRY, st.integers(min_value=0, max_value=99_999_999)), country=COUNTRY.filter(lambda c: c != "ZZ"))
def test_shipping_cost_is_the_rows_rule_for_any_rows(rows, country):
    destinations = [shipping.Destination(code, cost) for code, cost in rows.items()]
    assert shipping.shipping_cost(destinations, country) == rows.get(country, rows.get("ZZ"))


def test_the_country_list_is_babels_countries_and_nothing_else(app):
    codes = [code for code, _name in shipping.countries("en")]
    assert len(codes) == len(set(codes)) == 250  # ISO 3166-1's 249, and Kosovo
    assert {"FR", "DE", "US", "CN", "JP", "GB", "XK", "AQ"} <= set(codes)
    assert not {"ZZ", "EU", "EZ", "UN", "QO", "XA", "XB", "AC", "IC", "EA", "TA", "DG", "CP", "CQ"} & set(codes)
    assert all(re.fullmatch(r"[A-Z]{2}", code) for code in codes)
    assert shipping.is_destination("ZZ") and shipping.is_destination("FR")
    assert not any(shipping.is_destination(code) for code in ("EU", "001", "fr", "", None, "FRA", "XX"))


def test_country_names_and_order_are_the_readers(app):
    french = dict(shipping.countries("fr"))
    assert french["DE"] == "Allemagne" and dict(shipping.countries("zh_Hans_CN"))["FR"] == "法国"
    order = [name for _code, name in shipping.countries("fr")]
    assert order == sorted(order, key=shipping.sort_key)
    # Accents do not send "Égypte" after "Zimbabwe": it sits among the E.
    assert order.index("Égypte") < order.index("Espagne") < order.index("Zimbabwe")
    with app.test_request_context(headers={"Accept-Language": "fr"}), force_locale("fr"):
        assert shipping.country_name("ZZ") == "Reste du monde"
        assert shipping.choices()[:2] == [("", "Choisir une destination"), ("ZZ", "Reste du monde")]


@pytest.mark.parametrize(
    ("rows", "places", "costs"),
    [
        ({"ZZ": 900}, "Ships worldwide", "shipping $9.00"),
        ({"FR": 600, "DE": 600}, "Ships to France and Germany", "shipping $6.00"),
        ({"FR": 0, "ZZ": 0}, "Ships to France and Rest of the world", "free shipping"),
        ({"FR": 0, "ZZ": 900}, "Ships to France and Rest of the world", "free shipping to some destinations"),
        ({"FR": 600, "DE": 700, "US": 900, "JP": 1200, "ZZ": 1500, "ES": 650}, "Ships to France, Germany +4 more", "shipping from $6.00"),
    ],
)
def test_the_short_descriptions(app, rows, places, costs):
    destinations = [shipping.Destination(code, cost) for code, cost in rows.items()]
    with app.test_request_context():
        assert shipping.places(destinations, "en") == places
        assert shipping.cost_summary(destinations, "USD", "en") == costs


# --- the tier form ----------------------------------------------------------------------------


@pytest.fixture
def creator(app, client, frozen_clock):
    user = make_user("creator@example.com", name="Cat Creator")
    login(client, user.email)
    return user


def _rows(*destinations: tuple[str, str]) -> dict[str, str]:
    form = {"ships": "destinations"}
    for n, (country, cost) in enumerate(destinations):
        form[f"destinations-{n}-country"], form[f"destinations-{n}-cost"] = country, cost
    return form


def _stored(tier_id: int) -> dict[str, int]:
    db.session.expire_all()
    return dict(db.session.execute(select(ShippingDestination.country, ShippingDestination.cost).where(ShippingDestination.tier_id == tier_id)).all())


def cell(page: str, name: str) -> str:
    """The column of a destination row that holds field `name` (label, input, help and errors)."""
    for block in re.split(r'(?=<div class="col-sm-[0-9]+">)', page):
        if re.search(rf'name="{re.escape(name)}"', block):
            return block
    raise AssertionError(f"no field {name!r} in the page")


def _errors(block: str) -> str:
    return " ".join(re.findall(r'<div[^>]*class="invalid-feedback d-block"[^>]*>(.*?)</div>', block, re.S))


@pytest.mark.parametrize(
    ("currency", "typed", "stored"),
    [("USD", [("FR", "6"), ("ZZ", "12.50"), ("US", "0")], {"FR": 600, "ZZ": 1250, "US": 0}),
     ("JPY", [("JP", "600"), ("ZZ", "2,500")], {"JP": 600, "ZZ": 2500}),
     ("EUR", [("DE", "4.90")], {"DE": 490})],
)
def test_a_tier_ships_to_its_destinations_in_minor_units(creator, client, currency, typed, stored):
    campaign = build_campaign(creator, tiers=0, currency=currency, goal=500_000)
    amount = "2500" if currency == "JPY" else "25"
    form = {**TIER_FORM, "amount": amount, **_rows(*typed), "destinations-5-country": "", "destinations-5-cost": ""}
    assert client.post(f"/campaigns/{campaign.slug}/tiers/new", data=form).status_code == 302
    tier = db.session.scalar(select(Tier).where(Tier.campaign_id == campaign.id))
    assert tier.ships and _stored(tier.id) == stored
    # and back in the edit form as typed, a blank row or two after them
    page = client.get(f"/campaigns/{campaign.slug}/tiers/{tier.id}/edit").get_data(as_text=True)
    assert re.search(r'checked[^>]*value="destinations"', page)
    for n, country in enumerate(sorted(stored, key=lambda c: (c == "ZZ", shipping.country_name(c, "en")))):
        assert f'<option selected value="{country}">' in cell(page, f"destinations-{n}-country")
    assert f'name="destinations-{len(stored) + 1}-cost"' in page


def test_a_tier_without_shipping_keeps_its_note_and_no_destinations(creator, client):
    campaign = build_campaign(creator, tiers=0)
    form = {**TIER_FORM, "shipping_note": "EU and US only", "ships": "none", "destinations-0-country": "FR", "destinations-0-cost": "5"}
    assert client.post(f"/campaigns/{campaign.slug}/tiers/new", data=form).status_code == 302
    tier = db.session.scalar(select(Tier).where(Tier.campaign_id == campaign.id))
    assert (tier.ships, tier.shipping_note, _stored(tier.id)) == (False, "EU and US only", {})
    # A script that knows only SPEC §7's tier fields still makes a tier: one without shipping.
    assert client.post(f"/campaigns/{campaign.slug}/tiers/new", data=dict(TIER_FORM, title="Plain")).status_code == 302


LONG = "x" * 10_000

#: (rows typed, the row field the message sits by, a piece of the message)
BAD_ROWS = [
    ([("XX", "5")], "destinations-0-country", "Choose a destination from the list."),
    ([("EU", "5")], "destinations-0-country", "Choose a destination from the list."),
    ([("fr", "5")], "destinations-0-country", "Choose a destination from the list."),
    ([(LONG, "5")], "destinations-0-country", "Choose a destination from the list."),
    ([("FR", "5"), ("DE", "6"), ("FR", "7")], "destinations-2-country", "France is already in the list."),
    ([("FR", "-5")], "destinations-0-cost", "A shipping cost cannot be negative."),
    ([("FR", "")], "destinations-0-cost", "Enter the shipping cost: 0 for free shipping."),
    ([("", "5")], "destinations-0-country", "Choose a destination from the list."),
    ([("FR", "abc")], "destinations-0-cost", "Enter the amount as a number"),
    ([("FR", "5.555")], "destinations-0-cost", "Use at most 2 decimal places."),
    ([("FR", "1000000")], "destinations-0-cost", "The amount must be at most $999,999.99."),
    ([("FR", LONG)], "destinations-0-cost", "Enter the amount as a number"),
]


@pytest.mark.parametrize(("rows", "where", "message"), BAD_ROWS)
@pytest.mark.parametrize("page", ["new", "edit"])
def test_bad_destinations_are_refused_next_to_their_row(creator, client, rows, where, message, page):
    campaign = build_campaign(creator, tiers=1)
    path = f"/campaigns/{campaign.slug}/tiers/new" if page == "new" else f"/campaigns/{campaign.slug}/tiers/{campaign.tiers[0].id}/edit"
    before = snapshot(*OFFER_TABLES)
    response = client.post(path, data={**TIER_FORM, **_rows(*rows)})
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    block = cell(body, where)
    assert message in _errors(block) or str(escape(message)) in _errors(block), _errors(block)
    assert "is-invalid" in block
    for n, (country, cost) in enumerate(rows):  # what was typed is still there
        if cost and len(cost) < 100:
            assert f'value="{escape(cost)}"' in cell(body, f"destinations-{n}-cost")
        if shipping.is_destination(country):
            assert f'<option selected value="{country}">' in cell(body, f"destinations-{n}-country")
    assert snapshot(*OFFER_TABLES) == before


def test_jpy_shipping_costs_are_whole_yen(creator, client):
    campaign = build_campaign(creator, tiers=0, currency="JPY", goal=500_000)
    before = snapshot(*OFFER_TABLES)
    response = client.post(f"/campaigns/{campaign.slug}/tiers/new", data={**TIER_FORM, "amount": "2500", **_rows(("JP", "5.5"))})
    assert response.status_code == 422
    assert "JPY has no cents: enter a whole number." in _errors(cell(response.get_data(as_text=True), "destinations-0-cost"))
    assert snapshot(*OFFER_TABLES) == before


def test_shipping_needs_a_destination(creator, client):
    campaign = build_campaign(creator, tiers=0)
    before = snapshot(*OFFER_TABLES)
    response = client.post(f"/campaigns/{campaign.slug}/tiers/new", data={**TIER_FORM, "ships": "destinations", "destinations-0-country": ""})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    fieldset = page[page.index('class="mb-3 ships-choice"'):page.index('id="destinations"')]
    assert "Add at least one destination, or choose “No shipping”." in fieldset
    response = client.post(f"/campaigns/{campaign.slug}/tiers/new", data={**TIER_FORM, "ships": "somewhere"})
    assert response.status_code == 422 and "Not a valid choice" in response.get_data(as_text=True)
    assert snapshot(*OFFER_TABLES) == before


def test_another_destination_row_without_javascript(creator, client):
    campaign = build_campaign(creator, tiers=0)
    before = snapshot(*OFFER_TABLES)
    form = {**TIER_FORM, "title": "Kept title", "ships": "none", **{k: v for k, v in _rows(("FR", "6"), ("DE", "7"), ("", "")).items() if k != "ships"},
            "add_destination": "Add another destination"}
    response = client.post(f"/campaigns/{campaign.slug}/tiers/new", data=form)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert page.count('class="row g-2 mb-2 destination-row"') == 4 and 'name="destinations-3-country"' in page
    assert 'value="Kept title"' in page and '<option selected value="DE">' in page and 'value="7"' in page
    assert re.search(r'checked[^>]*value="destinations"', page)  # asking for a row means it ships
    assert "invalid-feedback" not in page  # nothing was checked yet: nothing to complain about
    assert snapshot(*OFFER_TABLES) == before


# --- after launch -----------------------------------------------------------------------------


def _shipping_tier(creator, state: str = "live", destinations=None):
    campaign = build_campaign(creator, state, tiers=1)
    tier = services.add_tier(campaign, creator, tier_input(1, ships=True, destinations=destinations or {"FR": 600, "ZZ": 1500}))
    return campaign, tier


def _edit_form(tier: Tier, rows: list[tuple[str, str]], **changes) -> dict:
    return {**TIER_FORM, "title": tier.title, "description": tier.description, "amount": str(tier.amount // 100), "quantity_limit": "",
            "estimated_delivery": "2030-03", "shipping_note": "", **_rows(*rows), **changes}


def test_after_launch_destinations_can_be_added_and_made_cheaper(creator, client):
    campaign, tier = _shipping_tier(creator)
    response = client.post(f"/campaigns/{campaign.slug}/tiers/{tier.id}/edit", data=_edit_form(tier, [("FR", "5"), ("ZZ", "15"), ("DE", "7")]))
    assert response.status_code == 302
    assert _stored(tier.id) == {"FR": 500, "ZZ": 1500, "DE": 700}


def test_after_launch_the_form_shows_saved_destinations_fixed_with_their_ceiling(creator, client):
    campaign, tier = _shipping_tier(creator)
    page = client.get(f"/campaigns/{campaign.slug}/tiers/{tier.id}/edit").get_data(as_text=True)
    france = cell(page, "destinations-0-country")
    assert '<input type="hidden" name="destinations-0-country" value="FR">' in france and "<select" not in france
    assert "At most $6.00" in cell(page, "destinations-0-cost")
    assert "<select" in cell(page, "destinations-2-country")  # a free row for a new destination


@pytest.mark.parametrize(
    ("rows", "message", "where"),
    [
        ([("FR", "6.01"), ("ZZ", "15")], "Shipping to France cannot cost more than $6.00 after launch.", "destinations-0-cost"),
        ([("ZZ", "15")], "France cannot be removed after launch", None),
    ],
)
def test_after_launch_destinations_are_never_removed_or_made_dearer(creator, client, rows, message, where):
    campaign, tier = _shipping_tier(creator)
    before = snapshot(*OFFER_TABLES)
    response = client.post(f"/campaigns/{campaign.slug}/tiers/{tier.id}/edit", data=_edit_form(tier, rows))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert message in (_errors(cell(page, where)) if where else page)
    assert snapshot(*OFFER_TABLES) == before


def test_after_launch_shipping_cannot_be_switched_off(creator, client, app):
    campaign, tier = _shipping_tier(creator)
    before = snapshot(*OFFER_TABLES)
    response = client.post(f"/campaigns/{campaign.slug}/tiers/{tier.id}/edit", data=_edit_form(tier, [("FR", "6"), ("ZZ", "15")], ships="none"))
    assert response.status_code == 422 and "cannot be removed after launch" in response.get_data(as_text=True)
    assert snapshot(*OFFER_TABLES) == before
    # A draft changes freely: the same edit switches shipping off and forgets the destinations.
    draft, draft_tier = _shipping_tier(creator, "draft")
    response = client.post(f"/campaigns/{draft.slug}/tiers/{draft_tier.id}/edit", data=_edit_form(draft_tier, [("FR", "9")], ships="none"))
    assert response.status_code == 302 and _stored(draft_tier.id) == {}


def test_a_tier_backers_hold_still_gets_new_destinations_but_keeps_shipping(creator, client):
    campaign, tier = _shipping_tier(creator)
    db.session.execute(text("UPDATE tiers SET claimed = 2 WHERE id = :id"), {"id": tier.id})
    db.session.commit()
    response = client.post(f"/campaigns/{campaign.slug}/tiers/{tier.id}/edit", data=_edit_form(tier, [("FR", "6"), ("ZZ", "15"), ("JP", "9")]))
    assert response.status_code == 302 and _stored(tier.id) == {"FR": 600, "ZZ": 1500, "JP": 900}
    plain = services.add_tier(campaign, creator, tier_input(2))
    db.session.execute(text("UPDATE tiers SET claimed = 1 WHERE id = :id"), {"id": plain.id})
    db.session.commit()
    before = snapshot(*OFFER_TABLES)
    response = client.post(f"/campaigns/{campaign.slug}/tiers/{plain.id}/edit", data=_edit_form(plain, [("FR", "6")], amount="20"))
    assert response.status_code == 422
    assert snapshot(*OFFER_TABLES) == before


def test_the_service_holds_the_rules_without_the_form(app):
    creator = make_user()
    campaign, tier = _shipping_tier(creator)
    for destinations in ({"ZZ": 1500}, {"FR": 700, "ZZ": 1500}):
        with pytest.raises(services.DestinationError) as raised:
            services.update_tier(campaign, creator, tier, tier_input(1, ships=True, destinations=destinations))
        assert raised.value.country == "FR"
    with pytest.raises(CampaignError):
        services.add_tier(campaign, creator, tier_input(2, ships=True, destinations={"EU": 100}))
    with pytest.raises(CampaignError, match="cannot be negative"):
        services.add_tier(campaign, creator, tier_input(2, ships=True, destinations={"FR": -1}))
    assert _stored(tier.id) == {"FR": 600, "ZZ": 1500}
    assert db.session.scalar(select(db.func.count()).select_from(Tier).where(Tier.campaign_id == campaign.id)) == 2


# --- where it shows ---------------------------------------------------------------------------


def test_the_campaign_page_says_where_each_reward_ships(app, client):
    creator = make_user()
    campaign = build_campaign(creator, "live", tiers=1)
    services.add_tier(campaign, creator, tier_input(2, ships=True, destinations={"FR": 600, "DE": 700, "US": 900, "JP": 1200, "ZZ": 1500, "ES": 650}))
    services.add_tier(campaign, creator, tier_input(3, ships=True, destinations={"ZZ": 900}))
    page = client.get(f"/campaigns/{campaign.slug}").get_data(as_text=True)
    six, plain, worldwide = re.split(r'<div class="card mb-2 tier', page)[1:]  # by amount: $20, $25, $30
    assert "Ships to France, Germany +4 more · shipping from $6.00" in six
    assert '<li data-country="ES">Spain: $6.50</li>' in six and '<li data-country="ZZ">Rest of the world: $15.00</li>' in six
    assert "Ships" not in plain and "ships" not in plain
    assert "Ships worldwide · shipping $9.00" in worldwide
    french = client.get(f"/campaigns/{campaign.slug}", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "Allemagne" in french
    assert f"Espagne\u00a0: {money.format_money(650, 'USD', 'fr')}" in french


def test_the_creators_page_and_the_review_show_destinations(app, client):
    creator = make_user("creator@example.com")
    campaign = build_campaign(creator, tiers=0)
    services.add_tier(campaign, creator, tier_input(1, ships=True, destinations={"FR": 600, "ZZ": 1500}))
    services.submit(campaign, creator)
    login(client, creator.email)
    mine = client.get(f"/campaigns/{campaign.slug}/edit").get_data(as_text=True)
    assert "Ships to France and Rest of the world" in mine
    reviewer = app.test_client()
    mod = moderator()
    login(reviewer, mod.email)
    review = reviewer.get(f"/moderation/campaigns/{campaign.slug}").get_data(as_text=True)
    assert '<details class="small text-muted mb-1 ships" open>' in review
    assert "France: $6.00" in review and "Rest of the world: $15.00" in review


def test_submit_refuses_a_tier_that_ships_nowhere(app, client):
    creator = make_user("creator@example.com")
    campaign = build_campaign(creator, tiers=0)
    services.add_tier(campaign, creator, tier_input(1, title="Boxed set", ships=True, destinations={}))
    login(client, creator.email)
    response = client.post(f"/campaigns/{campaign.slug}/submit")
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "a shipping destination for the tier “Boxed set” (or choose “No shipping”)" in page
    assert db.session.scalar(select(text("state")).select_from(text("campaigns")).where(text(f"id = {campaign.id}"))) == "draft"
    assert "Ships, but to no destination yet." in client.get(f"/campaigns/{campaign.slug}/preview").get_data(as_text=True)
