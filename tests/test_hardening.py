"""Issue 14: what an outside attack found, each pinned by a test named after its finding."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from app.extensions import db
from app.ids import MAX_ID, parse_id
from app.pledges.models import Pledge
from tests.factories import login, make_campaign, make_user

HUGE_IDS = [2**31, 2**31 + 1, 2**32, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 10**30]


def _id_rules(app) -> list[tuple[str, str, str]]:
    """(rule, method, id variable) for every route that takes a database id."""
    found = []
    for rule in app.url_map.iter_rules():
        ids = [name for name, converter in rule._converters.items() if converter.__class__.__name__ == "IdConverter"]
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.extend((rule.rule, method, name) for name in ids)
    return found


def test_every_id_in_a_url_uses_the_id_converter(app):
    """No route takes a database id through <int:…> (unbounded) any more."""
    assert len({rule for rule, _m, _n in _id_rules(app)}) >= 21
    assert not [rule.rule for rule in app.url_map.iter_rules() if "<int:" in rule.rule]


def test_parse_id_bounds():
    assert parse_id("1") == 1 and parse_id(str(MAX_ID)) == MAX_ID
    for bad in ("0", "-1", str(MAX_ID + 1), "²", "１", " 1", "1 ", "", "0x1", "1e3", None, 1):
        assert parse_id(bad) is None, bad


def test_finding_2_large_ids_are_404(app):
    """Ids past the database's range are 404 on every id route, for visitors, members and moderators."""
    creator = make_user("cat@example.com")
    campaign = make_campaign(creator, "live")
    clients = {"visitor": app.test_client()}
    for role, moderator in (("member", False), ("moderator", True)):
        user = make_user(f"{role}@example.com", moderator=moderator)
        clients[role] = app.test_client()
        login(clients[role], user.email)
    rules = _id_rules(app)
    for rule, method, name in rules:
        for huge in HUGE_IDS:
            path = rule.replace("<slug>", campaign.slug).replace("<int:user_id>", "1")
            for other in ("pledge_id", "tier_id", "update_id", "comment_id", "entry_id", "question_id", "user_id"):
                path = path.replace(f"<id:{other}>", str(huge) if other == name else "1")
            for role, client in clients.items():
                response = client.open(path, method=method, data={"note": "x"})
                assert response.status_code == 404, (role, method, path, response.status_code)


def test_finding_2_a_login_cookie_with_a_huge_user_id_is_a_visitor(app):
    from app.accounts import services

    for cookie in (f"{2**63}:abc", f"{2**31}:abc", "²:abc", "-1:abc", ":abc", "1:"):
        assert services.load_user(cookie) is None
    # the page still answers, as for a visitor
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = f"{2**64}:whatever"
    response = client.get("/me/pledges")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    assert db.session.scalar(select(Pledge)) is None


# --- findings 1, 3, 4: hosts, links that leave the site, error pages that cannot fail ---------------

def _outbox(kind: str):
    from app.notifications.models import OutboxMessage

    return db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind)).all()


def test_finding_1_untrusted_host_refused(app, client):
    make_user("ann@example.com")
    response = client.post("/auth/reset", data={"email": "ann@example.com"}, headers={"Host": "evil.example"})
    assert response.status_code == 400 and "Bad request" in response.get_data(as_text=True)
    assert response.headers["X-Frame-Options"] == "DENY" and "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert _outbox("reset_password") == []
    assert client.get("/", headers={"Host": "localhost:8123"}).status_code == 200  # any port of a trusted host


def test_finding_1_reset_link_from_base_url(make_app):
    """Even from a host the site answers to, every link in mail is built from BASE_URL."""
    app = make_app(BASE_URL="https://threshold.example/site", TRUSTED_HOSTS=["localhost", "www.threshold.example"])
    with app.app_context():
        make_user("ann@example.com")
        client = app.test_client()
        response = client.post("/auth/reset", data={"email": "ann@example.com"}, headers={"Host": "www.threshold.example"})
        assert response.status_code == 302
        [mail] = _outbox("reset_password")
        links = re.findall(r"https?://\S+", mail.body)
        assert links and all(link.startswith("https://threshold.example/site/auth/") for link in links), links
        assert any("/site/auth/reset/" in link for link in links)
        assert mail.headers["List-Unsubscribe"].startswith("<https://threshold.example/site/auth/unsubscribe/")
        assert "www.threshold.example" not in mail.body + str(mail.headers)


def test_no_link_that_leaves_the_site_is_built_from_the_request():
    """Mail templates and services use external_url (BASE_URL); url_for(_external=True) uses the Host."""
    root = Path(__file__).resolve().parent.parent / "app"
    offenders = [str(path) for path in root.rglob("*") if path.suffix in (".py", ".html", ".txt")
                 and path.name != "links.py" and "_external" in path.read_text(encoding="utf-8")]
    assert offenders == []


@pytest.mark.parametrize("host", ["a" * 64, "a..b", "exa mple.org", "host:99999", "[::1", "localhost\x00"])
@pytest.mark.parametrize("server_name", ["localhost", None])  # the suite's setting, and production's
def test_finding_3_malformed_host_gets_styled_400(app, make_app, host, server_name):
    client = make_app(SERVER_NAME=server_name).test_client()
    response = client.get("/campaigns", headers={"Host": host})
    page = response.get_data(as_text=True)
    assert response.status_code == 400, (host, response.status_code)
    assert "Bad request" in page and "/bootstrap/static/css/bootstrap.min.css" in page and "<title>" in page
    assert response.headers["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_finding_4_error_page_without_database(make_app, tmp_path):
    """The database is gone while a member's cookie arrives: a styled 500 with the security headers,
    in the member's browser language, drawn without touching the database."""
    from flask_migrate import upgrade

    working = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'gone.db'}")
    with working.app_context():
        upgrade(directory=str(Path(__file__).resolve().parent.parent / "migrations"))
        make_user("ann@example.com")
        member = working.test_client()
        assert login(member, "ann@example.com").status_code == 302
        assert member.get("/me/pledges").status_code == 200
    broken = make_app(SQLALCHEMY_DATABASE_URI="postgresql+psycopg://postgres@127.0.0.1:1/gone")  # nothing listens
    client = broken.test_client()
    for cookie in ("session", "remember_token"):
        if (found := member.get_cookie(cookie)) is not None:
            client.set_cookie(cookie, found.value)
    with broken.app_context():
        response = client.get("/me/pledges", headers={"Accept-Language": "fr"})
    page = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Une erreur" in page or "erreur" in page.lower(), page
    assert '<html lang="fr">' in page and "/static/css/app.css" in page
    assert response.headers["X-Frame-Options"] == "DENY" and "default-src 'self'" in response.headers["Content-Security-Policy"]


def test_error_pages_render_without_a_url_adapter(app):
    """render_error itself needs no url_for: it works in a request whose routing failed."""
    from app.errors import render_error

    with app.test_request_context("/", headers={"Host": "a..b"}):
        body, code = render_error(404)
    assert code == 404 and "Page not found" in body


# --- behind a reverse proxy --------------------------------------------------------------------------

@pytest.mark.parametrize("proxies,separate", [(1, True), (0, False)])
def test_trusted_proxies_give_each_client_its_own_rate_limit(make_app, proxies, separate):
    app = make_app(TRUSTED_PROXIES=proxies, RATELIMIT_ENABLED=True, AUTH_RATE_LIMIT="2 per minute")
    client = app.test_client()
    with app.app_context():
        def attempt(forwarded_for: str) -> int:
            return client.post("/auth/login", data={"email": "x@example.com", "password": "wrong password"},
                               headers={"X-Forwarded-For": forwarded_for}).status_code
        assert [attempt("198.51.100.1") for _ in range(3)][-1] == 429
        assert (attempt("198.51.100.2") != 429) is separate


# --- finding 6: another currency's symbol or code is refused, not ignored ------------------------------

@pytest.mark.parametrize("typed,accepted", [
    ("¥2500", False), ("$25", False), ("25 USD", False), ("€25", False), ("CHF 25", False), ("₹25", False),
    ("£25", True), ("25 GBP", True), ("GBP 25", True), ("25 gbp", True), ("£GB25", True), ("25", True),
])
def test_finding_6_other_currency_symbol_refused(app, typed, accepted):
    from html import unescape

    from sqlalchemy import func

    creator = make_user("cat@example.com")
    campaign = make_campaign(creator, "live", currency="GBP", goal=500_000)
    backer = make_user("bea@example.com")
    client = app.test_client()
    login(client, backer.email)
    response = client.post(f"/campaigns/{campaign.slug}/pledge", data={"tier": "", "amount": typed})
    if accepted:  # what the page's script sends before Stripe.js confirms the card
        response = client.post(f"/campaigns/{campaign.slug}/pledge", data={"tier": "", "amount": typed},
                               headers={"Accept": "application/json"})
        assert response.status_code == 200, (typed, response.get_json())
        assert db.session.scalar(select(Pledge.amount)) == 2500
        return
    page = unescape(response.get_data(as_text=True))
    assert response.status_code == 422
    assert "Enter the amount in British Pound (GBP)" in page and f'value="{typed}"' in page
    assert db.session.scalar(select(func.count(Pledge.id))) == 0


def test_finding_6_goal_and_tier_amounts_in_the_campaigns_currency(app):
    from html import unescape

    creator = make_user("cat@example.com")
    client = app.test_client()
    login(client, creator.email)
    data = {"title": "Euro Lamp", "blurb": "A lamp.", "category": "design", "goal": "$5000", "currency": "EUR",
            "duration_days": "30", "story": "Story.", "risks": "Risks."}
    page = unescape(client.post("/campaigns/new", data=data).get_data(as_text=True))
    assert "Enter the amount in Euro (EUR)" in page
    assert client.post("/campaigns/new", data={**data, "goal": "5000 €"}).status_code == 302
    campaign = make_campaign(creator, "draft", currency="JPY", goal=100_000)
    tier = {"title": "Yen tier", "description": "x", "amount": "£25", "quantity_limit": "", "estimated_delivery": "", "shipping_note": ""}
    page = unescape(client.post(f"/campaigns/{campaign.slug}/tiers/new", data=tier).get_data(as_text=True))
    assert "Enter the amount in Japanese Yen (JPY)" in page


# --- finding 9: replaced covers are deleted, orphans swept ------------------------------------------

def _png(color: tuple[int, int, int]) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(out, "PNG")
    return out.getvalue()


def _stored(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []


@pytest.mark.parametrize("state", ["draft", "live"])
def test_finding_9_replaced_cover_deleted(app, make_app, tmp_path, state):
    import io

    from tests.test_campaigns_helpers import form_of

    uploads = make_app(UPLOAD_FOLDER=str(tmp_path))
    folder = tmp_path / "covers"
    with uploads.app_context():
        creator = make_user("cat@example.com")
        campaign = make_campaign(creator, state)
        client = uploads.test_client()
        login(client, creator.email)
        for n in range(7):
            data = {**form_of(campaign), "cover": (io.BytesIO(_png((30 * n, 40, 40))), "cover.png")}
            response = client.post(f"/campaigns/{campaign.slug}/edit", data=data, content_type="multipart/form-data")
            assert response.status_code == 302, response.get_data(as_text=True)[:300]
        db.session.expire_all()
        cover = db.session.scalar(select(type(campaign).cover))
        # seven uploads leave one cover and its thumbnail, the one the campaign shows
        assert _stored(folder) == sorted([cover, cover.replace(".", ".thumb.", 1)])
        assert client.get(f"/uploads/covers/{cover}").status_code == 200
        # a cover the story shows is kept when it is replaced
        campaign = db.session.get(type(campaign), campaign.id)
        story = f"![the prototype](/uploads/covers/{cover})"
        if state == "draft":
            client.post(f"/campaigns/{campaign.slug}/edit", data=form_of(campaign, story=story))
        else:
            campaign.story = story
            db.session.commit()
        data = {**form_of(campaign, story=story), "cover": (io.BytesIO(_png((1, 2, 3))), "cover.png")}
        assert client.post(f"/campaigns/{campaign.slug}/edit", data=data, content_type="multipart/form-data").status_code == 302
        assert cover in _stored(folder) and len(_stored(folder)) == 4
        # and one an update shows (any Markdown column counts)
        from app.community import services as community

        shown = db.session.scalar(select(type(campaign).cover))
        if state == "live":
            community.post_update(db.session.get(type(campaign), campaign.id), creator, "Look", f"![it](/uploads/covers/{shown})", False)
            data = {**form_of(campaign, story=story), "cover": (io.BytesIO(_png((9, 9, 9))), "cover.png")}
            assert client.post(f"/campaigns/{campaign.slug}/edit", data=data, content_type="multipart/form-data").status_code == 302
            assert shown in _stored(folder) and len(_stored(folder)) == 6


def test_orphan_covers_older_than_a_day_are_swept(make_app, tmp_path, frozen_clock):
    import io
    import os
    from datetime import UTC

    from app.campaigns import services
    from app.content import images

    uploads = make_app(UPLOAD_FOLDER=str(tmp_path))
    folder = tmp_path / "covers"
    now = frozen_clock.replace(tzinfo=UTC).timestamp()
    with uploads.app_context():
        def stored(seed: int) -> str:
            return images.save_cover(images.process_cover(io.BytesIO(_png((seed, 0, 0)))), folder)

        def age(name: str, hours: int) -> None:
            then = now - hours * 3600
            for path in folder.glob(name.split(".")[0] + "*"):
                os.utime(path, (then, then))

        creator = make_user("cat@example.com")
        shown, embedded, orphan, young = (stored(n) for n in (10, 20, 30, 40))
        campaign = make_campaign(creator, "live", story=f"![old](/uploads/covers/{embedded})")
        campaign.cover = shown
        db.session.commit()
        (folder / ".upload-crashed.part").write_bytes(b"half")
        for name in (shown, embedded, orphan, ".upload-crashed.part"):
            age(name, 25)
        age(young, 2)
        result = uploads.test_cli_runner().invoke(args=["uploads", "sweep"])
        assert result.exit_code == 0 and "2 orphan file(s) removed" in result.output
        left = _stored(folder)
        assert orphan not in left and orphan.replace(".", ".thumb.", 1) not in left and ".upload-crashed.part" not in left
        assert {shown, embedded, young} <= set(left)
        assert services.sweep_orphan_covers() == 0



# --- finding 10: weak passwords are refused (NIST SP 800-63B, zxcvbn) -----------------------------

WEAK = ["password", "12345678", "qwertyuiop", "iloveyou1", "ann@example.com", "annexample", "Ann Smith 1990", "aaaaaaaaaaaa"]


@pytest.mark.parametrize("weak", WEAK)
def test_finding_10_weak_passwords_refused(client, weak):
    from app.accounts.models import User

    data = {"email": "ann@example.com", "display_name": "Ann Smith", "password": weak}
    response = client.post("/auth/register", data=data)
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "This password is too easy to guess." in page, weak
    assert 'value="ann@example.com"' in page and 'value="Ann Smith"' in page  # what was typed is kept
    assert db.session.scalar(select(User)) is None


def test_finding_10_the_reason_is_given_in_the_readers_language(client):
    from html import unescape

    response = client.post("/auth/register", headers={"Accept-Language": "fr"},
                           data={"email": "ann@example.com", "display_name": "Ann", "password": "password"})
    page = unescape(response.get_data(as_text=True))
    assert "Ce mot de passe est trop facile à deviner." in page
    assert "This is one of the 10 most common passwords" not in page and "top-10" not in page


def test_finding_10_every_way_to_set_a_password_checks_it(app, client):
    from app.accounts import services

    assert client.post("/auth/register", data={"email": "ann@example.com", "display_name": "Ann",
                                               "password": "orchid velvet comet"}).status_code == 302
    ann = services.find_by_email("ann@example.com")
    with pytest.raises(services.AccountError) as raised:
        services.change_password(ann, "orchid velvet comet", "12345678")
    assert raised.value.field == "new_password"
    with pytest.raises(services.AccountError) as raised:
        services.reset_password(ann, "ann@example.com")
    assert raised.value.field == "password"
    result = app.test_cli_runner().invoke(args=["users", "create", "bob@example.com", "--password", "password1"])
    assert result.exit_code == 1 and "too easy to guess" in result.output
    link = services.external_url("accounts.reset_password", token=services.reset_token(ann)).split("localhost", 1)[1]
    response = client.post(link, data={"password": "password1", "confirm": "password1"})
    assert response.status_code == 422 and "too easy to guess" in response.get_data(as_text=True)


# --- failed logins per account ----------------------------------------------------------------------

def test_failed_logins_lock_the_account(app, make_app, frozen_clock):
    """Ten wrong passwords from ten addresses lock the account for a quarter hour, right password or
    not; its owner is mailed once; the lock ends by itself and a good login clears the count."""
    from datetime import timedelta

    from app import clock
    from app.accounts.models import User

    make_user("ann@example.com", name="Ann")
    limited = make_app(TRUSTED_PROXIES=1, RATELIMIT_ENABLED=True)  # ten clients, each under its own IP limit
    client = limited.test_client()
    with limited.app_context():
        def attempt(password: str, n: int):
            return client.post("/auth/login", data={"email": "ann@example.com", "password": password},
                               headers={"X-Forwarded-For": f"198.51.100.{n}"})

        for n in range(9):
            assert "do not match" in attempt("wrong guess", n).get_data(as_text=True)
        assert _outbox("account_locked") == []
        assert "paused" in attempt("wrong guess", 9).get_data(as_text=True)
        # locked: the right password is refused the same way, and no second mail is sent
        response = attempt("correct horse battery", 10)
        assert response.status_code == 422 and "paused" in response.get_data(as_text=True)
        assert "paused" in attempt("wrong again", 11).get_data(as_text=True)
        [mail] = _outbox("account_locked")
        assert "http://localhost/auth/reset" in mail.body and "November 23, 2026, 12:15" in mail.body
        # the lock ends by itself; a good login clears the count
        clock.advance(timedelta(minutes=16))
        assert attempt("correct horse battery", 12).status_code == 302
        db.session.expire_all()
        ann = db.session.scalar(select(User))
        assert (ann.login_failures, ann.locked_until) == (0, None)


def test_failures_spread_over_time_do_not_lock(app, frozen_clock):
    from datetime import timedelta

    from app import clock
    from app.accounts import services

    make_user("ann@example.com")
    for _ in range(12):
        assert services.authenticate("ann@example.com", "wrong guess") is None
        clock.advance(timedelta(minutes=2))  # never ten within a quarter hour
    assert services.authenticate("ann@example.com", "correct horse battery") is not None
    assert _outbox("account_locked") == []


def test_finding_10_a_substitution_heavy_password_is_judged_by_its_start(app):
    """zxcvbn's substitution search costs seconds on 72 characters using many of "@", "4", "|"…: such a
    password is judged by its first 16 characters (a weak start is refused, a strong one passes)."""
    from app.accounts.passwords import weakness

    symbols = "4@8({[<3!1|70$5%2" * 4
    with app.test_request_context():
        assert weakness("passwordpassword" + symbols) is not None
        assert weakness("orchid velvet co" + symbols) is None
        assert weakness("password password password") is not None  # few substitutes: read whole
