"""Where a reward ships (SPEC §12): the countries a creator can choose, their names in the reader's
language (Babel's territory data: no country list written here), what shipping to a country costs,
and the short descriptions the pages show. No database: pledges, mails and exports can use it too.
"""
from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from babel import Locale
from babel.lists import format_list
from flask_babel import gettext as _
from flask_babel import ngettext

from app import money

#: "Rest of the world": every country without a row of its own (CLDR's "unknown region" code).
WORLD = "ZZ"

#: Codes CLDR names that are no ISO 3166-1 country: exceptional reservations (parts of a country or
#: unions) and groupings. The user-assigned ranges are excluded by rule in `_is_country`.
_NOT_COUNTRIES = frozenset({"AC", "CP", "CQ", "DG", "EA", "EU", "EZ", "IC", "TA", "UN"})
#: How many names the short description shows before "+N more".
_SHOWN = 3


class HasDestination(Protocol):
    country: str
    cost: int


@dataclass(frozen=True)
class Destination:
    """A country (or WORLD) and what shipping there costs, in minor units."""

    country: str
    cost: int


def shipping_cost(destinations: Iterable[HasDestination], country: str) -> int | None:
    """What shipping to `country` costs: its own row first, else the rest of the world, else None
    (it does not ship there)."""
    world = None
    for destination in destinations:
        if destination.country == country:
            return destination.cost
        if destination.country == WORLD:
            world = destination.cost
    return world


def _is_country(code: str) -> bool:
    # ISO 3166-1 keeps AA, QM-QZ, XA-XZ and ZZ for private use; of those only Kosovo's XK is used by
    # carriers, Stripe and every shop's country list, so it stays.
    if len(code) != 2 or not (code.isascii() and code.isalpha() and code.isupper()) or code in _NOT_COUNTRIES:
        return False
    private = code == "AA" or code == "ZZ" or (code[0] == "Q" and code >= "QM") or (code[0] == "X" and code != "XK")
    return not private


def _locale_name(locale: str | None) -> str:
    if locale:
        return locale
    return money.current_locale()


def sort_key(name: str) -> str:
    """Names in alphabetical order as a reader expects it: accents and case do not count ("Égypte"
    among the E). Chinese names keep Unicode order, which is radical-and-stroke order."""
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


@lru_cache(maxsize=16)
def _countries_in(locale: str) -> tuple[tuple[str, str], ...]:
    names = Locale.parse(locale).territories
    return tuple(sorted(((code, name) for code, name in names.items() if _is_country(code)), key=lambda item: sort_key(item[1])))


def countries(locale: str | None = None) -> list[tuple[str, str]]:
    """Every country as (code, name), sorted by name in `locale` (default: the reader's)."""
    return list(_countries_in(_locale_name(locale)))


@lru_cache(maxsize=1)
def _codes() -> frozenset[str]:
    return frozenset(code for code, _name in _countries_in("en"))


def is_country(code: str | None) -> bool:
    """A country someone can live in (what a backer chooses; WORLD is not one)."""
    return code in _codes()


def is_destination(code: str | None) -> bool:
    """A code a tier or an add-on may ship to: a country, or WORLD."""
    return code == WORLD or is_country(code)


def country_name(code: str, locale: str | None = None) -> str:
    """The country's name in `locale` (default: the reader's); WORLD is "Rest of the world"."""
    if code == WORLD:
        return _("Rest of the world")
    return Locale.parse(_locale_name(locale)).territories.get(code, code)


def choices(locale: str | None = None) -> list[tuple[str, str]]:
    """The destination select's options: none chosen, the rest of the world, then every country."""
    return [("", _("Choose a destination")), (WORLD, _("Rest of the world")), *countries(locale)]


def by_name(destinations: Iterable[HasDestination], locale: str | None = None) -> list[tuple[str, str, int]]:
    """(code, name, cost) sorted by name in `locale`, the rest of the world last."""
    rows = [(d.country, country_name(d.country, locale), d.cost) for d in destinations]
    return sorted(rows, key=lambda row: (row[0] == WORLD, sort_key(row[1])))


def names_list(names: list[str], locale: str | None = None) -> str:
    """Names as the reader's language lists them ("A, B and C", "A、B和C")."""
    return format_list(list(names), locale=_locale_name(locale)) if names else ""


def places(destinations: Iterable[HasDestination], locale: str | None = None) -> str:
    """Where it ships, in a few words: "Ships worldwide", "Ships to France and Germany",
    "Ships to France, Germany +4 more"."""
    rows = by_name(destinations, locale)
    if not rows:
        return ""
    if [code for code, _name, _cost in rows] == [WORLD]:
        return _("Ships worldwide")
    names = [name for _code, name, _cost in rows]
    locale = _locale_name(locale)
    if len(names) <= _SHOWN:
        return _("Ships to %(places)s", places=names_list(names, locale))
    first = Locale.parse(locale).list_patterns["standard"]["start"].format(*names[:2])
    return ngettext("Ships to %(places)s +%(num)d more", "Ships to %(places)s +%(num)d more", len(names) - 2, places=first)


def cost_summary(destinations: Iterable[HasDestination], currency: str, locale: str | None = None) -> str:
    """What shipping costs, in a few words: "free shipping", "shipping $6.00", "shipping from $6.00"."""
    costs = [d.cost for d in destinations]
    if not costs:
        return ""
    if max(costs) == 0:
        return _("free shipping")
    if min(costs) == 0:
        return _("free shipping to some destinations")
    if min(costs) == max(costs):
        return _("shipping %(cost)s", cost=money.format_money(costs[0], currency, locale))
    return _("shipping from %(cost)s", cost=money.format_money(min(costs), currency, locale))
