"""Mail about new backers to creators (each, a daily digest, or off) and about submissions and reports to
moderators — each respecting the recipient's settings, in their language, with links from BASE_URL."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app import clock
from app.campaigns import services as campaigns
from app.community import reports
from app.extensions import db
from app.notifications import services as mail
from app.pledges import backer_mail
from app.pledges.models import BackerDigest, Pledge
from tests.community_helpers import back, client_for, outbox
from tests.factories import fresh_email, login, make_campaign, make_user
from tests.test_pledges import pledge_with_card


def _backs_now(campaign, amount: int, user=None):
    """A backer whose pledge became active now (what the pledge service leaves), without Stripe."""
    user = back(campaign, user, amount=amount)
    pledge = db.session.scalar(select(Pledge).where(Pledge.backer_id == user.id, Pledge.campaign_id == campaign.id))
    pledge.activated_at = clock.utcnow()
    db.session.commit()
    return user


# --- new backers -----------------------------------------------------------------------------

def test_the_creator_is_mailed_on_each_new_backer_without_the_backers_name_or_address(app, client, localstripe):
    creator = make_user("creator@example.com", name="Cat Creator")
    campaign = make_campaign(creator, "live", title="Solar Lantern")
    email = fresh_email()
    make_user(email, name="Secret Sam")
    login(client, email)
    response, status = pledge_with_card(client, localstripe, campaign, amount="30")
    assert status == "succeeded" and response.status_code == 302
    [message] = outbox("new_backer")
    assert message.recipient == "creator@example.com"
    assert message.subject == "New backer for “Solar Lantern”"
    assert "$30.00" in message.body and email not in message.body and "Secret Sam" not in message.body
    assert f"{app.config['BASE_URL']}/me/campaigns" in message.body or app.config["BASE_URL"] in message.body
    assert "Stop emails about new backers with one click" in message.body
    assert [m.recipient for m in outbox("pledge_confirmed")] == [email]


def test_a_creator_who_chose_the_digest_or_off_gets_no_mail_per_backer(app, client, localstripe):
    creator = make_user("creator@example.com")
    creator.email_new_backers = "digest"
    db.session.commit()
    campaign = make_campaign(creator, "live")
    email = fresh_email()
    make_user(email)
    login(client, email)
    assert pledge_with_card(client, localstripe, campaign, amount="30")[1] == "succeeded"
    assert outbox("new_backer") == [] and len(outbox("pledge_confirmed")) == 1


def test_the_daily_digest_counts_and_sums_the_days_new_backers_once(app, frozen_clock):
    creator = make_user("creator@example.com", name="Cat Creator")
    creator.email_new_backers = "digest"
    other = make_user("each@example.com")  # wants a mail per backer: no digest
    db.session.commit()
    campaign = make_campaign(creator, "live", title="Solar Lantern")
    elsewhere = make_campaign(other, "live")
    for amount in (2500, 4000, 1000):
        _backs_now(campaign, amount)
    _backs_now(elsewhere, 2500)
    assert backer_mail.send_digests() == 0  # the day is not over
    clock.advance(timedelta(hours=11, minutes=59))
    assert backer_mail.send_digests() == 0
    clock.advance(timedelta(minutes=1))  # midnight UTC
    late = _backs_now(campaign, 9900)  # the next day's backer waits for the next digest
    assert backer_mail.send_digests() == 1
    [digest] = outbox("backer_digest")
    assert digest.recipient == "creator@example.com" and digest.subject == "New backers for “Solar Lantern”"
    assert "3 new backers on November 23, 2026, pledging $75.00 in all" in digest.body
    assert "@example.com" not in digest.body.split("http")[0]  # no backer's address
    assert backer_mail.send_digests() == 0  # once per campaign and day
    row = db.session.scalar(select(BackerDigest))
    assert (row.campaign_id, row.backers, row.amount) == (campaign.id, 3, 7500)
    clock.advance(timedelta(days=1))
    assert backer_mail.send_digests() == 1
    assert "1 new backer on November 24, 2026, pledging $99.00." in outbox("backer_digest")[1].body
    assert late is not None


def test_a_worker_stopped_for_a_day_still_sends_the_missed_digest(app, frozen_clock):
    creator = make_user("creator@example.com")
    creator.email_new_backers = "digest"
    db.session.commit()
    campaign = make_campaign(creator, "live")
    _backs_now(campaign, 2500)
    clock.advance(timedelta(days=1, hours=18))
    assert backer_mail.send_digests() == 1
    assert db.session.scalar(select(func.count()).select_from(BackerDigest)) == 1


def test_a_canceled_pledge_is_not_counted_and_off_means_off(app, frozen_clock):
    creator = make_user("creator@example.com")
    creator.email_new_backers = "off"
    db.session.commit()
    campaign = make_campaign(creator, "live")
    _backs_now(campaign, 2500)
    clock.advance(timedelta(days=3))
    assert backer_mail.send_digests() == 0
    creator.email_new_backers = "digest"
    db.session.commit()
    gone = _backs_now(campaign, 2500)
    db.session.execute(Pledge.__table__.update().where(Pledge.backer_id == gone.id).values(state="canceled"))
    db.session.commit()
    clock.advance(timedelta(days=1))
    assert backer_mail.send_digests() == 0


def test_the_digest_is_in_the_creators_language(app, frozen_clock):
    creator = make_user("creator@example.com")
    creator.email_new_backers, creator.locale = "digest", "zh_Hans_CN"
    db.session.commit()
    campaign = make_campaign(creator, "live", title="Solar Lantern")
    _backs_now(campaign, 2500)
    clock.advance(timedelta(days=1))
    assert backer_mail.send_digests() == 1
    message = outbox("backer_digest")[0]
    assert "New backers" not in message.subject and "Solar Lantern" in message.subject


# --- moderators ------------------------------------------------------------------------------

def _moderators():
    keen = make_user("keen-mod@example.com", moderator=True)
    quiet = make_user("quiet-mod@example.com", moderator=True)
    quiet.email_moderation = False
    db.session.commit()
    return keen, quiet


def test_moderators_who_want_it_are_mailed_on_a_submission(app):
    _moderators()
    creator = make_user("creator@example.com", name="Cat Creator", moderator=True)  # not told of their own
    campaign = make_campaign(creator, "draft", title="Solar Lantern")
    campaigns.submit(campaign, creator)
    [message] = outbox("moderation_submitted")
    assert message.recipient == "keen-mod@example.com" and message.subject == "To review: “Solar Lantern”"
    assert "Cat Creator submitted “Solar Lantern” for review." in message.body
    assert f"{app.config['BASE_URL']}/moderation/campaigns/{campaign.slug}" in message.body
    assert "Stop emails about campaigns to review and reports with one click" in message.body


def test_submitting_through_the_page_mails_the_moderators(app):
    _moderators()
    creator = make_user("creator@example.com")
    campaign = make_campaign(creator, "draft")
    client = client_for(app, "creator@example.com")
    response = client.post(f"/campaigns/{campaign.slug}/submit")
    assert response.status_code == 302
    assert [m.recipient for m in outbox("moderation_submitted")] == ["keen-mod@example.com"]


def test_moderators_are_mailed_on_a_new_report_not_on_its_changes(app):
    _moderators()
    campaign = make_campaign(make_user("creator@example.com"), "live", title="Solar Lantern")
    member = make_user("member@example.com")
    reports.report(campaign, member, "misleading", "The photos are of another lamp.")
    sent = outbox("moderation_report")
    assert "keen-mod@example.com" in [m.recipient for m in sent] and "quiet-mod@example.com" not in [m.recipient for m in sent]
    [message] = [m for m in sent if m.recipient == "keen-mod@example.com"]
    assert message.subject == "New report on “Solar Lantern”"
    assert "Misleading or false claims" in message.body and "member@example.com" not in message.body
    assert f"{app.config['BASE_URL']}/moderation/campaigns/{campaign.slug}" in message.body
    reports.report(campaign, member, "fraud", "And it is a scam.")  # the same open report, changed
    assert len(outbox("moderation_report")) == len(sent)


def test_a_report_through_the_page_mails_the_moderators_in_their_language(app):
    keen, _quiet = _moderators()
    keen.locale = "fr"
    db.session.commit()
    campaign = make_campaign(make_user("creator@example.com"), "live", title="Solar Lantern")
    make_user("member@example.com")
    client = client_for(app, "member@example.com")
    response = client.post(f"/campaigns/{campaign.slug}/report", data={"reason": "fraud", "note": "A scam."})
    assert response.status_code == 302
    [message] = [m for m in outbox("moderation_report") if m.recipient == "keen-mod@example.com"]
    assert "Bonjour" in message.body
    assert "New report" not in message.subject


# --- the settings ----------------------------------------------------------------------------

def test_the_settings_offer_the_digest_and_moderators_their_choice(app):
    make_user("creator@example.com")
    make_user("mod@example.com", moderator=True)
    client = client_for(app, "creator@example.com")
    page = client.get("/auth/notifications").get_data(as_text=True)
    for text in ("New backers of my campaigns", "Each new backer", "A daily digest", "Off"):
        assert text in page
    assert "Campaigns submitted for review and new reports (moderators)" not in page
    client.post("/auth/notifications", data={"email_new_backers": "digest", "email_moderation": "y"})
    creator = mail_user("creator@example.com")
    assert creator.email_new_backers == "digest" and creator.email_moderation is True  # not theirs to change
    assert client.post("/auth/notifications", data={"email_new_backers": "hourly"}).status_code == 422
    assert mail_user("creator@example.com").email_new_backers == "digest"
    moderator = client_for(app, "mod@example.com")
    assert "Campaigns submitted for review and new reports (moderators)" in moderator.get("/auth/notifications").get_data(as_text=True)
    moderator.post("/auth/notifications", data={"email_new_backers": "each"})
    assert mail_user("mod@example.com").email_moderation is False


@pytest.mark.parametrize("category, column, off", [("backers", "email_new_backers", "off"),
                                                   ("moderation", "email_moderation", False)])
def test_one_click_unsubscribe_from_the_new_mails(app, category, column, off):
    user = make_user("reader@example.com", moderator=True)
    path = f"/auth/unsubscribe/{mail.unsubscribe_token(user.id, category)}"
    assert app.test_client().post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert getattr(mail_user("reader@example.com"), column) == off
    assert mail_user("reader@example.com").email_updates is True


def mail_user(email: str):
    from app.accounts.models import User

    db.session.expire_all()
    return db.session.scalar(select(User).where(User.email == email))
