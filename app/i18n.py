"""Locale and time zone selection, and the template filters that format money and dates."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from flask import Flask, current_app, request
from flask_babel import format_date, format_datetime, format_timedelta, get_locale
from flask_login import current_user

from app import money


def select_locale() -> str:
    """The member's chosen language, else the best match for the browser's Accept-Language."""
    languages = current_app.config["LANGUAGES"]
    if current_user and getattr(current_user, "is_authenticated", False):
        chosen = getattr(current_user, "locale", None)
        if chosen in languages:
            return chosen
    if request:
        return request.accept_languages.best_match(languages) or languages[0]
    return languages[0]


def select_timezone() -> str:
    """The member's time zone, else UTC."""
    if current_user and getattr(current_user, "is_authenticated", False):
        return getattr(current_user, "timezone", None) or "UTC"
    return "UTC"


def money_filter(amount: int | None, currency: str, whole: bool = False) -> str:
    """`{{ amount|money(currency) }}` in the visitor's locale."""
    if amount is None:
        return ""
    return money.format_money(int(amount), currency, str(get_locale() or "en"), whole=whole)


def datetime_filter(value: datetime | None, fmt: str = "medium") -> str:
    """Format a stored naive-UTC datetime in the visitor's time zone."""
    if value is None:
        return ""
    return format_datetime(value.replace(tzinfo=UTC) if value.tzinfo is None else value, fmt)


def utc_filter(value: datetime | None) -> str:
    """The exact UTC time, for titles and machine-readable attributes."""
    if value is None:
        return ""
    return value.strftime("%Y-%m-%d %H:%M UTC")


def timedelta_filter(value: timedelta | None) -> str:
    """A duration as people say it ("12 days", "5 hours")."""
    if value is None:
        return ""
    return format_timedelta(value, threshold=1.5, granularity="minute")


def month_filter(value: date | None) -> str:
    """A month and year ("March 2027")."""
    return format_date(value, "MMMM yyyy") if value else ""


def init_app(app: Flask) -> None:
    app.add_template_filter(timedelta_filter, "timedelta")
    app.add_template_filter(month_filter, "month")
    app.add_template_filter(money_filter, "money")
    app.add_template_filter(datetime_filter, "datetime")
    app.add_template_filter(utc_filter, "utc")
    app.add_template_global(money.to_input, "money_input")
    app.add_template_global(money.MIN_CHARGE.__getitem__, "min_charge")

    @app.context_processor
    def _locale():
        return {"current_locale": str(get_locale() or "en")}
