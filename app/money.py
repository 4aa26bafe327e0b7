"""Money as integer minor units plus a currency: parse what a person types, format for display.

Nothing outside this module turns an amount into a decimal. Parsing goes through `Decimal` only to
read the digits exactly; no float ever holds money.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from babel.numbers import format_currency

#: Supported currencies and the number of digits of their minor unit (JPY has none).
EXPONENTS: dict[str, int] = {"USD": 2, "EUR": 2, "GBP": 2, "CNY": 2, "JPY": 0}
CURRENCIES: tuple[str, ...] = tuple(EXPONENTS)

#: The smallest charge Stripe accepts, in minor units, per currency.
MIN_CHARGE: dict[str, int] = {"USD": 50, "EUR": 50, "GBP": 30, "CNY": 400, "JPY": 50}

#: The largest single charge Stripe accepts (8 digits in minor units).
MAX_CHARGE = 99_999_999
#: A sane ceiling for goals: one hundred million in major units.
MAX_GOAL_MAJOR = 100_000_000

_AMOUNT_RE = re.compile(r"^(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$|^\.\d+$", re.ASCII)


class MoneyError(ValueError):
    """Raised when text cannot be read as an amount. `code` lets forms show a translated message:
    empty, negative, format, decimals, whole, currency."""

    def __init__(self, message: str, code: str, **params: object) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


def exponent(currency: str) -> int:
    """Digits of the currency's minor unit."""
    try:
        return EXPONENTS[currency]
    except KeyError:
        raise MoneyError(f"Unsupported currency: {currency}", "currency") from None


def max_goal(currency: str) -> int:
    """The largest goal allowed, in minor units."""
    return MAX_GOAL_MAJOR * 10 ** exponent(currency)


def parse(text: str | None, currency: str) -> int:
    """Read an amount typed in major units ("25", "25.50", "1,250", "2500" for JPY) as minor units.

    Raises MoneyError with a message in English; forms translate the common cases themselves.
    """
    digits = exponent(currency)
    cleaned = (text or "").strip().replace(" ", "").replace("\u00a0", "")
    for symbol in ("$", "€", "£", "¥", "US", "CN", "USD", "EUR", "GBP", "CNY", "JPY"):
        cleaned = cleaned.removeprefix(symbol).removesuffix(symbol)
    if not cleaned:
        raise MoneyError("Enter an amount.", "empty")
    if cleaned.startswith("-"):
        raise MoneyError("The amount must be more than zero.", "negative")
    if len(cleaned) > 32 or not _AMOUNT_RE.match(cleaned):
        raise MoneyError("Enter the amount as a number, for example 25 or 25.50.", "format")
    try:
        value = Decimal(cleaned.replace(",", ""))
    except InvalidOperation:  # pragma: no cover - the regex admits only valid decimals
        raise MoneyError("Enter the amount as a number, for example 25 or 25.50.", "format") from None
    minor = value.scaleb(digits)
    if minor != minor.to_integral_value():
        if digits == 0:
            raise MoneyError(f"{currency} has no cents: enter a whole number.", "whole", currency=currency)
        raise MoneyError(f"Use at most {digits} decimal places.", "decimals", digits=digits)
    return int(minor)


def to_major(amount: int, currency: str) -> Decimal:
    """The exact decimal value of `amount` minor units (for display and form defaults only)."""
    return Decimal(amount).scaleb(-exponent(currency))


def to_input(amount: int | None, currency: str) -> str:
    """The amount as a person would type it back into a form ("25.50", "2500")."""
    if amount is None:
        return ""
    digits = exponent(currency)
    major = to_major(amount, currency)
    if digits and amount % 10**digits == 0:
        return str(amount // 10**digits)
    return f"{major:.{digits}f}"


def format_money(amount: int, currency: str, locale: str = "en", *, whole: bool = False) -> str:
    """Format minor units for display in `locale` ("$25.50", "€25.50", "¥2,500").

    `whole=True` drops the minor unit when it is zero, for headline figures ("$12,000").
    """
    major = to_major(amount, currency)
    if whole and amount % 10 ** exponent(currency) == 0:
        return format_currency(major, currency, locale=locale, format="¤#,##0", currency_digits=False)
    return format_currency(major, currency, locale=locale)


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in minor units with its currency; arithmetic refuses mixed currencies."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise TypeError("Money.amount must be an int of minor units")
        exponent(self.currency)

    @classmethod
    def parse(cls, text: str, currency: str) -> Money:
        return cls(parse(text, currency), currency)

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money) or other.currency != self.currency:
            raise ValueError("Cannot combine amounts in different currencies")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def percent(self, percent: float | Decimal) -> Money:
        """`percent`% of this amount, rounded half up to the minor unit."""
        value = (Decimal(self.amount) * Decimal(str(percent)) / 100).quantize(Decimal(1), rounding="ROUND_HALF_UP")
        return Money(int(value), self.currency)

    def format(self, locale: str = "en") -> str:
        return format_money(self.amount, self.currency, locale)

    def __str__(self) -> str:
        return self.format()
