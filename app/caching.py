"""A short-lived cache of public pages for visitors who are not logged in.

The key holds the page's address, the visitor's language and time zone, and the campaigns' version (the latest
`campaigns.updated_at`, which every change a public page shows moves: transitions, edits, tiers,
featuring, and each pledge through the live counters). A page is therefore never served after the
data behind it changed, with one bounded exception: after the deadline, the collected, failed and
dropped figures move with each charge, and the settlement pass moves the version once per batch of
charges (not per charge, so that settling a large campaign never queues on its row); they may lag by
a batch, never by more than the time limit. A refund moves it at once. The limit also bounds what
time itself changes ("3 days left").
Reading the version is itself a query, and on a cache hit it was most of the work; so each process
reads it at most once per `PUBLIC_PAGE_VERSION_SECONDS` (default 1) and again after any commit it makes
itself (a request: once between two commits). A change made by another process therefore reaches
visitors within that second (the staleness every micro-cache in front of a site accepts); a change
made by this one, at once.
Logged-in members, pages with a flash message and responses that set a cookie are never cached.

Members' pages cannot be cached whole (their name, their CSRF token, their pledge), but the part of
them that shows a campaign to everyone alike can: `cached_fragment`, a template block rendered once
per key, language, time zone and campaigns' version, under the same rules. A block may hold forms:
the CSRF token (Flask-WTF's, one per session) is stored as a placeholder and each request gets its
session's substituted (signed once per session and process, `_csrf_token`). The placeholder is random
per process, so no text a member writes can hold it.

A member's page can go further (`shell_page`): rendered once per address, language, time zone,
campaigns' version and what the route says the page depends on of the member (their role on a
campaign), with each part that is the member's own alone (their name, their pledge, their saved
state) written as a placeholder by `part()`, and filled in per request from small macros. A hit
costs the route's own lookups and the parts, not the page.
"""
from __future__ import annotations

import re
import secrets
import threading
import time
from collections import OrderedDict
from datetime import date
from decimal import Decimal
from functools import wraps

from flask import Response, current_app, g, request, session
from flask_babel import get_locale, get_timezone
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from app import database
from app.extensions import db


class Memo:
    """A map this process keeps, safe across threads and bounded: past `size` entries, the least
    recently used one is dropped."""

    def __init__(self, size: int) -> None:
        self._items: OrderedDict = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key, value) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_MAX_ENTRIES = 512
_store = Memo(_MAX_ENTRIES)  # key -> (expires, page or fragment)
_signed_tokens = Memo(_MAX_ENTRIES)  # (secret, session's token) -> (signed at, signed): _csrf_token
_parts = Memo(4096)  # (part, language, zone, its arguments) -> its HTML: _part (one per member and campaign they view)
_CSRF_PLACEHOLDER = f"csrf-{secrets.token_hex(16)}"
_PART_MARK = f"part-{secrets.token_hex(16)}"
_PIECE = re.compile(f"<!--{_PART_MARK}:([^>]+)-->|{_CSRF_PLACEHOLDER}")  # where a shell is cut (_pieces)


_VERSION: list = []  # the version's statement, built at its first use (campaigns import this module)
_known_version: tuple[float, str] = (0.0, "")  # (read at, version) in this process
_commits = 0  # this process's commits so far: a request reads the version once between two


def _version() -> str:
    global _known_version
    memo = g.get("_campaigns_version")
    if memo is not None and memo[0] == _commits:
        return memo[1]
    read_at, version = _known_version
    now = time.monotonic()
    if now - read_at >= current_app.config.get("PUBLIC_PAGE_VERSION_SECONDS", 1):
        if not _VERSION:
            from app.campaigns.models import Campaign

            _VERSION.append(select(func.max(Campaign.updated_at)))
        version = str(database.read_one(db.engine, _VERSION[0], {})[0])
        _known_version = (now, version)
    g._campaigns_version = (_commits, version)
    return version


def forget_version(*_args) -> None:
    """Read the version again on the next request (after a commit in this process)."""
    global _known_version, _commits
    _known_version = (0.0, "")
    _commits += 1


def clear() -> None:
    _store.clear()
    _signed_tokens.clear()
    _parts.clear()
    forget_version()


def init_app(app) -> None:
    app.add_template_global(cached_fragment, "cached_fragment")
    app.add_template_global(part, "part")
    app.add_template_global(page_address, "page_address")
    if not event.contains(Session, "after_commit", forget_version):
        event.listen(Session, "after_commit", forget_version)


def _remember(key: tuple, value, ttl: float) -> None:
    _store.put(key, (time.monotonic() + ttl, value))


def _recall(key: tuple):
    hit = _store.get(key)
    return hit[1] if hit is not None and hit[0] > time.monotonic() else None


def _language_and_zone() -> tuple[str, str]:
    """The request's language and time zone as a key's parts; built once per request and language (a
    page keys a dozen fragments, and Flask-Babel looks both up again for each)."""
    state = g.get("_flask_babel")
    locale, zone = getattr(state, "babel_locale", None), getattr(state, "babel_tzinfo", None)
    if locale is None or zone is None:
        return str(get_locale()), str(get_timezone())
    memo = g.get("_cache_language_zone")
    if memo is None or memo[0] is not locale or memo[1] is not zone:  # force_locale (a mail) gets its own
        memo = g._cache_language_zone = (locale, zone, (str(locale), str(zone)))
    return memo[2]


def enabled() -> bool:
    return bool(current_app.config.get("PUBLIC_PAGE_CACHE_SECONDS", 10))


def cached(*key, make, when: bool = True, versioned: bool = True):
    """`make()`'s value from the cache while the campaigns are unchanged, per key, language and time zone.
    The key names everything else the value is made from. `when=False` makes it every time;
    `versioned=False` keeps it whatever the campaigns do (for what shows nothing of them)."""
    ttl = current_app.config.get("PUBLIC_PAGE_CACHE_SECONDS", 10)
    if not ttl or not when:
        return make()
    full_key = ("fragment", *key, *_language_and_zone(), _version() if versioned else "")
    value = _recall(full_key)
    if value is None:
        value = make()
        _remember(full_key, value, ttl)
    return value


def _without_token(html: str) -> str:
    token = g.get(current_app.config["WTF_CSRF_FIELD_NAME"])  # where Flask-WTF keeps this request's
    return html.replace(token, _CSRF_PLACEHOLDER) if token else html


def _with_token(html: str) -> str:
    if _CSRF_PLACEHOLDER in html:  # only then: a visitor's page with no form sets no session cookie
        html = html.replace(_CSRF_PLACEHOLDER, _csrf_token())
    return html


def _csrf_token() -> str:
    """This request's CSRF token for a cached page's forms. Flask-WTF signs the session's token anew for
    every request (the signature holds the time: ~50 µs, a few percent of a member's page from the
    cache); the same session's token signed earlier is as valid (it is checked against the session's
    token, and its age against WTF_CSRF_TIME_LIMIT: none by default), so it is reused while younger than
    a tenth of that limit. Per session: another session's token differs, so does its signature."""
    config = current_app.config  # Flask-WTF's settings, its defaults set by CSRFProtect
    field = config["WTF_CSRF_FIELD_NAME"]
    signed = g.get(field)  # where Flask-WTF keeps this request's, once signed
    if signed is not None:  # the page's other forms get the same, without Flask-WTF's lookups again
        return signed
    token = session.get(field)
    if token is None:
        return generate_csrf()
    limit = config["WTF_CSRF_TIME_LIMIT"]
    key = (config.get("WTF_CSRF_SECRET_KEY") or current_app.secret_key, token)
    now = time.monotonic()
    known = _signed_tokens.get(key)
    if known is not None and (limit is None or now - known[0] < limit / 10):
        setattr(g, field, known[1])  # where generate_csrf (and the lookup above) looks first
        return known[1]
    signed = generate_csrf()
    _signed_tokens.put(key, (now, signed))
    return signed


def cached_fragment(*key, caller, when: bool = True, versioned: bool = True, parts: dict | None = None) -> Markup:
    """`{% call cached_fragment('name', campaign.id, …) %}…{% endcall %}`: the block's HTML from the
    cache while the campaigns are unchanged. The key names everything else the block shows; the
    block must hold nothing of the member's own (no name, no form errors) but their CSRF token, which
    each request gets its own of, and the `part()`s it calls, filled from `parts` (their values) each
    time, unless the key holds what makes it theirs alone (their id and the ids of their own rows,
    which only their page lists). `when=False` renders it every time (a preview of a campaign that is
    not public, a form shown again with its errors); `versioned=False`: for a block that shows nothing
    of the campaigns (the page's frame)."""
    if parts is None:
        return _with_token(cached(*key, make=lambda: Markup(_without_token(caller())), when=when, versioned=versioned))
    pieces = cached(*key, make=lambda: _pieces(_as_shell(caller)), when=when, versioned=versioned)
    if g.get("rendering_shell"):  # inside a shell, its parts stay placeholders for the shell's values
        return Markup(_unfilled(pieces))
    return Markup(_fill(pieces, parts))


def _as_shell(render):
    """`render()` with its parts as placeholders and the CSRF token as its own; a response is returned as it is."""
    outer, g.rendering_shell = g.get("rendering_shell", False), True
    try:
        page = render()
    finally:
        g.rendering_shell = outer
    return _without_token(page) if isinstance(page, str) else page


def _pieces(shell: str) -> tuple:
    """A shell cut where each part and CSRF token goes, once, when it is cached: its text, then a part's
    name (None for the token), text, and so on; a hit then joins it instead of searching the page."""
    pieces, start = [], 0
    for found in _PIECE.finditer(shell):
        pieces += [shell[start:found.start()], found.group(1)]
        start = found.end()
    pieces.append(shell[start:])
    return tuple(pieces)


def _unfilled(pieces: tuple) -> str:
    """The shell's text again, its parts and token as placeholders (a fragment with parts inside a shell)."""
    return "".join(piece if at % 2 == 0 else _CSRF_PLACEHOLDER if piece is None else _placeholder(piece)
                   for at, piece in enumerate(pieces))


def _placeholder(name: str) -> str:
    """Where part `name` goes in a shell (random per process: no text a member writes can hold it)."""
    return f"<!--{_PART_MARK}:{name}-->"


def _fill(pieces: tuple, values: dict) -> str | bytes:
    """The shell's pieces joined, each part rendered by its macro on `values`, each token this request's
    (bytes when the shell's text is: shell_page's)."""
    filled = list(pieces)
    encoded = isinstance(filled[0], bytes)
    for at in range(1, len(filled), 2):
        value = _csrf_token() if filled[at] is None else _part(filled[at], values)
        filled[at] = value.encode() if encoded else value
    return (b"" if encoded else "").join(filled)


def _part(name: str, values: dict) -> str:
    """Part `name` filled in: its macro called on the values of its arguments. When those are all values
    (compared by what they hold: text, numbers, flags, frozen dataclasses; not a row such as the member's
    `User`), it is rendered once per them, language and time zone, its CSRF token kept apart: a part is a
    function of its arguments, and rendering the two of a member's campaign page (translations, links, an
    amount) was about a tenth of that page from its shell."""
    macro = _macro(name)
    args = {arg: values[arg] for arg in macro.arguments}
    if not enabled() or not all(_by_value(value) for value in args.values()):
        return str(macro(**args))
    key = (name, *_language_and_zone(), *args.values())
    html = _parts.get(key)
    if html is None:
        html = _without_token(str(macro(**args)))
        _parts.put(key, html)
    return _with_token(html)


def _by_value(value) -> bool:
    """Whether `value` is known by what it holds: text, a number, a time, None, or a tuple or frozen
    dataclass of those (not a row, nor the `current_user` proxy, which compare as themselves)."""
    if value is None or isinstance(value, _VALUES):
        return True
    kind = type(value)
    if kind is tuple:
        return all(map(_by_value, value))
    params = getattr(kind, "__dataclass_params__", None)
    return params is not None and params.frozen and all(_by_value(getattr(value, name)) for name in kind.__dataclass_fields__)


_VALUES = (str, int, float, Decimal, date)


def _macro(name: str):
    """`part`'s macro: "template:macro"."""
    template, macro = name.split(":")
    return getattr(current_app.jinja_env.get_template(template).module, macro)


def part(name: str, **args) -> Markup:
    """`{{ part('campaigns/_viewer.html:funding_action', campaign=campaign, viewer=viewer, now=now) }}`: a
    part of a page that is the member's own. Rendered in place, or, while `shell_page` renders the
    shell, a placeholder it fills per request with the macro called on the route's values of the
    same names."""
    if g.get("rendering_shell"):
        return Markup(_placeholder(name))
    return _macro(name)(**args)


def page_address() -> str:
    """This page's address, as the frame's language switcher sends the member back to it."""
    return request.full_path if request.query_string else request.path


def shell_page(key: tuple, render, versioned: bool = True, **values):
    """A member's page: its shell from the cache (or `render()` with its parts as placeholders), each
    part filled with its macro on `values` (and the frame's: the member, the page's address). `key`
    names everything the shell shows of the member besides their parts, beyond the address, language,
    time zone and campaigns' version (`versioned=False`: the key names everything it shows of the
    campaigns too). A page with a flash message is rendered whole."""
    ttl = current_app.config.get("PUBLIC_PAGE_CACHE_SECONDS", 10)
    if not ttl or session.get("_flashes"):
        return render()
    full_key = ("shell", request.full_path, *key, *_language_and_zone(), _version() if versioned else "")
    shell = _recall(full_key)
    if shell is None:
        page = _as_shell(render)
        if not isinstance(page, str):  # a redirect or a response of its own: not a page to share
            return page
        # Its text kept as UTF-8: a hit joins bytes. Encoding the page on each request cost more than
        # filling it (a page is mostly ASCII but its language menu is not, so the whole text is stored
        # two bytes a character and encoded one by one: 50-110 µs for /me/pledges' 68 kB, against 3 µs
        # for the same text in ASCII); its parts, a few hundred bytes, are encoded when they are filled.
        shell = tuple(piece.encode() if at % 2 == 0 else piece for at, piece in enumerate(_pieces(page)))
        _remember(full_key, shell, ttl)
    return _fill(shell, {"user": current_user, "path": page_address(), **values})


def public_page(view):
    """Serve a visitor's GET from the cache while the data behind it is unchanged."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        ttl = current_app.config.get("PUBLIC_PAGE_CACHE_SECONDS", 10)
        if not ttl or request.method != "GET" or current_user.is_authenticated or session.get("_flashes"):
            return view(*args, **kwargs)
        # The same selectors as the pages (app.i18n): language and time zone change what a page says.
        key = ("page", request.full_path, *_language_and_zone(), _version())
        hit = _recall(key)
        if hit is not None:
            body, headers = hit
            return Response(body, status=200, headers=headers)
        response = current_app.make_response(view(*args, **kwargs))
        if response.status_code == 200 and not response.headers.get("Set-Cookie") and not response.direct_passthrough:
            headers = [(k, v) for k, v in response.headers.items() if k.lower() not in ("content-length", "set-cookie")]
            _remember(key, (response.get_data(), headers), ttl)
        return response

    return wrapped
