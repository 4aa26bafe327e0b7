"""Fulfillment (issue 17, SPEC §14): a funded campaign's items (reward and add-on lines), their state
table, shipping and the backer's mail, delivery by the backer or 60 days later, problems and their
thread, the address's retention clock, the tracking CSV import (dry run and every refusal, nothing
applied) and the shipping export; the pages and who may use them."""
from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from app import clock
from app.campaigns.models import CampaignEvent
from app.extensions import db
from app.fulfillment import addresses, shipments, surveys
from app.fulfillment.models import FulfillmentEvent, FulfillmentItem, ProblemMessage, ShippingAddress
from app.fulfillment.shipments import NotAllowed, ShipmentError
from app.fulfillment.surveys import QuestionInput
from app.notifications.models import OutboxMessage
from app.pledges.models import Pledge
from tests import test_fulfillment_surveys as survey_tests
from tests.factories import fresh_email, login, make_user
from tests.test_fulfillment_addresses import PARIS
from tests.test_fulfillment_surveys import Funded


@pytest.fixture
def funded(app, localstripe) -> Funded:
    """The survey tests' funded campaign: four collected pledges, tiers, add-ons, one shipping nothing."""
    return survey_tests.funded.__wrapped__(app, localstripe)


@pytest.fixture
def en(app):
    with app.test_request_context(), force_locale("en"):
        yield


def _items(funded: Funded) -> dict[str, FulfillmentItem]:
    """Every item by "<pledge name>:<item>" (battery:addon, stand:addon for the add-on lines)."""
    shipments.ensure_items(funded.shop.campaign)
    found = {}
    for name in ("lamp", "battery", "poster", "stand"):
        pledge = getattr(funded, name)
        for item in shipments.items_of_pledge(pledge):
            found[f"{name}:{'reward' if item.item == 'reward' else 'addon'}"] = item
    return found


def _today() -> date:
    return clock.utcnow().date()


def _refused(call, *args, **kwargs) -> ShipmentError:
    with pytest.raises(ShipmentError) as caught:
        call(*args, **kwargs)
    return caught.value


def _mails(kind: str) -> list[str]:
    return list(db.session.scalars(select(OutboxMessage.recipient).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)))


# --- items and their state table -----------------------------------------------------------------

def test_items_are_made_once_reward_and_each_add_on(funded, en):
    campaign = funded.shop.campaign
    assert shipments.ensure_items(campaign) == 6  # four rewards, a battery line, a stand line
    assert shipments.ensure_items(campaign) == 0
    assert shipments.ensure_missing() == 0
    items = _items(funded)
    assert sorted(items) == ["battery:addon", "battery:reward", "lamp:reward", "poster:reward", "stand:addon", "stand:reward"]
    assert items["battery:addon"].item == f"addon-{funded.shop.battery.id}" and items["battery:addon"].quantity == 1
    assert shipments.item_name(items["stand:reward"]) == "Lamp"
    assert shipments.counts(campaign) == {"not_started": 6, "shipped": 0, "delivered": 0, "problem": 0}


def test_a_live_campaign_has_no_items(app, en):
    from tests.test_pledges_composition import make_shop

    shop = make_shop()
    assert shipments.ensure_items(shop.campaign) == 0


def test_illegal_moves_are_refused_with_a_message(funded, en):
    item = _items(funded)["lamp:reward"]
    for action in ("deliver", "report"):
        error = _refused(shipments.transition, item, action, None)
        assert str(error) == "This item is “Not shipped yet”, so that is not possible."
    assert str(_refused(shipments.mark_delivered, item, funded.lamp.backer)) == error.args[0]
    assert _refused(shipments.report_problem, item, funded.lamp.backer, "lost", "Where?")
    db.session.rollback()
    assert db.session.scalar(select(func.count(FulfillmentEvent.id))) == 0


# --- shipping ------------------------------------------------------------------------------------

def test_the_creator_ships_and_the_backer_is_mailed(funded, en):
    item = _items(funded)["lamp:reward"]
    shipments.ship(item, funded.creator, "La Poste", "6A12345678901", _today())
    db.session.expire_all()
    item = db.session.get(FulfillmentItem, item.id)
    assert (item.state, item.carrier, item.tracking, item.shipped_on) == ("shipped", "La Poste", "6A12345678901", _today())
    event = db.session.scalar(select(FulfillmentEvent).where(FulfillmentEvent.item_id == item.id))
    assert (event.from_state, event.to_state, event.action, event.actor_id) == ("not_started", "shipped", "ship", funded.creator.id)
    assert _mails("reward_shipped") == [funded.lamp.backer.email]
    body = db.session.scalar(select(OutboxMessage.body).where(OutboxMessage.kind == "reward_shipped"))
    assert "6A12345678901" in body and f"/pledges/{funded.lamp.id}" in body and body.startswith("Hello")
    # Shipping again corrects the tracking (a link, https only).
    shipments.ship(item, funded.creator, "La Poste", "https://www.laposte.fr/outils/suivre-vos-envois?code=6A1", _today())
    assert shipments.tracking_link(item) == "https://www.laposte.fr/outils/suivre-vos-envois?code=6A1"


@pytest.mark.parametrize("carrier, tracking, day, field, message", [
    ("", "123", 0, "carrier", "Enter the carrier."),
    ("x" * 101, "123", 0, "carrier", "Keep the carrier under 100 characters."),
    ("DHL", "", 0, "tracking", "Enter the tracking number or link."),
    ("DHL", "http://track.example/1", 0, "tracking", "A tracking link must start with https://."),
    ("DHL", "javascript:alert(1)", 0, "tracking", "A tracking number has only letters, digits, spaces and - . / _."),
    ("DHL", "1" * 501, 0, "tracking", "Keep the tracking under 500 characters."),
    ("DHL", "123", 1, "shipped_on", "The day it was shipped cannot be in the future."),
    ("DHL", "123", -40, "shipped_on", None),  # before the launch
    ("DHL", "123", "01/02/2026", "shipped_on", "Write the date as YYYY-MM-DD, for example 2026-03-01."),
    ("DHL", "123", "2026-02-30", "shipped_on", "Write the date as YYYY-MM-DD, for example 2026-03-01."),
])
def test_bad_shipments_are_refused_next_to_their_field(funded, en, carrier, tracking, day, field, message):
    item = _items(funded)["lamp:reward"]
    when = _today() + timedelta(days=day) if isinstance(day, int) else day
    error = _refused(shipments.ship, item, funded.creator, carrier, tracking, when)
    assert error.field == field
    if message:
        assert str(error) == message
    else:
        assert str(error).startswith("The day it was shipped cannot be before the campaign launched")
    db.session.rollback()
    assert db.session.get(FulfillmentItem, item.id).state == "not_started" and _mails("reward_shipped") == []


def test_only_the_creator_ships(funded, en):
    item = _items(funded)["lamp:reward"]
    for who in (funded.lamp.backer, make_user(), make_user(moderator=True)):
        assert isinstance(_refused(shipments.ship, item, who, "DHL", "1", _today()), NotAllowed)


# --- delivered: by the backer, or 60 days later ----------------------------------------------------

def test_the_backer_marks_delivered_and_the_address_clock_starts_with_the_last_item(funded, en):
    items = _items(funded)
    addresses.save_address(funded.stand, funded.stand.backer, PARIS)
    for key in ("stand:reward", "stand:addon"):
        shipments.ship(items[key], funded.creator, "DHL", "JD0001", _today())
    assert isinstance(_refused(shipments.mark_delivered, items["stand:reward"], funded.lamp.backer), NotAllowed)
    assert isinstance(_refused(shipments.mark_delivered, items["stand:reward"], funded.creator), NotAllowed)
    shipments.mark_delivered(items["stand:reward"], funded.stand.backer)
    address = db.session.scalar(select(ShippingAddress).where(ShippingAddress.pledge_id == funded.stand.id))
    assert items["stand:reward"].delivered_by == "backer" and address.delivered_at is None  # the stand is still on its way
    clock.set_offset(timedelta(days=33))
    shipments.mark_delivered(items["stand:addon"], funded.stand.backer)
    db.session.expire_all()
    address = db.session.get(ShippingAddress, address.id)
    assert address.delivered_at is not None and address.delivered_at.date() == _today()
    assert shipments.counts(funded.shop.campaign)["delivered"] == 2


def test_shipped_items_count_as_delivered_after_60_days(app, funded, en):
    items = _items(funded)
    addresses.save_address(funded.lamp, funded.lamp.backer, PARIS)
    shipments.ship(items["lamp:reward"], funded.creator, "DHL", "JD0002", _today())
    shipped_at = items["lamp:reward"].shipped_at
    assert app.config["DELIVERED_AFTER_DAYS"] == 60
    assert shipments.auto_deliver_due(shipped_at + timedelta(days=59, hours=23)) == 0
    clock.set_offset(timedelta(days=31 + 60))
    assert shipments.auto_deliver_due() == 1
    assert shipments.auto_deliver_due() == 0
    db.session.expire_all()
    item = db.session.get(FulfillmentItem, items["lamp:reward"].id)
    assert (item.state, item.delivered_by) == ("delivered", "auto")
    assert db.session.scalar(select(FulfillmentEvent.actor_id).where(FulfillmentEvent.action == "deliver")) is None
    assert db.session.scalar(select(ShippingAddress.delivered_at).where(ShippingAddress.pledge_id == funded.lamp.id)) is not None


# --- problems ------------------------------------------------------------------------------------

def test_a_problem_opens_a_thread_with_the_creator(funded, en):
    items = _items(funded)
    item = items["lamp:reward"]
    addresses.save_address(funded.lamp, funded.lamp.backer, PARIS)
    shipments.ship(item, funded.creator, "DHL", "JD0003", _today())
    shipments.mark_delivered(item, funded.lamp.backer)
    assert db.session.scalar(select(ShippingAddress.delivered_at).where(ShippingAddress.pledge_id == funded.lamp.id))
    backer = funded.lamp.backer
    assert _refused(shipments.report_problem, item, backer, "stolen", "Gone").field == "kind"
    assert _refused(shipments.report_problem, item, backer, "damaged", "   ").field == "body"
    assert isinstance(_refused(shipments.report_problem, item, funded.creator, "damaged", "Broken"), NotAllowed)
    shipments.report_problem(item, backer, "damaged", "The shade arrived cracked.")
    assert (item.state, item.problem) == ("problem", "damaged")
    # The address stays while a replacement may ship.
    assert db.session.scalar(select(ShippingAddress.delivered_at).where(ShippingAddress.pledge_id == funded.lamp.id)) is None
    shipments.reply(item, funded.creator, "Sorry! A new one is on its way.")
    assert isinstance(_refused(shipments.reply, item, make_user(), "Me too"), NotAllowed)
    moderator = make_user(moderator=True)
    assert isinstance(_refused(shipments.reply, item, moderator, "Noted"), NotAllowed)
    assert shipments.can_read_thread(item, moderator) and shipments.can_read_thread(item, backer)
    assert not shipments.can_read_thread(item, funded.battery.backer)
    thread = shipments.threads([item])[item.id]
    assert [(m.body, m.by_backer) for m in thread] == [("The shade arrived cracked.", True),
                                                        ("Sorry! A new one is on its way.", False)]
    # No thread without a problem; a replacement ships from the problem.
    assert str(_refused(shipments.reply, items["stand:reward"], funded.creator, "Hi")) == "No problem was reported for this item."
    shipments.ship(item, funded.creator, "DHL", "JD0004", _today())
    assert item.state == "shipped" and db.session.scalar(select(func.count(ProblemMessage.id))) == 2


# --- the CSV import ------------------------------------------------------------------------------

def _csv(*rows, header="pledge_id,item,carrier,tracking,shipped_on") -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def _shipped_count() -> int:
    return db.session.scalar(select(func.count(FulfillmentItem.id)).where(FulfillmentItem.state != "not_started"))


def test_the_dry_run_shows_what_would_change_and_writes_nothing(funded, en):
    _items(funded)
    today = _today().isoformat()
    data = "\ufeff".encode() + _csv(f"{funded.lamp.id},reward,La Poste,6A1,{today}",
                                    f"{funded.battery.id},addon-{funded.shop.battery.id},DHL,https://dhl.example/t?n=1,{today}")
    result = shipments.import_csv(funded.shop.campaign, funded.creator, data, apply=False)
    assert result.ok and not result.applied
    assert [(c.row, c.item.pledge_id, c.name, c.from_state, c.carrier, c.tracking) for c in result.changes] == [
        (2, funded.lamp.id, "Lamp", "not_started", "La Poste", "6A1"),
        (3, funded.battery.id, "Battery", "not_started", "DHL", "https://dhl.example/t?n=1")]
    db.session.rollback()
    assert _shipped_count() == 0 and _mails("reward_shipped") == []

    applied = shipments.import_csv(funded.shop.campaign, funded.creator, data, apply=True)
    assert applied.ok and applied.applied
    db.session.expire_all()
    assert _shipped_count() == 2
    assert sorted(_mails("reward_shipped")) == sorted([funded.lamp.backer.email, funded.battery.backer.email])


def test_one_mail_per_backer_for_several_items(funded, en):
    _items(funded)
    today = _today().isoformat()
    data = _csv(f"{funded.stand.id},reward,DHL,1,{today}", f"{funded.stand.id},addon-{funded.shop.stand.id},DHL,2,{today}")
    assert shipments.import_csv(funded.shop.campaign, funded.creator, data, apply=True).applied
    assert _mails("reward_shipped") == [funded.stand.backer.email]


def _other_campaign_pledge(app, localstripe) -> int:
    """A collected pledge of another funded campaign (by another creator)."""
    from tests.test_pledges import backer
    from tests.test_pledges_composition import _pledge, make_shop

    other = make_shop("USD")
    client = app.test_client()
    backer(client, fresh_email("other"))
    return _pledge(client, localstripe, other, tier=str(other.poster.id), total="1000").id


def test_every_refusal_applies_nothing(app, funded, en, localstripe):
    _items(funded)
    today = _today().isoformat()
    future = (_today() + timedelta(days=1)).isoformat()
    stranger = _other_campaign_pledge(app, localstripe)
    lamp, battery, poster = funded.lamp.id, funded.battery.id, funded.poster.id
    data = _csv(
        f"{lamp},reward,La Poste,6A1,{today}",  # fine
        f"999999,reward,DHL,1,{today}",  # unknown pledge
        f"{stranger},reward,DHL,1,{today}",  # another campaign's
        f"{lamp},reward,DHL,2,{today}",  # duplicate
        f"{poster},addon-{funded.shop.battery.id},DHL,3,{today}",  # an item the pledge lacks
        f"{battery},reward,DHL,4,01/03/2026",  # malformed date
        f"{funded.stand.id},reward,DHL,5,{future}",  # future date
        f"{battery},addon-{funded.shop.battery.id},,6,{today}",  # no carrier
        f"abc,reward,DHL,7,{today}",  # not a number
    )
    result = shipments.import_csv(funded.shop.campaign, funded.creator, data, apply=True)
    assert not result.applied
    assert [(e.row, e.column, e.message) for e in result.errors] == [
        (3, "pledge_id", "There is no pledge 999999."),
        (4, "pledge_id", f"Pledge {stranger} is not a pledge to this campaign."),
        (5, "item", f"Pledge {lamp}’s “reward” is already on line 2."),
        (6, "item", f"Pledge {poster} has no item “addon-{funded.shop.battery.id}” (its items: reward)."),
        (7, "shipped_on", "Write the date as YYYY-MM-DD, for example 2026-03-01."),
        (8, "shipped_on", "The day it was shipped cannot be in the future."),
        (9, "carrier", "Enter the carrier."),
        (10, "pledge_id", "“abc” is not a pledge number."),
    ]
    db.session.rollback()
    assert _shipped_count() == 0 and _mails("reward_shipped") == []


@pytest.mark.parametrize("data, message", [
    (_csv("1,reward,DHL,1,2026-01-01", header="pledge,item,carrier,tracking,shipped_on"),
     "These columns are missing: pledge_id. The first line must name the columns pledge_id, item, carrier, tracking, shipped_on."),
    (_csv(header="pledge_id,item,carrier,tracking,shipped_on"), "The file has no rows to import."),
    (b"", "The file is empty."),
    (b"\xff\xfe\x00p\x00l", "The file is not UTF-8 text: save it from your spreadsheet as “CSV UTF-8”."),
    (b"pledge_id,item,carrier,tracking,shipped_on\n" + b"1,reward,DHL,1,2026-01-01\n" * 200_000,
     "The file is larger than 2 MB: split it and import each part."),
    (b"pledge_id,item,carrier,tracking,shipped_on\n" + b"1,reward,DHL,1,2026-01-01\n" * 10_001,
     "The file has more than 10000 rows: split it and import each part."),
    (b'pledge_id,item,carrier,tracking,shipped_on\n1,"reward,DHL\n', None),
])
def test_files_that_cannot_be_read_are_refused_whole(funded, en, data, message):
    _items(funded)
    result = shipments.import_csv(funded.shop.campaign, funded.creator, data, apply=True)
    assert not result.applied and len(result.errors) == 1
    if message:
        assert result.errors[0].message == message
    assert _shipped_count() == 0


def test_only_the_creator_imports(funded, en):
    data = _csv(f"{funded.lamp.id},reward,DHL,1,{_today().isoformat()}")
    for who in (make_user(), make_user(moderator=True), funded.lamp.backer):
        assert isinstance(_refused(shipments.import_csv, funded.shop.campaign, who, data, True), NotAllowed)


# --- the export ----------------------------------------------------------------------------------

def test_the_export_has_addresses_answers_and_safe_cells(funded, en):
    campaign = funded.shop.campaign
    surveys.add_question(campaign, funded.creator, QuestionInput("text", "Anything to add?"))
    surveys.send(campaign, funded.creator)
    surveys.answer(funded.lamp, funded.lamp.backer, {surveys.survey_of(campaign).questions[0].id: "=HYPERLINK(\"x\")"},
                   {**PARIS, "name": "+Amélie"})
    text = shipments.export_csv(campaign, funded.creator)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == [*shipments.EXPORT_COLUMNS, "Anything to add?"]
    assert len(rows) == 7 and {row[0] for row in rows[1:]} == {str(p.id) for p in (funded.lamp, funded.battery, funded.poster, funded.stand)}
    lamp = next(row for row in rows if row[0] == str(funded.lamp.id))
    assert lamp[1:6] == ["reward", f"T{funded.shop.lamp.id}", "Lamp", "1", "'+Amélie"]
    assert lamp[6] == PARIS["line1"] and lamp[11] == "FR" and lamp[13] == funded.lamp.backer.email
    assert lamp[-1] == "'=HYPERLINK(\"x\")"
    stand = next(row for row in rows if row[0] == str(funded.stand.id) and row[1].startswith("addon-"))
    assert stand[3] == "Stand" and stand[6] == ""  # no address given yet
    event = db.session.scalar(select(CampaignEvent).where(CampaignEvent.action == "fulfillment_export"))
    assert event.actor_id == funded.creator.id and event.note == "6 items, 1 addresses"


def test_only_the_creator_exports(funded, en):
    for who in (make_user(), make_user(moderator=True), funded.lamp.backer):
        assert isinstance(_refused(shipments.export_csv, funded.shop.campaign, who), NotAllowed)
    assert db.session.scalar(select(func.count(CampaignEvent.id)).where(CampaignEvent.action == "fulfillment_export")) == 0


# --- the pages -----------------------------------------------------------------------------------

def _as(app, user):
    client = app.test_client()
    assert login(client, user.email).status_code == 302
    return client


def _upload(client, slug: str, data: bytes, button: str = "check"):
    return client.post(f"/campaigns/{slug}/fulfillment/import", data={"file": (io.BytesIO(data), "tracking.csv"), button: "x"},
                       content_type="multipart/form-data")


def test_the_creator_works_from_the_fulfillment_page(app, funded):
    slug, today = funded.shop.campaign.slug, _today().isoformat()
    creator = _as(app, funded.creator)
    page = creator.get(f"/campaigns/{slug}/fulfillment")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Fulfillment: Lamp EUR" in html and html.count('ship-form"') == 6
    # Filters: the lamp tier's pledges only (the lamp and the stand), France only, a state.
    lamp_only = creator.get(f"/campaigns/{slug}/fulfillment?tier={funded.shop.lamp.id}").get_data(as_text=True)
    assert lamp_only.count('ship-form"') == 3
    assert creator.get(f"/campaigns/{slug}/fulfillment?country=FR").get_data(as_text=True).count('ship-form"') == 5
    assert "No item matches" in creator.get(f"/campaigns/{slug}/fulfillment?state=shipped").get_data(as_text=True)
    assert creator.get(f"/campaigns/{slug}/fulfillment?tier=x&country=%00&state=zz&page=-3").status_code == 200
    # One by one: refused next to the field, then shipped.
    bad = creator.post(f"/pledges/{funded.lamp.id}/items/reward/ship", data={"carrier": "DHL", "tracking": "http://x.example/1", "shipped_on": today})
    assert bad.status_code == 422 and "A tracking link must start with https://." in bad.get_data(as_text=True)
    good = creator.post(f"/pledges/{funded.lamp.id}/items/reward/ship", data={"carrier": "DHL", "tracking": "JD1", "shipped_on": today})
    assert good.status_code == 302
    assert creator.post(f"/pledges/{funded.lamp.id}/items/addon-1/ship", data={}).status_code == 404
    # The import: a dry run shows, changes nothing; a bad file is refused whole; apply.
    data = _csv(f"{funded.poster.id},reward,DHL,JD2,{today}")
    dry = _upload(creator, slug, data)
    assert dry.status_code == 200 and "Applying this file will change 1 items" in dry.get_data(as_text=True)
    assert _shipped_count() == 1
    refused = _upload(creator, slug, _csv(f"{funded.poster.id},reward,DHL,JD2,{today}", f"424242,reward,DHL,JD3,{today}"), "apply")
    assert refused.status_code == 422 and "There is no pledge 424242." in refused.get_data(as_text=True)
    assert _shipped_count() == 1
    assert _upload(creator, slug, data, "apply").status_code == 302 and _shipped_count() == 2
    assert creator.post(f"/campaigns/{slug}/fulfillment/import", data={"check": "x"}).status_code == 422  # no file
    # The export.
    export = creator.get(f"/campaigns/{slug}/fulfillment.csv")
    assert export.status_code == 200 and export.mimetype == "text/csv" and export.get_data(as_text=True).startswith("Order Number,")


def test_a_50_mb_file_is_refused_with_a_message(app, funded):
    creator = _as(app, funded.creator)
    response = _upload(creator, funded.shop.campaign.slug, b"pledge_id,item,carrier,tracking,shipped_on\n" + b"1" * (50 * 1024 * 1024))
    assert response.status_code == 413 and "too large" in response.get_data(as_text=True)
    middling = _upload(creator, funded.shop.campaign.slug, _csv(*["1,reward,DHL,1,2026-01-01"] * 120_000))
    assert middling.status_code == 422 and "The file is larger than 2 MB" in middling.get_data(as_text=True)


def test_the_backer_follows_their_reward(app, funded):
    items = _items(funded)
    shipments.ship(items["stand:reward"], funded.creator, "DHL", "https://dhl.example/track?n=JD9", _today())
    shipments.ship(items["stand:addon"], funded.creator, "La Poste", "javascript-free-6A9", _today())
    backer = _as(app, funded.stand.backer)
    html = backer.get(f"/pledges/{funded.stand.id}").get_data(as_text=True)
    assert "Your rewards" in html and 'href="https://dhl.example/track?n=JD9"' in html and "javascript-free-6A9" in html
    assert 'href="javascript' not in html
    mine = backer.get("/me/pledges").get_data(as_text=True)
    assert "On its way" in mine and "Stand" in mine
    # Another backer sees none of it, and cannot act on it.
    other = _as(app, funded.lamp.backer)
    assert other.get(f"/pledges/{funded.stand.id}").status_code == 404
    assert "On its way" not in other.get("/me/pledges").get_data(as_text=True)
    assert other.post(f"/pledges/{funded.stand.id}/items/reward/delivered").status_code == 404
    assert other.post(f"/pledges/{funded.stand.id}/items/reward/problem", data={"kind": "lost", "body": "x"}).status_code == 404
    # Received; a problem with the other, refused first next to its fields.
    assert backer.post(f"/pledges/{funded.stand.id}/items/reward/delivered").status_code == 302
    refused = backer.post(f"/pledges/{funded.stand.id}/items/addon-{funded.shop.stand.id}/problem", data={"kind": "", "body": ""})
    assert refused.status_code == 422 and "Choose what went wrong." in refused.get_data(as_text=True)
    assert backer.post(f"/pledges/{funded.stand.id}/items/addon-{funded.shop.stand.id}/problem",
                       data={"kind": "damaged", "body": "Bent."}).status_code == 302
    db.session.expire_all()
    assert [i.state for i in shipments.items_of_pledge(funded.stand)] == ["delivered", "problem"]
    assert "Bent." in backer.get(f"/pledges/{funded.stand.id}").get_data(as_text=True)
    # The creator answers from the page; a moderator reads the thread but writes nothing.
    creator = _as(app, funded.creator)
    assert creator.post(f"/pledges/{funded.stand.id}/items/addon-{funded.shop.stand.id}/messages",
                        data={"body": "A new stand is coming."}).status_code == 302
    moderator = _as(app, make_user(fresh_email("mod"), moderator=True))
    page = moderator.get(f"/campaigns/{funded.shop.campaign.slug}/fulfillment")
    assert page.status_code == 200 and "Bent." in page.get_data(as_text=True) and "A new stand is coming." in page.get_data(as_text=True)
    assert 'ship-form"' not in page.get_data(as_text=True)
    assert moderator.post(f"/pledges/{funded.stand.id}/items/addon-{funded.shop.stand.id}/messages", data={"body": "Hi"}).status_code == 403
    assert moderator.get(f"/campaigns/{funded.shop.campaign.slug}/fulfillment.csv").status_code == 403
    assert _upload(moderator, funded.shop.campaign.slug, _csv()).status_code == 403
    assert db.session.scalar(select(func.count(ProblemMessage.id))) == 2


def test_another_creator_sees_nothing(app, funded, localstripe):
    stranger_pledge = _other_campaign_pledge(app, localstripe)
    other_creator = db.session.scalar(select(Pledge).where(Pledge.id == stranger_pledge)).campaign.creator
    client = _as(app, other_creator)
    slug = funded.shop.campaign.slug
    assert client.get(f"/campaigns/{slug}/fulfillment").status_code == 403
    assert client.get(f"/campaigns/{slug}/fulfillment.csv").status_code == 403
    assert _upload(client, slug, _csv(f"{funded.lamp.id},reward,DHL,1,{_today().isoformat()}"), "apply").status_code == 403
    assert client.post(f"/pledges/{funded.lamp.id}/items/reward/ship",
                       data={"carrier": "DHL", "tracking": "1", "shipped_on": _today().isoformat()}).status_code == 404
    assert _shipped_count() == 0
    # A campaign that is not funded has no fulfillment page, even for its creator.
    assert client.get(f"/campaigns/{db.session.get(Pledge, stranger_pledge).campaign.slug}/fulfillment").status_code == 404


def test_the_pages_ask_the_database_a_bounded_number_of_times(app, funded):
    from tests.queries import counting

    items = _items(funded)
    for item in items.values():
        shipments.ship(item, funded.creator, "DHL", "JD1", _today())
    shipments.report_problem(items["lamp:reward"], funded.lamp.backer, "lost", "Nothing came.")
    shipments.report_problem(items["stand:addon"], funded.stand.backer, "lost", "No stand.")
    creator, backer = _as(app, funded.creator), _as(app, funded.stand.backer)
    paths = [(creator, f"/campaigns/{funded.shop.campaign.slug}/fulfillment"), (backer, "/me/pledges"),
             (backer, f"/pledges/{funded.stand.id}")]

    def measure() -> list[int]:
        found = []
        for client, path in paths:
            client.get(path)
            with counting() as statements:
                assert client.get(path).status_code == 200
            found.append(len(statements))
        return found

    before = measure()
    # More problems, messages and items on their way ask nothing more of the database.
    shipments.report_problem(items["stand:reward"], funded.stand.backer, "damaged", "Cracked.")
    shipments.report_problem(items["battery:addon"], funded.battery.backer, "wrong_item", "A stand?")
    shipments.reply(items["stand:reward"], funded.creator, "Sorry.")
    assert measure() == before
