"""The pledge as a composition (SPEC §12): reward + add-ons + shipping + bonus = the total.

Pure arithmetic on what the campaign offers, in integer minor units: no database, no request. The
pledge form's checks (which add-ons a tier may add, quantities left) are the service's; this module
says what a choice costs and where it cannot ship. The page's script computes the same figures for
its live summary, and the server refuses a total the page did not show (services.check_total).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from app.campaigns.shipping import HasDestination, shipping_cost


class Shippable(Protocol):
    amount: int
    ships: bool
    destinations: Iterable[HasDestination]


class AddonLike(Shippable, Protocol):
    id: int
    shipping_per: str


class NoShipping(ValueError):
    """Something chosen does not ship to the country; `item` is the tier or add-on."""

    def __init__(self, item: object) -> None:
        super().__init__("does not ship there")
        self.item = item


@dataclass(frozen=True)
class AddonLine:
    addon_id: int
    quantity: int
    unit_amount: int
    shipping: int

    @property
    def amount(self) -> int:
        return self.unit_amount * self.quantity


@dataclass(frozen=True)
class Composition:
    """What a pledge is made of, in minor units of the campaign's currency."""

    reward: int
    addon_lines: tuple[AddonLine, ...]
    #: The reward's shipping (the add-ons' is on their lines).
    reward_shipping: int
    bonus: int
    #: None when nothing ships.
    country: str | None

    @property
    def addons(self) -> int:
        return sum(line.amount for line in self.addon_lines)

    @property
    def shipping(self) -> int:
        return self.reward_shipping + sum(line.shipping for line in self.addon_lines)

    @property
    def total(self) -> int:
        return self.reward + self.addons + self.shipping + self.bonus


def ships(tier: Shippable | None, quantities: Mapping[AddonLike, int]) -> bool:
    """Whether anything in this choice ships (then a destination is needed)."""
    return bool(tier is not None and tier.ships) or any(addon.ships for addon, quantity in quantities.items() if quantity > 0)


def _cost(item: Shippable, country: str) -> int:
    cost = shipping_cost(item.destinations, country)
    if cost is None:
        raise NoShipping(item)
    return cost


def compose(reward: int, tier: Shippable | None, quantities: Mapping[AddonLike, int], country: str | None, bonus: int) -> Composition:
    """The pledge for a reward amount (`tier`'s minimum, or the amount of a pledge without a reward),
    add-ons by quantity, a destination (needed only when something ships) and bonus support.

    Raises NoShipping when something chosen does not ship to `country` (or no country was given)."""
    shipping_somewhere = ships(tier, quantities)
    if shipping_somewhere and not country:
        raise NoShipping(tier if tier is not None and tier.ships else None)
    reward_shipping = _cost(tier, country) if tier is not None and tier.ships else 0
    lines = []
    for addon, quantity in sorted(quantities.items(), key=lambda item: item[0].id):
        if quantity <= 0:
            continue
        shipping = 0
        if addon.ships:
            cost = _cost(addon, country)
            shipping = cost * quantity if addon.shipping_per == "unit" else cost
        lines.append(AddonLine(addon.id, quantity, addon.amount, shipping))
    return Composition(reward, tuple(lines), reward_shipping, bonus, country if shipping_somewhere else None)
