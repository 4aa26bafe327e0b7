"""Campaign rules: drafts, tiers, the state machine, permissions and the queries the pages use.

Every state change goes through `transition()`, which checks the one table of allowed moves and
writes the audit row. Routes call these functions and commit nothing themselves.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from blinker import Namespace
from flask import current_app
from flask_babel import LazyString, get_locale, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, bindparam, case, delete, exists, func, insert, inspect, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import defer, joinedload, selectinload, undefer
from sqlalchemy.orm.attributes import set_committed_value

from app import clock, database
from app.accounts.models import User
from app.campaigns import shipping, totals
from app.campaigns.models import (
    EDITABLE,
    LAUNCHED,
    PUBLIC,
    TRANSITIONS,
    Addon,
    Campaign,
    CampaignEvent,
    CampaignState,
    ShippingDestination,
    Tier,
    addon_tiers,
    open_for_pledges,
)
from app.content import images
from app.extensions import db
from app.money import MAX_CHARGE
from app.money import format_money as money_format

S = CampaignState

_signals = Namespace()
#: Sent after a live campaign is canceled or suspended (sender: the campaign). The pledges area
#: connects here to release every active pledge: the single hook point for "campaign closed early".
campaign_closed = _signals.signal("campaign-closed")


class CampaignError(ValueError):
    """A refused campaign action, with a message fit to show the person; `field` names a form field."""

    def __init__(self, message: str, field: str | None = None, missing: list[str] | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.missing = missing or []


# --- permissions -----------------------------------------------------------------------------

def can_view(campaign: Campaign, user: User | None) -> bool:
    """Public states for everyone; every state for the creator and moderators."""
    if campaign.is_public:
        return True
    return bool(user and getattr(user, "is_authenticated", False) and (user.id == campaign.creator_id or user.is_moderator))


def is_creator(campaign: Campaign, user: User | None) -> bool:
    return bool(user and getattr(user, "is_authenticated", False) and user.id == campaign.creator_id)


def can_preview(campaign: Campaign, user: User | None) -> bool:
    """The preview is the creator's and the moderators' view, in every state."""
    return is_creator(campaign, user) or bool(user and getattr(user, "is_authenticated", False) and user.is_moderator)


# --- the state machine -----------------------------------------------------------------------

def transition(campaign: Campaign, action: str, actor: User | None, note: str = "") -> CampaignEvent:
    """Move `campaign` by `action` if the table allows it; write the audit row. Does not commit."""
    current = CampaignState(campaign.state)
    target = TRANSITIONS.get((current, action))
    if target is None:
        raise CampaignError(
            _("This campaign is %(state)s, so it cannot be %(action)s.", state=state_label(current), action=action_label(action))
        )
    now = clock.utcnow()
    # The move is a conditional update, so two moves from one state (a creator's cancel racing the
    # settlement pass's outcome, a double click on launch) cannot both win: the loser matches no row.
    moved = db.session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id, Campaign.state == current.value)
        .values(state=target.value, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # nothing was written; the caller's transaction is theirs to end
        raise CampaignError(_("This campaign was changed meanwhile. Reload the page and try again."))
    set_committed_value(campaign, "state", target.value)
    set_committed_value(campaign, "updated_at", now)
    return _event(campaign, current.value, target.value, action, actor, note, now)


def _event(campaign: Campaign, from_state: str | None, to_state: str, action: str, actor: User | None, note: str,
           now: datetime) -> CampaignEvent:
    event = CampaignEvent(campaign_id=campaign.id, from_state=from_state, to_state=to_state, action=action,
                          actor_id=actor.id if actor else None, note=note or "", created_at=now)
    db.session.add(event)
    return event


def record(campaign: Campaign, action: str, actor: User | None, note: str = "", now: datetime | None = None) -> CampaignEvent:
    """An audit row for an action that leaves the campaign's state as it is (an edit after launch,
    featuring, a payout hold from the floor above). Does not commit."""
    return _event(campaign, campaign.state, campaign.state, action, actor, note, now or clock.utcnow())


def state_label(state: CampaignState | str) -> str:
    labels = {
        S.DRAFT: _("a draft"),
        S.SUBMITTED: _("waiting for review"),
        S.CHANGES_REQUESTED: _("waiting for your changes"),
        S.APPROVED: _("approved"),
        S.REJECTED: _("rejected"),
        S.LIVE: _("live"),
        S.SUCCESSFUL: _("funded"),
        S.UNSUCCESSFUL: _("not funded"),
        S.CANCELED: _("canceled"),
        S.SUSPENDED: _("suspended"),
    }
    return labels[CampaignState(state)]


def state_names() -> dict[str, str]:
    """Short names of every state, for badges and filters, in the current language."""
    return _names_in(str(get_locale() or "en"))


@lru_cache(maxsize=16)
def _names_in(_locale: str) -> dict[str, str]:
    # Built once per language: every page shows badges, and gettext is not free.
    return {
        S.DRAFT.value: _("Draft"),
        S.SUBMITTED.value: _("In review"),
        S.CHANGES_REQUESTED.value: _("Changes requested"),
        S.APPROVED.value: _("Approved"),
        S.REJECTED.value: _("Rejected"),
        S.LIVE.value: _("Live"),
        S.SUCCESSFUL.value: _("Funded"),
        S.UNSUCCESSFUL.value: _("Not funded"),
        S.CANCELED.value: _("Canceled"),
        S.SUSPENDED.value: _("Suspended"),
    }


def state_name(state: CampaignState | str) -> str:
    """A short name for badges and filters."""
    return state_names()[CampaignState(state).value]


def action_label(action: str) -> str:
    return {
        "submit": _("submitted"),
        "approve": _("approved"),
        "request_changes": _("sent back for changes"),
        "reject": _("rejected"),
        "launch": _("launched"),
        "succeed": _("closed as funded"),
        "fail": _("closed as not funded"),
        "cancel": _("canceled"),
        "suspend": _("suspended"),
        "edit": _("edited after launch"),
    }.get(action, action)


# --- drafts ----------------------------------------------------------------------------------

@dataclass
class CampaignInput:
    """What the campaign form gives: already checked for shape and bounds by the form."""

    title: str
    blurb: str
    category: str
    goal: int
    currency: str
    duration_days: int
    story: str
    risks: str


def slugify(title: str) -> str:
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    text = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    return text[:60].strip("-") or "campaign"


#: Slugs that would collide with a route under /campaigns/.
RESERVED_SLUGS = frozenset({"new"})


def _unique_slug(title: str) -> str:
    base = slugify(title)
    taken = set(db.session.scalars(select(Campaign.slug).where(or_(Campaign.slug == base, Campaign.slug.like(f"{base}-%")))))
    taken |= RESERVED_SLUGS
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def create_draft(creator: User, data: CampaignInput, cover: str | None = None) -> Campaign:
    """A new draft owned by `creator`. Commits."""
    now = clock.utcnow()
    for attempt in range(5):
        campaign = Campaign(
            slug=_unique_slug(data.title),
            creator_id=creator.id,
            title=data.title.strip(),
            blurb=data.blurb.strip(),
            category=data.category,
            goal=data.goal,
            currency=data.currency,
            duration_days=data.duration_days,
            story=data.story,
            risks=data.risks,
            cover=cover,
            state=S.DRAFT.value,
            created_at=now,
            updated_at=now,
        )
        try:
            # The unique index is the guard: a draft with the same title saved meanwhile takes the slug.
            with db.session.begin_nested():
                db.session.add(campaign)
        except IntegrityError:
            if attempt == 4:
                raise
            continue
        break
    _event(campaign, None, S.DRAFT.value, "create", creator, "", now)
    db.session.commit()
    return campaign


def _require_creator(campaign: Campaign, actor: User) -> None:
    if actor.id != campaign.creator_id:
        raise CampaignError(_("Only the creator can change this campaign."))


#: What a backer pledged on: fixed at launch (SPEC §2). Only the story, cover and risks change after.
LOCKED_AT_LAUNCH = ("title", "blurb", "category", "goal", "currency", "duration_days")
#: What may change on a live campaign, each change an audit row that moderators see.
LIVE_CONTENT = ("story", "risks", "cover")


def update_content(campaign: Campaign, actor: User, data: CampaignInput, cover: str | None = None) -> Campaign:
    """Save the creator's edits. Drafts change freely; after launch only the story, risks and cover
    (each change an audit row); a submitted or decided campaign is frozen. Commits."""
    _require_creator(campaign, actor)
    state = CampaignState(campaign.state)
    if state in LAUNCHED and state not in (S.LIVE,):
        raise CampaignError(_("This campaign has ended and can no longer be edited."))
    if state not in EDITABLE and state not in LAUNCHED:
        raise CampaignError(_("This campaign is %(state)s and cannot be edited now.", state=state_label(state)))
    if state not in LAUNCHED and data.currency != campaign.currency and (campaign.tiers or campaign.addons):
        # Tier, add-on and shipping amounts are minor units of the campaign's currency: $25.00 would
        # silently become ¥2,500.
        raise CampaignError(_("Remove the funding tiers and add-ons before changing the currency: their amounts are in %(currency)s.", currency=campaign.currency), field="currency")
    wanted = {**asdict(data), "title": data.title.strip(), "blurb": data.blurb.strip(), "cover": cover or campaign.cover}
    if state == S.LIVE:
        for name in LOCKED_AT_LAUNCH:
            if wanted[name] != getattr(campaign, name):
                raise CampaignError(_("The title, blurb, category, goal, currency and duration are fixed since launch."), field=name)
    changed = [name for name in (*LOCKED_AT_LAUNCH, *LIVE_CONTENT) if wanted[name] != getattr(campaign, name)]
    for name in changed:
        setattr(campaign, name, wanted[name])
    now = clock.utcnow()
    if state == S.LIVE and changed:
        # Backers pledged on what the page said: what changed since is on the record for moderators.
        record(campaign, "edit", actor, ", ".join(changed), now)
    campaign.updated_at = now
    db.session.commit()
    return campaign


def cover_folder() -> str:
    """Where campaign covers are stored."""
    return current_app.config["UPLOAD_FOLDER"] + "/covers"


def story_image_folder() -> str:
    """Where the pictures creators upload into their story are stored (served at /uploads/story/)."""
    return current_app.config["UPLOAD_FOLDER"] + "/story"


def save_story_image(campaign: Campaign, actor: User, upload: object) -> str:
    """Check, re-encode and store a picture for `campaign`'s story (exactly as a cover, without the
    card-sized variant); return its file name. Only while the creator may still change the story.
    Raises CampaignError, or images.ImageError with a message for the person."""
    _require_creator(campaign, actor)
    state = CampaignState(campaign.state)
    if state not in EDITABLE and state != S.LIVE:
        raise CampaignError(_("This campaign is %(state)s and cannot be edited now.", state=state_label(state)))
    processed = images.process_cover(upload)
    # Nothing is recorded: the picture counts once the story that shows it is saved; until then (or
    # if it never is) the sweep below deletes it after a day.
    return images.save_cover(replace(processed, thumbnail=None), story_image_folder())


def _shown_in_markdown(name: str) -> bool:
    """True while any Markdown text (columns marked ``info={"markdown": True}``: stories, risks,
    updates, FAQ answers) shows the stored image `name`: creators may embed their uploads."""
    pattern = f"%{name}%"
    checks = [exists().where(or_(*(column.like(pattern) for column in markdown)))
              for table in db.metadata.tables.values()
              if (markdown := [column for column in table.columns if column.info.get("markdown")])]
    return bool(db.session.scalar(select(or_(*checks))))


def discard_cover(name: str | None) -> bool:
    """Delete a stored cover (and its thumbnail) unless a campaign or some Markdown still shows it.
    Call it only after the commit that stopped using it; True when it was deleted."""
    if not name or db.session.scalar(select(exists().where(Campaign.cover == name))) or _shown_in_markdown(name):
        return False
    images.delete_cover(cover_folder(), name)
    return True


#: An upload younger than this is never swept: its campaign may not be committed yet.
ORPHAN_MIN_AGE = timedelta(days=1)


def sweep_orphan_covers(now: datetime | None = None) -> int:
    """Delete stored covers that no campaign shows, story pictures no Markdown shows (and crashed
    uploads' parts), older than a day; how many."""
    cutoff = ((now or clock.utcnow()) - ORPHAN_MIN_AGE).replace(tzinfo=UTC).timestamp()
    folder = cover_folder()
    old = [name for name, mtime in images.stored_covers(folder) if mtime < cutoff]
    # Most stored covers are campaigns' covers: one query rules them out; only the rest are looked
    # for in the Markdown texts (a LIKE over every text, so once per candidate, not once per file).
    shown = set(db.session.scalars(select(Campaign.cover).where(Campaign.cover.is_not(None))))
    swept = 0
    for name in old:
        if name.startswith(".upload-"):
            images.delete_stored(folder, name)
            swept += 1
        elif name not in shown and discard_cover(name):
            swept += 1
    story = story_image_folder()
    for name, mtime in images.stored_covers(story):
        if mtime < cutoff and (name.startswith(".upload-") or not _shown_in_markdown(name)):
            images.delete_stored(story, name)
            swept += 1
    return swept


# --- tiers and add-ons: the campaign's offer -------------------------------------------------

class DestinationError(CampaignError):
    """A refused change to the destinations; `country` names the row it is about."""

    def __init__(self, message: str, country: str) -> None:
        super().__init__(message, field="destinations")
        self.country = country


@dataclass
class TierInput:
    title: str
    description: str
    amount: int
    quantity_limit: int | None
    estimated_delivery: date | None
    shipping_note: str
    ships: bool = False
    #: Country (or shipping.WORLD) -> cost in minor units; ignored when `ships` is False.
    destinations: dict[str, int] = field(default_factory=dict)


@dataclass
class AddonInput:
    title: str
    description: str
    amount: int
    quantity_limit: int | None
    ships: bool = False
    #: "unit" or "pledge".
    shipping_per: str = "unit"
    #: The tiers it is offered with; empty = all.
    tier_ids: frozenset[int] = frozenset()
    destinations: dict[str, int] = field(default_factory=dict)


def require_tiers_open(campaign: Campaign) -> None:
    """Raise unless the campaign's tiers may change now (drafts, changes requested, live)."""
    if campaign.status not in EDITABLE and campaign.status != S.LIVE:
        raise CampaignError(_("Tiers cannot be changed while the campaign is %(state)s.", state=state_label(campaign.status)))


def _columns(data, names: tuple[str, ...]) -> dict:
    return {name: getattr(data, name) for name in names}


def _wanted_destinations(data: TierInput | AddonInput, currency: str) -> dict[str, int]:
    """The destinations to store: checked here too, since the services are also called without a form."""
    if not data.ships:
        return {}
    for country, cost in data.destinations.items():
        if not shipping.is_destination(country):
            raise DestinationError(_("Choose a destination from the list."), country)
        if cost < 0:
            raise DestinationError(_("A shipping cost cannot be negative."), country)
        if cost > MAX_CHARGE:
            raise DestinationError(_("The amount must be at most %(max)s.", max=money_format(MAX_CHARGE, currency)), country)
    return dict(data.destinations)


def _stored_destinations(owner) -> dict[str, int]:
    return dict(db.session.execute(select(ShippingDestination.country, ShippingDestination.cost).where(owner)).all())


def _check_destination_changes(stored: dict[str, int], wanted: dict[str, int], currency: str, live: bool) -> None:
    """After launch a destination stays and its cost never rises: backers chose the reward with it."""
    if not live:
        return
    removed = sorted(stored.keys() - wanted.keys())
    if removed:
        raise DestinationError(_("%(country)s cannot be removed after launch: backers may have chosen it.", country=shipping.country_name(removed[0])), removed[0])
    for country, cost in sorted(wanted.items()):
        if country in stored and cost > stored[country]:
            raise DestinationError(
                _("Shipping to %(country)s cannot cost more than %(cost)s after launch.", country=shipping.country_name(country),
                  cost=money_format(stored[country], currency)),
                country,
            )


def _write_destinations(owner_column, owner_id: int, stored: dict[str, int], wanted: dict[str, int], live: bool) -> None:
    """Make the stored destinations `wanted` (the rules were checked). Does not commit."""
    owner = owner_column == owner_id
    gone = stored.keys() - wanted.keys()
    if gone:
        db.session.execute(delete(ShippingDestination).where(owner, ShippingDestination.country.in_(gone)).execution_options(synchronize_session=False))
    for country, cost in wanted.items():
        if country not in stored:
            db.session.execute(insert(ShippingDestination).values({owner_column.key: owner_id, "country": country, "cost": cost}))
        elif cost != stored[country]:
            guards = [owner, ShippingDestination.country == country]
            if live:  # a cost raised meanwhile by another edit is not raised again
                guards.append(ShippingDestination.cost >= cost)
            changed = db.session.execute(update(ShippingDestination).where(*guards).values(cost=cost).execution_options(synchronize_session=False))
            if changed.rowcount != 1:
                raise CampaignError(_("These destinations were changed meanwhile. Reload the page and try again."), field="destinations")


def _save_offer(campaign: Campaign, write) -> None:
    """Run `write` (the statements of one tier or add-on change) and commit, or roll back and explain."""
    try:
        write()
        campaign.updated_at = clock.utcnow()
        db.session.commit()
    except CampaignError:
        db.session.rollback()
        raise
    except IntegrityError:  # a destination added twice by two edits at once: the unique index said no
        db.session.rollback()
        raise CampaignError(_("These destinations were changed meanwhile. Reload the page and try again."), field="destinations") from None


def _guarded_update(model, row, campaign: Campaign, columns: dict, quantity_limit: int | None, content_changed: bool) -> bool:
    """Write a tier's or an add-on's columns if what was read still holds: a pledge claimed between
    reading and writing is never undercut (quantity) and never finds its choice rewritten (content)."""
    guards = [model.id == row.id, model.campaign_id == campaign.id, model.deleted_at.is_(None)]
    if quantity_limit is not None:
        guards.append(model.claimed <= quantity_limit)
    if campaign.status == S.LIVE and content_changed:
        guards.append(model.claimed == 0)
    result = db.session.execute(update(model).where(*guards).values(**columns).execution_options(synchronize_session=False))
    return result.rowcount == 1


def _delete_offer(model, row, campaign: Campaign, actor: User, held: str) -> None:
    """Hide a tier or an add-on nobody holds (kept as a row: pledges may point at it); `held` is the
    refusal when someone does. Commits."""
    _require_creator(campaign, actor)
    require_tiers_open(campaign)
    result = db.session.execute(
        update(model)
        .where(model.id == row.id, model.campaign_id == campaign.id, model.deleted_at.is_(None), model.claimed == 0)
        .values(deleted_at=clock.utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        db.session.rollback()
        raise CampaignError(held)
    campaign.updated_at = clock.utcnow()  # the public pages stop showing it now, not when the cache expires
    db.session.commit()


#: The tier's own columns (its destinations are rows of their own).
TIER_COLUMNS = ("title", "description", "amount", "quantity_limit", "estimated_delivery", "shipping_note", "ships")
#: What a backer chose a tier for: frozen once a live campaign's tier is held by anyone.
TIER_CONTENT = ("title", "description", "amount", "estimated_delivery", "shipping_note", "ships")


def add_tier(campaign: Campaign, actor: User, data: TierInput) -> Tier:
    """Add a tier (drafts, and live campaigns: new tiers are always allowed). Commits."""
    _require_creator(campaign, actor)
    require_tiers_open(campaign)
    wanted = _wanted_destinations(data, campaign.currency)
    tier = Tier(campaign_id=campaign.id, **_columns(data, TIER_COLUMNS))

    def write() -> None:
        db.session.add(tier)
        db.session.flush()
        _write_destinations(ShippingDestination.tier_id, tier.id, {}, wanted, live=False)

    _save_offer(campaign, write)
    return tier


def get_tier(campaign: Campaign, tier_id: int) -> Tier | None:
    return db.session.scalar(select(Tier).where(Tier.id == tier_id, Tier.campaign_id == campaign.id, Tier.deleted_at.is_(None)))


def update_tier(campaign: Campaign, actor: User, tier: Tier, data: TierInput) -> Tier:
    """Edit a tier. On a live campaign a tier that backers hold keeps its content; its quantity can
    change but never go below what is claimed. A tier nobody holds changes freely. After launch its
    destinations can be added or made cheaper, never removed or made dearer. Commits."""
    _require_creator(campaign, actor)
    require_tiers_open(campaign)
    changed = [name for name in TIER_CONTENT if getattr(data, name) != getattr(tier, name)]
    live = campaign.status == S.LIVE
    if live and tier.claimed > 0 and changed:
        raise CampaignError(_("Backers have chosen this tier: only its quantity can change now, and destinations be added or made cheaper."), field=changed[0])
    if data.quantity_limit is not None and data.quantity_limit < tier.claimed:
        raise CampaignError(_claimed_message(tier.claimed), field="quantity_limit")
    wanted = _wanted_destinations(data, campaign.currency)
    stored = _stored_destinations(ShippingDestination.tier_id == tier.id)
    _check_destination_changes(stored, wanted, campaign.currency, live)

    def write() -> None:
        if not _guarded_update(Tier, tier, campaign, _columns(data, TIER_COLUMNS), data.quantity_limit, bool(changed)):
            raise CampaignError(
                _("Backers chose this tier meanwhile. Reload the page to see what can still change."),
                field=changed[0] if changed else "quantity_limit",
            )
        _write_destinations(ShippingDestination.tier_id, tier.id, stored, wanted, live)

    _save_offer(campaign, write)
    db.session.refresh(tier)
    return tier


def _claimed_message(claimed: int) -> str:
    return ngettext(
        "%(num)d backer already holds this tier: the quantity cannot be lower than that.",
        "%(num)d backers already hold this tier: the quantity cannot be lower than that.",
        claimed,
    )


def delete_tier(campaign: Campaign, actor: User, tier: Tier) -> None:
    """Remove a tier nobody holds (kept as a row, hidden). Commits."""
    _delete_offer(Tier, tier, campaign, actor, _("Backers have chosen this tier, so it cannot be removed."))


ADDON_COLUMNS = ("title", "description", "amount", "quantity_limit", "ships", "shipping_per")
#: What a backer chose an add-on for: frozen once a live campaign's add-on is held by anyone.
ADDON_CONTENT = ("title", "description", "amount", "ships", "shipping_per", "tier_ids")


def _offered_tiers(campaign: Campaign, tier_ids: frozenset[int]) -> frozenset[int]:
    """`tier_ids` if every one is a tier of this campaign, else a refusal."""
    if not tier_ids:
        return tier_ids
    found = set(db.session.scalars(select(Tier.id).where(Tier.id.in_(tier_ids), Tier.campaign_id == campaign.id, Tier.deleted_at.is_(None))))
    if found != set(tier_ids):
        raise CampaignError(_("Choose among this campaign's tiers."), field="tiers")
    return tier_ids


def _write_addon_tiers(addon_id: int, tier_ids: frozenset[int]) -> None:
    db.session.execute(delete(addon_tiers).where(addon_tiers.c.addon_id == addon_id))
    if tier_ids:
        db.session.execute(insert(addon_tiers), [{"addon_id": addon_id, "tier_id": tier_id} for tier_id in sorted(tier_ids)])


def add_addon(campaign: Campaign, actor: User, data: AddonInput) -> Addon:
    """Add an add-on (whenever tiers can be added). Commits."""
    _require_creator(campaign, actor)
    require_tiers_open(campaign)
    wanted = _wanted_destinations(data, campaign.currency)
    tier_ids = _offered_tiers(campaign, data.tier_ids)
    addon = Addon(campaign_id=campaign.id, **_columns(data, ADDON_COLUMNS))

    def write() -> None:
        db.session.add(addon)
        db.session.flush()
        _write_addon_tiers(addon.id, tier_ids)
        _write_destinations(ShippingDestination.addon_id, addon.id, {}, wanted, live=False)

    _save_offer(campaign, write)
    return addon


def get_addon(campaign: Campaign, addon_id: int) -> Addon | None:
    return db.session.scalar(select(Addon).where(Addon.id == addon_id, Addon.campaign_id == campaign.id, Addon.deleted_at.is_(None)))


def update_addon(campaign: Campaign, actor: User, addon: Addon, data: AddonInput) -> Addon:
    """Edit an add-on, by the tiers' rules: on a live campaign one that backers hold keeps its content
    and its quantity never goes below what is claimed; destinations only added or made cheaper. Commits."""
    _require_creator(campaign, actor)
    require_tiers_open(campaign)
    changed = [name for name in ADDON_CONTENT if getattr(data, name) != getattr(addon, name)]
    # The form field a refusal belongs to: the first changed one ("tiers" for tier_ids), else the quantity.
    refused_field = ("tiers" if changed[0] == "tier_ids" else changed[0]) if changed else "quantity_limit"
    live = campaign.status == S.LIVE
    if live and addon.claimed > 0 and changed:
        raise CampaignError(
            _("Backers have chosen this add-on: only its quantity can change now, and destinations be added or made cheaper."),
            field=refused_field,
        )
    if data.quantity_limit is not None and data.quantity_limit < addon.claimed:
        raise CampaignError(
            ngettext("%(num)d of this add-on is already claimed: the quantity cannot be lower than that.",
                     "%(num)d of this add-on are already claimed: the quantity cannot be lower than that.", addon.claimed),
            field="quantity_limit",
        )
    tier_ids = _offered_tiers(campaign, data.tier_ids)
    wanted = _wanted_destinations(data, campaign.currency)
    stored = _stored_destinations(ShippingDestination.addon_id == addon.id)
    _check_destination_changes(stored, wanted, campaign.currency, live)

    def write() -> None:
        if not _guarded_update(Addon, addon, campaign, _columns(data, ADDON_COLUMNS), data.quantity_limit, bool(changed)):
            raise CampaignError(
                _("Backers chose this add-on meanwhile. Reload the page to see what can still change."),
                field=refused_field,
            )
        if "tier_ids" in changed:
            _write_addon_tiers(addon.id, tier_ids)
        _write_destinations(ShippingDestination.addon_id, addon.id, stored, wanted, live)

    _save_offer(campaign, write)
    db.session.refresh(addon)
    return addon


def delete_addon(campaign: Campaign, actor: User, addon: Addon) -> None:
    """Remove an add-on nobody holds (kept as a row, hidden). Commits."""
    _delete_offer(Addon, addon, campaign, actor, _("Backers have chosen this add-on, so it cannot be removed."))


def claim_addon(addon_id: int, quantity: int) -> bool:
    """Take `quantity` units of an add-on; False when fewer are left (or it is gone). Conditional,
    so never oversold, also by pledges at once. Does not commit: the caller's pledge does."""
    if quantity < 1:
        raise ValueError("claim at least one unit")
    result = db.session.execute(
        update(Addon)
        .where(Addon.id == addon_id, Addon.deleted_at.is_(None),
               or_(Addon.quantity_limit.is_(None), Addon.claimed + quantity <= Addon.quantity_limit))
        .values(claimed=Addon.claimed + quantity)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def release_addon(addon_id: int, quantity: int) -> None:
    """Give back `quantity` units a pledge held. Does not commit."""
    if quantity:
        db.session.execute(
            update(Addon).where(Addon.id == addon_id).values(claimed=Addon.claimed - quantity).execution_options(synchronize_session=False)
        )


# --- creator transitions ---------------------------------------------------------------------

def missing_for_submit(campaign: Campaign) -> list[str]:
    """What a campaign still needs before review (cover optional)."""
    missing = []
    if not campaign.title.strip():
        missing.append(_("a title"))
    if not campaign.blurb.strip():
        missing.append(_("a short blurb"))
    if not campaign.goal or campaign.goal <= 0:
        missing.append(_("a funding goal"))
    if not campaign.story.strip():
        missing.append(_("the story"))
    if not campaign.risks.strip():
        missing.append(_("risks and challenges"))
    if not campaign.tiers:
        missing.append(_("at least one funding tier"))
    for tier in campaign.tiers:
        if tier.ships and not tier.destinations:  # the form refuses it; a tier saved another way is caught here
            missing.append(_("a shipping destination for the tier “%(title)s” (or choose “No shipping”)", title=tier.title))
    return missing


def submit(campaign: Campaign, actor: User) -> None:
    """Send a complete draft to review; it is frozen until a moderator decides. Commits."""
    _require_creator(campaign, actor)
    missing = missing_for_submit(campaign)
    if missing:
        raise CampaignError(_("Before you submit, add: %(missing)s.", missing=", ".join(missing)), missing=missing)
    transition(campaign, "submit", actor)
    campaign.submitted_at = clock.utcnow()
    _tell_moderators_submitted(campaign, actor)
    db.session.commit()


def _tell_moderators_submitted(campaign: Campaign, actor: User) -> None:
    """Mail the moderators who want it that a campaign waits for review (in the caller's transaction)."""
    from app.accounts.services import moderators_to_mail
    from app.notifications import services as mail

    subject = _l("To review: “%(title)s”", title=campaign.title)
    with mail.mail_batch():
        for moderator in moderators_to_mail(except_id=actor.id):
            mail.queue_mail(moderator, subject, "moderation_submitted", campaign=campaign, reader=moderator)


#: What a campaign needs before launch beyond its own content, added by the floors above (payouts:
#: an account that can receive the money). Each returns what is missing, in words, or None.
launch_requirements: list[Callable[[Campaign], str | None]] = []


def missing_for_launch(campaign: Campaign) -> list[str]:
    return [missing for check in launch_requirements if (missing := check(campaign))]


def launch(campaign: Campaign, actor: User) -> None:
    """Open an approved campaign for pledges; the deadline is fixed now. Commits."""
    _require_creator(campaign, actor)
    missing = missing_for_launch(campaign)
    if missing and campaign.status == S.APPROVED:
        raise CampaignError(_("Before you launch, add: %(missing)s.", missing=", ".join(missing)), missing=missing)
    transition(campaign, "launch", actor)
    now = clock.utcnow()
    campaign.launched_at = now
    campaign.deadline = now + timedelta(days=campaign.duration_days)
    db.session.commit()


def cancel(campaign: Campaign, actor: User) -> None:
    """The creator stops a live campaign; its pledges are released through `campaign_closed`. Commits."""
    _require_creator(campaign, actor)
    now = clock.utcnow()
    if campaign.status == S.LIVE and campaign.deadline is not None and now >= campaign.deadline:
        # At the deadline the outcome is decided from the pledges; canceling now would undo it.
        raise CampaignError(_("The deadline has passed, so the campaign can no longer be canceled: its outcome is being decided."))
    transition(campaign, "cancel", actor)
    campaign.ended_at = now
    db.session.commit()
    campaign_closed.send(campaign)


# --- moderator transitions -------------------------------------------------------------------

DECISIONS = ("approve", "request_changes", "reject")


def decide(campaign: Campaign, moderator: User, decision: str, note: str = "") -> CampaignEvent:
    """A moderator's review decision; request_changes and reject need a note. Commits.

    The creator is told by email (queued in the same transaction) and on their dashboard.
    """
    from app.notifications import services as mail

    if not moderator.is_moderator:
        raise CampaignError(_("Only moderators can review campaigns."))
    if decision not in DECISIONS:
        raise CampaignError(_("Choose a decision."), field="decision")
    if moderator.id == campaign.creator_id:
        raise CampaignError(_("You cannot review your own campaign."))
    if campaign.status != S.SUBMITTED:  # the real reason first, before asking for a note
        raise CampaignError(_("Only a campaign waiting for review can be decided; this one is %(state)s.", state=state_name(campaign.state).lower()))
    note = (note or "").strip()
    if decision != "approve" and not note:
        raise CampaignError(_("Write a note telling the creator why."), field="note")
    event = transition(campaign, decision, moderator, note)
    mail.queue_mail(
        campaign.creator,
        # Lazy, so that the subject (and the action's name in it) is in the creator's language.
        LazyString(lambda: _("Your campaign “%(title)s” was %(decision)s", title=campaign.title, decision=action_label(decision))),
        "campaign_decision",
        campaign=campaign,
        decision=decision,
        note=note,
    )
    db.session.commit()
    return event


def suspend(campaign: Campaign, moderator: User, reason: str) -> None:
    """A moderator stops a live campaign with a reason; pledges are released through `campaign_closed`. Commits."""
    if not moderator.is_moderator:
        raise CampaignError(_("Only moderators can suspend campaigns."))
    reason = (reason or "").strip()
    if not reason:
        raise CampaignError(_("Write the reason for the suspension."), field="note")
    transition(campaign, "suspend", moderator, reason)
    campaign.ended_at = clock.utcnow()
    db.session.commit()
    campaign_closed.send(campaign)


def set_featured(campaign: Campaign, moderator: User, featured: bool) -> None:
    """Pick (or unpick) a campaign for the home page. Commits."""
    if not moderator.is_moderator:
        raise CampaignError(_("Only moderators can feature campaigns."))
    if featured and campaign.status != S.LIVE:
        raise CampaignError(_("Only a live campaign can be featured."))
    if campaign.featured == featured:
        return  # a second click changes nothing and logs nothing
    now = clock.utcnow()
    campaign.featured = featured
    campaign.updated_at = now
    record(campaign, "feature" if featured else "unfeature", moderator, now=now)
    db.session.commit()


# --- queries ---------------------------------------------------------------------------------

#: What the pages that show a campaign's whole offer also load: the tiers' destinations, the add-ons
#: with theirs and their tiers (three small queries; the pledge page and the rest never need them).
_OFFER = (
    joinedload(Campaign.tiers).selectinload(Tier.destinations),
    selectinload(Campaign.addons).selectinload(Addon.destinations),
    selectinload(Campaign.addons).selectinload(Addon.tiers),
)


#: Built once: every campaign page and pledge form runs one of them.
_CAMPAIGN_BY_SLUG = select(Campaign).where(Campaign.slug == bindparam("slug"))
_BY_SLUG, _BY_SLUG_WITH_OFFER = _CAMPAIGN_BY_SLUG.options(joinedload(Campaign.tiers)), _CAMPAIGN_BY_SLUG.options(*_OFFER)


def get_by_slug(slug: str, offer: bool = False) -> Campaign | None:
    """The campaign at `slug` with its creator and tiers; with `offer`, everything the campaign page
    shows of what it offers."""
    # Slugs are short ASCII; anything else (a NUL byte PostgreSQL refuses, 10 kB of junk) is no campaign.
    if not slug or len(slug) > 100 or not slug.isascii() or "\x00" in slug:
        return None
    # One round trip for the campaign, its creator and its tiers (a handful of rows).
    return db.session.scalars(_BY_SLUG_WITH_OFFER if offer else _BY_SLUG, {"slug": slug}).unique().first()


def load_offer(campaign: Campaign) -> Campaign:
    """Load what `_OFFER` names into a campaign loaded without it (three small queries, not one per
    tier or add-on); the campaign page calls it only when its offer part is not in the fragment cache."""
    if "addons" not in inspect(campaign).unloaded:
        return campaign
    db.session.scalars(select(Campaign).where(Campaign.id == campaign.id).options(*_OFFER)).unique().all()
    return campaign


def get_visible(slug: str, user: User | None, offer: bool = False) -> Campaign | None:
    """The campaign at `slug` if `user` may see it (a draft is its creator's and the moderators' only)."""
    campaign = get_by_slug(slug, offer)
    return campaign if campaign is not None and can_view(campaign, user) else None


@dataclass(frozen=True)
class PublicFacts:
    """What a member's page of a public campaign needs of it besides its shell (caching.shell_page):
    the viewer's statement and their parts (campaigns/_viewer.html). Cached per campaigns' version."""

    id: int
    slug: str
    creator_id: int
    state: str
    deadline: datetime | None

    def is_open_for_pledges(self, now: datetime) -> bool:
        return open_for_pledges(self.state, self.deadline, now)


def public_facts(slug: str) -> PublicFacts | None:
    """The facts of the public campaign at `slug`; None for no campaign or one not public (its page
    is then served the long way, which knows its 404 and its preview)."""
    campaign = get_by_slug(slug)
    if campaign is None or not campaign.is_public:
        return None
    return PublicFacts(campaign.id, campaign.slug, campaign.creator_id, campaign.state, campaign.deadline)


def duration_bounds() -> tuple[int, int]:
    return current_app.config["CAMPAIGN_MIN_DAYS"], current_app.config["CAMPAIGN_MAX_DAYS"]


def time_left(campaign: Campaign, now: datetime | None = None) -> timedelta | None:
    if campaign.deadline is None:
        return None
    return max(campaign.deadline - (now or clock.utcnow()), timedelta(0))


def public_states() -> list[str]:
    return [s.value for s in PUBLIC]


def moderation_queue() -> list[Campaign]:
    """Submitted campaigns, oldest first."""
    return list(db.session.scalars(select(Campaign).where(Campaign.state == S.SUBMITTED.value).order_by(Campaign.submitted_at, Campaign.id)))


#: The creator's dashboard groups, in the order it shows them (issue 18: what needs the creator first).
DASHBOARD_GROUPS = ("action", "live", "review", "drafts", "ended")
_GROUP_OF_STATE = {
    S.CHANGES_REQUESTED: "action", S.APPROVED: "action", S.LIVE: "live", S.SUBMITTED: "review", S.DRAFT: "drafts",
}

#: What needs a creator's action beyond their campaign's own state, added by the floors above
#: (settlement: payments that failed; fulfillment: a survey to send), each with the states of the
#: campaigns it looks at. Each is given the creator's campaigns in those states (never none) and returns
#: {campaign id: what to do, in words}, in a bounded number of statements.
attention_checks: list[tuple[frozenset[str], Callable[[list[Campaign]], dict[int, str]]]] = []


def needs_attention(campaigns: list[Campaign]) -> dict[int, list[str]]:
    """What each campaign needs its creator to do now, by campaign id (only those that need something)."""
    found: dict[int, list[str]] = {}
    for campaign in campaigns:
        if campaign.state == S.CHANGES_REQUESTED.value:
            found.setdefault(campaign.id, []).append(_("Make the changes the moderator asked for, then submit again."))
        elif campaign.state == S.APPROVED.value:
            found.setdefault(campaign.id, []).append(_("Approved: launch it when you are ready."))
    for states, check in attention_checks:
        looked_at = [campaign for campaign in campaigns if campaign.state in states]
        for campaign_id, what in (check(looked_at) if looked_at else {}).items():
            found.setdefault(campaign_id, []).append(what)
    return found


def dashboard_groups(campaigns: list[Campaign], attention: dict[int, list[str]]) -> list[tuple[str, list[Campaign]]]:
    """The creator's campaigns in the dashboard's groups (DASHBOARD_GROUPS order, empty groups left out):
    anything that needs them, then live, in review, drafts, and the ended ones."""
    groups: dict[str, list[Campaign]] = {name: [] for name in DASHBOARD_GROUPS}
    for campaign in campaigns:
        group = "action" if campaign.id in attention else _GROUP_OF_STATE.get(S(campaign.state), "ended")
        groups[group].append(campaign)
    return [(name, items) for name, items in groups.items() if items]


#: What the dashboard shows of a campaign's own row (with the chart drawn from its counters), read
#: without the ORM or a transaction: built once, every visit to /me/campaigns runs it.
_DASHBOARD_ROWS = (select(Campaign.id, Campaign.state, Campaign.slug, Campaign.title, Campaign.goal, Campaign.currency,
                          Campaign.deadline, Campaign.launched_at, Campaign.updated_at, Campaign.pledged_total,
                          Campaign.backers_count, Campaign.pledged_at_deadline, Campaign.backers_at_deadline)
                   .where(Campaign.creator_id == bindparam("creator_id")).order_by(Campaign.updated_at.desc()))

#: The states whose dashboard block shows nothing but that row: not a draft (its missing parts read its
#: tiers), not one a moderator sent back or rejected (their note), not an ended one (its money report,
#: its payout).
_SHOWN_FROM_ROW = frozenset({S.SUBMITTED.value, S.APPROVED.value, S.LIVE.value, S.CANCELED.value, S.SUSPENDED.value})


def dashboard_key(user: User) -> tuple | None:
    """The creator's dashboard's cache key: their id, their campaigns' rows as it shows them (one light
    statement) and the minute (a live chart is drawn again each minute); None when a block shows more
    than its row (see _SHOWN_FROM_ROW, and the states an attention check looks at)."""
    rows = tuple(database.read_all(db.engine, _DASHBOARD_ROWS, {"creator_id": user.id}))  # named tuples: hashable as they are
    checked = frozenset().union(*(states for states, _check in attention_checks))
    if all(state in _SHOWN_FROM_ROW and state not in checked for _id, state, *_rest in rows):
        return user.id, rows, clock.utcnow().replace(second=0, microsecond=0)
    return None


def creator_campaigns(user: User) -> list[Campaign]:
    """The creator's campaigns, last changed first, with what their dashboard reads of them: the tiers
    and destinations of the drafts (what is missing before review), the audit rows of those a moderator
    sent back or rejected (the moderator's note). Each kind in one statement, none when there is none.
    The story and risks (long texts) only for the drafts, whose next step checks them."""
    campaigns = list(db.session.scalars(_CREATORS_CAMPAIGNS, {"creator_id": user.id}))
    _load_for(campaigns, {S.DRAFT.value}, selectinload(Campaign.tiers).selectinload(Tier.destinations),
              undefer(Campaign.story), undefer(Campaign.risks))
    _load_for(campaigns, {S.CHANGES_REQUESTED.value, S.REJECTED.value}, selectinload(Campaign.events))
    return campaigns


_CREATORS_CAMPAIGNS = (select(Campaign).where(Campaign.creator_id == bindparam("creator_id"))
                       .order_by(Campaign.updated_at.desc()).options(defer(Campaign.story), defer(Campaign.risks)))


def _load_for(campaigns: list[Campaign], states: set[str], *options) -> None:
    """Load `options` into those of `campaigns` (already loaded) that are in `states`."""
    ids = [c.id for c in campaigns if c.state in states]
    if ids:
        db.session.scalars(select(Campaign).where(Campaign.id.in_(ids)).options(*options)).all()


def count_by_creator(user_ids: list[int]) -> dict[int, int]:
    rows = db.session.execute(select(Campaign.creator_id, func.count()).where(Campaign.creator_id.in_(user_ids)).group_by(Campaign.creator_id))
    return dict(rows.all())




# --- public listings -------------------------------------------------------------------------

SORTS = ("ending", "newest", "funded", "backers")
PAGE_SIZE = 12


@dataclass
class Listing:
    """One page of campaigns with their totals, for the discover and browse pages."""

    campaigns: list[Campaign]
    totals: dict[int, totals.Totals]
    page: int
    pages: int
    total: int

    def of(self, campaign: Campaign) -> totals.Totals:
        return self.totals.get(campaign.id, totals.ZERO)


def _with_totals(items) -> dict[int, totals.Totals]:
    return totals.for_campaigns(items)


#: What browsing shows (issue 18): live campaigns by default; the ended or only the funded ones on request.
SHOWS = ("live", "ended", "funded", "all")


def browse(q: str = "", category: str = "", sort: str = "ending", page: int = 1, *, show: str = "live",
           now: datetime | None = None) -> Listing:
    """Public campaigns matching a search: the live ones (the default), the ended ones, the funded ones,
    or all; `ending` (the default order) shows open ones first, soonest deadline first."""
    now = now or clock.utcnow()
    sort = sort if sort in SORTS else "ending"
    show = show if show in SHOWS else "live"
    still_open = and_(Campaign.state == S.LIVE.value, Campaign.deadline > now)
    where = [Campaign.state.in_(public_states())]
    if show == "live":
        where.append(still_open)
    elif show == "ended":
        where.append(~still_open)
    elif show == "funded":
        where.append(Campaign.state == S.SUCCESSFUL.value)
    q = (q or "").replace("\x00", "").strip()[:100]  # PostgreSQL refuses NUL in a text parameter
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(or_(Campaign.title.ilike(pattern, escape="\\"), Campaign.blurb.ilike(pattern, escape="\\")))
    if category:
        where.append(Campaign.category == category)
    # Open campaigns (live, deadline ahead) first, soonest deadline first; then the rest (ended, or
    # past the deadline and waiting for settlement), most recently closed first.
    is_open = and_(Campaign.state == S.LIVE.value, Campaign.deadline > now)
    query = select(Campaign).where(*where)
    pledged, backers = totals.sort_columns()
    order = {
        "ending": (case((is_open, 0), else_=1), case((is_open, Campaign.deadline)), Campaign.deadline.desc(), Campaign.id),
        "newest": (Campaign.launched_at.desc(), Campaign.id.desc()),
        "funded": ((pledged * 1.0 / Campaign.goal).desc(), Campaign.id.desc()),
        "backers": (backers.desc(), Campaign.id.desc()),
    }[sort]
    count = db.session.scalar(select(func.count()).select_from(Campaign).where(*where)) or 0
    pages = max(1, -(-count // PAGE_SIZE))
    page = max(1, min(page, pages))  # past the end: the last page
    items = list(db.session.scalars(query.order_by(*order).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)))
    return Listing(items, _with_totals(items), page, pages, count)


@dataclass
class Discover:
    featured: list[Campaign]
    ending_soon: list[Campaign]
    newest: list[Campaign]
    totals: dict[int, totals.Totals]

    def of(self, campaign: Campaign) -> totals.Totals:
        return self.totals.get(campaign.id, totals.ZERO)


def discover(now: datetime | None = None, size: int = 6) -> Discover:
    """The home page: featured picks, live campaigns ending soon, and the newest launches."""
    now = now or clock.utcnow()
    live = select(Campaign).where(Campaign.state == S.LIVE.value, Campaign.deadline > now)
    featured = list(db.session.scalars(live.where(Campaign.featured.is_(True)).order_by(Campaign.deadline).limit(size)))
    # Each row shows campaigns the rows above did not (issue 18: the same ones three times said nothing).
    shown = [c.id for c in featured]
    ending = list(db.session.scalars(live.where(Campaign.id.not_in(shown)).order_by(Campaign.deadline, Campaign.id).limit(size)))
    shown += [c.id for c in ending]
    newest = list(db.session.scalars(live.where(Campaign.id.not_in(shown)).order_by(Campaign.launched_at.desc(), Campaign.id.desc()).limit(size)))
    everyone = {c.id: c for c in featured + ending + newest}
    return Discover(featured, ending, newest, _with_totals(everyone.values()))
