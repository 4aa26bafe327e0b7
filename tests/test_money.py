"""app.money: parsing what people type, formatting, zero-decimal currencies."""
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app import money
from app.money import Money, MoneyError, format_money, parse, to_input


@pytest.mark.parametrize(
    "text,currency,expected",
    [
        ("25", "USD", 2500),
        ("25.5", "USD", 2550),
        ("25.50", "USD", 2550),
        ("0.50", "EUR", 50),
        (".75", "GBP", 75),
        ("1,234.56", "USD", 123456),
        ("1,000,000", "USD", 100000000),
        (" 25 ", "USD", 2500),
        ("$25", "USD", 2500),
        ("25 USD", "USD", 2500),
        ("2500", "JPY", 2500),
        ("2,500", "JPY", 2500),
        ("2500.00", "JPY", 2500),
        ("¥2500", "JPY", 2500),
        ("88.8", "CNY", 8880),
        ("0", "USD", 0),
    ],
)
def test_parse_accepts_what_people_type(text, currency, expected):
    assert parse(text, currency) == expected
    assert isinstance(parse(text, currency), int)


@pytest.mark.parametrize(
    "text,currency,message",
    [
        ("", "USD", "Enter an amount"),
        (None, "USD", "Enter an amount"),
        ("-5", "USD", "more than zero"),
        ("abc", "USD", "as a number"),
        ("25.505", "USD", "at most 2 decimal places"),
        ("2500.5", "JPY", "no cents"),
        ("1e5", "USD", "as a number"),
        ("NaN", "USD", "as a number"),
        ("Infinity", "USD", "as a number"),
        ("12,34", "USD", "as a number"),
        ("1.2.3", "USD", "as a number"),
        ("9" * 40, "USD", "as a number"),
        ("25", "XXX", "Unsupported currency"),
        ("٢٥", "USD", "as a number"),
    ],
)
def test_parse_refuses_with_a_clear_message(text, currency, message):
    with pytest.raises(MoneyError, match=message):
        parse(text, currency)


def test_format_in_each_currency_and_locale():
    assert format_money(2550, "USD") == "$25.50"
    assert format_money(2500, "JPY") == "¥2,500"
    assert format_money(123450, "EUR", "fr") == "1\u202f234,50\u00a0€"
    assert format_money(999, "GBP") == "£9.99"
    assert format_money(1200000, "USD", whole=True) == "$12,000"
    assert format_money(1200050, "USD", whole=True) == "$12,000.50"
    assert format_money(0, "CNY") == "CN¥0.00"


def test_to_input_round_trips():
    assert to_input(2550, "USD") == "25.50"
    assert to_input(2500, "USD") == "25"
    assert to_input(5, "USD") == "0.05"
    assert to_input(2500, "JPY") == "2500"
    assert to_input(None, "USD") == ""


@given(st.integers(min_value=0, max_value=10**12), st.sampled_from(money.CURRENCIES))
def test_parse_of_to_input_is_identity(amount, currency):
    assert parse(to_input(amount, currency), currency) == amount


def test_money_value_object():
    a = Money(1000, "USD")
    assert a + Money(250, "USD") == Money(1250, "USD")
    assert a - Money(250, "USD") == Money(750, "USD")
    assert Money.parse("10.25", "EUR") == Money(1025, "EUR")
    assert str(Money(2500, "JPY")) == "¥2,500"
    with pytest.raises(ValueError):
        a + Money(1, "EUR")
    with pytest.raises(TypeError):
        Money(10.5, "USD")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money(True, "USD")  # type: ignore[arg-type]
    with pytest.raises(MoneyError):
        Money(1, "BTC")


@pytest.mark.parametrize(
    "amount,percent,expected",
    [(10000, 5, 500), (999, 5, 50), (990, 5, 50), (989, 5, 49), (1, 5, 0), (12345, Decimal("2.9"), 358)],
)
def test_percent_rounds_half_up(amount, percent, expected):
    assert Money(amount, "USD").percent(percent).amount == expected


def test_bounds():
    assert money.max_goal("USD") == 100_000_000 * 100
    assert money.max_goal("JPY") == 100_000_000
    assert money.MIN_CHARGE["JPY"] == 50
    assert money.exponent("JPY") == 0


@pytest.mark.parametrize("text,currency,locale,expected", [
    ("¥2500", "JPY", "en", 2500), ("¥2500", "CNY", "zh_Hans_CN", 250000), ("￥2500", "JPY", "en", 2500),
    ("2500元", "CNY", "zh_Hans_CN", 250000), ("JP¥2500", "JPY", "en", 2500), ("CN¥25", "CNY", "en", 2500),
    ("25,50 $US", "USD", "fr", 2550), ("US$25", "USD", "en", 2500), ("25 usd", "USD", "en", 2500),
    ("1 234,50 €", "EUR", "fr", 123450), ("EUR 25", "EUR", "en", 2500), ("£GB 25", "GBP", "en", 2500),
    ("CN¥25", "JPY", "en", None), ("JP¥25", "CNY", "en", None), ("$25", "EUR", "en", None),
    ("25 $US", "GBP", "fr", None), ("¥2500", "GBP", "en", None), ("25 USD", "GBP", "en", None),
    ("CHF25", "EUR", "en", None), ("25chf", "EUR", "en", None), ("₹25", "USD", "en", None), ("€€25", "USD", "en", None),
])
def test_another_currencys_sign_or_code_is_refused(text, currency, locale, expected):
    """Issue 14, finding 6: a sign or code is accepted only when it can mean the campaign's currency."""
    if expected is None:
        with pytest.raises(money.MoneyError) as caught:
            money.parse(text, currency, locale)
        assert caught.value.code == "other_currency" and caught.value.params == {"currency": currency}
    else:
        assert money.parse(text, currency, locale) == expected
