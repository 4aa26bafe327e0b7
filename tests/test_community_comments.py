"""Comments: who may comment, reply depth, the creator's mark, deleting, hiding, reply mail, the
rate limit, escaping, and a campaign page that stays cheap with thousands of comments."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from app import clock
from app.community import services
from app.community.models import Comment
from app.extensions import db
from tests.community_helpers import back, client_for, counting, dangerous_markup, make_world, outbox
from tests.factories import login, make_campaign, make_user

XSS = '<script>alert("c")</script><img src=x onerror=alert(1)> <a href="javascript:alert(2)">x</a> javascript:alert(3)'


@pytest.fixture
def world(app):
    return make_world(("second@example.com", "Second Sue"))



def _comment(client, campaign, body="Looks great!", parent=None):
    data = {"body": body}
    if parent is not None:
        data["parent_id"] = str(parent)
    return client.post(f"/campaigns/{campaign.slug}/comments", data=data)


def _comments() -> list[Comment]:
    return list(db.session.scalars(select(Comment).order_by(Comment.id)).all())


def _page(client, campaign) -> str:
    return client.get(f"/campaigns/{campaign.slug}").get_data(as_text=True)


# --- who may comment -------------------------------------------------------------------------

@pytest.mark.parametrize("who, expected", [
    (None, "login"), ("member@example.com", 403), ("mod@example.com", 403),
    ("backer@example.com", 302), ("creator@example.com", 302), ("collected@example.com", 302),
    ("canceled@example.com", 403), ("released@example.com", 403),
])
def test_backers_and_the_creator_comment(app, world, who, expected):
    for state in ("collected", "canceled", "released"):
        back(world, make_user(f"{state}@example.com"), state=state)
    response = _comment(client_for(app, who), world)
    if expected == "login":
        assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    else:
        assert response.status_code == expected
    assert len(_comments()) == (1 if expected == 302 else 0)


@pytest.mark.parametrize("state, open_", [("successful", True), ("unsuccessful", True), ("canceled", False), ("suspended", False)])
def test_comments_on_ended_campaigns(app, state, open_):
    creator = make_user("creator@example.com")
    campaign = make_campaign(creator, state)
    response = _comment(client_for(app, "creator@example.com"), campaign)
    assert response.status_code == 302 and len(_comments()) == (1 if open_ else 0)


def test_a_draft_has_no_comments_for_anyone_else(app):
    creator = make_user("creator@example.com")
    draft = make_campaign(creator, "draft")
    assert _comment(client_for(app, "creator@example.com"), draft).status_code == 302  # told it is not open yet
    make_user("member@example.com")
    assert _comment(client_for(app, "member@example.com"), draft).status_code == 404
    assert client_for(app).get(f"/campaigns/{draft.slug}/comments").status_code == 404
    assert _comments() == []


def test_visitors_read_comments_and_the_creator_is_marked(app, world):
    assert _comment(client_for(app, "backer@example.com"), world, "When does it ship?").status_code == 302
    assert _comment(client_for(app, "creator@example.com"), world, "In March.").status_code == 302
    page = _page(client_for(app), world)
    assert "When does it ship?" in page and "In March." in page
    assert page.count('class="badge text-bg-primary creator-badge"') == 1
    cora = page.index("Creator Cora</strong>")
    assert page.index("creator-badge", cora) < page.index("Backer Ben</strong>")  # the creator's (newest) comment first
    assert 'comments-count">2<' in page
    assert "login-to-comment" in page and 'class="mb-3 comment-form"' not in page
    assert 'class="mb-3 comment-form"' in _page(client_for(app, "backer@example.com"), world)
    assert "Only backers and the creator can comment." in _page(client_for(app, "member@example.com"), world)


def test_a_bad_comment_is_refused_next_to_the_field(app, world):
    client = client_for(app, "backer@example.com")
    response = _comment(client, world, "   ")
    assert response.status_code == 422 and "Write something first." in response.get_data(as_text=True)
    response = _comment(client, world, "x" * 5001)
    assert response.status_code == 422 and _comments() == []
    response = _comment(client, world, "Kept text", parent="abc")
    assert response.status_code == 422 and "Kept text" in response.get_data(as_text=True)


# --- replies ---------------------------------------------------------------------------------

def test_replies_are_one_level_deep(app, world):
    ben, cora, sue = (client_for(app, e) for e in ("backer@example.com", "creator@example.com", "second@example.com"))
    _comment(ben, world, "Top")
    top = _comments()[0]
    assert _comment(cora, world, "Reply", parent=top.id).status_code == 302
    reply = _comments()[1]
    assert reply.parent_id == top.id
    assert _comment(sue, world, "Reply to the reply", parent=reply.id).status_code == 302
    deeper = _comments()[2]
    assert deeper.parent_id == top.id  # joins the thread, never deeper
    page = _page(client_for(app), world)
    assert page.count("comment-reply") == 2
    assert page.index("Top") < page.index("Reply</p>") < page.index("Reply to the reply")


def test_a_reply_to_a_comment_of_another_campaign_is_not_found(app, world):
    other = make_campaign(make_user("other@example.com"), "live")
    services.add_comment(other, other.creator, "Elsewhere")
    theirs = _comments()[0]
    assert _comment(client_for(app, "backer@example.com"), world, "Sneaky", parent=theirs.id).status_code == 404
    assert _comment(client_for(app, "backer@example.com"), world, "Nothing there", parent=99999).status_code == 404
    assert len(_comments()) == 1


def test_the_author_of_a_thread_gets_mail_for_replies_by_others(app, world):
    ben, cora = client_for(app, "backer@example.com"), client_for(app, "creator@example.com")
    _comment(ben, world, "Top")
    top = _comments()[0]
    _comment(ben, world, "My own follow-up", parent=top.id)
    assert outbox("comment_reply") == []  # not for one's own reply
    _comment(cora, world, "Thanks <b>Ben</b>", parent=top.id)
    (mail,) = outbox("comment_reply")
    assert mail.recipient == "backer@example.com" and "Creator Cora" in mail.subject
    assert "Thanks <b>Ben</b>" in mail.body and f"#comment-{_comments()[-1].id}" in mail.body
    ben_user = _comments()[0].author
    ben_user.email_replies = False
    db.session.commit()
    _comment(cora, world, "Another", parent=top.id)
    assert len(outbox("comment_reply")) == 1  # he turned reply mail off


# --- deleting and hiding ---------------------------------------------------------------------

def test_authors_delete_their_own_comments_and_replies_stay(app, world):
    ben, sue = client_for(app, "backer@example.com"), client_for(app, "second@example.com")
    _comment(ben, world, "Regrettable words")
    top = _comments()[0]
    _comment(sue, world, "A fair reply", parent=top.id)
    path = f"/campaigns/{world.slug}/comments/{top.id}/delete"
    for who in ("second@example.com", "creator@example.com", "mod@example.com", "member@example.com"):
        assert client_for(app, who).post(path).status_code == 403
    assert client_for(app).post(path).status_code == 302  # to the login page
    assert _comments()[0].deleted_at is None
    assert ben.post(path).status_code == 302
    page = _page(client_for(app), world)
    assert "Regrettable words" not in page and "Comment deleted." in page and "A fair reply" in page
    assert 'comments-count">1<' in page
    other = make_campaign(make_user(), "live")
    assert ben.post(f"/campaigns/{other.slug}/comments/{top.id}/delete").status_code == 404


def test_moderators_hide_comments_with_a_note(app, world):
    ben = client_for(app, "backer@example.com")
    _comment(ben, world, "Buy cheap watches at spam.example")
    target = _comments()[0]
    path = f"/campaigns/{world.slug}/comments/{target.id}/hide"
    for who in ("backer@example.com", "creator@example.com", "member@example.com"):
        assert client_for(app, who).post(path, data={"note": "no"}).status_code == 403
        assert client_for(app, who).get(path).status_code == 403
    mod = client_for(app, "mod@example.com")
    assert mod.get(path).status_code == 200
    response = mod.post(path, data={"note": ""})
    assert response.status_code == 422 and "Write a note" in response.get_data(as_text=True)
    assert mod.post(path, data={"note": "Advertising is not allowed."}).status_code == 302
    db.session.refresh(target)
    assert target.hidden_at and target.hidden_note == "Advertising is not allowed."
    for who, sees_why in ((None, False), ("member@example.com", False), ("creator@example.com", False),
                          ("backer@example.com", True), ("mod@example.com", True)):
        page = _page(client_for(app, who), world)
        assert "Hidden by a moderator." in page
        assert ("Advertising is not allowed." in page) is sees_why, who
        assert ("spam.example" in page) is sees_why, who
    other = make_campaign(make_user(), "live")
    assert mod.post(f"/campaigns/{other.slug}/comments/{target.id}/hide", data={"note": "x"}).status_code == 404


def test_comment_text_and_notes_are_escaped(app, world):
    ben = client_for(app, "backer@example.com")
    assert _comment(ben, world, XSS).status_code == 302
    target = _comments()[0]
    assert _comment(client_for(app, "creator@example.com"), world, XSS, parent=target.id).status_code == 302
    _comment(ben, world, "second")
    hidden = _comments()[-1]
    client_for(app, "mod@example.com").post(f"/campaigns/{world.slug}/comments/{hidden.id}/hide", data={"note": XSS})
    for who in (None, "backer@example.com", "mod@example.com"):
        for path in (f"/campaigns/{world.slug}", f"/campaigns/{world.slug}/comments",
                     f"/campaigns/{world.slug}/comments/{target.id}/hide"):
            response = client_for(app, who).get(path)
            page = response.get_data(as_text=True)
            assert dangerous_markup(page) == [], (who, path)
        assert "&lt;script&gt;alert" in _page(client_for(app, who), world)


# --- rate limit ------------------------------------------------------------------------------

def test_commenting_is_rate_limited(app, world, make_app):
    from app.extensions import limiter

    limited = make_app(RATELIMIT_ENABLED=True, COMMENT_RATE_LIMIT="3 per minute")
    with limited.app_context():
        limiter.reset()
        ben = limited.test_client()
        login(ben, "backer@example.com")
        codes = [_comment(ben, world, f"Comment {n}").status_code for n in range(4)]
        assert codes == [302, 302, 302, 429]
        assert ben.get(f"/campaigns/{world.slug}").status_code == 200  # reading is not limited
        sue = limited.test_client()  # another member has their own allowance
        login(sue, "second@example.com")
        assert _comment(sue, world, "Mine").status_code == 302
    assert len(_comments()) == 4


# --- many comments ---------------------------------------------------------------------------

def _bulk_comments(campaign, author, count: int, *, replies_to: int | None = None) -> None:
    now = clock.utcnow()
    db.session.execute(insert(Comment), [
        {"campaign_id": campaign.id, "author_id": author.id, "parent_id": replies_to, "body": f"Bulk comment {n}",
         "created_at": now + timedelta(seconds=n), "hidden_note": ""}
        for n in range(count)
    ])
    db.session.commit()


def test_the_page_shows_the_newest_threads_and_links_to_older_ones(app, world):
    from app.accounts.models import User

    ben = db.session.scalar(select(User).where(User.email == "backer@example.com"))
    _bulk_comments(world, ben, services.COMMENTS_PER_PAGE + 10)
    page = _page(client_for(app), world)
    assert page.count('class="comment-thread') == services.COMMENTS_PER_PAGE
    assert f"Bulk comment {services.COMMENTS_PER_PAGE + 9}<" in page and "Bulk comment 9<" not in page
    older = page[page.index('class="older-comments" href="') + 30:]
    older = older[: older.index('"')].replace("&amp;", "&")
    rest = client_for(app).get(older).get_data(as_text=True)
    assert rest.count('class="comment-thread') == 10 and "Bulk comment 0<" in rest and "older-comments" not in rest


def test_the_campaign_page_costs_the_same_with_few_or_thousands_of_comments(app, world):
    from app.accounts.models import User

    ben = db.session.scalar(select(User).where(User.email == "backer@example.com"))
    services.post_update(world, world.creator, "News", "Body", True)
    services.add_faq(world, world.creator, "Q?", "A.")
    _bulk_comments(world, ben, 3)
    first = _comments()[0]
    _bulk_comments(world, ben, 2, replies_to=first.id)

    def cost(email):
        client = client_for(app, email)
        client.get(f"/campaigns/{world.slug}")
        with counting() as statements:
            assert client.get(f"/campaigns/{world.slug}").status_code == 200
        return len(statements)

    small = {who: cost(who) for who in (None, "backer@example.com", "creator@example.com", "mod@example.com")}
    sue = db.session.scalar(select(User).where(User.email == "second@example.com"))
    _bulk_comments(world, sue, 3_000)
    for top in _comments()[-60:]:
        _bulk_comments(world, ben, 3, replies_to=top.id)
    for n in range(15):
        services.post_update(world, world.creator, f"News {n}", "Body", n % 2 == 0)
        services.add_faq(world, world.creator, f"Q{n}?", "A.")
    large = {who: cost(who) for who in small}
    assert large == small
    # The community sections add at most five statements: counts (+ viewer's rights), updates, FAQ, threads, replies.
    assert max(small.values()) <= 15, small


def test_a_bad_comment_rate_limit_setting_fails_at_start(monkeypatch):
    from config import Config, ConfigError

    monkeypatch.setenv("COMMENT_RATE_LIMIT", "lots")
    with pytest.raises(ConfigError, match="COMMENT_RATE_LIMIT"):
        Config().validate()
    monkeypatch.setenv("COMMENT_RATE_LIMIT", "5 per hour")
    config = Config()
    config.validate()
    assert config.COMMENT_RATE_LIMIT == "5 per hour"
