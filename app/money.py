"""Money as integer minor units plus a currency: parse what a person types, format for display.

Nothing outside this module turns an amount into a decimal. Parsing goes through `Decimal` only to
read the digits exactly; no float ever holds money.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from babel import Locale
from babel.numbers import format_currency, get_currency_symbol, get_decimal_symbol

#: Supported currencies and the number of digits of their minor unit (JPY has none).
EXPONENTS: dict[str, int] = {"USD": 2, "EUR": 2, "GBP": 2, "CNY": 2, "JPY": 0}
CURRENCIES: tuple[str, ...] = tuple(EXPONENTS)

#: The smallest charge Stripe accepts, in minor units, per currency.
MIN_CHARGE: dict[str, int] = {"USD": 50, "EUR": 50, "GBP": 30, "CNY": 400, "JPY": 50}

#: The largest single charge Stripe accepts (8 digits in minor units).
MAX_CHARGE = 99_999_999
#: A sane ceiling for goals: one hundred million in major units.
MAX_GOAL_MAJOR = 100_000_000

#: English and Chinese write 1,234.56: comma groups of three, a point before the decimals.
_AMOUNT_RE = re.compile(r"^(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$|^\.\d+$", re.ASCII)
#: French writes 1 234,56 (the spaces are gone by then); a point is read as the decimal mark too,
#: as people often type it so (and the forms of other languages show it).
_COMMA_DECIMAL_RE = re.compile(r"^(?:\d+(?:[.,]\d+)?|[.,]\d+)$", re.ASCII)
#: Spaces that people and Babel put between groups of digits (space, no-break, narrow no-break, thin).
_SPACES = (" ", "\u00a0", "\u202f", "\u2009")


class MoneyError(ValueError):
    """Raised when text cannot be read as an amount. `code` lets forms show a translated message:
    empty, negative, format, decimals, whole, currency."""

    def __init__(self, message: str, code: str, **params: object) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


def current_locale() -> str:
    """The locale of the request or email being rendered (Flask-Babel), else English."""
    try:
        from flask_babel import get_locale

        return str(get_locale() or "en")
    except (ImportError, RuntimeError):  # pragma: no cover - outside Flask
        return "en"


def _comma_decimal(locale: str) -> bool:
    try:
        return get_decimal_symbol(locale) == ","
    except (ValueError, TypeError):
        return False


def exponent(currency: str) -> int:
    """Digits of the currency's minor unit."""
    try:
        return EXPONENTS[currency]
    except KeyError:
        raise MoneyError(f"Unsupported currency: {currency}", "currency") from None


def max_goal(currency: str) -> int:
    """The largest goal allowed, in minor units."""
    return MAX_GOAL_MAJOR * 10 ** exponent(currency)


@lru_cache(maxsize=1)
def _currency_markers() -> tuple[dict[str, frozenset[str]], list[str]]:
    """Each symbol or ISO code a person may type beside an amount, with the currencies it can mean.

    From Babel's data for the languages our members write in ("$", "US$", "$US" are dollars; "¥" is
    both yuan and yen; "CN¥", "JP¥" are not), so no table of symbols is kept by hand.
    """
    markers: dict[str, set[str]] = {}
    for currency in CURRENCIES:
        markers.setdefault(currency, set()).add(currency)
        for locale in _MARKER_LOCALES:
            symbol = "".join(ch for ch in get_currency_symbol(currency, locale) if not ch.isspace()).upper()
            for form in (symbol, unicodedata.normalize("NFKC", symbol)):  # "￥" as typed, and as "¥"
                markers.setdefault(form, set()).add(currency)
    # Built on the first amount read, not at import: ten locales' data would slow every process's start.
    return {marker: frozenset(currencies) for marker, currencies in markers.items()}, sorted(markers, key=len, reverse=True)


_MARKER_LOCALES = ("en", "en_US", "en_GB", "en_CA", "en_AU", "fr", "fr_CA", "zh_Hans_CN", "zh_Hant", "ja")
#: An ISO code left beside the digits once ours are taken away: "CHF25", "25chf".
_FOREIGN_CODE = re.compile(r"^[A-Z]{3}(?=[\d.,])|(?<=[\d.,])[A-Z]{3}$")


def _other_currency(currency: str) -> MoneyError:
    return MoneyError(f"Enter the amount in {currency}.", "other_currency", currency=currency)


def _without_currency(text: str, currency: str) -> str:
    """`text` without the symbols and codes around the number; another currency's is refused.

    "£25", "25 GBP", "GBP 25" are fine on a GBP campaign; "¥2500", "$25", "25 USD" or "₹25" are not
    (they used to be dropped silently, so ¥2,500 became £2,500).
    """
    markers, longest_first = _currency_markers()
    cleaned = text.upper()
    stripped = True
    while stripped:
        stripped = False
        for marker in longest_first:
            if cleaned.startswith(marker) or cleaned.endswith(marker):
                if currency not in markers[marker]:
                    raise _other_currency(currency)
                cleaned, stripped = cleaned.removeprefix(marker).removesuffix(marker), True
    if cleaned and (_FOREIGN_CODE.search(cleaned) or "Sc" in (unicodedata.category(cleaned[0]), unicodedata.category(cleaned[-1]))):
        raise _other_currency(currency)
    return cleaned


def parse(text: str | None, currency: str, locale: str | None = None) -> int:
    """Read an amount typed in major units as minor units, the way `locale` writes numbers.

    English and Chinese: "25", "25.50", "1,250", "2500" for JPY. French: "25,50", "1 250,50", and
    "25.50" too. In Chinese, the full-width digits of an input method ("２５．５") are read as digits.
    `locale` defaults to the current request's. Raises MoneyError with a message in English; forms
    translate the common cases themselves.
    """
    digits = exponent(currency)
    locale = locale or current_locale()
    comma_decimal = _comma_decimal(locale)
    cleaned = (text or "").strip()
    if locale.startswith("zh"):  # a Chinese input method types full-width digits and signs: "２５．５０", "￥"
        cleaned = unicodedata.normalize("NFKC", cleaned)
    for space in _SPACES:
        cleaned = cleaned.replace(space, "")
    cleaned = _without_currency(cleaned, currency)
    if not cleaned:
        raise MoneyError("Enter an amount.", "empty")
    if cleaned.startswith("-"):
        raise MoneyError("The amount must be more than zero.", "negative")
    pattern = _COMMA_DECIMAL_RE if comma_decimal else _AMOUNT_RE
    if len(cleaned) > 32 or not pattern.match(cleaned):
        raise MoneyError("Enter the amount as a number, for example 25 or 25.50.", "format")
    try:
        value = Decimal(cleaned.replace(",", ".") if comma_decimal else cleaned.replace(",", ""))
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


def to_input(amount: int | None, currency: str, locale: str | None = None) -> str:
    """The amount as a person would type it back into a form ("25.50", "2500"; "25,50" in French).

    `locale` defaults to the current request's, like `parse`, which reads it back.
    """
    if amount is None:
        return ""
    locale = locale or current_locale()
    digits = exponent(currency)
    major = to_major(amount, currency)
    if digits and amount % 10**digits == 0:
        return str(amount // 10**digits)
    text = f"{major:.{digits}f}"
    return text.replace(".", ",") if _comma_decimal(locale) else text


def _whole_pattern(locale: str) -> str:
    """The locale's own currency pattern without its decimals ("¤#,##0", "#,##0 ¤")."""
    pattern = Locale.parse(locale).currency_formats["standard"].pattern
    return re.sub(r"\.[0#]+", "", pattern)


def format_money(amount: int, currency: str, locale: str | None = None, *, whole: bool = False) -> str:
    """Format minor units for display in `locale` (default: the current one) as Babel writes them:
    "$25.50", "1 234,50 €", "US$25.00" in Chinese, "¥2,500".

    `whole=True` drops the minor unit when it is zero, for headline figures ("$12,000", "12 000 €").
    """
    return _formatted(amount, currency, locale or current_locale(), whole)


@lru_cache(maxsize=4096)
def _formatted(amount: int, currency: str, locale: str, whole: bool) -> str:
    """format_money's text, kept per amount, currency, locale and style: Babel takes ~18 µs to write one,
    and a member's page writes the same few (their pledge, a campaign's totals) on every visit."""
    major = to_major(amount, currency)
    if whole and amount % 10 ** exponent(currency) == 0:
        return format_currency(major, currency, locale=locale, format=_whole_pattern(locale), currency_digits=False)
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

    def format(self, locale: str | None = None) -> str:
        return format_money(self.amount, self.currency, locale)

    def __str__(self) -> str:
        return self.format()
