"""The creator's track record (issue 8) against seeded histories, on the campaign page and the public
profile: counted from our records in a bounded number of statements, never typed in."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from app import clock
from app.campaigns import services as campaigns
from app.community import services as community
from app.community.track_record import track_record, track_records
from app.extensions import db
from tests.factories import login, make_campaign, make_user
from tests.queries import counting


def _post_update(campaign, creator, title="News"):
    return community.post_update(campaign, creator, title, "Some **news**.", False)


@pytest.fixture
def history(app, frozen_clock):
    """A creator with campaigns in every state, updates before and after funding, and a neighbour."""
    creator = make_user("creator@example.com", name="Cleo Creator")
    clock.advance(timedelta(days=400))
    moderator = make_user("mod@example.com", moderator=True)
    built = {}
    for state in ("draft", "submitted", "changes_requested", "approved", "rejected", "suspended"):
        built[state] = make_campaign(creator, state, moderator=moderator, title=f"State {state}")
    built["live"] = [make_campaign(creator, "live", moderator=moderator, title=f"Live {n}") for n in range(2)]
    # Funded twice: updates on the first before the deadline (not counted) and after (counted).
    first = make_campaign(creator, "live", moderator=moderator, title="Funded one")
    _post_update(first, creator, "Before the end")
    clock.advance(timedelta(hours=1))
    campaigns.transition(first, "succeed", None)
    first.ended_at = clock.utcnow()
    db.session.commit()
    clock.advance(timedelta(days=3))
    _post_update(first, creator, "Shipping soon")
    _post_update(first, creator, "Shipped")
    second = make_campaign(creator, "successful", moderator=moderator, title="Funded two")
    clock.advance(timedelta(days=1))
    _post_update(second, creator, "Thanks")
    built["successful"] = [first, second]
    built["unsuccessful"] = [make_campaign(creator, "unsuccessful", moderator=moderator, title=f"Missed {n}") for n in range(3)]
    unfunded = built["unsuccessful"][0]
    clock.advance(timedelta(days=1))
    _post_update(unfunded, creator, "We will try again")  # an unfunded campaign's update is not counted
    built["canceled"] = make_campaign(creator, "canceled", moderator=moderator, title="Stopped")
    # Someone else's funded campaign with updates: never counted for our creator.
    other = make_user("other@example.com", name="Otto Other")
    theirs = make_campaign(other, "successful", moderator=moderator, title="Theirs")
    clock.advance(timedelta(days=1))
    _post_update(theirs, other, "Their news")
    return creator, other, built


def test_the_numbers_match_the_history(history):
    creator, other, _built = history
    record = track_record(creator)
    # launched: 2 live + 2 funded + 3 unfunded + 1 canceled; drafts, review states, rejected, suspended are not
    assert (record.launched, record.live, record.funded, record.unfunded, record.canceled) == (8, 2, 2, 3, 1)
    assert record.updates_after_funding == 3
    assert record.member_since == creator.created_at
    assert record.account_age() >= timedelta(days=400)
    assert record.success_rate == 40
    theirs = track_record(other)
    assert (theirs.launched, theirs.funded, theirs.updates_after_funding) == (1, 1, 1)
    # The grouped version says the same, for many creators at once.
    many = track_records([creator, other])
    assert many[creator.id] == record and many[other.id] == theirs


def test_a_newcomer_has_an_empty_record(app, frozen_clock):
    newcomer = make_user()
    record = track_record(newcomer)
    assert (record.launched, record.funded, record.unfunded, record.canceled, record.updates_after_funding) == (0, 0, 0, 0, 0)
    assert record.success_rate is None and record.account_age() == timedelta(0)
    assert track_records([newcomer])[newcomer.id] == record and track_records([]) == {}


def test_one_statement_for_one_creator_two_for_many(history):
    creator, other, _built = history
    assert creator.created_at and other.created_at  # loaded: what is counted is the record's own work
    with counting() as statements:
        track_record(creator)
    assert len(statements) == 1
    with counting() as statements:
        track_records([creator, other])
    assert len(statements) == 2


def _record_text(page: str) -> str:
    match = re.search(r'<div class="track-record.*?</ul>', page, re.S)
    assert match, "no track record on the page"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(0)))


def test_the_campaign_page_shows_the_record_and_links_to_the_profile(history, client):
    creator, _other, built = history
    page = client.get(f"/campaigns/{built['live'][0].slug}").get_data(as_text=True)
    text = _record_text(page)
    for expected in ("8 campaigns launched", "2 live now", "2 funded", "3 not funded", "1 canceled", "3 updates posted after funding",
                     "Member for"):
        assert expected in text, (expected, text)
    assert f'href="/creators/{creator.id}"' in page


def test_the_public_profile_lists_public_campaigns_only(history, client):
    creator, _other, built = history
    response = client.get(f"/creators/{creator.id}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Cleo Creator" in page and "8 campaigns launched" in _record_text(page)
    shown = set(re.findall(r'<a class="stretched-link[^"]*" href="/campaigns/([^"/?]+)"', page))
    public = {c.slug for key in ("live", "successful", "unsuccessful") for c in built[key]} | {built["canceled"].slug}
    assert shown == public
    for state in ("draft", "submitted", "changes_requested", "approved", "rejected", "suspended"):
        assert built[state].slug not in page


def test_no_profile_without_a_public_campaign(app, client, frozen_clock):
    backer = make_user("backer@example.com", name="Bea Backer")
    make_campaign(backer, "draft")
    assert client.get(f"/creators/{backer.id}").status_code == 404  # backers are not listed by id
    assert client.get("/creators/999999").status_code == 404
    assert client.get("/creators/99999999999999999999").status_code == 404
    login(client, "backer@example.com")
    assert client.get(f"/creators/{backer.id}").status_code == 200  # their own, empty


def test_the_profile_escapes_names(app, client, frozen_clock):
    creator = make_user(name="<script>alert(1)</script>")
    make_campaign(creator, "live", title="Plain title")
    page = client.get(f"/creators/{creator.id}").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
