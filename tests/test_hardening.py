"""Issue 14: what an outside attack found, each pinned by a test named after its finding."""
from __future__ import annotations

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
