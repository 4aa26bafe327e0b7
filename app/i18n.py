"""Locale and time zone selection, the language switcher, and the template filters that format
money and dates.

The language is, in order: the member's saved choice, else the visitor's choice from the footer
switcher (a cookie), else the best match for the browser's Accept-Language, else English. The time
zone is the member's saved one, else the browser's own (a cookie that app.js sets), else UTC. The
public page cache keys on both, through the same selectors.
"""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import available_timezones

from babel import Locale
from babel.dates import format_skeleton
from babel.numbers import format_decimal, format_percent
from flask import Blueprint, Flask, current_app, g, has_request_context, redirect, request, url_for
from flask_babel import format_date, format_time, format_timedelta, get_locale, get_timezone, get_translations, to_user_timezone
from flask_login import current_user
from markupsafe import Markup

from app import money

#: Each language named in itself, for the switcher and the profile (never translated).
LANGUAGE_NAMES: dict[str, str] = {"en": "English", "fr": "Français", "zh_Hans_CN": "简体中文"}
#: The cookies that hold a visitor's choices (a year; members keep theirs on their account).
LOCALE_COOKIE = "locale"
TIMEZONE_COOKIE = "tz"
COOKIE_MAX_AGE = 365 * 24 * 3600

bp = Blueprint("i18n", __name__)


@lru_cache(maxsize=1)
def timezones() -> frozenset[str]:
    """Every IANA time zone name this machine knows."""
    return frozenset(available_timezones())


def valid_timezone(name: str | None) -> str | None:
    """`name` when it is a known IANA time zone, else None."""
    return name if name and len(name) <= 64 and name in timezones() else None


def _member():
    """The logged-in member, or None (also outside a request). The user itself, not the proxy: the
    selectors read two of its attributes, and each read through `current_user` looks the user up again."""
    if not has_request_context():
        return None
    user = current_user._get_current_object()
    return user if user is not None and user.is_authenticated else None


def match_language(tag: str | None, languages: list[str] | tuple[str, ...]) -> str | None:
    """The supported language for one BCP 47 / POSIX tag ("fr-CA" → fr, "zh-Hans-CN", "zh" → zh_Hans_CN)."""
    if not tag:
        return None
    parts = tag.replace("_", "-").lower().split("-")
    if parts[0] == "zh":
        # Simplified Chinese is the only Chinese we write; Traditional readers get it rather than English.
        return next((lang for lang in languages if lang.lower().startswith("zh")), None)
    return next((lang for lang in languages if lang.lower().split("_")[0] == parts[0]), None)


def browser_language(languages: list[str] | tuple[str, ...]) -> str | None:
    """The first supported language in Accept-Language, by quality (Hant only when nothing else fits)."""
    fallback = None
    for tag, _quality in request.accept_languages:  # sorted by quality, best first
        if tag == "*":
            continue
        found = match_language(tag, languages)
        if not found:
            continue
        lowered = tag.replace("_", "-").lower()
        if lowered.startswith("zh") and any(mark in lowered.split("-") for mark in ("hant", "tw", "hk", "mo")):
            fallback = fallback or found
            continue
        return found
    return fallback


def select_locale() -> str:
    """The member's chosen language, else the switcher's cookie, else the browser's Accept-Language."""
    languages = current_app.config["LANGUAGES"]
    member = _member()
    if member is not None and getattr(member, "locale", None) in languages:
        return member.locale
    return visitor_locale()


def visitor_locale() -> str:
    """The language from the request alone (switcher cookie, Accept-Language): no member, no database."""
    languages = current_app.config["LANGUAGES"]
    if request:
        chosen = request.cookies.get(LOCALE_COOKIE)
        if chosen in languages:
            return chosen
        return browser_language(languages) or languages[0]
    return languages[0]


def select_timezone() -> str:
    """The member's time zone, else the browser's (a cookie set by app.js), else UTC."""
    member = _member()
    if member is not None and valid_timezone(getattr(member, "timezone", None)):
        return member.timezone
    if request:
        return valid_timezone(request.cookies.get(TIMEZONE_COOKIE)) or "UTC"
    return "UTC"


@lru_cache(maxsize=16)
def html_lang(locale: str) -> str:
    """The BCP 47 tag for `<html lang>`: en, fr, zh-Hans."""
    parsed = Locale.parse(locale)
    return "-".join(part for part in (parsed.language, parsed.script) if part)


@bp.route("/language", methods=["GET", "POST"])
def set_language():
    """The footer switcher: remember the language and go back to the same page.

    Visitors follow a plain link (a GET that only sets a cookie, so public pages stay cacheable and
    carry no session); members post a form with its CSRF token, and the choice is saved on their
    account so that their emails follow it too.
    """
    from app.accounts.urls import safe_next

    values = request.form if request.method == "POST" else request.args
    lang = values.get("lang", "")
    target = safe_next(values.get("next")) or url_for("main.index")
    response = redirect(target)
    if lang not in current_app.config["LANGUAGES"]:
        return response
    member = _member()
    if request.method == "POST" and member is not None and member.locale != lang:
        from app.extensions import db

        member.locale = lang
        db.session.commit()
    response.set_cookie(LOCALE_COOKIE, lang, max_age=COOKIE_MAX_AGE, samesite="Lax", httponly=True,
                        secure=current_app.config.get("SESSION_COOKIE_SECURE", False))
    return response


# --- template filters -------------------------------------------------------------------------

def _locale() -> str:
    return str(get_locale() or "en")


def money_filter(amount: int | None, currency: str, whole: bool = False) -> str:
    """`{{ amount|money(currency) }}` in the visitor's locale."""
    if amount is None:
        return ""
    return money.format_money(int(amount), currency, _locale(), whole=whole)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def datetime_filter(value: datetime | None, fmt: str = "medium") -> str:
    """A stored naive-UTC datetime in the visitor's time zone, as their language writes it, with the zone's
    name — one format everywhere (issue 18): "Dec 23, 2026, 12:00 PM Eastern Standard Time",
    "23 déc. 2026, 18:00 heure normale d’Europe centrale". `long` spells the month out. Plain text: pages
    use the `datetime` template filter (this in a <time> with the exact UTC on hover), mail `local_and_utc`.
    """
    if value is None:
        return ""
    value = _aware(value)
    size = "long" if fmt in ("long", "full") else "medium"
    day = format_date(value, size)
    hour = f"{format_time(value, 'short')} {format_time(value, 'zzzz')}"
    pattern = Locale.parse(_locale()).datetime_formats.get(size) or "{1} {0}"
    return str(pattern).replace("'", "").format(hour, day)


def time_filter(value: datetime | None, fmt: str = "medium") -> Markup:
    """A time on a page: the visitor's local time with its zone's name, the exact UTC on hover."""
    if value is None:
        return Markup("")
    utc = _aware(value).astimezone(UTC)
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        utc.strftime("%Y-%m-%dT%H:%M:%SZ"), utc_filter(utc), datetime_filter(value, fmt)
    )


def local_and_utc_filter(value: datetime | None) -> str:
    """A time in plain text (an email): in the reader's zone as their language writes it, with the
    exact UTC in brackets when their zone is not UTC."""
    if value is None:
        return ""
    local = datetime_filter(value, "long")
    return local if str(get_timezone()) == "UTC" else f"{local} ({utc_filter(value)})"


def date_filter(value: datetime | date | None, fmt: str = "medium") -> str:
    """A day as the visitor's language writes it ("Dec 23, 2026", "23 déc. 2026", "2026年12月23日")."""
    if value is None:
        return ""
    return format_date(_aware(value) if isinstance(value, datetime) else value, fmt)


def day_filter(value: datetime | None) -> str:
    """A day without its year, in the visitor's time zone and language ("Dec 5", "5 déc.", "12月5日")."""
    if value is None:
        return ""
    return format_skeleton("MMMd", to_user_timezone(_aware(value)), locale=_locale())


def utc_filter(value: datetime | None) -> str:
    """The exact UTC time, for titles and machine-readable attributes."""
    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M UTC")


def timedelta_filter(value: timedelta | None) -> str:
    """A duration as people say it ("12 days", "12 jours", "12天")."""
    if value is None:
        return ""
    return format_timedelta(value, threshold=1.5, granularity="minute")


def month_filter(value: date | None) -> str:
    """A month and year ("March 2027", "mars 2027", "2027年3月")."""
    if not value:
        return ""
    from babel.dates import format_skeleton

    return format_skeleton("yMMMM", value, locale=_locale())


def percent_filter(value: int | None) -> str:
    """A whole percentage as the visitor's language writes it ("45%", "45 %" in French)."""
    if value is None:
        return ""
    return format_percent(value / 100, locale=_locale())


def decimal_filter(value: float | None) -> str:
    """A number as the visitor's language writes it ("2.5", "2,5" in French)."""
    return "" if value is None else format_decimal(value, locale=_locale())


def money_input(amount: int | None, currency: str) -> str:
    """An amount as the visitor would type it into a form ("25.50", "25,50" in French)."""
    return money.to_input(amount, currency, _locale())



def _template_translations():
    """The catalog for the strings a template translates, looked up once per request and language.

    Flask-Babel's own template callables look it up again for every string (a dozen context
    lookups and a locale name built each time), and a page translates dozens. The memo is
    keyed on the locale object itself, so `force_locale` (emails in the recipient's language)
    gets its own catalog and the page's comes back after it.
    """
    state = g.get("_flask_babel")
    memo = g.get("_template_translations")
    if memo is not None and state is not None and memo[0] is getattr(state, "babel_locale", None):
        return memo[1]
    translations = get_translations()
    g._template_translations = (getattr(g.get("_flask_babel"), "babel_locale", None), translations)
    return translations


@lru_cache(maxsize=1)
def _switcher_languages() -> tuple[tuple[str, str, str], ...]:
    return tuple((code, name, html_lang(code)) for code, name in LANGUAGE_NAMES.items())


def init_app(app: Flask) -> None:
    """After Babel's own init_app: the template filters, the switcher, and faster template gettext."""
    app.register_blueprint(bp)
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: _template_translations().ugettext(s),
        ngettext=lambda s, p, n: _template_translations().ungettext(s, p, n),
        pgettext=lambda c, s: _template_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: _template_translations().unpgettext(c, s, p, n),
        newstyle=True,
    )
    app.add_template_filter(timedelta_filter, "timedelta")
    app.add_template_filter(month_filter, "month")
    app.add_template_filter(money_filter, "money")
    app.add_template_filter(percent_filter, "percent")
    app.add_template_filter(decimal_filter, "decimal")
    app.add_template_filter(time_filter, "datetime")
    app.add_template_filter(date_filter, "date")
    app.add_template_filter(day_filter, "day")
    app.add_template_filter(time_filter, "deadline")
    app.add_template_filter(utc_filter, "utc")
    app.add_template_filter(local_and_utc_filter, "local_and_utc")
    app.add_template_global(money_input, "money_input")
    app.add_template_global(money.MIN_CHARGE.__getitem__, "min_charge")

    @app.context_processor
    def _locale_context():
        locale = _locale()
        return {"current_locale": locale, "html_lang": html_lang(locale), "languages": _switcher_languages()}

    @app.after_request
    def _vary(response):
        # The same address answers in the language the browser asks for, or the switcher's cookie
        # chose: shared caches must know.
        if response.mimetype == "text/html":
            response.vary.add("Accept-Language")
            response.vary.add("Cookie")
        return response
