"""Who may reach each campaign route (SPEC §1, §2, §7): a table of expected statuses for a visitor,
another member, the creator and a moderator, on a campaign that is not public and on a live one.

A refused request (login redirect, 403, 404) changes nothing in the database.
"""
from __future__ import annotations

import io

import pytest
from PIL import Image

from app.campaigns.models import Campaign
from app.content import images
from app.extensions import db
from tests.factories import login, make_user
from tests.test_campaigns_helpers import CAMPAIGN_FORM, TIER_FORM, build_campaign, form_of, snapshot

ROLES = ("visitor", "member", "creator", "moderator")
LOGIN = "login"  # a redirect to the login page

# (method, path template, expected for a campaign that is not public, expected for a live one)
# Each expectation is (visitor, member, creator, moderator).
ROUTES = [
    ("GET", "/campaigns/new", (LOGIN, 200, 200, 200), (LOGIN, 200, 200, 200)),
    ("GET", "/campaigns/{slug}", (404, 404, 302, 302), (200, 200, 200, 200)),
    ("GET", "/campaigns/{slug}/preview", (LOGIN, 404, 200, 200), (LOGIN, 302, 200, 200)),
    ("GET", "/campaigns/{slug}/edit", (LOGIN, 404, 200, 403), (LOGIN, 403, 200, 403)),
    ("POST", "/campaigns/{slug}/edit", (LOGIN, 404, 302, 403), (LOGIN, 403, 302, 403)),
    ("GET", "/campaigns/{slug}/tiers/new", (LOGIN, 404, 200, 403), (LOGIN, 403, 200, 403)),
    ("POST", "/campaigns/{slug}/tiers/new", (LOGIN, 404, 302, 403), (LOGIN, 403, 302, 403)),
    ("GET", "/campaigns/{slug}/tiers/{tier}/edit", (LOGIN, 404, 200, 403), (LOGIN, 403, 200, 403)),
    ("POST", "/campaigns/{slug}/tiers/{tier}/edit", (LOGIN, 404, 302, 403), (LOGIN, 403, 302, 403)),
    ("POST", "/campaigns/{slug}/tiers/{tier}/delete", (LOGIN, 404, 302, 403), (LOGIN, 403, 302, 403)),
    ("POST", "/campaigns/{slug}/submit", (LOGIN, 404, 302, 403), (LOGIN, 403, 302, 403)),
    ("POST", "/campaigns/{slug}/launch", (LOGIN, 404, 302, 403), (LOGIN, 403, 302, 403)),
    ("POST", "/campaigns/{slug}/cancel", (LOGIN, 404, 302, 403), (LOGIN, 403, 302, 403)),
    ("GET", "/me/campaigns", (LOGIN, 200, 200, 200), (LOGIN, 200, 200, 200)),
    ("GET", "/uploads/covers/{cover}", (200, 200, 200, 200), (200, 200, 200, 200)),
]

CASES = [
    pytest.param(method, path, public, role, expected[ROLES.index(role)], id=f"{method} {path} {'live' if public else 'draft'} {role}")
    for method, path, draft, live in ROUTES
    for public, expected in ((False, draft), (True, live))
    for role in ROLES
]


def _cover() -> str:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (10, 120, 200)).save(out, "PNG")
    return images.save_cover(images.process_cover(out.getvalue()), _folder())


def _folder() -> str:
    from flask import current_app

    return current_app.config["UPLOAD_FOLDER"] + "/covers"


def _body(path: str, campaign) -> dict:
    if path.endswith("/edit") and "/tiers/" not in path:
        return form_of(campaign, story="Changed by the request.")
    if "/tiers/" in path and not path.endswith("/delete"):
        return dict(TIER_FORM, title="Changed by the request")
    return {}


@pytest.mark.parametrize(("method", "path", "public", "role", "expected"), CASES)
def test_route_permissions(app, client, method, path, public, role, expected):
    creator = make_user("creator@example.com")
    member = make_user("member@example.com")
    mod = make_user("mod@example.com", moderator=True)
    campaign = build_campaign(creator, "live" if public else "draft", tiers=2)
    campaign.cover = _cover()
    db.session.commit()
    user = {"visitor": None, "member": member, "creator": creator, "moderator": mod}[role]
    if user is not None:
        login(client, user.email)
    url = path.format(slug=campaign.slug, tier=campaign.tiers[0].id, cover=campaign.cover)
    before = snapshot()

    response = client.open(url, method=method, data=_body(path, campaign))

    if expected == LOGIN:
        assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    else:
        assert response.status_code == expected, response.get_data(as_text=True)[:500]
    if expected in (LOGIN, 403, 404) or method == "GET":
        assert snapshot() == before
    if expected == 403:
        assert "Not allowed" in response.get_data(as_text=True)
    if expected == 404:
        assert "Page not found" in response.get_data(as_text=True)


def test_a_moderator_sees_every_state_but_changes_nothing(app, client):
    creator = make_user()
    mod = make_user(moderator=True)
    login(client, mod.email)
    for state in ("draft", "submitted", "changes_requested", "approved", "rejected", "suspended"):
        campaign = build_campaign(creator, state)
        response = client.get(f"/campaigns/{campaign.slug}/preview")
        assert response.status_code == 200 and campaign.title in response.get_data(as_text=True)
        assert "Back to editing" not in response.get_data(as_text=True)
        before = snapshot()
        assert client.post(f"/campaigns/{campaign.slug}/edit", data=CAMPAIGN_FORM).status_code == 403
        assert client.post(f"/campaigns/{campaign.slug}/submit").status_code == 403
        assert snapshot() == before


@pytest.mark.parametrize("state", ["draft", "submitted", "changes_requested", "approved", "rejected", "suspended"])
def test_non_public_states_are_404_for_everyone_else(app, client, state):
    campaign = build_campaign(make_user(), state)
    assert client.get(f"/campaigns/{campaign.slug}").status_code == 404
    make_user("other@example.com")
    login(client, "other@example.com")
    for path in ("", "/preview", "/edit", "/tiers/new", f"/tiers/{campaign.tiers[0].id}/edit"):
        assert client.get(f"/campaigns/{campaign.slug}{path}").status_code == 404, path


@pytest.mark.parametrize("state", ["live", "successful", "unsuccessful", "canceled"])
def test_public_states_are_open_to_everyone(app, client, state):
    campaign = build_campaign(make_user(), state)
    response = client.get(f"/campaigns/{campaign.slug}")
    assert response.status_code == 200 and campaign.title in response.get_data(as_text=True)


def test_a_tier_of_another_campaign_is_404(app, client):
    creator = make_user()
    mine = build_campaign(creator, title="Mine")
    other = build_campaign(make_user(), title="Theirs")
    login(client, creator.email)
    before = snapshot()
    theirs = other.tiers[0].id
    assert client.get(f"/campaigns/{mine.slug}/tiers/{theirs}/edit").status_code == 404
    assert client.post(f"/campaigns/{mine.slug}/tiers/{theirs}/edit", data=TIER_FORM).status_code == 404
    assert client.post(f"/campaigns/{mine.slug}/tiers/{theirs}/delete").status_code == 404
    assert client.get(f"/campaigns/{mine.slug}/tiers/999999/edit").status_code == 404
    assert snapshot() == before


@pytest.mark.parametrize("name", ["nope.jpg", "../secret.jpg", "%2e%2e%2fconfig.py", "0" * 32 + ".png", "0" * 32 + ".jpg", "x\x00.jpg"])
def test_cover_route_serves_only_stored_covers(app, client, name):
    assert client.get(f"/uploads/covers/{name}").status_code == 404


@pytest.mark.parametrize("slug", ["no-such-campaign", "%00", "a" * 300, "%E2%80%AE", "..%2f..%2fetc"])
def test_unknown_slugs_are_404(app, client, slug):
    for path in ("", "/preview", "/edit"):
        response = client.get(f"/campaigns/{slug}{path}")
        assert response.status_code in (404, 302), path  # 302: log in first


def test_unknown_slugs_are_404_for_members(app, client):
    make_user("m@example.com")
    login(client, "m@example.com")
    for slug in ("no-such-campaign", "%00", "a" * 300):
        for path in ("", "/preview", "/edit", "/tiers/new"):
            assert client.get(f"/campaigns/{slug}{path}").status_code == 404, (slug, path)
        assert client.post(f"/campaigns/{slug}/submit").status_code == 404
    assert db.session.query(Campaign).count() == 0
