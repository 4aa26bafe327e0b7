"""Add-ons (issue 15 part A, SPEC §12): the creator's form and its bad input, the tiers' editing rules,
the campaign page, and claims that never oversell — also fifty at once on PostgreSQL."""
from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask
from sqlalchemy import select, text

from app.campaigns import services
from app.campaigns.models import Addon, ShippingDestination
from app.campaigns.services import AddonInput, CampaignError
from app.extensions import db
from tests.factories import login, make_user
from tests.test_campaigns_helpers import OFFER_TABLES, build_campaign, field_block, snapshot, tier_input

ADDON_FORM = {"title": "Spare battery", "description": "A second battery.", "amount": "12", "quantity_limit": "", "shipping_per": "unit"}


@pytest.fixture
def creator(app, client, frozen_clock):
    user = make_user("creator@example.com", name="Cat Creator")
    login(client, user.email)
    return user


def _addon(addon_id: int) -> Addon:
    db.session.expire_all()
    return db.session.get(Addon, addon_id)


def _claim(addon: Addon, claimed: int, limit: int | None = None) -> None:
    """Pretend backers hold `claimed` units (the pledge service moves this column)."""
    db.session.execute(text("UPDATE addons SET quantity_limit = :limit, claimed = :claimed WHERE id = :id"),
                       {"limit": limit, "claimed": claimed, "id": addon.id})
    db.session.commit()


def _offer(campaign, creator, **fields) -> Addon:
    values = {"title": "Spare battery", "description": "A second battery.", "amount": 1200, "quantity_limit": None, **fields}
    return services.add_addon(campaign, creator, AddonInput(**values))


def _form_of(addon: Addon, **changes) -> dict:
    values = {"title": addon.title, "description": addon.description, "amount": str(addon.amount // 100),
              "quantity_limit": "" if addon.quantity_limit is None else str(addon.quantity_limit), "shipping_per": addon.shipping_per,
              "ships": "destinations" if addon.ships else "none", "tiers": [str(i) for i in sorted(addon.tier_ids)]}
    for n, d in enumerate(addon.destinations):
        values[f"destinations-{n}-country"], values[f"destinations-{n}-cost"] = d.country, str(d.cost // 100)
    return {**values, **changes}


# --- the creator's form -------------------------------------------------------------------------


def test_a_creator_offers_an_add_on_for_chosen_tiers_that_ships(creator, client):
    campaign = build_campaign(creator, tiers=2)
    first, second = campaign.tiers
    form = {**ADDON_FORM, "quantity_limit": "50", "tiers": [str(second.id)], "ships": "destinations", "shipping_per": "pledge",
            "destinations-0-country": "FR", "destinations-0-cost": "2.50", "destinations-1-country": "ZZ", "destinations-1-cost": "4"}
    assert client.get(f"/campaigns/{campaign.slug}/addons/new").status_code == 200
    response = client.post(f"/campaigns/{campaign.slug}/addons/new", data=form)
    assert response.status_code == 302 and response.headers["Location"].endswith("#addons")
    addon = db.session.scalar(select(Addon).where(Addon.campaign_id == campaign.id))
    assert (addon.title, addon.amount, addon.quantity_limit, addon.ships, addon.shipping_per) == ("Spare battery", 1200, 50, True, "pledge")
    assert addon.tier_ids == {second.id} and addon.offered_with(second.id) and not addon.offered_with(first.id) and not addon.offered_with(None)
    assert {(d.country, d.cost) for d in addon.destinations} == {("FR", 250), ("ZZ", 400)}
    page = client.get(f"/campaigns/{campaign.slug}/edit").get_data(as_text=True)
    section = page[page.index('id="addons"'):]
    assert "Spare battery" in section and "0 of 50 claimed" in section and f"Only with {second.title}" in section
    assert f'href="/campaigns/{campaign.slug}/addons/{addon.id}/edit"' in section and f"/addons/{addon.id}/delete" in section
    # and back in its form as it was saved
    edit = client.get(f"/campaigns/{campaign.slug}/addons/{addon.id}/edit").get_data(as_text=True)
    assert f'value="{second.id}" checked' in edit and f'value="{first.id}">' in edit
    assert 'value="2.50"' in edit and re.search(r'checked[^>]*value="pledge"', edit)


def test_an_add_on_for_every_tier_without_shipping(creator, client):
    campaign = build_campaign(creator, tiers=1)
    assert client.post(f"/campaigns/{campaign.slug}/addons/new", data={**ADDON_FORM, "destinations-0-country": "FR", "destinations-0-cost": "3"}).status_code == 302
    addon = db.session.scalar(select(Addon).where(Addon.campaign_id == campaign.id))
    assert addon.for_all_tiers and addon.offered_with(campaign.tiers[0].id) and addon.offered_with(None)
    assert not addon.ships and addon.destinations == [] and addon.shipping_per == "unit"


LONG = "x" * 10_000

#: (field, typed value, the field the message sits by, a piece of the message)
BAD_INPUT = [
    ("title", "", "title", "Give the add-on a title."),
    ("title", "t" * 81, "title", "80 characters"),
    ("title", LONG, "title", "80 characters"),
    ("description", LONG, "description", "2000 characters"),
    ("amount", "", "amount", "Enter the price."),
    ("amount", "-3", "amount", "The amount must be more than zero."),
    ("amount", "0.10", "amount", "The amount must be at least $0.50."),
    ("amount", "12.345", "amount", "Use at most 2 decimal places."),
    ("amount", "1000000", "amount", "The amount must be at most $999,999.99."),
    ("quantity_limit", "0", "quantity_limit", "Enter a number from 1 to 1,000,000, or leave it empty."),
    ("quantity_limit", "2.5", "quantity_limit", "Not a valid integer value."),
    ("shipping_per", "parcel", "shipping_per", "Not a valid choice"),
    ("tiers", "abc", "tiers", "Choose among this campaign&#39;s tiers."),
    ("tiers", "999999", "tiers", "Choose among this campaign&#39;s tiers."),
]


def _message_by(page: str, field: str) -> str:
    if field in ("tiers", "shipping_per"):  # a fieldset of boxes: the message closes it
        start = page.index({"tiers": 'class="mb-3 offered-with"', "shipping_per": 'class="mb-3 shipping-per"'}[field])
        return page[start:page.index("</fieldset>", start)]
    return field_block(page, field)


@pytest.mark.parametrize(("name", "value", "where", "message"), BAD_INPUT)
@pytest.mark.parametrize("page", ["new", "edit"])
def test_bad_add_on_input_is_refused_next_to_its_field(creator, client, name, value, where, message, page):
    campaign = build_campaign(creator, tiers=1)
    addon = _offer(campaign, creator)
    path = f"/campaigns/{campaign.slug}/addons/new" if page == "new" else f"/campaigns/{campaign.slug}/addons/{addon.id}/edit"
    before = snapshot(*OFFER_TABLES)
    response = client.post(path, data={**ADDON_FORM, name: value})
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    block = _message_by(body, where)
    assert message in block and "is-invalid" in block, block[:3000]
    if name in ("title", "amount", "quantity_limit") and value and len(value) < 100:
        assert f'value="{value}"' in block  # what was typed is kept
    assert snapshot(*OFFER_TABLES) == before


def test_a_tier_of_another_campaign_is_refused(creator, client):
    campaign = build_campaign(creator, tiers=1)
    other = build_campaign(make_user(), tiers=1, title="Someone else's")
    before = snapshot(*OFFER_TABLES)
    response = client.post(f"/campaigns/{campaign.slug}/addons/new", data={**ADDON_FORM, "tiers": [str(campaign.tiers[0].id), str(other.tiers[0].id)]})
    assert response.status_code == 422
    assert "Choose among this campaign&#39;s tiers." in _message_by(response.get_data(as_text=True), "tiers")
    assert snapshot(*OFFER_TABLES) == before
    # the service says no by itself too (a tier removed while the form was open)
    with pytest.raises(CampaignError) as raised:
        _offer(campaign, creator, tier_ids=frozenset({other.tiers[0].id}))
    assert raised.value.field == "tiers"
    assert snapshot(*OFFER_TABLES) == before


def test_add_on_destinations_follow_the_tiers_rules(creator, client):
    campaign = build_campaign(creator, tiers=1, currency="JPY", goal=500_000)
    before = snapshot(*OFFER_TABLES)
    form = {**ADDON_FORM, "amount": "1200", "ships": "destinations", "destinations-0-country": "JP", "destinations-0-cost": "5.5",
            "destinations-1-country": "JP", "destinations-1-cost": "500"}
    response = client.post(f"/campaigns/{campaign.slug}/addons/new", data=form)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "JPY has no cents" in page and "Japan is already in the list." in page
    assert snapshot(*OFFER_TABLES) == before


# --- the tiers' editing rules ------------------------------------------------------------------


def test_an_add_on_nobody_chose_changes_freely_while_live(creator, client):
    campaign = build_campaign(creator, "live", tiers=1)
    addon = _offer(campaign, creator, quantity_limit=5)
    response = client.post(f"/campaigns/{campaign.slug}/addons/{addon.id}/edit", data=_form_of(addon, title="Two batteries", amount="20"))
    assert response.status_code == 302
    assert (_addon(addon.id).title, _addon(addon.id).amount) == ("Two batteries", 2000)
    assert client.post(f"/campaigns/{campaign.slug}/addons/{addon.id}/delete").status_code == 302
    assert _addon(addon.id).deleted_at is not None
    assert "Two batteries" not in client.get(f"/campaigns/{campaign.slug}").get_data(as_text=True)
    assert client.get(f"/campaigns/{campaign.slug}/addons/{addon.id}/edit").status_code == 404
    assert client.post(f"/campaigns/{campaign.slug}/addons/{addon.id}/delete").status_code == 404


@pytest.mark.parametrize("change", [{"title": "Other"}, {"description": "Else."}, {"amount": "99"}, {"shipping_per": "pledge", "ships": "destinations",
                                                                                                    "destinations-0-country": "FR", "destinations-0-cost": "1"},
                                    {"tiers": "tier"}])
def test_an_add_on_backers_chose_keeps_its_content(creator, client, change):
    campaign = build_campaign(creator, "live", tiers=1)
    addon = _offer(campaign, creator)
    _claim(addon, 2, limit=10)
    if change.get("tiers") == "tier":
        change = {"tiers": [str(campaign.tiers[0].id)]}
    before = snapshot(*OFFER_TABLES)
    response = client.post(f"/campaigns/{campaign.slug}/addons/{addon.id}/edit", data=_form_of(_addon(addon.id), **change))
    assert response.status_code == 422
    assert "Backers have chosen this add-on: only its quantity can change now" in response.get_data(as_text=True)
    assert snapshot(*OFFER_TABLES) == before
    before = snapshot(*OFFER_TABLES)
    response = client.post(f"/campaigns/{campaign.slug}/addons/{addon.id}/delete")
    assert "cannot be removed" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert snapshot(*OFFER_TABLES) == before


@pytest.mark.parametrize(("typed", "ok", "stored"), [("20", True, 20), ("", True, None), ("3", True, 3), ("2", False, 10)])
def test_an_add_ons_quantity_never_goes_below_what_is_claimed(creator, client, typed, ok, stored):
    campaign = build_campaign(creator, "live", tiers=1)
    addon = _offer(campaign, creator)
    _claim(addon, 3, limit=10)
    response = client.post(f"/campaigns/{campaign.slug}/addons/{addon.id}/edit", data=_form_of(_addon(addon.id), quantity_limit=typed))
    assert response.status_code == (302 if ok else 422)
    if not ok:
        assert "3 of this add-on are already claimed" in field_block(response.get_data(as_text=True), "quantity_limit")
    assert (_addon(addon.id).quantity_limit, _addon(addon.id).claimed) == (stored, 3)


def test_a_claimed_add_on_gets_new_destinations_and_cheaper_ones_only(creator, client):
    campaign = build_campaign(creator, "live", tiers=1)
    addon = _offer(campaign, creator, ships=True, destinations={"FR": 300})
    _claim(addon, 1)
    response = client.post(f"/campaigns/{campaign.slug}/addons/{addon.id}/edit",
                           data=_form_of(_addon(addon.id), **{"destinations-0-cost": "2", "destinations-1-country": "DE", "destinations-1-cost": "4"}))
    assert response.status_code == 302
    stored = dict(db.session.execute(select(ShippingDestination.country, ShippingDestination.cost).where(ShippingDestination.addon_id == addon.id)).all())
    assert stored == {"FR": 200, "DE": 400}
    before = snapshot(*OFFER_TABLES)
    dearer = {"destinations-0-country": "DE", "destinations-0-cost": "4", "destinations-1-country": "FR", "destinations-1-cost": "2.01"}
    response = client.post(f"/campaigns/{campaign.slug}/addons/{addon.id}/edit", data=_form_of(_addon(addon.id), **dearer))
    assert response.status_code == 422 and "cannot cost more than" in response.get_data(as_text=True)
    assert snapshot(*OFFER_TABLES) == before


def test_a_submitted_campaigns_add_ons_are_frozen(app, client):
    creator = make_user("creator@example.com")
    campaign = build_campaign(creator, tiers=1)
    addon = _offer(campaign, creator)
    services.submit(campaign, creator)
    login(client, creator.email)
    before = snapshot(*OFFER_TABLES)
    response = client.post(f"/campaigns/{campaign.slug}/addons/{addon.id}/edit", data=_form_of(addon, title="Changed"))
    assert response.status_code == 302 and "cannot be changed while" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert client.post(f"/campaigns/{campaign.slug}/addons/new", data=ADDON_FORM).status_code == 302
    assert snapshot(*OFFER_TABLES) == before


def test_the_currency_is_fixed_once_there_are_add_ons(creator, client):
    campaign = build_campaign(creator, tiers=0)
    _offer(campaign, creator)
    form = {"title": campaign.title, "blurb": campaign.blurb, "category": campaign.category, "goal": "5000", "currency": "JPY",
            "duration_days": "30", "story": campaign.story, "risks": campaign.risks}
    response = client.post(f"/campaigns/{campaign.slug}/edit", data=form)
    assert response.status_code == 422 and "add-ons" in field_block(response.get_data(as_text=True), "currency")


# --- the campaign page ---------------------------------------------------------------------------


def test_the_campaign_page_lists_add_ons_with_what_is_left(app, client):
    creator = make_user()
    campaign = build_campaign(creator, "live", tiers=1)
    deluxe = services.add_tier(campaign, creator, tier_input(2, title="Deluxe"))
    battery = _offer(campaign, creator, quantity_limit=5, ships=True, shipping_per="unit", destinations={"ZZ": 400}, tier_ids=frozenset({deluxe.id}))
    stand = _offer(campaign, creator, title="Oak stand", amount=2500, quantity_limit=2)
    _offer(campaign, creator, title="Sticker", amount=100)
    _claim(battery, 3, limit=5)
    _claim(stand, 2, limit=2)
    page = client.get(f"/campaigns/{campaign.slug}").get_data(as_text=True)
    cards = {m.group(1): m.group(0) for m in re.finditer(r'<div class="card mb-2 addon[^"]*" data-addon="(\d+)">.*?</p>\s*</div>\s*</div>', page, re.S)}
    assert "$12.00" in cards[str(battery.id)] and "2 of 5 left" in cards[str(battery.id)] and "Only with Deluxe" in cards[str(battery.id)]
    assert "Ships worldwide · shipping $4.00 (per unit)" in cards[str(battery.id)]
    assert "Sold out" in cards[str(stand.id)] and "sold-out" in cards[str(stand.id)]
    sticker = next(card for card in cards.values() if "Sticker" in card)
    assert "With every reward" in sticker and "left" not in sticker
    french = client.get(f"/campaigns/{campaign.slug}", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "Épuisé" in french or "épuisé" in french.lower()


def test_a_campaign_without_add_ons_shows_no_section(app, client):
    campaign = build_campaign(make_user(), "live", tiers=1)
    assert 'id="addons"' not in client.get(f"/campaigns/{campaign.slug}").get_data(as_text=True)


# --- claims --------------------------------------------------------------------------------------


def test_claims_never_pass_the_limit(app):
    creator = make_user()
    campaign = build_campaign(creator, "live", tiers=1)
    limited = _offer(campaign, creator, quantity_limit=5)
    unlimited = _offer(campaign, creator, title="Sticker")
    assert services.claim_addon(limited.id, 3) and services.claim_addon(limited.id, 2)
    assert not services.claim_addon(limited.id, 1)
    services.release_addon(limited.id, 2)
    assert not services.claim_addon(limited.id, 3) and services.claim_addon(limited.id, 2)
    assert services.claim_addon(unlimited.id, 1000)
    db.session.commit()
    assert (_addon(limited.id).claimed, _addon(unlimited.id).claimed) == (5, 1000)
    with pytest.raises(ValueError):
        services.claim_addon(unlimited.id, 0)
    services.release_addon(unlimited.id, 1000)
    db.session.commit()
    services.delete_addon(campaign, creator, _addon(unlimited.id))
    assert not services.claim_addon(unlimited.id, 1)  # a removed add-on is no longer on offer


BACKERS = 50
LIMIT = 5


def test_fifty_concurrent_claims_on_an_add_on_of_five(app: Flask):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the concurrency test runs on PostgreSQL (SQLite serialises every writer)")
    creator = make_user()
    campaign = build_campaign(creator, "live", tiers=1)
    addon_id = _offer(campaign, creator, quantity_limit=LIMIT).id  # read here: the test's session is not for the racers
    start = threading.Barrier(BACKERS)

    def claim(_n: int) -> bool:
        with app.app_context():  # each racer its own session and connection, as a request would have
            start.wait()
            won = services.claim_addon(addon_id, 1)
            db.session.commit()
            db.session.remove()
            return won

    with ThreadPoolExecutor(max_workers=BACKERS) as pool:
        results = list(pool.map(claim, range(BACKERS)))
    assert results.count(True) == LIMIT
    assert _addon(addon_id).claimed == LIMIT
