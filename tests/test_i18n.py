"""Three languages (issue 9): every string marked, every catalog complete and fresh, and pages,
money, dates and emails in the visitor's (or the recipient's) language.

When a test here fails after you added or changed a string, run `make babel-update`, translate the
new or fuzzy entries in app/translations/{fr,zh_Hans_CN}/LC_MESSAGES/messages.po (no empty msgstr,
no `#, fuzzy` left), then `make babel-compile`.
"""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from app import caching, clock
from app.extensions import db
from tests.factories import PASSWORD, login, make_campaign, make_user

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app"
TEMPLATES = APP / "templates"
TRANSLATIONS = APP / "translations"
TRANSLATED = ("fr", "zh_Hans_CN")
FIX = "run `make babel-update`, translate the entries in app/translations/*/LC_MESSAGES/messages.po, then `make babel-compile`"

NBSP, NNBSP = "\u00a0", "\u202f"


# --- 1. nothing user-facing is left unmarked ------------------------------------------------

#: Text that is not a word of any language: the brand and signs (a mark of its own would be noise).
ALLOWED_TEXT = {"Threshold", "Stripe", "©", "·", "—", "–", "…", "×", "→", "←", "↑", "↓", "%", "#", "/", "|"}
#: Attributes whose value people read or hear.
USER_FACING_ATTRS = {"placeholder", "title", "alt", "aria-label", "aria-description", "aria-roledescription",
                     "aria-valuetext", "data-confirm", "data-busy", "label", "summary"}

_JINJA = re.compile(r"\{#.*?#\}|\{%-?\s*(?:raw)\s*-?%\}.*?\{%-?\s*endraw\s*-?%\}|\{%.*?%\}|\{\{.*?\}\}", re.S)
_TRANS_BLOCK = re.compile(r"\{%-?\s*trans\b.*?\{%-?\s*endtrans\s*-?%\}", re.S)
_SCRIPT_STYLE = re.compile(r"<(script|style)\b.*?</\1\s*>", re.S | re.I)
_LETTER = re.compile(r"[^\W\d_]", re.U)


#: Pieces of addresses left beside a removed `{{ url }}` ("#faq", "#comment-", "?page=").
_URL_PIECE = re.compile(r"^(?:[#/?&=][\w\-/#?&=.]*|https?://\S*)$")
#: Templates that no person reads (the page benchmark's ceiling).
NOT_USER_FACING = {"main/bench_ceiling.html"}


def _words(text: str) -> str | None:
    """`text` when it holds a word (a letter outside the allowed signs), else None."""
    stripped = " ".join(word for word in text.split() if not _URL_PIECE.match(word))
    if not stripped or stripped in ALLOWED_TEXT:
        return None
    remaining = stripped
    for allowed in sorted(ALLOWED_TEXT, key=len, reverse=True):
        remaining = remaining.replace(allowed, " ")
    return stripped if _LETTER.search(remaining) else None


def _strip_jinja(source: str) -> str:
    # A placeholder keeps the shape of the markup (an attribute value that was all expression is empty).
    return _JINJA.sub("", _TRANS_BLOCK.sub("", source))


class _TextFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        for name, value in attrs:
            if value is None:
                continue
            facing = name in USER_FACING_ATTRS or (
                name == "value" and tag in ("input", "button")
                and (attributes.get("type") or "").lower() in ("submit", "button", "reset")
            )
            if facing and _words(value):
                self.found.append(f'<{tag} {name}="{value.strip()}">')

    handle_startendtag = handle_starttag

    def handle_data(self, data):
        if _words(data):
            self.found.append(" ".join(data.split()))


def unmarked_in_template(source: str, html: bool) -> list[str]:
    """Literal words left in a template once its Jinja, scripts and styles are gone."""
    text = _strip_jinja(source)
    if not html:
        return [line.strip() for line in text.splitlines() if _words(line)]
    finder = _TextFinder()
    finder.feed(_SCRIPT_STYLE.sub("", text))
    finder.close()
    return finder.found


def _templates() -> list[Path]:
    return sorted(p for p in TEMPLATES.rglob("*") if p.suffix in (".html", ".txt")
                  and str(p.relative_to(TEMPLATES)) not in NOT_USER_FACING)


@pytest.mark.parametrize("path", _templates(), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_templates_hold_no_unmarked_text(path):
    found = unmarked_in_template(path.read_text(encoding="utf-8"), html=path.suffix == ".html")
    assert not found, f"{path.relative_to(ROOT)}: wrap these in {{{{ _('…') }}}}: {found}"


def test_the_template_scanner_catches_what_it_should():
    page = """{% extends 'base.html' %}{# a comment #}
    <h1>{{ _('Marked') }}</h1><p>Forgot me</p><input placeholder="Your name" value="{{ v }}">
    <button type="submit" value="Go">{{ _('Go') }}</button><img alt="{{ _('ok') }}" src="x.png">
    <script>const s = "not text";</script><span>· © Threshold</span><span>{{ 3 }} %</span>"""
    assert unmarked_in_template(page, html=True) == ["Forgot me", '<input placeholder="Your name">', '<button value="Go">']
    assert unmarked_in_template("{{ _('Hello') }}\nRegards,\n{{ url }}\n", html=False) == ["Regards,"]


#: Calls whose first argument people read: flash messages, form labels, validation messages.
_MESSAGE_VALIDATORS = {"DataRequired", "InputRequired", "Email", "URL", "ValidationError", "StopValidation"}
_MESSAGE_KEYWORDS = {"message", "label", "description", "placeholder"}
#: Exceptions that carry a message for people (domain errors shown next to a field or flashed).
_INTERNAL_ERRORS = {"FileNotFoundError", "OSError", "PermissionError", "ValueError", "TypeError", "RuntimeError", "KeyError", "AssertionError", "LookupError",
                    "NotImplementedError", "ConfigError", "MoneyError", "WebhookSignatureError", "SystemExit",
                    "ClickException", "UsageError", "BadParameter", "IntegrityError"}


def _literal_text(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and _LETTER.search(node.value):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return ast.unparse(node)
    return None


def unmarked_in_python(source: str) -> list[str]:
    """Literal strings passed where a person will read them, not wrapped in _() or _l()."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        suspects: list[ast.AST] = []
        if name == "flash" and node.args:
            suspects.append(node.args[0])
        elif name.endswith("Field") and node.args:  # a WTForms field's label
            suspects.append(node.args[0])
        elif name in _MESSAGE_VALIDATORS and node.args:
            suspects.append(node.args[0])
        elif name == "EqualTo" and len(node.args) > 1:
            suspects.append(node.args[1])
        elif name.endswith("Error") and name not in _INTERNAL_ERRORS and node.args:
            suspects.append(node.args[0])
        if name == "flash" or name.endswith(("Field", "Error")) or name in _MESSAGE_VALIDATORS or name in (
            "Length", "NumberRange", "Regexp", "AnyOf", "NoneOf", "EqualTo", "Optional"
        ):
            suspects.extend(k.value for k in node.keywords if k.arg in _MESSAGE_KEYWORDS)
        if name == "abort" and len(node.args) > 1:
            suspects.append(node.args[1])
        for keyword in node.keywords:  # choices=[("value", "Label"), …]: the labels are read
            if keyword.arg == "choices" and isinstance(keyword.value, ast.List | ast.Tuple):
                suspects.extend(item.elts[1] for item in keyword.value.elts
                                if isinstance(item, ast.Tuple) and len(item.elts) == 2)
        for suspect in suspects:
            text = _literal_text(suspect)
            if text is not None:
                found.append(f"line {node.lineno}: {name}({text!r})")
    return found


def _python_files() -> list[Path]:
    return sorted(p for p in APP.rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("path", _python_files(), ids=lambda p: str(p.relative_to(APP)))
def test_python_holds_no_unmarked_message(path):
    found = unmarked_in_python(path.read_text(encoding="utf-8"))
    assert not found, f"{path.relative_to(ROOT)}: wrap these in _() (or _l() at import time): {found}"


def test_the_python_scanner_catches_what_it_should():
    source = '''
flash("Saved.")
flash(_("Saved."))
name = StringField("Name", validators=[DataRequired("Enter it."), Length(max=3, message="Too long.")])
other = StringField(_l("Name"), validators=[DataRequired(_l("Enter it."))])
raise CampaignError("Nope.")
raise ValueError("internal")
sort = SelectField(_l("Sort"), choices=[("new", "Newest"), ("old", _l("Oldest"))])
'''
    found = unmarked_in_python(source)
    assert sorted(f.split(": ", 1)[1] for f in found) == sorted([
        "flash('Saved.')", "StringField('Name')", "DataRequired('Enter it.')", "Length('Too long.')", "CampaignError('Nope.')",
        "SelectField('Newest')",
    ])


# --- 2. every catalog complete, fresh, and compiled -----------------------------------------

def _catalog(locale: str):
    with open(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po", "rb") as handle:
        return read_po(handle, locale=locale)


def _key(value):
    if isinstance(value, bytes):  # read_mo leaves a message's context undecoded
        return value.decode("utf-8")
    return value if isinstance(value, str) or value is None else tuple(value)


def _ids(catalog) -> set:
    return {(m.context, _key(m.id)) if m.context else _key(m.id) for m in catalog if m.id}


_PLACEHOLDER = re.compile(r"%\(\w+\)[sdif]|%[sdif]|\{\w*\}")


@pytest.mark.parametrize("locale", TRANSLATED)
def test_every_string_is_translated_and_none_is_fuzzy(locale):
    catalog = _catalog(locale)
    assert len(catalog) > 100, f"{locale}: the catalog looks empty"
    untranslated, fuzzy, broken = [], [], []
    for message in catalog:
        if not message.id:
            continue
        if message.fuzzy:
            fuzzy.append(message.id)
        strings = message.string if isinstance(message.string, tuple | list) else (message.string,)
        if not all(s and s.strip() for s in strings):
            untranslated.append(message.id)
            continue
        source = message.id if isinstance(message.id, str) else message.id[-1]
        wanted = sorted(set(_PLACEHOLDER.findall(source)))
        for text in strings:
            got = sorted(set(_PLACEHOLDER.findall(text)))
            # A plural form for one may write the number out ("un contributeur"): %(num)d may be absent.
            if got != wanted and not (len(strings) > 1 and set(got) <= set(wanted)):
                broken.append((message.id, text))
    assert not untranslated, f"{locale}: {len(untranslated)} untranslated — {FIX}: {untranslated[:10]}"
    assert not fuzzy, f"{locale}: {len(fuzzy)} fuzzy — check each, then delete its '#, fuzzy' line: {fuzzy[:10]}"
    assert not broken, f"{locale}: placeholders differ from the English: {broken[:10]}"


@pytest.mark.parametrize("locale", TRANSLATED)
def test_plural_forms_fit_the_language(locale):
    catalog = _catalog(locale)
    expected = {"fr": 2, "zh_Hans_CN": 1}[locale]
    assert catalog.num_plurals == expected
    for message in catalog:
        if message.pluralizable and message.id:
            assert len(message.string) == expected, (locale, message.id)


def test_the_template_is_fresh_and_every_catalog_follows_it(tmp_path):
    """The committed messages.pot holds exactly what the sources mark today, and so do the catalogs."""
    fresh = tmp_path / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg", "-k", "_l", "-k", "lazy_gettext",
         "-k", "lazy_ngettext:1,2", "-o", str(fresh), "."],
        cwd=ROOT, check=True, capture_output=True,
    )
    with open(fresh, "rb") as handle:
        now = _ids(read_po(handle))
    with open(TRANSLATIONS / "messages.pot", "rb") as handle:
        committed = _ids(read_po(handle))
    assert now - committed == set(), f"new strings not in messages.pot — {FIX}: {sorted(map(str, now - committed))[:10]}"
    assert committed - now == set(), f"messages.pot holds strings no longer used — {FIX}: {sorted(map(str, committed - now))[:10]}"
    for locale in TRANSLATED:
        ids = _ids(_catalog(locale))
        assert now - ids == set(), f"{locale} lacks strings — {FIX}: {sorted(map(str, now - ids))[:10]}"
        assert ids - now == set(), f"{locale} holds stale strings — {FIX}: {sorted(map(str, ids - now))[:10]}"


@pytest.mark.parametrize("locale", TRANSLATED)
def test_the_compiled_catalog_matches_its_source(locale):
    """The .mo files are built by `make` (install, test, run): a stale one would show old text."""
    mo_path = TRANSLATIONS / locale / "LC_MESSAGES" / "messages.mo"
    assert mo_path.exists(), f"{mo_path.relative_to(ROOT)} is missing: run `make babel-compile`"
    with open(mo_path, "rb") as handle:
        compiled = {(_key(m.context), _key(m.id)): _key(m.string) for m in read_mo(handle) if m.id}
    source = {(m.context, _key(m.id)): _key(m.string) for m in _catalog(locale) if m.id and not m.fuzzy}
    assert compiled == source, f"{mo_path.relative_to(ROOT)} is stale: run `make babel-compile`"


# --- 3. pages, money, dates and mail in each language ----------------------------------------

def _text(response) -> str:
    return response.get_data(as_text=True)


@pytest.mark.parametrize(
    "header,lang,words",
    [
        ("en-US,en;q=0.9", "en", ["Log in", "Sign up", "Skip to content"]),
        ("fr-FR,fr;q=0.9,en;q=0.5", "fr", ["Se connecter", "Créer un compte", "Aller au contenu"]),
        ("fr-CA", "fr", ["Se connecter"]),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-Hans", ["登录", "注册", "跳到正文"]),
        ("zh", "zh-Hans", ["登录"]),
        ("zh-Hans-CN", "zh-Hans", ["登录"]),
        ("de-DE,fr;q=0.7", "fr", ["Se connecter"]),
        ("ja-JP", "en", ["Log in"]),
    ],
)
def test_accept_language_chooses_the_language(client, header, lang, words):
    page = _text(client.get("/", headers={"Accept-Language": header}))
    assert f'<html lang="{lang}">' in page
    for word in words:
        assert word in page


def test_simplified_chinese_comes_before_traditional_but_after_a_language_asked_first(client):
    assert '<html lang="fr">' in _text(client.get("/", headers={"Accept-Language": "zh-TW,fr;q=0.8"}))
    assert '<html lang="zh-Hans">' in _text(client.get("/", headers={"Accept-Language": "zh-TW,ja;q=0.8"}))


def test_the_footer_switcher_works_for_visitors_and_keeps_the_page(client):
    page = _text(client.get("/campaigns?sort=newest", headers={"Accept-Language": "en"}))
    assert 'lang="fr"' in page and "Français" in page and "简体中文" in page
    link = re.search(r'href="(/language\?[^"]*lang=fr[^"]*)"', page).group(1).replace("&amp;", "&")
    response = client.get(link)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/campaigns?sort=newest")
    assert "locale=fr" in response.headers.get("Set-Cookie", "")
    page = _text(client.get("/campaigns?sort=newest", headers={"Accept-Language": "en"}))
    assert '<html lang="fr">' in page and "Se connecter" in page
    # An unknown language changes nothing; a foreign `next` is never followed.
    assert client.get("/language?lang=xx&next=/campaigns").headers["Location"].endswith("/campaigns")
    for bad in ("//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"):
        location = client.get("/language", query_string={"lang": "zh_Hans_CN", "next": bad}).headers["Location"]
        assert "evil" not in location and "javascript" not in location
    assert '<html lang="zh-Hans">' in _text(client.get("/"))


def test_the_members_setting_wins_over_the_browser_and_the_switcher_saves_it(client):
    user = make_user("li@example.com", name="Li")
    user.locale = "zh_Hans_CN"
    db.session.commit()
    login(client, "li@example.com")
    page = _text(client.get("/", headers={"Accept-Language": "fr-FR,fr"}))
    assert '<html lang="zh-Hans">' in page and "退出登录" in page
    # A member's switcher is a form (with its CSRF token); the choice is saved on the account.
    assert 'action="/language"' in page and 'name="lang" value="fr"' in page
    response = client.post("/language", data={"lang": "fr", "next": "/auth/profile"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/auth/profile")
    assert db.session.get(type(user), user.id).locale == "fr"
    assert '<html lang="fr">' in _text(client.get("/auth/profile", headers={"Accept-Language": "zh-CN"}))


def test_the_profile_offers_each_language_in_its_own_name_and_a_time_zone(client):
    user = make_user("ana@example.com", name="Ana")
    login(client, "ana@example.com")
    page = _text(client.get("/auth/profile"))
    for name in ("English", "Français", "简体中文"):
        assert f">{name}</option>" in page
    assert 'value="Europe/Paris"' in page and '<optgroup label="Europe">' in page and 'lang="zh-Hans"' in page
    response = client.post("/auth/profile", data={"profile-display_name": "Ana", "profile-locale": "fr",
                                                  "profile-timezone": "Europe/Paris", "profile-submit": "1"})
    assert response.status_code == 302
    fresh = db.session.get(type(user), user.id)
    assert (fresh.locale, fresh.timezone) == ("fr", "Europe/Paris")
    page = _text(client.get("/auth/profile", headers={"Accept-Language": "en"}))
    assert '<html lang="fr">' in page and "Votre profil" in page
    # Bad choices are refused next to the field, nothing saved.
    response = client.post("/auth/profile", data={"profile-display_name": "Ana", "profile-locale": "de",
                                                  "profile-timezone": "Mars/Olympus", "profile-submit": "1"})
    assert response.status_code == 422
    assert db.session.get(type(user), user.id).timezone == "Europe/Paris"
    # "Automatic" clears the choice: the browser decides again.
    client.post("/auth/profile", data={"profile-display_name": "Ana", "profile-locale": "", "profile-timezone": "",
                                       "profile-submit": "1"})
    assert db.session.get(type(user), user.id).locale is None
    assert '<html lang="zh-Hans">' in _text(client.get("/", headers={"Accept-Language": "zh-CN"}))


@pytest.fixture
def euro_campaign(app, frozen_clock):
    creator = make_user("claire@example.com", name="Claire")
    campaign = make_campaign(creator, "live", title="Lanterne solaire", currency="EUR", goal=123450, duration_days=30)
    return campaign


def test_a_campaign_page_in_french_writes_money_and_dates_the_french_way(client, euro_campaign):
    page = _text(client.get(f"/campaigns/{euro_campaign.slug}", headers={"Accept-Language": "fr"}))
    assert f"1{NNBSP}234,50{NBSP}€" in page
    assert "déc. 2026" in page or "décembre 2026" in page  # the deadline: 30 days after 23 Nov 2026
    assert 'title="2026-12-23 12:00 UTC"' in page  # the exact UTC on hover
    assert "Soutenir ce projet" in page


def test_a_campaign_page_in_chinese_writes_money_and_dates_the_chinese_way(client, euro_campaign):
    page = _text(client.get(f"/campaigns/{euro_campaign.slug}", headers={"Accept-Language": "zh-CN"}))
    assert "€1,234.50" in page
    assert "2026年12月23日" in page
    assert "支持这个项目" in page


def test_money_in_each_locale_as_babel_writes_it(app):
    from app.money import format_money

    assert format_money(2500, "USD", "en") == "$25.00"
    assert format_money(2500, "USD", "zh_Hans_CN") == "US$25.00"
    assert format_money(2500, "USD", "fr") == f"25,00{NBSP}$US"
    assert format_money(250000, "CNY", "zh_Hans_CN", whole=True) == "¥2,500"
    assert format_money(2500, "JPY", "en") == "¥2,500"
    assert format_money(2500, "JPY", "zh_Hans_CN") == "JP¥2,500"
    # Whole amounts keep each language's own order: the sign after the number in French.
    assert format_money(1200000, "EUR", "fr", whole=True) == f"12{NNBSP}000{NBSP}€"
    assert format_money(1200000, "EUR", "en", whole=True) == "€12,000"


def test_deadlines_follow_the_members_time_zone_with_utc_on_hover(client, euro_campaign):
    make_user("tokyo@example.com", name="Ken")
    from app.accounts.models import User

    member = db.session.query(User).filter_by(email="tokyo@example.com").one()
    member.timezone, member.locale = "Asia/Shanghai", "zh_Hans_CN"
    db.session.commit()
    login(client, "tokyo@example.com")
    page = _text(client.get(f"/campaigns/{euro_campaign.slug}"))
    # 12:00 UTC is 20:00 in Shanghai; the UTC stays in the title.
    assert "20:00" in page and "2026年12月23日" in page
    assert 'title="2026-12-23 12:00 UTC"' in page


def test_a_visitors_browser_time_zone_is_used_when_it_is_valid(client, euro_campaign):
    client.set_cookie("tz", "America/New_York")
    page = _text(client.get(f"/campaigns/{euro_campaign.slug}", headers={"Accept-Language": "en"}))
    assert f"7:00{NNBSP}AM Eastern Standard Time" in page
    client.set_cookie("tz", "Not/AZone")
    page = _text(client.get(f"/campaigns/{euro_campaign.slug}", headers={"Accept-Language": "en"}))
    assert "12:00" in page


def test_the_public_cache_keeps_one_page_per_language(app, make_app):
    caching.clear()
    cached = make_app(PUBLIC_PAGE_CACHE_SECONDS=60)
    try:
        make_campaign(make_user("c@example.com"), "live", title="Cache lantern")
        client = cached.test_client()
        assert '<html lang="en">' in _text(client.get("/", headers={"Accept-Language": "en"}))
        assert '<html lang="fr">' in _text(client.get("/", headers={"Accept-Language": "fr"}))
        assert '<html lang="zh-Hans">' in _text(client.get("/", headers={"Accept-Language": "zh-CN"}))
        assert '<html lang="en">' in _text(client.get("/", headers={"Accept-Language": "en"}))
        response = client.get("/", headers={"Accept-Language": "fr"})
        assert '<html lang="fr">' in _text(response) and "Accept-Language" in response.headers.get("Vary", "")
    finally:
        caching.clear()


def test_a_french_member_types_amounts_with_a_decimal_comma(client, app):
    creator = make_user("lea@example.com", name="Léa")
    creator.locale = "fr"
    db.session.commit()
    campaign = make_campaign(creator, "draft", currency="EUR", tiers=0)
    login(client, "lea@example.com")
    response = client.post(f"/campaigns/{campaign.slug}/tiers/new", data={
        "title": "Merci", "description": "Une carte postale.", "amount": "25,50", "quantity_limit": "",
        "estimated_delivery": "2030-01", "shipping_note": ""})
    assert response.status_code == 302, _text(response)
    db.session.refresh(campaign)
    assert [t.amount for t in campaign.tiers] == [2550]
    response = client.post(f"/campaigns/{campaign.slug}/tiers/new", data={
        "title": "Trop", "description": "x", "amount": "25,505", "quantity_limit": "",
        "estimated_delivery": "2030-01", "shipping_note": ""})
    assert response.status_code == 422
    assert "décimales" in _text(response)


@pytest.mark.parametrize(
    "text,locale,currency,expected",
    [("25,50", "fr", "EUR", 2550), ("1 234,50", "fr", "EUR", 123450), (f"1{NNBSP}234,50{NBSP}€", "fr", "EUR", 123450),
     ("25.50", "fr", "EUR", 2550), ("25,00 $US", "fr", "USD", 2500), ("1,234.50", "en", "EUR", 123450),
     ("２５．５", "zh_Hans_CN", "EUR", 2550), ("￥25", "zh_Hans_CN", "CNY", 2500)],
)
def test_money_parsing_follows_the_locale(text, locale, currency, expected):
    from app.money import parse

    assert parse(text, currency, locale) == expected


@pytest.mark.parametrize("text", ["1,234.50", "1.234,50", "12,3,4"])
def test_french_parsing_refuses_ambiguous_amounts(text):
    from app.money import MoneyError, parse

    with pytest.raises(MoneyError):
        parse(text, "EUR", "fr")


def test_french_amounts_round_trip_through_the_form_value():
    from app.money import parse, to_input

    assert to_input(2550, "EUR", "fr") == "25,50"
    assert parse(to_input(2550, "EUR", "fr"), "EUR", "fr") == 2550


def test_dates_and_durations_in_each_language(app):
    from datetime import date, datetime

    from flask_babel import force_locale

    from app import i18n

    with app.test_request_context("/"):
        when = datetime(2026, 12, 23, 12, 0)
        with force_locale("fr"):
            assert i18n.datetime_filter(when).startswith("23 déc. 2026")
            assert i18n.month_filter(date(2027, 3, 1)) == "mars 2027"
            assert i18n.timedelta_filter(timedelta(days=5)) == f"5{NBSP}jours"
            assert i18n.percent_filter(150) == f"150{NBSP}%"
        with force_locale("zh_Hans_CN"):
            assert i18n.datetime_filter(when).startswith("2026年12月23日")
            assert i18n.month_filter(date(2027, 3, 1)) == "2027年3月"
            assert i18n.timedelta_filter(timedelta(days=5)) == "5天"
        with force_locale("en"):
            # One format everywhere (issue 18): the local time with its zone's name.
            assert i18n.datetime_filter(when) == f"Dec 23, 2026, 12:00{NNBSP}PM Coordinated Universal Time"
            assert i18n.month_filter(date(2027, 3, 1)) == "March 2027"
            assert i18n.percent_filter(150) == "150%"
        assert i18n.utc_filter(when) == "2026-12-23 12:00 UTC"


def test_an_email_to_a_french_member_is_in_french_whoever_triggers_it(client, app):
    """Mail is rendered in the recipient's language (issue 8 part B: queue_mail under force_locale)."""
    from app.notifications.models import OutboxMessage

    user = make_user("marie@example.com", name="Marie")
    user.locale = "fr"
    db.session.commit()
    # An English-speaking visitor asks for Marie's reset link: the mail is still in French.
    response = client.post("/auth/reset", data={"email": "marie@example.com"}, headers={"Accept-Language": "en"})
    assert response.status_code == 302
    mail = db.session.query(OutboxMessage).filter_by(recipient="marie@example.com", kind="reset_password").one()
    assert "mot de passe" in mail.subject.lower(), mail.subject
    assert "mot de passe" in mail.body and "password" not in mail.body.replace("reset_password", "").replace("/reset", ""), mail.body


def test_an_email_to_a_chinese_member_is_in_chinese(app):
    from app.notifications.models import OutboxMessage

    user = make_user("wang@example.com", name="王")
    user.locale = "zh_Hans_CN"
    db.session.commit()
    clock.freeze(clock.utcnow())
    from app.accounts import services as accounts

    accounts.request_password_reset("wang@example.com")
    db.session.commit()
    mail = db.session.query(OutboxMessage).filter_by(recipient="wang@example.com", kind="reset_password").one()
    assert "密码" in mail.subject and "密码" in mail.body, (mail.subject, mail.body)


def test_login_works_in_every_language(client):
    make_user("ok@example.com")
    for header in ("fr", "zh-CN"):
        response = login(client, "ok@example.com", PASSWORD)
        assert response.status_code == 302
        client.post("/auth/logout")
        page = _text(client.post("/auth/login", data={"email": "ok@example.com", "password": "wrong"},
                                 headers={"Accept-Language": header}))
        assert ("ne correspondent" in page) if header == "fr" else ("不匹配" in page)


def test_a_member_keeps_the_language_they_signed_up_in(client):
    from app.accounts.models import User
    from app.notifications.models import OutboxMessage

    response = client.post("/auth/register", data={"email": "zoe@example.com", "display_name": "Zoé", "password": PASSWORD},
                           headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert response.status_code == 302
    assert db.session.query(User).filter_by(email="zoe@example.com").one().locale == "fr"
    welcome = db.session.query(OutboxMessage).filter_by(recipient="zoe@example.com").one()
    assert "Bienvenue" in welcome.subject and "Bonjour Zoé" in welcome.body


def test_deadlines_inside_sentences_carry_the_exact_utc(client, euro_campaign):
    from app.accounts.models import User

    creator = db.session.query(User).filter_by(email="claire@example.com").one()
    creator.locale, creator.timezone = "fr", "Europe/Paris"
    db.session.commit()
    login(client, "claire@example.com")
    page = _text(client.get("/me/campaigns"))
    assert '<time datetime="2026-12-23T12:00:00Z" title="2026-12-23 12:00 UTC">23 déc. 2026, 13:00 heure normale d’Europe centrale</time>' in page


def test_a_french_form_shows_amounts_with_a_decimal_comma(client):
    creator = make_user("jean@example.com", name="Jean")
    creator.locale = "fr"
    db.session.commit()
    campaign = make_campaign(creator, "draft", currency="EUR", goal=123450, tiers=1)
    login(client, "jean@example.com")
    assert 'value="1234,50"' in _text(client.get(f"/campaigns/{campaign.slug}/edit"))
