"""The public page cache: visitors get cached pages until the data behind them changes."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, text

from app import caching, clock
from app.campaigns import services as campaigns
from app.extensions import db
from tests.factories import login, make_campaign, make_user


@pytest.fixture
def cached_app(make_app):
    caching.clear()
    new = make_app(PUBLIC_PAGE_CACHE_SECONDS=60)
    yield new
    caching.clear()


def _statements(client, path: str) -> tuple[int, str]:
    count = 0

    def tick(*_args):
        nonlocal count
        count += 1

    event.listen(db.engine, "before_cursor_execute", tick)
    try:
        body = client.get(path).get_data(as_text=True)
    finally:
        event.remove(db.engine, "before_cursor_execute", tick)
    return count, body


@pytest.mark.parametrize("path", ["/", "/campaigns?sort=funded", "/campaigns/CAMPAIGN"])
def test_a_visitor_gets_the_cached_page_until_the_data_changes(app, cached_app, path):
    creator = make_user("creator@example.com")
    campaign = make_campaign(creator, "live", title="Cached Lantern")
    path = path.replace("CAMPAIGN", campaign.slug)
    visitor = cached_app.test_client()
    with cached_app.app_context():
        first, page = _statements(visitor, path)
        second, again = _statements(visitor, path)
    assert "Cached Lantern" in page and again == page
    assert second == 1 < first  # only the version is read
    campaigns.update_content(campaign, creator, campaigns.CampaignInput(
        "Renamed Lantern", campaign.blurb, campaign.category, campaign.goal, campaign.currency,
        campaign.duration_days, campaign.story, campaign.risks))
    with cached_app.app_context():
        _count, changed = _statements(visitor, path)
    assert "Renamed Lantern" in changed


def test_members_and_flashes_are_never_cached(app, cached_app):
    creator = make_user("creator@example.com")
    make_campaign(creator, "live", title="Member Lantern")
    member = cached_app.test_client()
    with cached_app.app_context():
        make_user("m@example.com", name="Mina")
        login(member, "m@example.com")
        page = member.get("/").get_data(as_text=True)
        assert "Mina" in page  # the member's own navigation, not a visitor's cached page
        visitor = cached_app.test_client()
        assert "Mina" not in visitor.get("/").get_data(as_text=True)
        member.post("/auth/logout")
        assert "You are logged out." in member.get("/").get_data(as_text=True)
        assert "You are logged out." not in visitor.get("/").get_data(as_text=True)


def test_the_version_is_read_once_a_window_and_again_after_a_local_commit(app, make_app):
    caching.clear()
    cached_app = make_app(PUBLIC_PAGE_CACHE_SECONDS=60, PUBLIC_PAGE_VERSION_SECONDS=60)
    creator = make_user("creator@example.com")
    campaign = make_campaign(creator, "live", title="Quiet Lantern")
    visitor = cached_app.test_client()
    with cached_app.app_context():
        _statements(visitor, "/")
        hit, page = _statements(visitor, "/")
        assert hit == 0 and "Quiet Lantern" in page  # a hit inside the window asks the database nothing
        # Another process changes a campaign: this one does not see it inside its window ...
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE campaigns SET title = 'Elsewhere Lantern', updated_at = :t WHERE id = :id"),
                         {"t": clock.utcnow() + timedelta(seconds=1), "id": campaign.id})
        assert "Quiet Lantern" in _statements(visitor, "/")[1]
        # ... but a commit made by this process is seen at once.
        campaigns.set_featured(db.session.get(type(campaign), campaign.id), make_user("mod@example.com", moderator=True), True)
        db.session.commit()
        assert "Elsewhere Lantern" in _statements(visitor, "/")[1]
    caching.clear()
