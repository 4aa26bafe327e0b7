"""The pledge as a composition (issue 15 part B, SPEC §12): reward + add-ons + shipping + bonus.

The arithmetic (property-based, in zero- and two-decimal currencies), the form's bad input, pledges
through the real pages and localstripe, edits that move a pledge between destinations and add-ons,
claims given back, the composed total charged at the deadline and shown in the money report.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from app import clock, money
from app.campaigns import services as campaigns
from app.campaigns import totals
from app.campaigns.models import Addon, Campaign, Tier
from app.extensions import db
from app.notifications.models import OutboxMessage
from app.pledges import composition
from app.pledges import services as pledges
from app.pledges.models import Pledge, PledgeAddon
from app.settlement import services as settlement
from tests.factories import login, make_campaign, make_user
from tests.localstripe_fixture import CARD_OK, browser_confirm_setup
from tests.test_pledges import JSON, backer
from tests.test_settlement import _intents, _past_deadline

# --- the arithmetic, without a database ------------------------------------------------------


@dataclass(frozen=True)
class Dest:
    country: str
    cost: int


@dataclass(eq=False)
class Item:
    amount: int
    ships: bool
    destinations: list[Dest]
    id: int = 0
    shipping_per: str = "unit"
    title: str = "item"


COUNTRIES = ["FR", "DE", "US", "JP", "ZZ"]
costs = st.integers(0, 10**6)
destination_lists = st.dictionaries(st.sampled_from(COUNTRIES), costs, max_size=4).map(
    lambda rows: [Dest(code, cost) for code, cost in rows.items()])


@st.composite
def offers(draw):
    tier = draw(st.none() | st.builds(Item, amount=st.integers(1, 10**7), ships=st.booleans(), destinations=destination_lists))
    addons = {
        Item(amount=draw(st.integers(1, 10**6)), ships=draw(st.booleans()), destinations=draw(destination_lists), id=n,
             shipping_per=draw(st.sampled_from(["unit", "pledge"]))): draw(st.integers(0, 50))
        for n in range(1, draw(st.integers(0, 4)) + 1)
    }
    return tier, addons, draw(st.sampled_from(["FR", "DE", "US", "JP", "BR"])), draw(st.integers(0, 10**6)), draw(st.integers(1, 10**7))


def _by_hand(item: Item, country: str) -> int | None:
    rows = {d.country: d.cost for d in item.destinations}
    return rows.get(country, rows.get("ZZ"))


@given(offers())
@settings(max_examples=300, deadline=None)
def test_total_is_the_sum_of_the_parts_for_any_mix(offer):
    tier, quantities, country, bonus, amount = offer
    reward = tier.amount if tier else amount
    shipping_items = ([tier] if tier and tier.ships else []) + [a for a, q in quantities.items() if q and a.ships]
    if any(_by_hand(item, country) is None for item in shipping_items):
        with pytest.raises(composition.NoShipping):
            composition.compose(reward, tier, quantities, country, bonus)
        return
    result = composition.compose(reward, tier, quantities, country, bonus)
    addons = sum(a.amount * q for a, q in quantities.items())
    shipping = sum(_by_hand(a, country) * (q if a.shipping_per == "unit" else 1) for a, q in quantities.items() if q and a.ships)
    shipping += _by_hand(tier, country) if tier and tier.ships else 0
    assert (result.reward, result.addons, result.shipping, result.bonus) == (reward, addons, shipping, bonus)
    assert result.total == reward + addons + shipping + bonus
    assert all(isinstance(part, int) for part in (result.total, result.shipping, result.addons))
    assert result.country == (country if shipping_items else None)
    assert [line.addon_id for line in result.addon_lines] == sorted(a.id for a, q in quantities.items() if q)


def test_nothing_ships_without_a_country():
    tier = Item(amount=1000, ships=True, destinations=[Dest("ZZ", 0)])
    with pytest.raises(composition.NoShipping):
        composition.compose(1000, tier, {}, None, 0)
    assert composition.compose(1000, Item(amount=1000, ships=False, destinations=[]), {}, None, 0).total == 1000


# --- a campaign that ships -------------------------------------------------------------------

@dataclass
class Shop:
    campaign: Campaign
    lamp: Tier  # ships to France and Germany
    poster: Tier  # digital: ships nowhere
    battery: Addon  # ships per unit, everywhere; limited to 3
    stand: Addon  # ships once per pledge, France only; only with the lamp
    extras: dict = field(default_factory=dict)


def make_shop(currency: str = "EUR", factor: int = 100) -> Shop:
    """A live campaign (prices in `currency`, `factor` minor units per euro-like unit)."""
    creator = make_user(f"creator-{currency.lower()}@example.com")
    campaign = make_campaign(creator, "live", tiers=1, currency=currency, goal=100 * factor, title=f"Lamp {currency}")
    lamp = campaigns.add_tier(campaign, creator, campaigns.TierInput(
        title="Lamp", description="A lamp.", amount=50 * factor, quantity_limit=None, estimated_delivery=date(2030, 1, 1),
        shipping_note="", ships=True, destinations={"FR": 6 * factor, "DE": 9 * factor}))
    poster = campaigns.add_tier(campaign, creator, campaigns.TierInput(
        title="Poster", description="A PDF.", amount=10 * factor, quantity_limit=None, estimated_delivery=None, shipping_note=""))
    battery = campaigns.add_addon(campaign, creator, campaigns.AddonInput(
        title="Battery", description="", amount=12 * factor, quantity_limit=3, ships=True, shipping_per="unit",
        destinations={"ZZ": 2 * factor, "FR": 1 * factor}))
    stand = campaigns.add_addon(campaign, creator, campaigns.AddonInput(
        title="Stand", description="", amount=20 * factor, quantity_limit=None, ships=True, shipping_per="pledge",
        tier_ids=frozenset({lamp.id}), destinations={"FR": 5 * factor}))
    db.session.expire_all()
    return Shop(db.session.get(Campaign, campaign.id), db.session.get(Tier, lamp.id), db.session.get(Tier, poster.id),
                db.session.get(Addon, battery.id), db.session.get(Addon, stand.id))


@pytest.fixture
def shop(app, localstripe) -> Shop:
    return make_shop()


def _post(client, shop: Shop, **data):
    return client.post(f"/campaigns/{shop.campaign.slug}/pledge", data=data, headers=JSON)


def _pledge(client, localstripe, shop: Shop, **data) -> Pledge:
    response = _post(client, shop, **data)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    setup_id = body["client_secret"].split("_secret_")[0]
    assert browser_confirm_setup(localstripe, setup_id, CARD_OK) == "succeeded"
    assert client.post(body["confirm_url"], data={"setup_intent": setup_id}).status_code == 302
    db.session.expire_all()
    return db.session.scalar(select(Pledge).where(Pledge.setup_intent_id == setup_id))


def _claimed(*addons: Addon) -> list[int]:
    db.session.expire_all()
    return [db.session.get(Addon, a.id).claimed for a in addons]


def test_a_reward_with_add_ons_shipped_to_france(app, client, localstripe, shop):
    backer(client)
    data = {"tier": str(shop.lamp.id), "bonus": "5", f"addons-{shop.battery.id}": "2", f"addons-{shop.stand.id}": "1", "country": "fr"}
    # 50 lamp + 2 × 12 batteries + 20 stand + shipping (6 lamp + 2 × 1 batteries + 5 stand) + 5 bonus
    expected = 5000 + 2400 + 2000 + (600 + 200 + 500) + 500
    pledge = _pledge(client, localstripe, shop, **data, total=str(expected))
    assert pledge.state == "active" and pledge.amount == expected == 11200
    assert (pledge.reward_amount, pledge.addons_amount, pledge.shipping_amount, pledge.bonus_amount) == (5000, 4400, 1300, 500)
    assert pledge.country == "FR" and pledge.addon_quantities() == {shop.battery.id: 2, shop.stand.id: 1}
    assert [(line.unit_amount, line.shipping_amount) for line in pledge.addons] == [(1200, 200), (2000, 500)]
    assert pledge.reward_shipping == 600
    assert _claimed(shop.battery, shop.stand) == [2, 1]
    page = client.get(f"/pledges/{pledge.id}").get_data(as_text=True)
    for text in ("Battery × 2", "€24.00", "Shipping to France", "€13.00", "Bonus support", "€5.00", "€112.00"):
        assert text in page, text
    mail = db.session.scalar(select(OutboxMessage.body).where(OutboxMessage.kind == "pledge_confirmed"))
    assert "Stand × 1: €20.00" in mail and "Shipping to France: €13.00" in mail and "Total: €112.00" in mail
    assert "Battery × 2" in client.get("/me/pledges").get_data(as_text=True)


def test_the_confirmation_says_what_happens_at_the_deadline_and_offers_sharing(app, client, localstripe, shop):
    """After the card is saved the backer lands on their pledge (issue 18, defect 9): its parts, total and
    card; the deadline in their zone with the UTC on hover, what is charged then and what if the goal is
    missed; how to change or cancel before it; and the campaign's share links (plain links, no scripts)."""
    backer(client)
    data = {"tier": str(shop.lamp.id), f"addons-{shop.battery.id}": "1", "country": "fr"}
    response = _post(client, shop, **data)
    body = response.get_json()
    setup_id = body["client_secret"].split("_secret_")[0]
    assert browser_confirm_setup(localstripe, setup_id, CARD_OK) == "succeeded"
    confirmed = client.post(body["confirm_url"], data={"setup_intent": setup_id}, follow_redirects=True)
    page = confirmed.get_data(as_text=True)
    pledge = db.session.scalar(select(Pledge).where(Pledge.setup_intent_id == setup_id))
    total = money.format_money(pledge.amount, "EUR", "en")
    for text in ("Lamp", "Battery × 1", "Shipping to France", total, "···· 4242"):
        assert text in page, text
    deadline = shop.campaign.deadline.strftime("%Y-%m-%d %H:%M UTC")
    assert (f'If the campaign reaches its goal by <time datetime="{shop.campaign.deadline:%Y-%m-%dT%H:%M:%SZ}" '
            f'title="{deadline}">') in page
    assert f"your card is charged {total} then; if not, nothing is charged." in page
    assert f'href="/pledges/{pledge.id}/edit"' in page and f'action="/pledges/{pledge.id}/cancel"' in page
    share = page.split('class="card mb-3 share-panel"')[1].split("</section>")[0]
    assert f"/campaigns/{shop.campaign.slug}" in share and 'class="share-email" href="mailto:' in share
    assert 'href="https://twitter.com/intent/tweet?url=' in share
    assert "<script" not in share and "share.js" in page  # our own script adds the copy button
    # In French the same promise, in French words and the French way of writing euros.
    french = client.get(f"/pledges/{pledge.id}", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "Si la campagne atteint son objectif" in french and money.format_money(pledge.amount, "EUR", "fr") in french
    # Once the campaign has ended there is nothing to change and nothing to share from here.
    shop.campaign.deadline = clock.utcnow().replace(tzinfo=None) - timedelta(hours=1)
    db.session.commit()
    ended = client.get(f"/pledges/{pledge.id}").get_data(as_text=True)
    assert "What happens at the deadline" not in ended and "share-panel" not in ended


def test_the_form_shows_the_offer_and_only_the_countries_shipped_to(app, client, shop):
    backer(client)
    page = client.get(f"/campaigns/{shop.campaign.slug}/pledge?tier={shop.lamp.id}").get_data(as_text=True)
    assert f'name="addons-{shop.battery.id}"' in page and f'name="addons-{shop.stand.id}"' in page
    assert 'id="pledge-offer"' in page and 'name="total"' in page
    # The battery ships to the rest of the world, so every country can be chosen (the script narrows it per choice).
    assert '<option value="BR">Brazil</option>' in page and '<option value="FR">France</option>' in page
    offer = pledges.offer_for_script(shop.campaign)
    assert offer["tiers"][str(shop.lamp.id)]["to"] == {"DE": 900, "FR": 600} and offer["tiers"][str(shop.poster.id)]["ships"] is False
    assert offer["addons"][str(shop.stand.id)]["tiers"] == [shop.lamp.id] and offer["addons"][str(shop.battery.id)]["tiers"] is None


def _nothing_saved() -> None:
    assert db.session.scalar(select(func.count()).select_from(Pledge)) == 0
    assert db.session.scalar(select(func.count()).select_from(PledgeAddon)) == 0


@pytest.mark.parametrize("change, field, message", [
    ({"country": "XX"}, "country", "Choose a country from the list."),
    ({"country": "US"}, "country", "This reward does not ship to United States."),
    ({"country": ""}, "country", "Choose the country your reward ships to."),
    ({"addons-{battery}": "-1"}, "addons-{battery}", "Enter a whole number of units, 0 or more."),
    ({"addons-{battery}": "1.5"}, "addons-{battery}", "Enter a whole number of units, 0 or more."),
    ({"addons-{battery}": "4"}, "addons-{battery}", "Only 3 are left."),
    ({"tier": "{poster}", "addons-{stand}": "1"}, "addons-{stand}", "“Stand” cannot be added to this reward."),
    ({"addons-{other}": "1"}, "_", "This add-on is not offered by this campaign."),  # no such field on the page
    ({"addons-{stand}": "1", "country": "DE"}, "addons-{stand}", "“Stand” does not ship to Germany."),
    ({"bonus": "1.234"}, "bonus", "Use at most 2 decimal places."),
    ({"bonus": "9999999"}, "total", "The total may be at most"),
    ({"total": "1"}, "total", "The total is now €56.00, not what the page showed"),
    ({"total": "abc"}, "total", "The total is now €56.00"),
])
def test_bad_input_is_refused_next_to_its_field(app, client, shop, change, field, message):
    backer(client)
    other = make_shop("USD").battery
    ids = {"battery": shop.battery.id, "stand": shop.stand.id, "poster": shop.poster.id, "other": other.id}
    data = {"tier": str(shop.lamp.id), "bonus": "", "country": "FR"}
    data.update({key.format(**ids): value.format(**ids) for key, value in change.items()})
    response = _post(client, shop, **data)
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert message in " ".join(errors.get(field.format(**ids), [])), errors
    _nothing_saved()
    # Without the script: the same message on the page, next to the field, with what was typed kept.
    page = client.post(f"/campaigns/{shop.campaign.slug}/pledge", data=data)
    assert page.status_code == 422
    html = page.get_data(as_text=True)
    assert message.replace("“", "&#8220;")[:20] in html or message[:20] in html.replace("&#34;", '"')
    if field == "bonus":
        assert 'value="1.234"' in html
    _nothing_saved()


def test_fractional_yen_and_yen_totals(app, client, localstripe):
    shop = make_shop("JPY", factor=1)
    backer(client)
    response = _post(client, shop, tier=str(shop.lamp.id), bonus="1.5", country="FR")
    assert "JPY has no cents" in str(response.get_json()["errors"]["bonus"])
    pledge = _pledge(client, localstripe, shop, tier=str(shop.lamp.id), bonus="3", country="DE", **{f"addons-{shop.battery.id}": "1"})
    assert pledge.amount == 50 + 9 + 12 + 2 + 3 and pledge.currency == "JPY"


def test_the_reward_alone_and_the_older_form(app, client, localstripe, shop):
    backer(client)
    # A client that sends the reward and its bonus as one `amount` (the form before add-ons): split.
    pledge = _pledge(client, localstripe, shop, tier=str(shop.poster.id), amount="15")
    assert (pledge.amount, pledge.reward_amount, pledge.bonus_amount, pledge.country) == (1500, 1000, 500, None)
    assert _post(client, shop, tier=str(shop.poster.id), amount="5").status_code == 422


def test_no_reward_with_an_add_on_for_every_tier(app, client, localstripe, shop):
    backer(client)
    pledge = _pledge(client, localstripe, shop, tier="", amount="7", country="BR", **{f"addons-{shop.battery.id}": "1"})
    # The battery ships to Brazil as the rest of the world.
    assert (pledge.reward_amount, pledge.addons_amount, pledge.shipping_amount, pledge.amount) == (700, 1200, 200, 2100)


def test_edits_move_between_destinations_and_add_ons(app, client, localstripe, shop):
    backer(client)
    pledge = _pledge(client, localstripe, shop, tier=str(shop.lamp.id), country="FR",
                     **{f"addons-{shop.battery.id}": "2", f"addons-{shop.stand.id}": "1"})
    assert pledge.amount == 5000 + 2400 + 2000 + 600 + 200 + 500
    campaign_total = totals.of(db.session.get(Campaign, shop.campaign.id)).pledged
    # To Germany: the stand does not ship there, so it is refused, and nothing changes.
    response = client.post(f"/pledges/{pledge.id}/edit", data={"tier": str(shop.lamp.id), "country": "DE", "bonus": "",
                                                                f"addons-{shop.battery.id}": "2", f"addons-{shop.stand.id}": "1"})
    assert response.status_code == 422 and "does not ship to Germany" in response.get_data(as_text=True)
    # To Germany without the stand, with one battery more: claims follow by difference.
    response = client.post(f"/pledges/{pledge.id}/edit", data={"tier": str(shop.lamp.id), "country": "DE", "bonus": "1",
                                                                f"addons-{shop.battery.id}": "3", f"addons-{shop.stand.id}": "0"})
    assert response.status_code == 302
    db.session.expire_all()
    pledge = db.session.get(Pledge, pledge.id)
    assert pledge.country == "DE" and pledge.addon_quantities() == {shop.battery.id: 3}
    assert pledge.amount == 5000 + 3600 + 900 + 3 * 200 + 100
    assert _claimed(shop.battery, shop.stand) == [3, 0]
    assert totals.of(db.session.get(Campaign, shop.campaign.id)).pledged == campaign_total - (10700 - pledge.amount)
    # Another backer finds the batteries gone.
    other = app.test_client()
    backer(other, "second@example.com")
    response = _post(other, shop, tier=str(shop.lamp.id), country="FR", bonus="", **{f"addons-{shop.battery.id}": "1"})
    assert response.status_code == 422 and "Sold out." in str(response.get_json()["errors"])
    # To the poster (ships nowhere): the country goes, the batteries stay (offered with every tier).
    assert client.post(f"/pledges/{pledge.id}/edit", data={"tier": str(shop.poster.id), "bonus": "", "country": "DE",
                                                            f"addons-{shop.battery.id}": "1"}).status_code == 302
    db.session.expire_all()
    pledge = db.session.get(Pledge, pledge.id)
    assert (pledge.reward_amount, pledge.addons_amount, pledge.shipping_amount, pledge.country) == (1000, 1200, 200, "DE")
    assert _claimed(shop.battery) == [1]
    edit_page = client.get(f"/pledges/{pledge.id}/edit").get_data(as_text=True)
    assert f'name="addons-{shop.battery.id}"' in edit_page and 'value="1"' in edit_page
    assert "Battery × 1" in db.session.scalars(select(OutboxMessage.body).where(OutboxMessage.kind == "pledge_edited").order_by(OutboxMessage.id)).all()[-1]
    # Canceling gives every unit back.
    client.post(f"/pledges/{pledge.id}/cancel")
    assert _claimed(shop.battery) == [0]


def test_a_campaign_that_stops_frees_its_add_ons(app, client, localstripe, shop):
    backer(client)
    _pledge(client, localstripe, shop, tier=str(shop.lamp.id), country="FR", **{f"addons-{shop.battery.id}": "2"})
    pledges.release_campaign(db.session.get(Campaign, shop.campaign.id))
    assert _claimed(shop.battery) == [0]


def test_the_deadline_charges_the_composed_total(app, localstripe, shop):
    ids = []
    for n, (quantity, country) in enumerate([(1, "FR"), (2, "DE")]):
        client = app.test_client()
        backer(client, f"shipped-{n}@example.com")  # emails of its own: localstripe is shared by the session
        ids.append(_pledge(client, localstripe, shop, tier=str(shop.lamp.id), country=country, bonus="2",
                           **{f"addons-{shop.battery.id}": str(quantity)}).id)
    _past_deadline()
    settlement.run_pass()
    db.session.expire_all()
    charged = {pid: intent.amount for pid, [intent] in _intents(localstripe, ids).items()}
    first, second = (db.session.get(Pledge, pid) for pid in ids)
    assert charged == {first.id: 5000 + 1200 + 600 + 100 + 200, second.id: 5000 + 2400 + 900 + 400 + 200}
    assert first.state == second.state == "collected"
    creator = app.test_client()
    login(creator, "creator-eur@example.com")
    page = creator.get("/me/campaigns").get_data(as_text=True)
    for css, amount in (("collected-rewards", 10000), ("collected-addons", 3600), ("collected-shipping", 2000), ("collected-bonus", 400)):
        row = page.split(f'class="{css}')[1].split("</tr>")[0]
        assert money.format_money(amount, "EUR") in row, (css, row)
    rows = list(csv.reader(io.StringIO(creator.get(f"/campaigns/{shop.campaign.slug}/backers.csv").get_data(as_text=True))))
    assert rows[0][8:] == ["Reward amount", "Add-ons amount", "Shipping", "Bonus support", "Destination country",
                           "Add-on: Battery (quantity)", "Add-on: Stand (quantity)"]
    assert sorted(row[8:] for row in rows[1:]) == [["50.00", "12.00", "7.00", "2.00", "FR", "1", "0"],
                                                   ["50.00", "24.00", "13.00", "2.00", "DE", "2", "0"]]
    assert clock.utcnow() > shop.campaign.deadline


def test_the_service_adds_up_what_was_typed(app):
    """Through the form's service with a real campaign: typed amounts in a zero- or two-decimal
    currency, any mix — the total is the sum of the stored parts, each in minor units."""
    shops = {"EUR": (make_shop("EUR"), 100), "JPY": (make_shop("JPY", factor=1), 1)}

    @settings(max_examples=40, deadline=None)
    @given(currency=st.sampled_from(sorted(shops)), battery=st.integers(0, 3), stand=st.integers(0, 2),
           country=st.sampled_from(["FR", "DE"]), bonus=st.integers(0, 10**4))
    def check(currency, battery, stand, country, bonus):
        shop, factor = shops[currency]
        stand = stand if country == "FR" else 0  # the stand ships to France only
        typed_bonus = money.to_input(bonus, currency)
        choice = pledges.Choice(tier_id=shop.lamp.id, bonus=money.parse(typed_bonus, currency, "en"),
                                quantities={k: v for k, v in {shop.battery.id: battery, shop.stand.id: stand}.items() if v}, country=country)
        _tier, result = pledges.compose(shop.campaign, choice)
        lamp_shipping = {"FR": 6, "DE": 9}[country] * factor
        battery_part = (12 + {"FR": 1, "DE": 2}[country]) * factor * battery
        stand_part = (20 * stand + 5) * factor if stand else 0  # its shipping once per pledge, whatever the quantity
        assert result.total == 50 * factor + lamp_shipping + battery_part + stand_part + bonus
        assert result.total == result.reward + result.addons + result.shipping + result.bonus

    check()
