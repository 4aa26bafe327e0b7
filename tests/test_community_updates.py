"""Campaign updates: who may post and read them, backers-only visibility, the sanitiser, the page
cache, and the mail fan-out through the outbox (5,000 backers, batched, idempotent, resumable)."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select

from app import caching, clock
from app.accounts.models import User
from app.campaigns.models import Campaign
from app.community import services
from app.community.models import CampaignUpdate
from app.extensions import db
from app.notifications.models import OutboxMessage
from app.pledges.models import Pledge
from tests.community_helpers import back, client_for, dangerous_markup, make_world, outbox
from tests.factories import make_campaign, make_user

XSS_TITLE = '<script>alert("t")</script><img src=x onerror=alert(1)>'
XSS_BODY = ('<script>alert("b")</script>\n\n<img src=x onerror=alert(2)>\n\n[click](javascript:alert(3)) '
            '[ok](https://example.com) <a href="javascript:alert(4)">a</a>')


@pytest.fixture
def world(app):
    return make_world()



def _post(client, campaign, **data):
    form = {"title": "Tooling done", "body": "The **molds** are ready.", **data}
    return client.post(f"/campaigns/{campaign.slug}/updates/new", data=form)


def _updates() -> list[CampaignUpdate]:
    return list(db.session.scalars(select(CampaignUpdate).order_by(CampaignUpdate.id)).all())


# --- who may post ----------------------------------------------------------------------------

def test_the_creator_posts_an_update_and_the_request_queues_no_mail(app, world):
    client = client_for(app, "creator@example.com")
    before = db.session.scalar(select(Campaign.updated_at).where(Campaign.id == world.id))
    clock.advance(timedelta(seconds=5))
    response = _post(client, world)
    assert response.status_code == 302
    (item,) = _updates()
    assert response.headers["Location"].endswith(f"/campaigns/{world.slug}/updates/{item.id}")
    assert item.title == "Tooling done" and not item.backers_only and item.fanned_out_at is None
    assert outbox("community_update") == []  # the worker sends them, not the request
    assert db.session.scalar(select(Campaign.updated_at).where(Campaign.id == world.id)) > before
    page = client.get(f"/campaigns/{world.slug}").get_data(as_text=True)
    assert "Tooling done" in page and 'updates-count">1<' in page
    shown = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "<strong>molds</strong>" in shown


@pytest.mark.parametrize("who, expected", [(None, "login"), ("member@example.com", 403), ("backer@example.com", 403),
                                           ("mod@example.com", 403)])
def test_only_the_creator_posts_updates(app, world, who, expected):
    response = _post(client_for(app, who), world)
    if expected == "login":
        assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    else:
        assert response.status_code == expected
    assert _updates() == []


@pytest.mark.parametrize("state, allowed", [("draft", False), ("submitted", False), ("approved", False), ("live", True),
                                            ("successful", True), ("unsuccessful", True), ("canceled", False),
                                            ("suspended", False)])
def test_updates_are_for_live_and_decided_campaigns(app, state, allowed):
    creator = make_user("creator@example.com")
    campaign = make_campaign(creator, state)
    response = _post(client_for(app, "creator@example.com"), campaign)
    assert response.status_code == 302
    assert len(_updates()) == (1 if allowed else 0)


def test_a_bad_update_form_keeps_what_was_typed(app, world):
    client = client_for(app, "creator@example.com")
    response = _post(client, world, title="", body="Kept *body* text")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Give the update a title." in page and "Kept *body* text" in page
    response = _post(client, world, title="T" * 121)
    assert response.status_code == 422 and _updates() == []


def test_the_creator_edits_an_update_and_nobody_else(app, world):
    item = services.post_update(world, world.creator, "First", "Body", False)
    path = f"/campaigns/{world.slug}/updates/{item.id}/edit"
    for who in ("member@example.com", "backer@example.com", "mod@example.com"):
        assert client_for(app, who).post(path, data={"title": "Hacked", "body": "x"}).status_code == 403
    client = client_for(app, "creator@example.com")
    assert client.get(path).status_code == 200
    assert client.post(path, data={"title": "Second", "body": "New body", "backers_only": "y"}).status_code == 302
    db.session.refresh(item)
    assert (item.title, item.body, item.backers_only) == ("Second", "New body", True) and item.edited_at


def test_an_update_of_another_campaign_is_not_found(app, world):
    other = make_campaign(make_user(), "live")
    item = services.post_update(other, other.creator, "Theirs", "Body", False)
    assert client_for(app).get(f"/campaigns/{world.slug}/updates/{item.id}").status_code == 404
    assert client_for(app, "creator@example.com").post(f"/campaigns/{world.slug}/updates/{item.id}/edit",
                                                     data={"title": "x", "body": "y"}).status_code == 404


def test_updates_of_a_draft_are_not_found(app):
    creator = make_user("creator@example.com")
    draft = make_campaign(creator, "draft")
    item = CampaignUpdate(campaign_id=draft.id, author_id=creator.id, title="Secret", body="Body")
    db.session.add(item)
    db.session.commit()
    assert client_for(app).get(f"/campaigns/{draft.slug}/updates").status_code == 404
    assert client_for(app, "creator@example.com").get(f"/campaigns/{draft.slug}/updates/{item.id}").status_code == 200


# --- who may read ----------------------------------------------------------------------------

@pytest.mark.parametrize("who, state, reads", [
    (None, None, False), ("member@example.com", None, False), ("creator@example.com", None, True),
    ("mod@example.com", None, True), ("backer@example.com", None, True),
    ("late@example.com", "collected", True), ("late@example.com", "canceled", False),
    ("late@example.com", "released", False), ("late@example.com", "pending", False),
])
def test_backers_only_updates(app, world, who, state, reads):
    if state:
        back(world, make_user("late@example.com"), state=state)
    services.post_update(world, world.creator, "Secret plans", "The **zanzibar** recipe.", True)
    services.post_update(world, world.creator, "Public news", "Everyone may read this.", False)
    item = _updates()[0]
    client = client_for(app, who)
    for path in (f"/campaigns/{world.slug}", f"/campaigns/{world.slug}/updates", f"/campaigns/{world.slug}/updates/{item.id}"):
        page = client.get(path).get_data(as_text=True)
        assert "Secret plans" in page and "For backers only" in page, path
        assert ("zanzibar" in page) is reads, path
        assert ("This update is for backers only" in page) is not reads, path
    listing = client.get(f"/campaigns/{world.slug}/updates").get_data(as_text=True)
    assert "Everyone may read this." in listing
    assert listing.index("Public news") < listing.index("Secret plans")  # newest first


def test_the_campaign_page_lists_the_newest_updates_and_links_to_all(app, world):
    for n in range(services.UPDATES_ON_PAGE + 3):
        services.post_update(world, world.creator, f"Update number {n:02d}", "Body", False)
        clock.advance(timedelta(minutes=1))
    page = client_for(app).get(f"/campaigns/{world.slug}").get_data(as_text=True)
    assert f'updates-count">{services.UPDATES_ON_PAGE + 3}<' in page
    assert "Update number 12" in page and "Update number 02" not in page
    assert "See all 13 updates" in page
    listing = client_for(app).get(f"/campaigns/{world.slug}/updates").get_data(as_text=True)
    assert all(f"Update number {n:02d}" in listing for n in range(13))


def test_xss_in_updates_is_escaped_or_dropped(app, world):
    client = client_for(app, "creator@example.com")
    assert _post(client, world, title=XSS_TITLE, body=XSS_BODY).status_code == 302
    item = _updates()[0]
    for viewer in (client, client_for(app, "backer@example.com"), client_for(app)):
        for path in (f"/campaigns/{world.slug}", f"/campaigns/{world.slug}/updates", f"/campaigns/{world.slug}/updates/{item.id}"):
            page = viewer.get(path).get_data(as_text=True)
            assert dangerous_markup(page) == [], path
            assert "&lt;script&gt;" in page  # the title, shown as text
    body = client_for(app, "backer@example.com").get(f"/campaigns/{world.slug}/updates/{item.id}").get_data(as_text=True)
    assert '<a href="https://example.com" rel="nofollow noopener ugc">ok</a>' in body


def test_the_visitor_page_cache_follows_updates(app, world, make_app):
    caching.clear()
    cached = make_app(PUBLIC_PAGE_CACHE_SECONDS=60)
    visitor = cached.test_client()
    with cached.app_context():
        assert "No updates yet." in visitor.get(f"/campaigns/{world.slug}").get_data(as_text=True)
    clock.advance(timedelta(seconds=1))
    try:
        services.post_update(world, world.creator, "Fresh news", "Body", False)
        with cached.app_context():
            assert "Fresh news" in visitor.get(f"/campaigns/{world.slug}").get_data(as_text=True)
    finally:
        caching.clear()


# --- the mail fan-out ------------------------------------------------------------------------

def _bulk_backers(campaign, count: int, *, state: str = "active", opted_out_every: int = 0, start: int = 0) -> None:
    """`count` backers with pledges in `state`, inserted in two statements (the services would take minutes)."""
    now = clock.utcnow()
    db.session.execute(insert(User), [
        {"email": f"bulk{start + n}@example.com", "display_name": f"Bulk {start + n}", "password_hash": "x",
         "created_at": now, "password_changed_at": now,
         "email_updates": not (opted_out_every and n % opted_out_every == 0)}
        for n in range(count)
    ])
    ids = db.session.scalars(select(User.id).where(User.email.like("bulk%@example.com")).order_by(User.id)).all()[start:start + count]
    db.session.execute(insert(Pledge), [
        {"campaign_id": campaign.id, "backer_id": user_id, "amount": 1000, "currency": campaign.currency, "state": state,
         "created_at": now, "updated_at": now}
        for user_id in ids
    ])
    db.session.commit()


def test_an_update_to_five_thousand_backers_fans_out_in_batches(app, world):
    _bulk_backers(world, 5_000, opted_out_every=50)  # 100 of them turned update emails off
    _bulk_backers(world, 300, state="released", start=5_000)  # not backers any more
    other = make_campaign(make_user(), "live")
    back(other, make_user("elsewhere@example.com"))
    client = client_for(app, "creator@example.com")
    mail_before = db.session.scalar(select(func.count()).select_from(OutboxMessage))
    started = time.perf_counter()
    response = _post(client, world, title="Big news")
    elapsed = time.perf_counter() - started
    assert response.status_code == 302
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == mail_before  # the request wrote none
    assert elapsed < 1.0, elapsed

    batches = []
    while queued := services.fan_out_updates(batch=1_000, max_batches=1):  # one batch, one commit
        batches.append(queued)
    assert sum(batches) == 4_900 + 1  # 5,000 minus 100 opted out, plus Ben
    assert batches[:4] == [1_000] * 4 and len(batches) == 5
    rows = db.session.execute(select(OutboxMessage.recipient, func.count()).where(OutboxMessage.kind == "community_update")
                              .group_by(OutboxMessage.recipient)).all()
    assert len(rows) == 4_901 and all(count == 1 for _recipient, count in rows)
    recipients = {r for r, _c in rows}
    assert "backer@example.com" in recipients and "elsewhere@example.com" not in recipients
    assert "bulk0@example.com" not in recipients and "bulk5000@example.com" not in recipients
    item = _updates()[0]
    assert item.fanned_out_at is not None
    assert services.fan_out_updates(batch=1_000) == 0  # run again: nothing more
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.kind == "community_update")) == 4_901


def test_a_fan_out_killed_midway_resumes_without_duplicates(app, world, monkeypatch):
    _bulk_backers(world, 250)
    services.post_update(world, world.creator, "Resumable", "Body", True)
    real = services.queue_mail
    calls = {"n": 0}

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 130:  # in the third batch of 50
            raise RuntimeError("worker killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "queue_mail", dying)
    with pytest.raises(RuntimeError):
        services.fan_out_updates(batch=50)
    assert len(outbox("community_update")) == 100  # two whole batches; the third rolled back
    assert _updates()[0].fanned_out_at is None
    monkeypatch.setattr(services, "queue_mail", real)
    assert services.fan_out_updates(batch=50) == 151
    mails = outbox("community_update")
    assert len(mails) == 251 and len({m.recipient for m in mails}) == 251
    assert "Resumable" in mails[0].subject and f"/campaigns/{world.slug}/updates/" in mails[0].body


def test_the_worker_and_the_command_fan_out(app, world, runner):
    campaign_id = world.id
    services.post_update(world, world.creator, "From the worker", "Body", False)
    result = runner.invoke(args=["worker", "--passes", "1", "--interval", "1"])
    assert result.exit_code == 0, result.output
    (mail,) = outbox("community_update")
    assert mail.recipient == "backer@example.com" and mail.sent_at is not None
    campaign = db.session.get(Campaign, campaign_id)  # the worker ended the session
    services.post_update(campaign, campaign.creator, "From the command", "Body", False)
    result = runner.invoke(args=["community", "fan-out", "--batch", "10"])
    assert result.exit_code == 0 and "1 update emails queued" in result.output


def test_backers_who_turned_update_mail_off_get_none(app, world):
    quiet = back(world, make_user("quiet@example.com"))
    quiet.email_updates = False
    db.session.commit()
    services.post_update(world, world.creator, "News", "Body", False)
    services.fan_out_updates()
    assert [m.recipient for m in outbox("community_update")] == ["backer@example.com"]
