"""Email preferences and the one-click unsubscribe link (issue 8): every mail to a member carries the
link and RFC 8058 headers, is written in their language, and optional mail they turned off is not
queued; the link works without logging in, its confirm POST needs CSRF, the one-click POST does not."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app import money
from app.accounts.models import User
from app.extensions import db
from app.notifications import services as mail
from app.notifications.models import OutboxMessage
from tests.factories import csrf_token, login, make_campaign, make_user


def _user(email: str) -> User:
    return db.session.scalar(select(User).where(User.email == email))


def _last(kind: str | None = None) -> OutboxMessage:
    query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(1)
    if kind:
        query = query.where(OutboxMessage.kind == kind)
    return db.session.scalar(query)


def _link(message: OutboxMessage) -> str:
    match = re.search(r"http://localhost(/auth/unsubscribe/[^\s]+)", message.body)
    assert match, message.body
    return match.group(1)


# --- what the mail carries -------------------------------------------------------------------

def test_mail_to_a_member_has_the_unsubscribe_footer_and_headers(app):
    user = make_user("reader@example.com", name="Rita Reader")
    welcome = _last("welcome")
    assert welcome.recipient == "reader@example.com"
    path = _link(welcome)
    assert welcome.headers == {"List-Unsubscribe": f"<http://localhost{path}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    assert "always sent" in welcome.body  # a transactional mail: the link leads to the settings
    assert mail.read_unsubscribe_token(path.rsplit("/", 1)[1]) == (user.id, "all")
    # An optional one names its category.
    message = mail.queue_mail(user, "News", "welcome", category="updates", user=user)
    db.session.commit()
    assert "Stop emails about campaign updates with one click" in message.body
    assert mail.read_unsubscribe_token(_link(message).rsplit("/", 1)[1]) == (user.id, "updates")


def test_mail_to_a_bare_address_is_unchanged(app):
    user = make_user()
    message = mail.queue_mail("someone@example.com", "Hello", "welcome", user=user)
    db.session.commit()
    assert message.headers is None and "/auth/unsubscribe/" not in message.body and message.recipient == "someone@example.com"


def test_optional_mail_is_not_queued_once_turned_off(app):
    user = make_user()
    user.email_updates = False
    db.session.commit()
    assert mail.queue_mail(user, "News", "welcome", category="updates", user=user) is None
    assert mail.queue_mail(user, "Reply", "welcome", category="replies", user=user) is not None
    # Templates of optional mail know their category (callers need not say it).
    assert mail.TEMPLATE_CATEGORIES == {"community_update": "updates", "comment_reply": "replies", "survey_reminder": "updates",
                                        "campaign_reminder": "reminders", "new_backer": "backers", "backer_digest": "backers",
                                        "moderation_submitted": "moderation", "moderation_report": "moderation"}
    assert mail.queue_mail(user, "News", "community_update") is None
    # Transactional mail always goes.
    assert mail.queue_mail(user, "Your password was changed", "password_changed", user=user) is not None
    with pytest.raises(ValueError):
        mail.queue_mail(user, "?", "welcome", category="marketing", user=user)


def test_mail_is_written_in_the_members_language(app):
    creator = make_user("fr@example.com")
    campaign = make_campaign(creator, "live")
    creator.locale = "fr"
    db.session.commit()
    message = mail.queue_mail(creator, "x", "campaign_decided_creator", campaign=campaign, funded=True, total=123456, backers=3)
    assert money.format_money(123456, "USD", "fr") in message.body
    creator.locale = None  # automatic: outside the member's own request, the default language
    message = mail.queue_mail(creator, "x", "campaign_decided_creator", campaign=campaign, funded=True, total=123456, backers=3)
    assert "$1,234.56" in message.body
    db.session.rollback()


def test_the_logged_mail_shows_the_headers(app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_LOG_FILE", str(tmp_path / "mail.log"))
    make_user("reader@example.com")
    mail.deliver_pending()
    text = (tmp_path / "mail.log").read_text()
    assert "List-Unsubscribe: <http://localhost/auth/unsubscribe/" in text and "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in text


def test_flows_mail_the_member_object(app, client):
    """The callers pass the User: the password mail and the decision mail carry the link."""
    user = make_user("reader@example.com")
    login(client, "reader@example.com")
    client.post("/auth/profile", data={"password-current_password": "correct horse battery", "password-new_password": "a brand new one",
                                       "password-confirm": "a brand new one", "password-submit": "1"})
    assert _last("password_changed").headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    make_campaign(user, "approved")
    decision = _last("campaign_decision")
    assert decision.recipient == "reader@example.com" and decision.headers and "/auth/unsubscribe/" in decision.body
    assert decision.subject.startswith("Your campaign “")


# --- the settings page -----------------------------------------------------------------------

def test_the_settings_page(app, client):
    make_user("reader@example.com")
    login(client, "reader@example.com")
    page = client.get("/auth/notifications").get_data(as_text=True)
    # updates, replies, saved-campaign reminders, and "Each new backer" of the three new-backer choices
    assert page.count('checked') == 4 and "always sent" in page and "Updates from campaigns I back" in page
    assert 'href="/auth/notifications"' in client.get("/auth/profile").get_data(as_text=True)
    response = client.post("/auth/notifications", data={"email_replies": "y"})
    assert response.status_code == 302
    user = _user("reader@example.com")
    assert (user.email_updates, user.email_replies) == (False, True)
    page = client.get("/auth/notifications").get_data(as_text=True)
    assert "Your email settings are saved." in page and page.count("checked") == 2  # replies, and "Each new backer"


# --- the unsubscribe link --------------------------------------------------------------------

def test_the_link_asks_before_unsubscribing_and_its_button_needs_csrf(app, make_app):
    strict = make_app(WTF_CSRF_ENABLED=True)
    user = make_user("reader@example.com")
    path = f"/auth/unsubscribe/{mail.unsubscribe_token(user.id, 'updates')}"
    client = strict.test_client()  # not logged in
    page = client.get(path).get_data(as_text=True)
    assert "Stop sending reader@example.com emails about updates from campaigns you back?" in page
    assert _user("reader@example.com").email_updates  # a GET (a mail scanner following links) changes nothing
    assert client.post(path, data={}).status_code == 400  # the confirm button without its token
    assert _user("reader@example.com").email_updates
    response = client.post(path, data={"csrf_token": csrf_token(client, path)})
    assert response.status_code == 302
    user = _user("reader@example.com")
    assert (user.email_updates, user.email_replies) == (False, True)
    page = client.get(path).get_data(as_text=True)
    assert "no longer gets emails about updates" in page and "Done:" in page


@pytest.mark.parametrize("category, expected", [("updates", (False, True)), ("replies", (True, False)), ("all", (False, False))])
def test_one_click_post_needs_no_csrf_and_no_login(app, make_app, category, expected):
    strict = make_app(WTF_CSRF_ENABLED=True)
    user = make_user("reader@example.com")
    path = f"/auth/unsubscribe/{mail.unsubscribe_token(user.id, category)}"
    # What a mail client sends (RFC 8058): a POST with this one field, no cookie, no token.
    response = strict.test_client().post(path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and response.mimetype == "text/plain"
    user = _user("reader@example.com")
    assert (user.email_updates, user.email_replies) == expected


def test_a_transactional_mails_link_shows_the_settings(app):
    user = make_user("reader@example.com")
    path = _link(_last("welcome"))
    client = app.test_client()
    page = client.get(path).get_data(as_text=True)
    assert "always sent" in page and page.count("checked") == 4
    assert client.post(path, data={"email_updates": "y"}).status_code == 302
    user = _user("reader@example.com")
    assert (user.email_updates, user.email_replies) == (True, False)


@pytest.mark.parametrize("token", ["not-a-token", "x" * 600, "eyJ1IjoxLCJjIjoidXBkYXRlcyJ9.forged"])
def test_bad_tokens_are_refused(app, token):
    make_user()
    client = app.test_client()
    assert client.get(f"/auth/unsubscribe/{token}").status_code == 404
    assert client.post(f"/auth/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"}).status_code == 404
    assert all(u.email_updates and u.email_replies for u in db.session.scalars(select(User)))


def test_tokens_of_other_kinds_or_deleted_members_do_not_work(app):
    from app.accounts import services as accounts

    user = make_user("reader@example.com")
    client = app.test_client()
    assert client.get(f"/auth/unsubscribe/{accounts.reset_token(user)}").status_code == 404  # another salt
    assert client.get(f"/auth/unsubscribe/{mail.unsubscribe_token(999999, 'updates')}").status_code == 404
    assert mail.read_unsubscribe_token(mail._serializer().dumps({"u": True, "c": "updates"})) is None
    assert mail.read_unsubscribe_token(mail._serializer().dumps({"u": user.id, "c": "marketing"})) is None
