"""Reports to moderators (issue 8): who may report what, one open report per member, the queue's
Reported section, and the moderator's resolutions — dismiss with a note, or suspend (which releases
the pledges through the one suspension path) — with notes escaped everywhere."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from app import clock
from app.campaigns import totals
from app.campaigns.models import Campaign, CampaignEvent
from app.community import reports
from app.community.report_models import CampaignReport
from app.extensions import db
from app.notifications.models import OutboxMessage
from app.pledges.models import Pledge
from tests.factories import login, make_campaign, make_user
from tests.test_campaigns_helpers import field_block

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def people(app, frozen_clock):
    creator = make_user("creator@example.com", name="Cat Creator")
    moderator = make_user("mod@example.com", name="Mo Derator", moderator=True)
    members = [make_user(f"member{n}@example.com", name=f"Member {n}") for n in range(3)]
    clients = {}
    for user in (creator, moderator, *members):
        clients[user.email] = app.test_client()
        assert login(clients[user.email], user.email).status_code == 302
    return creator, moderator, members, clients


def _reports(campaign=None) -> list[CampaignReport]:
    query = select(CampaignReport).order_by(CampaignReport.id)
    if campaign is not None:
        query = query.where(CampaignReport.campaign_id == campaign.id)
    return list(db.session.scalars(query))


def _state(campaign) -> str:
    return db.session.scalar(select(Campaign.state).where(Campaign.id == campaign.id))


def _flashes(client) -> str:
    return client.get("/").get_data(as_text=True)


# --- members report --------------------------------------------------------------------------

def test_a_member_reports_a_live_campaign_and_a_second_report_updates_it(people):
    creator, _moderator, (member, *_rest), clients = people
    campaign = make_campaign(creator, "live", title="Solar Lantern")
    client = clients[member.email]
    page = client.get(f"/campaigns/{campaign.slug}").get_data(as_text=True)
    assert f'href="/campaigns/{campaign.slug}/report"' in page  # the link on the campaign page
    form = client.get(f"/campaigns/{campaign.slug}/report")
    assert form.status_code == 200 and "Spam or fraud" in form.get_data(as_text=True)
    response = client.post(f"/campaigns/{campaign.slug}/report", data={"reason": "fraud", "note": "The photos are stolen."})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/campaigns/{campaign.slug}")
    assert "A moderator will look at this campaign." in _flashes(client)
    [row] = _reports()
    assert (row.reporter_id, row.reason, row.note, row.resolved_at) == (member.id, "fraud", "The photos are stolen.", None)
    # A second report: the same row, updated, and said so; the form shows it is a resend.
    again = client.get(f"/campaigns/{campaign.slug}/report").get_data(as_text=True)
    assert "You reported this campaign" in again and "The photos are stolen." in again
    clock.advance(timedelta(minutes=5))
    assert client.post(f"/campaigns/{campaign.slug}/report", data={"reason": "misleading", "note": "Also misleading."}).status_code == 302
    assert "Your report is updated." in _flashes(client)
    [row] = _reports()
    assert (row.reason, row.note) == ("misleading", "Also misleading.") and row.updated_at > row.created_at
    # The reporter gets no mail about it.
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.recipient == member.email,
                                                                                   OutboxMessage.kind != "welcome")) == 0


def test_the_database_allows_one_open_report_per_member_and_campaign(people):
    creator, moderator, (member, *_rest), _clients = people
    campaign = make_campaign(creator, "live")
    reports.report(campaign, member, "fraud", "First.")
    db.session.add(CampaignReport(campaign_id=campaign.id, reporter_id=member.id, reason="other", note="Twice."))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
    reports.dismiss(campaign, moderator, "Looked fine.")
    _row, created = reports.report(campaign, member, "offensive", "Now it is offensive.")  # a new one after resolution
    assert created and len(_reports()) == 2


def test_who_may_report_what(people, client):
    creator, moderator, (member, *_rest), clients = people
    live = make_campaign(creator, "live")
    draft = make_campaign(creator, "draft")
    funded = make_campaign(creator, "successful")
    data = {"reason": "fraud", "note": "Bad."}
    # A visitor is asked to log in; the link is not on their page.
    response = client.post(f"/campaigns/{live.slug}/report", data=data)
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    assert "/report" not in client.get(f"/campaigns/{live.slug}").get_data(as_text=True)
    # The creator: a clear refusal, no row, no link.
    own = clients[creator.email]
    assert "/report" not in own.get(f"/campaigns/{live.slug}").get_data(as_text=True)
    for method in ("get", "post"):
        response = getattr(own, method)(f"/campaigns/{live.slug}/report", data=data)
        assert response.status_code == 302
    assert "You cannot report your own campaign." in _flashes(own)
    # A draft is nobody else's business: 404; a moderator who can see it is refused clearly.
    assert clients[member.email].post(f"/campaigns/{draft.slug}/report", data=data).status_code == 404
    assert clients[moderator.email].post(f"/campaigns/{draft.slug}/report", data=data).status_code == 302
    assert "Only a live campaign can be reported; this one is draft." in _flashes(clients[moderator.email])
    # An ended campaign: refused, and no link on its page.
    member_client = clients[member.email]
    assert "/report" not in member_client.get(f"/campaigns/{funded.slug}").get_data(as_text=True)
    assert member_client.post(f"/campaigns/{funded.slug}/report", data=data).status_code == 302
    assert "Only a live campaign can be reported" in _flashes(member_client)
    assert _reports() == []
    with pytest.raises(reports.ReportError):
        reports.report(live, creator, "fraud", "Mine.")


@pytest.mark.parametrize("data, field, message", [
    ({"note": "No reason."}, "reason", "Choose a reason."),
    ({"reason": "bogus", "note": "Bad reason."}, "reason", "Choose a reason."),
    ({"reason": "fraud"}, "note", "Tell the moderators what is wrong."),
    ({"reason": "fraud", "note": "   "}, "note", "Tell the moderators what is wrong."),
    ({"reason": "fraud", "note": "x" * 2001}, "note", "Keep the note under 2000 characters."),
])
def test_a_refused_report_says_why_next_to_the_field(people, data, field, message):
    creator, _moderator, (member, *_rest), clients = people
    campaign = make_campaign(creator, "live")
    response = clients[member.email].post(f"/campaigns/{campaign.slug}/report", data=data)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    if field == "note":
        assert message in field_block(page, "note")
    else:
        assert re.search(r"<fieldset.*?" + re.escape(message) + r".*?</fieldset>", page, re.S)
    if data.get("note", "").strip() and len(data["note"]) < 100:
        assert data["note"] in page  # what they typed is kept
    assert _reports() == []


# --- the moderation queue and the review page ------------------------------------------------

def _report_all(campaign, members, note="Suspicious."):
    for member in members:
        reports.report(campaign, member, "fraud", note)


def test_the_queue_lists_reported_campaigns_most_reported_first(people):
    creator, moderator, members, clients = people
    once = make_campaign(creator, "live", title="Reported once")
    thrice = make_campaign(creator, "live", title="Reported thrice")
    make_campaign(creator, "live", title="Never reported")
    _report_all(once, members[:1])
    _report_all(thrice, members)
    page = clients[moderator.email].get("/moderation").get_data(as_text=True)
    section = re.search(r'id="reported-heading".*?</section>', page, re.S).group(0)
    assert re.findall(r'data-slug="([^"]+)" data-reports="(\d+)"', section) == [(thrice.slug, "3"), (once.slug, "1")]
    assert "3 open reports" in section and "1 open report" in section and "Never reported" not in section
    # Resolved ones leave the section.
    reports.dismiss(thrice, moderator, "Checked.")
    section = re.search(r'id="reported-heading".*?</section>', clients[moderator.email].get("/moderation").get_data(as_text=True), re.S).group(0)
    assert re.findall(r'data-slug="([^"]+)" data-reports="(\d+)"', section) == [(once.slug, "1")]


def test_notes_are_escaped_on_the_review_page(people):
    creator, moderator, (member, other, _third), clients = people
    campaign = make_campaign(creator, "live")
    reports.report(campaign, member, "other", XSS)
    page = clients[moderator.email].get(f"/moderation/campaigns/{campaign.slug}").get_data(as_text=True)
    assert XSS not in page and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "1 open report" in page and "member0@example.com" in page
    # The moderator's own note, shown with the resolved reports, is escaped too.
    assert clients[moderator.email].post(f"/moderation/campaigns/{campaign.slug}/reports",
                                         data={"resolution": "dismissed", "note": XSS}).status_code == 302
    reports.report(campaign, other, "fraud", "Again.")
    page = clients[moderator.email].get(f"/moderation/campaigns/{campaign.slug}").get_data(as_text=True)
    assert XSS not in page and page.count("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") == 2


def test_dismissing_closes_every_open_report_with_who_when_and_note(people):
    creator, moderator, members, clients = people
    campaign = make_campaign(creator, "live")
    _report_all(campaign, members)
    mod = clients[moderator.email]
    # The note is required: the refusal sits next to it, and nothing is closed.
    response = mod.post(f"/moderation/campaigns/{campaign.slug}/reports", data={"resolution": "dismissed", "note": " "})
    assert response.status_code == 422
    assert "Write a note saying why the reports are dismissed." in field_block(response.get_data(as_text=True), "note")
    response = mod.post(f"/moderation/campaigns/{campaign.slug}/reports", data={"note": "No choice"})
    assert response.status_code == 422 and "Choose how to resolve the reports." in response.get_data(as_text=True)
    assert "No choice" in response.get_data(as_text=True)
    assert all(r.resolved_at is None for r in _reports())
    clock.advance(timedelta(hours=2))
    response = mod.post(f"/moderation/campaigns/{campaign.slug}/reports", data={"resolution": "dismissed", "note": "Parody, allowed."})
    assert response.status_code == 302 and response.headers["Location"].endswith("/moderation")
    assert "3 reports on" in _flashes(mod)
    rows = _reports()
    assert {(r.resolution, r.resolved_by_id, r.resolution_note, r.resolved_at) for r in rows} == {
        ("dismissed", moderator.id, "Parody, allowed.", clock.utcnow())}
    assert _state(campaign) == "live"
    # Nothing left to dismiss: said so.
    response = mod.post(f"/moderation/campaigns/{campaign.slug}/reports", data={"resolution": "dismissed", "note": "Again."})
    assert response.status_code == 422 and "This campaign has no open reports." in _flashes(mod) + response.get_data(as_text=True)
    # The reporters are not mailed the moderator's note.
    assert not db.session.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.body.contains("Parody")))


def _active_pledge(campaign, backer):
    pledge = Pledge(campaign_id=campaign.id, backer_id=backer.id, tier_id=campaign.tiers[0].id, amount=2500, currency="USD",
                    state="active", payment_method_id="pm_reports", card_brand="visa", card_last4="4242")
    db.session.add(pledge)
    tier_cls = type(campaign.tiers[0])
    db.session.execute(update(tier_cls).where(tier_cls.id == campaign.tiers[0].id).values(claimed=1))
    totals.add(campaign.id, 2500, 1)
    db.session.commit()
    return pledge


def test_suspending_from_the_reports_goes_through_the_suspension_and_releases_pledges(people):
    creator, moderator, members, clients = people
    campaign = make_campaign(creator, "live", title="Solar Lantern")
    backer = make_user("backer@example.com")
    pledge = _active_pledge(campaign, backer)
    _report_all(campaign, members[:2])
    mod = clients[moderator.email]
    response = mod.post(f"/moderation/campaigns/{campaign.slug}/reports", data={"resolution": "suspended", "note": "Stolen designs."})
    assert response.status_code == 302
    assert _state(campaign) == "suspended"
    event = db.session.scalar(select(CampaignEvent).where(CampaignEvent.campaign_id == campaign.id, CampaignEvent.action == "suspend"))
    assert (event.actor_id, event.note, event.from_state) == (moderator.id, "Stolen designs.", "live")
    assert db.session.get(Pledge, pledge.id).state == "released"
    assert "pledge_released" in db.session.scalars(select(OutboxMessage.kind).where(OutboxMessage.recipient == backer.email)).all()
    assert {(r.resolution, r.resolution_note, r.resolved_by_id) for r in _reports()} == {("suspended", "Stolen designs.", moderator.id)}
    # The public no longer sees it.
    assert clients[members[2].email].get(f"/campaigns/{campaign.slug}").status_code == 404


def test_a_refused_suspension_closes_nothing(people):
    creator, moderator, members, clients = people
    campaign = make_campaign(creator, "live")
    _report_all(campaign, members[:1])
    mod = clients[moderator.email]
    response = mod.post(f"/moderation/campaigns/{campaign.slug}/reports", data={"resolution": "suspended", "note": ""})
    assert response.status_code == 422 and "Write the reason for the suspension." in field_block(response.get_data(as_text=True), "note")
    # The campaign ended meanwhile: a suspension is refused, and the reports stay open (they can be dismissed).
    db.session.execute(update(Campaign).where(Campaign.id == campaign.id).values(state="successful"))
    db.session.commit()
    response = mod.post(f"/moderation/campaigns/{campaign.slug}/reports", data={"resolution": "suspended", "note": "Too late."})
    assert response.status_code == 422
    assert _state(campaign) == "successful" and all(r.resolved_at is None for r in _reports())
    assert mod.post(f"/moderation/campaigns/{campaign.slug}/reports", data={"resolution": "dismissed", "note": "Ended."}).status_code == 302
    assert all(r.resolution == "dismissed" for r in _reports())


def test_the_plain_suspend_form_closes_open_reports_too(people):
    creator, moderator, members, clients = people
    campaign = make_campaign(creator, "live")
    _report_all(campaign, members)
    assert clients[moderator.email].post(f"/moderation/campaigns/{campaign.slug}/suspend", data={"note": "Fraud."}).status_code == 302
    assert _state(campaign) == "suspended"
    assert {(r.resolution, r.resolution_note) for r in _reports()} == {("suspended", "Fraud.")}


def test_members_cannot_resolve(people):
    creator, _moderator, (member, *_rest), clients = people
    campaign = make_campaign(creator, "live")
    reports.report(campaign, member, "fraud", "Bad.")
    for email in (member.email, creator.email):
        assert clients[email].post(f"/moderation/campaigns/{campaign.slug}/reports", data={"resolution": "dismissed", "note": "x"}).status_code == 403
    with pytest.raises(reports.ReportError):
        reports.dismiss(campaign, member, "I am no moderator.")
    assert _reports()[0].resolved_at is None
