"""Shipping addresses (issue 17, SPEC §14): the form and the checks each country's postal data asks
for (France, the US, China, Japan, Germany), the destination paid for, phones, who may read an
address (backer; creator and moderators after success only) and its erasure."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from app import clock
from app.campaigns.models import Campaign, CampaignState
from app.extensions import db
from app.fulfillment import addresses
from app.fulfillment.addresses import AddressError, AddressNotAllowed
from app.fulfillment.models import ErasureReason, ShippingAddress
from app.pledges.models import Pledge
from app.settlement import services as settlement
from tests.factories import make_campaign, make_user
from tests.test_pledges import backer
from tests.test_pledges_composition import _pledge, make_shop

PARIS = {"name": "Amélie Poulain", "line1": "15 rue des Trois Frères", "line2": "", "city": "Paris",
         "postal_code": "75018", "country": "FR", "phone": ""}


@pytest.fixture
def reader(app):
    """A request in English (tests that want another language force it)."""
    with app.test_request_context(), force_locale("en"):
        yield


def _errors(data: dict, paid: str | None) -> dict[str, str]:
    with pytest.raises(AddressError) as caught:
        addresses.validate(data, paid)
    return caught.value.errors


# --- the form and the checks, per country --------------------------------------------------------

def test_france_postal_code_and_required_fields(reader):
    clean = addresses.validate(PARIS, "FR")
    assert (clean.city, clean.postal_code, clean.region, clean.country) == ("PARIS", "75018", "", "FR")
    assert _errors({**PARIS, "postal_code": "7501"}, "FR") == {
        "postal_code": "This postal code is not valid for France (for example: 33380)."}
    errors = _errors({"country": "FR", "line2": "Bâtiment B"}, "FR")
    assert errors == {"name": "Enter the name of the person who receives the parcel.", "line1": "Enter the street address.",
                      "city": "Enter the city.", "postal_code": "Enter the postal code."}
    spec = addresses.form_spec("FR", "en")
    assert [f.name for f in spec.fields] == ["name", "line1", "line2", "postal_code", "city", "phone"]
    assert {f.name for f in spec.fields if f.required} == {"name", "line1", "postal_code", "city"}


def test_what_was_typed_comes_back_with_the_errors(reader):
    with pytest.raises(AddressError) as caught:
        addresses.validate({**PARIS, "name": "  Amélie \n Poulain ", "postal_code": "abc"}, "FR")
    assert caught.value.data["name"] == "Amélie Poulain" and caught.value.data["postal_code"] == "abc"
    assert _errors({**PARIS, "line1": "x" * 201}, "FR") == {"line1": "Keep this under 200 characters."}


def test_the_us_needs_a_state_from_its_list(reader):
    spec = addresses.form_spec("US", "en")
    assert [f.name for f in spec.fields] == ["name", "line1", "line2", "city", "region", "postal_code", "phone"]
    state = spec.field("region")
    assert state.label == "State" and state.required and ("CA", "California") in state.choices
    assert spec.field("postal_code").label == "ZIP code" and spec.field("region").autocomplete == "address-level1"
    home = {"name": "Bo Backer", "line1": "1 Main St", "city": "Springfield", "postal_code": "62701", "country": "US"}
    assert _errors(home, "US") == {"region": "Choose the region from the list."}
    assert _errors({**home, "region": "Atlantis"}, "US") == {"region": "Choose the region from the list."}
    assert addresses.validate({**home, "region": "illinois"}, "US").region == "IL"
    assert _errors({**home, "region": "IL", "postal_code": "6270"}, "US")["postal_code"].startswith(
        "This postal code is not valid for United States")


def test_china_and_japan_take_their_order_and_names_from_the_data(reader):
    chinese = addresses.form_spec("CN", "zh_Hans_CN")
    # The local order: postal code, province, city, street … the recipient last.
    assert [f.name for f in chinese.fields] == ["postal_code", "region", "city", "line1", "line2", "name", "phone"]
    assert ("广东省", "广东省") in chinese.field("region").choices and chinese.country_name == "中国"
    # A foreign reader gets the Latin order and names; the stored value stays the data's key.
    assert [f.name for f in addresses.form_spec("CN", "en").fields][:2] == ["name", "line1"]
    japan = addresses.form_spec("JP", "en")
    assert [f.name for f in japan.fields] == ["name", "line1", "line2", "region", "postal_code", "phone"]  # no city line
    assert japan.field("region").label == "Prefecture" and ("東京都", "Tokyo") in japan.field("region").choices
    clean = addresses.validate({"name": "Taro Yamada", "line1": "1-1 Chiyoda", "region": "Tokyo",
                                "postal_code": "100-0001", "country": "JP"}, "JP")
    assert clean.region == "東京都" and clean.city == ""


def test_canada_names_its_provinces_in_french_for_a_french_reader(reader):
    assert ("BC", "Colombie-Britannique") in addresses.form_spec("CA", "fr").field("region").choices
    assert ("BC", "British Columbia") in addresses.form_spec("CA", "en").field("region").choices
    with force_locale("fr"):
        assert addresses.form_spec("US").field("region").label == "État"
        assert addresses.form_spec("FR").field("postal_code").label == "Code postal"


def test_germany_has_no_region(reader):
    spec = addresses.form_spec("DE", "en")
    assert spec.field("region") is None and spec.country_name == "Germany"
    clean = addresses.validate({"name": "Max Muster", "line1": "Hauptstr. 1", "city": "Berlin", "postal_code": "10115",
                                "region": "Brandenburg", "country": "DE"}, "DE")
    assert clean.region == "" and clean.city == "BERLIN"
    assert "postal_code" in _errors({"name": "Max", "line1": "Hauptstr. 1", "city": "Berlin", "postal_code": "1011"}, "DE")


def test_only_the_destination_paid_for(reader, app):
    assert _errors({**PARIS, "country": "DE"}, "FR") == {
        "country": "Your pledge paid shipping to France: the address must be in France."}
    assert set(_errors(PARIS, None)) == {"country"}
    # The country defaults to the one paid for.
    assert addresses.validate({**PARIS, "country": ""}, "FR").country == "FR"
    with force_locale("fr"):
        assert _errors({**PARIS, "country": "DE"}, "FR")["country"] == (
            "Votre contribution a payé la livraison vers ce pays\u00a0: France. L’adresse doit s’y trouver.")


def test_phones_are_checked_and_kept_in_e164(reader):
    assert addresses.validate({**PARIS, "phone": "06 12 34 56 78"}, "FR").phone == "+33612345678"
    assert addresses.validate({**PARIS, "phone": "+1 (212) 555-0100"}, "FR").phone == "+12125550100"
    assert addresses.validate({**PARIS, "phone": "  "}, "FR").phone == ""
    for bad in ("12", "not a phone", "+33 1"):
        assert set(_errors({**PARIS, "phone": bad}, "FR")) == {"phone"}


# --- saving, reading, erasing --------------------------------------------------------------------

@dataclass
class Shipped:
    campaign: Campaign
    pledge: Pledge
    other: Pledge  # another backer's pledge to the same campaign


@pytest.fixture
def shipped(app, localstripe) -> Shipped:
    """A funded campaign with two collected pledges of a lamp shipped to France."""
    shop = make_shop()
    tag = uuid.uuid4().hex[:8]
    pledges = []
    for n in range(2):
        client = app.test_client()
        backer(client, f"address-backer-{n}-{tag}@example.com")
        pledges.append(_pledge(client, localstripe, shop, tier=str(shop.lamp.id), country="fr", total="5600"))
    # Before the deadline nobody gives an address: the pledge is not collected yet.
    with pytest.raises(AddressNotAllowed):
        addresses.save_address(pledges[0], pledges[0].backer, PARIS)
    clock.set_offset(timedelta(days=31))
    settlement.run_pass()
    db.session.expire_all()
    first, second = (db.session.get(Pledge, pledge.id) for pledge in pledges)
    assert first.state == second.state == "collected" and first.campaign.state == "successful"
    return Shipped(first.campaign, first, second)


def test_the_backer_saves_and_changes_the_address(app, shipped):
    with app.test_request_context(), force_locale("en"):
        address = addresses.save_address(shipped.pledge, shipped.pledge.backer, PARIS)
        assert (address.name, address.city, address.country) == ("Amélie Poulain", "PARIS", "FR")
        addresses.save_address(shipped.pledge, shipped.pledge.backer, {**PARIS, "line2": "Escalier C", "phone": "0612345678"})
        assert db.session.scalar(select(func.count()).select_from(ShippingAddress)) == 1
        db.session.expire_all()
        address = db.session.get(ShippingAddress, address.id)
        assert address.line2 == "Escalier C" and address.phone == "+33612345678"
        with pytest.raises(AddressNotAllowed):  # someone else's pledge
            addresses.save_address(shipped.other, shipped.pledge.backer, PARIS)
        with pytest.raises(AddressError):
            addresses.save_address(shipped.pledge, shipped.pledge.backer, {**PARIS, "country": "DE"})


def test_who_may_read_an_address(app, shipped):
    with app.test_request_context(), force_locale("en"):
        address = addresses.save_address(shipped.pledge, shipped.pledge.backer, PARIS)
    creator = shipped.campaign.creator
    moderator = make_user(moderator=True)
    stranger = make_user()
    elsewhere = make_campaign(make_user(), "live").creator
    assert addresses.address_for(shipped.pledge, shipped.pledge.backer).id == address.id
    assert addresses.address_for(shipped.pledge, creator).id == address.id
    assert addresses.address_for(shipped.pledge, moderator).id == address.id
    for viewer in (stranger, elsewhere, shipped.other.backer, None):
        assert addresses.address_for(shipped.pledge, viewer) is None
    # Before success (or were it ever to leave it), the creator and moderators see nothing; the backer still does.
    shipped.campaign.state = CampaignState.LIVE
    db.session.commit()
    assert addresses.address_for(shipped.pledge, creator) is None
    assert addresses.address_for(shipped.pledge, moderator) is None
    assert addresses.address_for(shipped.pledge, shipped.pledge.backer).id == address.id


def _saved(app, shipped) -> tuple[ShippingAddress, ShippingAddress]:
    with app.test_request_context(), force_locale("en"):
        return (addresses.save_address(shipped.pledge, shipped.pledge.backer, {**PARIS, "phone": "0612345678"}),
                addresses.save_address(shipped.other, shipped.other.backer, PARIS))


def _is_blank(address: ShippingAddress) -> bool:
    return all(getattr(address, name) == "" for name in addresses.PERSONAL)


def test_erasing_one_address_keeps_the_row(app, shipped):
    mine, theirs = _saved(app, shipped)
    addresses.erase(mine, ErasureReason.REQUEST)
    db.session.expire_all()
    mine, theirs = db.session.get(ShippingAddress, mine.id), db.session.get(ShippingAddress, theirs.id)
    assert _is_blank(mine) and mine.country == "FR" and mine.erased_at is not None
    assert mine.erased_reason == "request" and mine.erased
    assert theirs.name == "Amélie Poulain" and not theirs.erased
    # Still there for the backer's page to say when it went.
    assert addresses.address_for(shipped.pledge, shipped.pledge.backer).erased


def test_addresses_go_retention_days_after_delivery(app, shipped, runner):
    mine, theirs = _saved(app, shipped)
    assert app.config["ADDRESS_RETENTION_DAYS"] == 90
    addresses.mark_delivered(mine, clock.utcnow())
    addresses.mark_delivered(theirs, clock.utcnow() + timedelta(days=10))
    assert addresses.erase_due() == 0  # nothing delivered long enough ago
    clock.advance(timedelta(days=90, hours=1))
    assert addresses.erase_due() == 1
    mine, theirs = db.session.get(ShippingAddress, mine.id), db.session.get(ShippingAddress, theirs.id)
    assert _is_blank(mine) and mine.erased_reason == "delivered" and not theirs.erased
    clock.advance(timedelta(days=10))
    assert runner.invoke(args=["addresses", "erase-due"]).output == "1 addresses erased\n"
    assert addresses.erase_due() == 0
    assert db.session.get(ShippingAddress, theirs.id).erased


def test_a_member_erases_all_their_addresses(app, shipped):
    mine, theirs = _saved(app, shipped)
    assert addresses.erase_for_member(shipped.pledge.backer) == 1
    assert addresses.erase_for_member(shipped.pledge.backer, ErasureReason.ACCOUNT) == 0  # already erased
    mine, theirs = db.session.get(ShippingAddress, mine.id), db.session.get(ShippingAddress, theirs.id)
    assert _is_blank(mine) and mine.erased_reason == "request"
    assert not theirs.erased and theirs.phone == ""
