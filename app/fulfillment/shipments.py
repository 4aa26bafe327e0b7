"""Fulfillment of a funded campaign's rewards (issue 17, SPEC §14): one item per thing a collected
pledge is owed (its reward, each add-on line), moved through ITEM_TRANSITIONS — not started → shipped
→ delivered (by the backer, or DELIVERED_AFTER_DAYS after shipping), or a problem the backer reports
(a thread with the creator, read by moderators). The creator marks items shipped one by one or by a
CSV import checked whole before anything is applied, and exports a CSV for a fulfilment service.

Plain functions; those that change something commit once. A refusal is a ShipmentError with a
message fit to show and the form field it is about.
"""
from __future__ import annotations

import csv
import io
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, selectinload

from app import clock
from app.accounts.models import User
from app.campaigns import services as campaigns
from app.campaigns.models import Campaign, CampaignState
from app.extensions import db
from app.fulfillment import addresses, surveys
from app.fulfillment.models import (
    CARRIER_MAX,
    ITEM_KEY_MAX,
    ITEM_TRANSITIONS,
    PROBLEM_MAX,
    REWARD_ITEM,
    TRACKING_MAX,
    FulfillmentEvent,
    FulfillmentItem,
    ItemState,
    ProblemKind,
    ProblemMessage,
    SurveyAnswer,
)
from app.links import external_url
from app.notifications import services as mail
from app.pledges.models import Pledge, PledgeState
from app.spreadsheets import safe_cell

IS = ItemState
#: Who marked an item delivered.
BY_BACKER, BY_CREATOR, BY_AUTO = "backer", "creator", "auto"
#: The CSV import's limits: a tracking file for a few thousand backers is a few hundred kilobytes.
IMPORT_MAX_BYTES = 2 * 1024 * 1024
IMPORT_MAX_ROWS = 10_000
IMPORT_COLUMNS = ("pledge_id", "item", "carrier", "tracking", "shipped_on")
#: Rows of the fulfillment page's table.
PER_PAGE = 50
_ADDON_ITEM = re.compile(r"addon-([1-9][0-9]{0,9})")
#: A tracking number as carriers print them: letters, digits and a few separators.
_TRACKING_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ./_-]*")


class ShipmentError(ValueError):
    """A refused fulfillment action, with a message fit to show; `field` names the form field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotAllowed(ShipmentError):
    """This member may not do that to this item (not the backer, not the creator)."""


def state_name(state: ItemState | str) -> str:
    return {
        IS.NOT_STARTED: _("Not shipped yet"),
        IS.SHIPPED: _("Shipped"),
        IS.DELIVERED: _("Delivered"),
        IS.PROBLEM: _("Problem reported"),
    }[ItemState(state)]


def problem_name(kind: ProblemKind | str) -> str:
    return {
        ProblemKind.LOST: _("Lost on the way"),
        ProblemKind.DAMAGED: _("Arrived damaged"),
        ProblemKind.WRONG_ITEM: _("Wrong item"),
    }[ProblemKind(kind)]


def item_title(item: FulfillmentItem) -> str:
    """The reward's or the add-on's title."""
    if item.item == REWARD_ITEM:
        return item.tier.title if item.tier else _("Reward")
    return item.addon.title if item.addon else _("Add-on")


def item_name(item: FulfillmentItem) -> str:
    """What the item is, as backer and creator know it: its title, and the units when more than one."""
    title = item_title(item)
    return f"{title} × {item.quantity}" if item.quantity > 1 else title


def tracking_link(item: FulfillmentItem) -> str | None:
    """The tracking as a link, when it is one (https only: nothing else is made clickable)."""
    return item.tracking if _is_https(item.tracking) else None


def _is_https(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme == "https" and bool(parts.hostname) and not any(c.isspace() for c in value)


# --- the state machine ---------------------------------------------------------------------------

def transition(item: FulfillmentItem, action: str, actor: User | None, note: str = "",
               now: datetime | None = None) -> FulfillmentEvent:
    """Move `item` by `action` if ITEM_TRANSITIONS allows it; write the audit row. Does not commit."""
    current = ItemState(item.state)
    target = ITEM_TRANSITIONS.get((current, action))
    if target is None:
        raise ShipmentError(_("This item is “%(state)s”, so that is not possible.", state=state_name(current)))
    now = now or clock.utcnow()
    item.state = target.value
    item.updated_at = now
    event = FulfillmentEvent(item_id=item.id, from_state=current.value, to_state=target.value, action=action,
                             actor_id=actor.id if actor else None, note=note or "", created_at=now)
    db.session.add(event)
    return event


# --- the items a pledge is owed -------------------------------------------------------------------

def _items_of(pledge: Pledge, now: datetime) -> list[FulfillmentItem]:
    made = []
    if pledge.tier_id is not None:
        made.append(FulfillmentItem(pledge_id=pledge.id, campaign_id=pledge.campaign_id, item=REWARD_ITEM,
                                    tier_id=pledge.tier_id, quantity=1, created_at=now, updated_at=now))
    for line in pledge.addons:
        made.append(FulfillmentItem(pledge_id=pledge.id, campaign_id=pledge.campaign_id, item=f"addon-{line.addon_id}",
                                    addon_id=line.addon_id, quantity=line.quantity, created_at=now, updated_at=now))
    return made


def _without_items():
    return ~select(FulfillmentItem.id).where(FulfillmentItem.pledge_id == Pledge.id).exists()


def _make_items(pledges: list[Pledge]) -> int:
    now = clock.utcnow()
    made = [item for pledge in pledges for item in _items_of(pledge, now)]
    if not made:
        return 0
    db.session.add_all(made)
    try:
        db.session.commit()
    except IntegrityError:  # another request or the worker made them at the same moment: theirs stand
        db.session.rollback()
        return 0
    return len(made)


def ensure_items(campaign: Campaign) -> int:
    """Make the items of every collected pledge of a successful campaign that has none yet (its reward
    when it has a tier, one per add-on line); how many were made. Idempotent, and one query when there
    is nothing to do, so pages call it on every view. A pledge is composed for good once collected."""
    if campaign.state != CampaignState.SUCCESSFUL:
        return 0
    pledges = db.session.scalars(
        select(Pledge).where(Pledge.campaign_id == campaign.id, Pledge.state == PledgeState.COLLECTED.value, _without_items())
        .options(selectinload(Pledge.addons)).order_by(Pledge.id)
    ).all()
    return _make_items(list(pledges))


def ensure_missing(limit: int = 500) -> int:
    """The worker's job: items for pledges of successful campaigns collected since (a payment fixed
    late). Settlement stays below this floor: it leaves the pledge collected, and this finds it."""
    pledges = db.session.scalars(
        select(Pledge).join(Campaign, Campaign.id == Pledge.campaign_id)
        .where(Campaign.state == CampaignState.SUCCESSFUL.value, Pledge.state == PledgeState.COLLECTED.value,
               _without_items())
        .options(selectinload(Pledge.addons)).order_by(Pledge.id).limit(limit)
    ).all()
    return _make_items(list(pledges))


def get_item(pledge_id: int, key: str) -> FulfillmentItem | None:
    """The item `key` ("reward", "addon-<id>") of a pledge, with its pledge and campaign; None if none."""
    if not key or len(key) > ITEM_KEY_MAX or not (key == REWARD_ITEM or _ADDON_ITEM.fullmatch(key)):
        return None
    return db.session.scalar(
        select(FulfillmentItem).where(FulfillmentItem.pledge_id == pledge_id, FulfillmentItem.item == key)
        .options(joinedload(FulfillmentItem.pledge).joinedload(Pledge.campaign))
    )


# --- shipping ------------------------------------------------------------------------------------

def _is_creator(campaign: Campaign, user: User | None) -> bool:
    return campaigns.is_creator(campaign, user)


def _check_creator(campaign: Campaign, user: User | None) -> None:
    if not _is_creator(campaign, user):
        raise NotAllowed(_("Only the campaign’s creator can mark its rewards shipped."))
    if campaign.state != CampaignState.SUCCESSFUL:
        raise ShipmentError(_("Rewards are shipped only once the campaign is funded."))


def _earliest(campaign: Campaign) -> date | None:
    """The first day a reward can have left: the launch (a typo's year is caught; a creator who ships
    early stock before the deadline is not refused)."""
    return campaign.launched_at.date() if campaign.launched_at else None


def check_shipment(campaign: Campaign, carrier: str | None, tracking: str | None,
                   shipped_on: date | str | None) -> tuple[tuple[str, str, date] | None, dict[str, str]]:
    """(carrier, tracking, shipped_on) cleaned, or the message of each field that is wrong. Tracking is a
    number or an https link; the date is not in the future nor before the campaign's launch."""
    errors: dict[str, str] = {}
    carrier = " ".join(str(carrier or "").split())
    tracking = str(tracking or "").strip()
    if not carrier:
        errors["carrier"] = _("Enter the carrier.")
    elif len(carrier) > CARRIER_MAX:
        errors["carrier"] = _("Keep the carrier under %(max)d characters.", max=CARRIER_MAX)
    if not tracking:
        errors["tracking"] = _("Enter the tracking number or link.")
    elif len(tracking) > TRACKING_MAX:
        errors["tracking"] = _("Keep the tracking under %(max)d characters.", max=TRACKING_MAX)
    elif "://" in tracking or tracking.lower().startswith(("http:", "https:", "www.")):
        if not _is_https(tracking):
            errors["tracking"] = _("A tracking link must start with https://.")
    elif not _TRACKING_NUMBER.fullmatch(tracking):
        errors["tracking"] = _("A tracking number has only letters, digits, spaces and - . / _.")
    day: date | None = None
    if isinstance(shipped_on, date):
        day = shipped_on
    elif not str(shipped_on or "").strip():
        errors["shipped_on"] = _("Enter the day it was shipped.")
    else:
        typed = str(shipped_on).strip()
        try:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", typed):
                raise ValueError(typed)
            day = date.fromisoformat(typed)
        except ValueError:
            day = None
            errors["shipped_on"] = _("Write the date as YYYY-MM-DD, for example 2026-03-01.")
    if day is not None:
        earliest = _earliest(campaign)
        if day > clock.utcnow().date():
            errors["shipped_on"] = _("The day it was shipped cannot be in the future.")
        elif earliest and day < earliest:
            errors["shipped_on"] = _("The day it was shipped cannot be before the campaign launched (%(day)s).",
                                     day=earliest.isoformat())
    if errors:
        return None, errors
    return (carrier, tracking, day), {}


def _ship(item: FulfillmentItem, actor: User, carrier: str, tracking: str, shipped_on: date, now: datetime) -> None:
    note = f"{carrier} {tracking} {shipped_on.isoformat()}"[:2000]
    transition(item, "ship", actor, note, now)
    item.carrier, item.tracking, item.shipped_on, item.shipped_at = carrier, tracking, shipped_on, now
    item.delivered_at = item.delivered_by = None


def _mail_shipped(pledge: Pledge, items: list[FulfillmentItem]) -> None:
    """The backer hears their reward shipped (transactional mail: always sent, in their language)."""
    campaign = pledge.campaign
    mail.queue_mail(pledge.backer, _l("Your reward from “%(title)s” has shipped", title=campaign.title), "reward_shipped",
                    pledge=pledge, campaign=campaign, items=[(item_name(item), item) for item in items],
                    link=external_url("pledges.show", pledge_id=pledge.id))


def ship(item: FulfillmentItem, actor: User, carrier: str | None, tracking: str | None,
         shipped_on: date | str | None) -> FulfillmentItem:
    """The creator marks one item shipped (again, to correct the tracking or send a replacement); the
    backer gets a mail. Raises ShipmentError (with the field) when refused."""
    pledge = item.pledge
    _check_creator(pledge.campaign, actor)
    if pledge.state != PledgeState.COLLECTED:
        raise ShipmentError(_("This pledge is no longer collected: nothing is shipped for it."))
    clean, errors = check_shipment(pledge.campaign, carrier, tracking, shipped_on)
    if errors:
        name = next(iter(errors))
        raise ShipmentError(errors[name], name)
    _ship(item, actor, *clean, clock.utcnow())
    _mail_shipped(pledge, [item])
    db.session.commit()
    return item


# --- delivered, and problems ---------------------------------------------------------------------

def _address_follows(pledge: Pledge, now: datetime) -> None:
    """Once every item of the pledge is delivered, the address's retention clock starts (it is erased
    ADDRESS_RETENTION_DAYS later); a problem reported afterwards stops it (a replacement may ship)."""
    address = addresses.address_for(pledge, pledge.backer)
    if address is None or address.erased:
        return
    open_items = db.session.scalar(select(func.count(FulfillmentItem.id)).where(
        FulfillmentItem.pledge_id == pledge.id, FulfillmentItem.state != IS.DELIVERED.value))
    if open_items == 0:
        if address.delivered_at is None:
            addresses.mark_delivered(address, now)
    elif address.delivered_at is not None:
        address.delivered_at = None


def mark_delivered(item: FulfillmentItem, user: User) -> FulfillmentItem:
    """The backer says the item arrived (or, after a problem, the creator closes it as delivered)."""
    pledge = item.pledge
    if user is not None and user.id == pledge.backer_id:
        by = BY_BACKER
    elif _is_creator(pledge.campaign, user) and item.state == IS.PROBLEM:
        by = BY_CREATOR
    else:
        raise NotAllowed(_("Only the backer can say that their reward arrived."))
    now = clock.utcnow()
    transition(item, "deliver", user, by, now)
    item.delivered_at, item.delivered_by = now, by
    db.session.flush()
    _address_follows(pledge, now)
    db.session.commit()
    return item


def auto_deliver_due(now: datetime | None = None) -> int:
    """Items shipped DELIVERED_AFTER_DAYS ago or more that nobody marked count as delivered ("auto").
    How many moved. A plain job: the worker calls it daily (calling it more often is harmless)."""
    now = now or clock.utcnow()
    cutoff = now - timedelta(days=current_app.config["DELIVERED_AFTER_DAYS"])
    due = db.session.scalars(
        select(FulfillmentItem).where(FulfillmentItem.state == IS.SHIPPED.value, FulfillmentItem.shipped_at <= cutoff)
        .options(joinedload(FulfillmentItem.pledge)).order_by(FulfillmentItem.id).limit(5000)
    ).all()
    pledges: dict[int, Pledge] = {}
    for item in due:
        transition(item, "deliver", None, BY_AUTO, now)
        item.delivered_at, item.delivered_by = now, BY_AUTO
        pledges[item.pledge_id] = item.pledge
    db.session.flush()
    for pledge in pledges.values():
        _address_follows(pledge, now)
    db.session.commit()
    return len(due)


def _clean_body(body: str | None) -> str:
    text = str(body or "").replace("\r\n", "\n").strip()
    if not text:
        raise ShipmentError(_("Write a message."), "body")
    if len(text) > PROBLEM_MAX:
        raise ShipmentError(_("Keep the message under %(max)d characters.", max=PROBLEM_MAX), "body")
    return text


def report_problem(item: FulfillmentItem, backer: User, kind: str, message: str | None) -> FulfillmentItem:
    """The backer reports a problem with a shipped (or delivered) item: its kind and a first message,
    which opens the thread with the creator."""
    pledge = item.pledge
    if backer is None or backer.id != pledge.backer_id:
        raise NotAllowed(_("Only the backer can report a problem with their reward."))
    try:
        kind = ProblemKind(kind)
    except ValueError:
        raise ShipmentError(_("Choose what went wrong."), "kind") from None
    body = _clean_body(message)
    now = clock.utcnow()
    transition(item, "report", backer, kind.value, now)
    item.problem = kind.value
    db.session.add(ProblemMessage(item_id=item.id, author_id=backer.id, body=body, created_at=now))
    db.session.flush()
    _address_follows(pledge, now)
    db.session.commit()
    return item


def can_read_thread(item: FulfillmentItem, user: User | None) -> bool:
    """The backer, the campaign's creator and moderators read an item's problem thread."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    return user.id == item.pledge.backer_id or _is_creator(item.pledge.campaign, user) or bool(user.is_moderator)


def reply(item: FulfillmentItem, author: User, body: str | None) -> ProblemMessage:
    """A message in the item's problem thread, by its backer or the campaign's creator (moderators
    read, they do not write here)."""
    pledge = item.pledge
    if author is None or not (author.id == pledge.backer_id or _is_creator(pledge.campaign, author)):
        raise NotAllowed(_("Only the backer and the creator write in this thread."))
    if item.problem is None:
        raise ShipmentError(_("No problem was reported for this item."))
    message = ProblemMessage(item_id=item.id, author_id=author.id, body=_clean_body(body), created_at=clock.utcnow())
    db.session.add(message)
    db.session.commit()
    return message


@dataclass(frozen=True)
class ThreadMessage:
    body: str
    created_at: datetime
    author_name: str
    #: Whether the backer wrote it (else the creator).
    by_backer: bool


def threads(items: list[FulfillmentItem]) -> dict[int, list[ThreadMessage]]:
    """The messages of these items' problem threads, oldest first, with their authors (one query)."""
    backers = {item.id: item.pledge.backer_id for item in items if item.problem is not None}
    found: dict[int, list[ThreadMessage]] = defaultdict(list)
    if backers:
        rows = db.session.execute(
            select(ProblemMessage, User.display_name).outerjoin(User, User.id == ProblemMessage.author_id)
            .where(ProblemMessage.item_id.in_(list(backers))).order_by(ProblemMessage.created_at, ProblemMessage.id)
        ).all()
        for message, name in rows:
            found[message.item_id].append(ThreadMessage(
                message.body, message.created_at, name or _("A former member"), message.author_id == backers[message.item_id]))
    return found


# --- what the pages show -------------------------------------------------------------------------

def counts(campaign: Campaign) -> dict[str, int]:
    """The campaign's items by state (every state present, 0 when none), one query."""
    found = dict(db.session.execute(
        select(FulfillmentItem.state, func.count(FulfillmentItem.id))
        .join(Pledge, Pledge.id == FulfillmentItem.pledge_id)
        .where(FulfillmentItem.campaign_id == campaign.id, Pledge.state == PledgeState.COLLECTED.value)
        .group_by(FulfillmentItem.state)
    ).all())
    return {state.value: int(found.get(state.value, 0)) for state in ItemState}


@dataclass
class Listing:
    items: list[FulfillmentItem]
    total: int
    page: int
    pages: int


def listing(campaign: Campaign, *, tier_id: int | None = None, country: str | None = None, state: str | None = None,
            page: int = 1, per_page: int = PER_PAGE) -> Listing:
    """The campaign's items of collected pledges, filtered by tier (the pledge's), destination country
    and state, a page at a time, with their pledge, backer, tier and add-on: two queries."""
    where = [FulfillmentItem.campaign_id == campaign.id, Pledge.state == PledgeState.COLLECTED.value]
    if tier_id:
        where.append(Pledge.tier_id == tier_id)
    if country:
        where.append(Pledge.country == country.upper())
    if state in {s.value for s in ItemState}:
        where.append(FulfillmentItem.state == state)
    total = db.session.scalar(select(func.count(FulfillmentItem.id)).join(Pledge, Pledge.id == FulfillmentItem.pledge_id).where(*where)) or 0
    pages = max(1, math.ceil(total / per_page))
    page = min(max(1, page), pages)
    items = db.session.scalars(
        select(FulfillmentItem).join(Pledge, Pledge.id == FulfillmentItem.pledge_id).where(*where)
        .options(joinedload(FulfillmentItem.pledge).joinedload(Pledge.backer), joinedload(FulfillmentItem.tier),
                 joinedload(FulfillmentItem.addon))
        .order_by(FulfillmentItem.pledge_id, FulfillmentItem.id).offset((page - 1) * per_page).limit(per_page)
    ).unique().all()
    return Listing(list(items), int(total), page, pages)


def problems(campaign: Campaign) -> list[FulfillmentItem]:
    """The campaign's items with a problem reported (open or since re-shipped), newest first."""
    return list(db.session.scalars(
        select(FulfillmentItem).where(FulfillmentItem.campaign_id == campaign.id, FulfillmentItem.problem.is_not(None))
        .options(joinedload(FulfillmentItem.pledge).joinedload(Pledge.backer), joinedload(FulfillmentItem.tier),
                 joinedload(FulfillmentItem.addon))
        .order_by(FulfillmentItem.updated_at.desc(), FulfillmentItem.id).limit(200)
    ).unique())


def countries(campaign: Campaign) -> list[str]:
    """The destinations the campaign's collected pledges ship to (for the filter)."""
    return list(db.session.scalars(
        select(Pledge.country).where(Pledge.campaign_id == campaign.id, Pledge.state == PledgeState.COLLECTED.value,
                                     Pledge.country.is_not(None)).distinct().order_by(Pledge.country)))


def items_of_pledge(pledge: Pledge) -> list[FulfillmentItem]:
    """A pledge's items, reward first (for its page)."""
    return list(db.session.scalars(
        select(FulfillmentItem).where(FulfillmentItem.pledge_id == pledge.id)
        .options(joinedload(FulfillmentItem.tier), joinedload(FulfillmentItem.addon))
        .order_by((FulfillmentItem.item != REWARD_ITEM), FulfillmentItem.id)
    ).unique())


def on_its_way(backer: User) -> list[FulfillmentItem]:
    """The member's items that are shipped and not yet delivered, across their pledges: one query."""
    return list(db.session.scalars(
        select(FulfillmentItem).join(Pledge, Pledge.id == FulfillmentItem.pledge_id)
        .where(Pledge.backer_id == backer.id, Pledge.state == PledgeState.COLLECTED.value,
               FulfillmentItem.state == IS.SHIPPED.value)
        .options(joinedload(FulfillmentItem.pledge).joinedload(Pledge.campaign), joinedload(FulfillmentItem.tier),
                 joinedload(FulfillmentItem.addon))
        .order_by(FulfillmentItem.shipped_at.desc(), FulfillmentItem.id).limit(100)
    ).unique())


# --- the CSV import ------------------------------------------------------------------------------

@dataclass(frozen=True)
class RowError:
    #: The line of the file (1 = the header); 0 for the file as a whole.
    row: int
    column: str
    message: str


@dataclass(frozen=True)
class Change:
    row: int
    item: FulfillmentItem
    name: str
    from_state: str
    carrier: str
    tracking: str
    shipped_on: date


@dataclass
class ImportResult:
    errors: list[RowError] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    applied: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors


def _file_error(message: str) -> ImportResult:
    return ImportResult(errors=[RowError(0, "", message)])


def _read_rows(data: bytes) -> tuple[list[str], list[tuple[int, list[str]]]] | ImportResult:
    if len(data) > IMPORT_MAX_BYTES:
        return _file_error(_("The file is larger than %(size)s: split it and import each part.",
                             size=f"{IMPORT_MAX_BYTES // (1024 * 1024)} MB"))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return _file_error(_("The file is not UTF-8 text: save it from your spreadsheet as “CSV UTF-8”."))
    if "\x00" in text:
        return _file_error(_("The file is not a CSV file."))
    try:
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        header = next(reader, None)
        rows = []
        for row in reader:
            if any(cell.strip() for cell in row):
                rows.append((reader.line_num, row))
                if len(rows) > IMPORT_MAX_ROWS:
                    return _file_error(_("The file has more than %(max)d rows: split it and import each part.",
                                         max=IMPORT_MAX_ROWS))
    except csv.Error:
        return _file_error(_("The file is not a CSV file the import can read (line %(line)d).", line=reader.line_num))
    if header is None:
        return _file_error(_("The file is empty."))
    return [cell.strip().lower() for cell in header], rows


def _check_row(campaign: Campaign, line: int, cells: dict[str, str], owners: dict[int, int], pledges: dict[int, Pledge],
               items: dict[tuple[int, str], FulfillmentItem], seen: dict[tuple[int, str], int]) -> Change | list[RowError]:
    """One row of the import: the change it asks for, or what is wrong with it."""
    raw_id, key = cells["pledge_id"].strip(), cells["item"].strip().lower()
    if not (raw_id.isascii() and raw_id.isdigit() and len(raw_id) <= 10):
        return [RowError(line, "pledge_id", _("“%(value)s” is not a pledge number.", value=raw_id[:40]) if raw_id
                         else _("Enter the pledge number."))]
    pledge_id = int(raw_id)
    if pledge_id not in owners:
        return [RowError(line, "pledge_id", _("There is no pledge %(id)d.", id=pledge_id))]
    if owners[pledge_id] != campaign.id:
        return [RowError(line, "pledge_id", _("Pledge %(id)d is not a pledge to this campaign.", id=pledge_id))]
    if pledges[pledge_id].state != PledgeState.COLLECTED:
        return [RowError(line, "pledge_id", _("Pledge %(id)d was not collected (or was refunded): it gets nothing.",
                                              id=pledge_id))]
    item = items.get((pledge_id, key))
    if item is None:
        held = ", ".join(k for (p, k) in sorted(items) if p == pledge_id) or _("none")
        return [RowError(line, "item", _("Pledge %(id)d has no item “%(item)s” (its items: %(held)s).", id=pledge_id,
                                         item=key[:40], held=held))]
    if (pledge_id, key) in seen:
        return [RowError(line, "item", _("Pledge %(id)d’s “%(item)s” is already on line %(line)d.", id=pledge_id,
                                         item=key, line=seen[(pledge_id, key)]))]
    seen[(pledge_id, key)] = line
    clean, errors = check_shipment(campaign, cells["carrier"], cells["tracking"], cells["shipped_on"])
    if errors:
        return [RowError(line, column, message) for column, message in errors.items()]
    if (ItemState(item.state), "ship") not in ITEM_TRANSITIONS:
        return [RowError(line, "item", _("This item is “%(state)s”, so that is not possible.", state=state_name(item.state)))]
    return Change(line, item, item_name(item), item.state, *clean)


def import_csv(campaign: Campaign, creator: User, data: bytes, apply: bool) -> ImportResult:
    """Check a tracking file (columns pledge_id, item, carrier, tracking, shipped_on) row by row; with
    `apply` and no error at all, mark every row's item shipped in one transaction and mail each backer
    once. Any error: nothing is applied. Without `apply`: what would change, nothing written."""
    _check_creator(campaign, creator)
    read = _read_rows(data)
    if isinstance(read, ImportResult):
        return read
    header, rows = read
    missing = [name for name in IMPORT_COLUMNS if name not in header]
    repeated = sorted({name for name in header if name and header.count(name) > 1})
    if missing or repeated:
        message = (_("These columns are missing: %(columns)s. The first line must name the columns %(all)s.",
                     columns=", ".join(missing), all=", ".join(IMPORT_COLUMNS)) if missing
                   else _("These columns appear twice: %(columns)s.", columns=", ".join(repeated)))
        return ImportResult(errors=[RowError(1, "", message)])
    if not rows:
        return _file_error(_("The file has no rows to import."))
    at = {name: header.index(name) for name in IMPORT_COLUMNS}
    ensure_items(campaign)

    ids = set()
    for _line, row in rows:
        raw = row[at["pledge_id"]].strip() if len(row) > at["pledge_id"] else ""
        if raw.isascii() and raw.isdigit() and len(raw) <= 10:
            ids.add(int(raw))
    owners = dict(db.session.execute(select(Pledge.id, Pledge.campaign_id).where(Pledge.id.in_(ids))).all()) if ids else {}
    ours = [pledge_id for pledge_id, campaign_id in owners.items() if campaign_id == campaign.id]
    pledges = {p.id: p for p in db.session.scalars(select(Pledge).where(Pledge.id.in_(ours)))} if ours else {}
    items: dict[tuple[int, str], FulfillmentItem] = {}
    if ours:
        for item in db.session.scalars(select(FulfillmentItem).where(FulfillmentItem.pledge_id.in_(ours))
                                       .options(joinedload(FulfillmentItem.tier), joinedload(FulfillmentItem.addon))).unique():
            items[(item.pledge_id, item.item)] = item

    result = ImportResult()
    seen: dict[tuple[int, str], int] = {}
    for line, row in rows:
        cells = {name: (row[index] if len(row) > index else "") for name, index in at.items()}
        checked = _check_row(campaign, line, cells, owners, pledges, items, seen)
        if isinstance(checked, Change):
            result.changes.append(checked)
        else:
            result.errors.extend(checked)

    if result.errors or not apply:
        return result
    now = clock.utcnow()
    shipped: dict[int, list[FulfillmentItem]] = defaultdict(list)
    for change in result.changes:
        _ship(change.item, creator, change.carrier, change.tracking, change.shipped_on, now)
        shipped[change.item.pledge_id].append(change.item)
    with mail.mail_batch():
        for pledge_id, moved in shipped.items():
            _mail_shipped(pledges[pledge_id], moved)
    db.session.commit()
    result.applied = True
    return result


# --- the CSV export ------------------------------------------------------------------------------

#: The columns fulfilment services (ShipStation, ShipBob, Shippo …) map on import: one row per line
#: item, the order number repeated. Left in English on purpose: their import screens match these names.
EXPORT_COLUMNS = ("Order Number", "Item", "SKU", "Item Name", "Quantity", "Recipient Name", "Address 1", "Address 2",
                  "City", "State/Province", "Postal Code", "Country Code", "Phone", "Email", "Reward",
                  "Fulfillment Status", "Carrier", "Tracking", "Shipped On")


def export_csv(campaign: Campaign, actor: User) -> str:
    """Every item of the campaign's collected pledges as CSV for a fulfilment service, with the
    shipping address (read through `address_for`: the creator, only once funded) and the survey's
    answers, one column per question. Cells are made safe from spreadsheet formulas; every export is
    an audit row of the campaign."""
    if not _is_creator(campaign, actor):
        raise NotAllowed(_("Only the campaign’s creator can export its shipping list."))
    if campaign.state != CampaignState.SUCCESSFUL:
        raise ShipmentError(_("The shipping list is ready once the campaign is funded."))
    ensure_items(campaign)
    rows = db.session.scalars(
        select(FulfillmentItem).join(Pledge, Pledge.id == FulfillmentItem.pledge_id)
        .where(FulfillmentItem.campaign_id == campaign.id, Pledge.state == PledgeState.COLLECTED.value)
        .options(joinedload(FulfillmentItem.pledge).joinedload(Pledge.backer),
                 joinedload(FulfillmentItem.pledge).joinedload(Pledge.tier), joinedload(FulfillmentItem.tier),
                 joinedload(FulfillmentItem.addon))
        .order_by(FulfillmentItem.pledge_id, FulfillmentItem.item != REWARD_ITEM, FulfillmentItem.id)
    ).unique().all()
    pledges = list({item.pledge_id: item.pledge for item in rows}.values())
    found = addresses.addresses_for(pledges, actor)
    survey = surveys.survey_of(campaign)
    questions = list(survey.questions) if survey is not None else []
    answers: dict[tuple[int, int], SurveyAnswer] = {}
    if questions:
        for answer in db.session.scalars(select(SurveyAnswer).join(Pledge, Pledge.id == SurveyAnswer.pledge_id)
                                         .where(Pledge.campaign_id == campaign.id)):
            answers[(answer.pledge_id, answer.question_id)] = answer

    def answer_text(pledge_id: int, question) -> str:
        answer = answers.get((pledge_id, question.id))
        if answer is None:
            return ""
        return "; ".join(answer.choices) if question.kind != "text" else answer.text

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([safe_cell(name) for name in (*EXPORT_COLUMNS, *(q.prompt for q in questions))])
    for item in rows:
        pledge = item.pledge
        address = found.get(pledge.id)
        sku = f"T{item.tier_id}" if item.item == REWARD_ITEM else f"A{item.addon_id}"
        writer.writerow([safe_cell(value) for value in (
            pledge.id, item.item, sku, item_title(item), item.quantity,
            address.name if address else pledge.backer.display_name,
            address.line1 if address else "", address.line2 if address else "",
            address.city if address else "", address.region if address else "",
            address.postal_code if address else "", (address.country if address else pledge.country) or "",
            address.phone if address else "", pledge.backer.email,
            pledge.tier.title if pledge.tier else "",
            item.state, item.carrier, item.tracking, item.shipped_on.isoformat() if item.shipped_on else "",
            *(answer_text(pledge.id, question) for question in questions),
        )])
    campaigns.record(campaign, "fulfillment_export", actor, f"{len(rows)} items, {len(found)} addresses")
    db.session.commit()
    return out.getvalue()
