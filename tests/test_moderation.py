"""The moderator's half of review: the queue, decisions, featuring and suspending — through the pages."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app import clock
from app.campaigns.models import Campaign, CampaignEvent
from app.extensions import db
from app.notifications.models import OutboxMessage
from tests.factories import login, make_campaign, make_user
from tests.localstripe_fixture import onboard


@pytest.fixture
def people(app):
    """A creator, a moderator and a plain member, each with their own logged-in client."""
    creator = make_user("creator@example.com", name="Cat Creator")
    moderator = make_user("mod@example.com", name="Mo Derator", moderator=True)
    member = make_user("member@example.com", name="Mem Ber")
    clients = {}
    for key, user in (("creator", creator), ("moderator", moderator), ("member", member)):
        clients[key] = app.test_client()
        assert login(clients[key], user.email).status_code == 302
    return creator, moderator, member, clients


def _counts() -> tuple[int, int]:
    events = db.session.scalar(select(func.count()).select_from(CampaignEvent))
    decisions = db.session.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.kind == "campaign_decision"))
    return events, decisions


def _state(campaign: Campaign) -> str:
    return db.session.scalar(select(Campaign.state).where(Campaign.id == campaign.id))


def _featured_section(page: str) -> str:
    """The home page's Featured row (empty when there is none)."""
    match = re.search(r'<h2 class="h4 mb-0">Featured</h2>(.*?)(?:<section|</main>)', page, re.S)
    return match.group(1) if match else ""


# --- access ----------------------------------------------------------------------------------

def test_queue_and_review_are_for_moderators_only(app, client, people):
    creator, _moderator, _member, clients = people
    campaign = make_campaign(creator, "submitted")
    for path in ("/moderation", f"/moderation/campaigns/{campaign.slug}"):
        response = client.get(path)
        assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
        assert clients["member"].get(path).status_code == 403
        assert clients["creator"].get(path).status_code == 403
        assert clients["moderator"].get(path).status_code == 200
    for action, data in (("", {"decision": "approve"}), ("/feature", {"featured": "1"}), ("/suspend", {"note": "x"})):
        path = f"/moderation/campaigns/{campaign.slug}{action}"
        assert client.post(path, data=data).status_code == 302
        assert clients["member"].post(path, data=data).status_code == 403
    assert _state(campaign) == "submitted"
    assert clients["moderator"].get("/moderation/campaigns/no-such-campaign").status_code == 404


def test_nav_shows_moderation_to_moderators_only(people):
    _creator, _moderator, _member, clients = people
    assert 'href="/moderation"' in clients["moderator"].get("/").get_data(as_text=True)
    assert 'href="/moderation"' not in clients["member"].get("/").get_data(as_text=True)


# --- the queue -------------------------------------------------------------------------------

def test_queue_lists_submitted_campaigns_oldest_first(app, people, frozen_clock):
    creator, _moderator, member, clients = people
    early = make_campaign(creator, "draft", title="Early Draft Late Submit", goal=250_000, currency="EUR", category="games")
    clock.advance(timedelta(hours=1))
    first = make_campaign(member, "submitted", title="First In Line", goal=1_000_000, currency="JPY")
    clock.advance(timedelta(hours=2))
    from app.campaigns import services

    services.submit(db.session.get(Campaign, early.id), creator)
    clock.advance(timedelta(hours=3))
    make_campaign(creator, "live", title="Already Live Lamp")
    make_campaign(creator, "draft", title="Quiet Draft")
    make_campaign(creator, "approved", title="Approved Already")

    page = clients["moderator"].get("/moderation").get_data(as_text=True)
    queue = page.split('id="live-heading"')[0]
    assert queue.index("First In Line") < queue.index("Early Draft Late Submit")
    for absent in ("Quiet Draft", "Approved Already", "Already Live Lamp"):
        assert absent not in queue
    # title, creator, category, goal in its currency, time waiting
    assert "Mem Ber" in queue and "Cat Creator" in queue and "Games" in queue
    assert "€2,500.00" in queue and "¥1,000,000" in queue
    assert "waiting 5 hours" in queue and "waiting 3 hours" in queue
    assert f'href="/moderation/campaigns/{first.slug}"' in queue
    # the live section
    live = page.split('id="live-heading"')[1]
    assert "Already Live Lamp" in live and "Quiet Draft" not in live


def test_empty_queue(people):
    page = people[3]["moderator"].get("/moderation").get_data(as_text=True)
    assert "Nothing to review" in page and "<title>Review queue" in page


# --- the review page -------------------------------------------------------------------------

def test_review_page_shows_campaign_creator_and_history(app, people, frozen_clock):
    creator, moderator, _member, clients = people
    clock.advance(timedelta(days=10))
    make_campaign(creator, "rejected", title="Older Rejected Idea", moderator=moderator, note="Not a real product.")
    make_campaign(creator, "live", title="Older Live Lamp", moderator=moderator)
    campaign = make_campaign(creator, "submitted", title="Brand New Thing", story="**Bold** story here", risks="The risks are real.")

    page = clients["moderator"].get(f"/moderation/campaigns/{campaign.slug}").get_data(as_text=True)
    assert "<title>Review: Brand New Thing" in page
    # the public body
    assert "<strong>Bold</strong> story here" in page and "The risks are real." in page and "Tier 1" in page
    assert "$5,000.00" in page and "Back this project" not in page
    # the creator
    assert "creator@example.com" in page and "10 days" in page.split("creator-age")[1][:200]
    others = page.split("other-campaigns")[1].split("</ul>")[0]
    assert "Older Rejected Idea" in others and "Rejected" in others and "Older Live Lamp" in others and "Live" in others
    assert "Brand New Thing" not in others
    # the history
    history = page.split('class="table table-sm small mb-0 history"')[1].split("</table>")[0]
    assert history.count("history-row") == 2
    assert "created" in history and "submitted" in history and "Cat Creator" in history
    assert "In review" in history and "2026-12-03 12:00 UTC" in history
    # the decision form, with its contract field names and labels
    assert 'name="decision"' in page and 'value="request_changes"' in page and 'name="note"' in page
    assert '<label class="form-label" for="note">' in page


def test_history_shows_actor_note_and_system(app, people):
    creator, moderator, _member, clients = people
    campaign = make_campaign(creator, "unsuccessful", moderator=moderator)
    page = clients["moderator"].get(f"/moderation/campaigns/{campaign.slug}").get_data(as_text=True)
    rows = re.findall(r'<tr class="history-row" data-action="(\w+)">(.*?)</tr>', page, re.S)
    assert [action for action, _row in rows] == ["create", "submit", "approve", "launch", "fail"]
    assert "Mo Derator" in rows[2][1] and "system" in rows[4][1]
    assert "Live" in rows[4][1] and "Not funded" in rows[4][1]
    assert "Review decisions are only for campaigns waiting for review" in page and 'name="decision"' not in page


# --- decisions -------------------------------------------------------------------------------

def test_approve(app, people):
    creator, moderator, _member, clients = people
    campaign = make_campaign(creator, "submitted", title="Solar Lantern")
    response = clients["moderator"].post(f"/moderation/campaigns/{campaign.slug}", data={"decision": "approve", "note": ""})
    assert response.status_code == 302 and response.headers["Location"].endswith("/moderation")
    assert "Solar Lantern” is approved" in clients["moderator"].get("/moderation").get_data(as_text=True)
    assert _state(campaign) == "approved"
    event = db.session.scalars(select(CampaignEvent).order_by(CampaignEvent.id.desc())).first()
    assert (event.action, event.from_state, event.to_state, event.actor_id) == ("approve", "submitted", "approved", moderator.id)
    mail = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "campaign_decision"))
    assert mail.recipient == "creator@example.com" and "approved" in mail.body
    # the creator can now launch (once they can be paid)
    onboard(creator)
    assert clients["creator"].post(f"/campaigns/{campaign.slug}/launch").status_code == 302
    assert _state(campaign) == "live"


@pytest.mark.parametrize("decision", ["request_changes", "reject"])
def test_note_required_to_request_changes_or_reject(app, people, decision):
    creator, _moderator, _member, clients = people
    campaign = make_campaign(creator, "submitted")
    before = _counts()
    for note in ("", "   "):
        response = clients["moderator"].post(f"/moderation/campaigns/{campaign.slug}", data={"decision": decision, "note": note})
        assert response.status_code == 422
        page = response.get_data(as_text=True)
        assert "Write a note telling the creator why." in page.split('for="note"')[1].split("</form>")[0]
        assert re.search(rf'<input checked[^>]*value="{decision}"|<input[^>]*value="{decision}"[^>]*checked', page), "the chosen decision is kept"
    assert _state(campaign) == "submitted"
    assert _counts() == before


@pytest.mark.parametrize(("decision", "state"), [("request_changes", "changes_requested"), ("reject", "rejected")])
def test_decision_with_note_reaches_the_creator(app, people, decision, state):
    creator, moderator, _member, clients = people
    campaign = make_campaign(creator, "submitted", title="Solar Lantern")
    note = "Please show a photo of the prototype & explain <shipping>."
    response = clients["moderator"].post(f"/moderation/campaigns/{campaign.slug}", data={"decision": decision, "note": f"  {note}\r\n"})
    assert response.status_code == 302
    assert _state(campaign) == state
    event = db.session.scalars(select(CampaignEvent).order_by(CampaignEvent.id.desc())).first()
    assert (event.action, event.to_state, event.actor_id, event.note) == (decision, state, moderator.id, note)
    mail = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "campaign_decision"))
    assert mail.recipient == "creator@example.com" and note in mail.body
    escaped = "Please show a photo of the prototype &amp; explain &lt;shipping&gt;."
    assert escaped in clients["creator"].get("/me/campaigns").get_data(as_text=True)
    assert escaped in clients["creator"].get(f"/campaigns/{campaign.slug}/edit").get_data(as_text=True)
    # and in the moderators' history
    assert escaped in clients["moderator"].get(f"/moderation/campaigns/{campaign.slug}").get_data(as_text=True)


@pytest.mark.parametrize("state", ["draft", "approved", "live", "rejected", "suspended"])
def test_decision_on_a_campaign_not_in_review_is_refused(app, people, state):
    creator, moderator, _member, clients = people
    campaign = make_campaign(creator, state, moderator=moderator)
    before = _counts()
    response = clients["moderator"].post(f"/moderation/campaigns/{campaign.slug}", data={"decision": "approve"})
    assert response.status_code == 422
    assert "Only a campaign waiting for review can be decided" in response.get_data(as_text=True)
    # Even without a note, the real reason comes first.
    response = clients["moderator"].post(f"/moderation/campaigns/{campaign.slug}", data={"decision": "reject", "note": ""})
    assert response.status_code == 422 and "Only a campaign waiting for review can be decided" in response.get_data(as_text=True)
    assert _state(campaign) == state and _counts() == before


def test_moderator_cannot_review_own_campaign(app, people):
    _creator, moderator, _member, clients = people
    campaign = make_campaign(moderator, "submitted", title="Mod Own Idea")
    page = clients["moderator"].get(f"/moderation/campaigns/{campaign.slug}").get_data(as_text=True)
    assert "another moderator has to review it" in page and 'name="decision"' not in page
    before = _counts()
    response = clients["moderator"].post(f"/moderation/campaigns/{campaign.slug}", data={"decision": "approve"})
    assert response.status_code == 422 and "You cannot review your own campaign." in response.get_data(as_text=True)
    assert _state(campaign) == "submitted" and _counts() == before
    # another moderator can
    other = app.test_client()
    login(other, make_user("mod2@example.com", moderator=True).email)
    assert other.post(f"/moderation/campaigns/{campaign.slug}", data={"decision": "approve"}).status_code == 302
    assert _state(campaign) == "approved"


@pytest.mark.parametrize("data", [{"decision": "bogus", "note": "x"}, {"note": "x"}, {"decision": "", "note": "x"}, {"decision": "suspend", "note": "x"}])
def test_bogus_decision_is_refused(app, people, data):
    creator, _moderator, _member, clients = people
    campaign = make_campaign(creator, "submitted")
    before = _counts()
    response = clients["moderator"].post(f"/moderation/campaigns/{campaign.slug}", data=data)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Choose a decision." in page.split("<legend")[1].split("</fieldset>")[0]
    assert re.search(r'>\s*x</textarea>', page)  # the note typed is kept
    assert _state(campaign) == "submitted" and _counts() == before


def test_overlong_note_is_refused(app, people):
    creator, _moderator, _member, clients = people
    campaign = make_campaign(creator, "submitted")
    response = clients["moderator"].post(f"/moderation/campaigns/{campaign.slug}", data={"decision": "reject", "note": "x" * 5001})
    assert response.status_code == 422 and "Keep the note under 5000 characters." in response.get_data(as_text=True)
    assert _state(campaign) == "submitted"


# --- featuring -------------------------------------------------------------------------------

def test_feature_and_unfeature(app, client, people):
    creator, _moderator, _member, clients = people
    campaign = make_campaign(creator, "live", title="Shiny Lamp")
    make_campaign(creator, "live", title="Plain Lamp")
    assert _featured_section(client.get("/").get_data(as_text=True)) == ""
    mod = clients["moderator"]
    page = mod.get(f"/moderation/campaigns/{campaign.slug}").get_data(as_text=True)
    assert "Feature on the home page" in page

    response = mod.post(f"/moderation/campaigns/{campaign.slug}/feature", data={"featured": "1"})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/moderation/campaigns/{campaign.slug}")
    featured = _featured_section(client.get("/").get_data(as_text=True))
    assert "Shiny Lamp" in featured and "Plain Lamp" not in featured
    assert "Remove from featured" in mod.get(f"/moderation/campaigns/{campaign.slug}").get_data(as_text=True)
    assert "Featured" in mod.get("/moderation").get_data(as_text=True).split('id="live-heading"')[1]

    assert mod.post(f"/moderation/campaigns/{campaign.slug}/feature", data={"featured": "0"}).status_code == 302
    assert _featured_section(client.get("/").get_data(as_text=True)) == ""
    actions = db.session.scalars(select(CampaignEvent.action).where(CampaignEvent.campaign_id == campaign.id).order_by(CampaignEvent.id)).all()
    assert actions[-2:] == ["feature", "unfeature"]


@pytest.mark.parametrize("value", ["", "yes", "2"])
def test_feature_needs_a_valid_value(app, people, value):
    creator, _moderator, _member, clients = people
    campaign = make_campaign(creator, "live")
    response = clients["moderator"].post(f"/moderation/campaigns/{campaign.slug}/feature", data={"featured": value}, follow_redirects=True)
    assert response.status_code == 200 and "Choose whether to feature the campaign." in response.get_data(as_text=True)
    assert db.session.scalar(select(Campaign.featured).where(Campaign.id == campaign.id)) is False


# --- suspending ------------------------------------------------------------------------------

def test_suspend_needs_a_reason(app, people):
    creator, _moderator, _member, clients = people
    campaign = make_campaign(creator, "live", title="Dodgy Gadget")
    before = _counts()
    response = clients["moderator"].post(f"/moderation/campaigns/{campaign.slug}/suspend", data={"note": "  "})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Write the reason for the suspension." in page.split('for="suspend-note"')[1]
    assert _state(campaign) == "live" and _counts() == before


def test_suspend_takes_the_campaign_off_the_public_pages(app, client, people):
    creator, moderator, _member, clients = people
    campaign = make_campaign(creator, "live", title="Dodgy Gadget", featured=True)
    assert "Dodgy Gadget" in client.get("/").get_data(as_text=True)
    assert "Dodgy Gadget" in client.get("/campaigns").get_data(as_text=True)

    response = clients["moderator"].post(f"/moderation/campaigns/{campaign.slug}/suspend", data={"note": "Reported as a copy of another product."})
    assert response.status_code == 302
    assert _state(campaign) == "suspended"
    event = db.session.scalars(select(CampaignEvent).order_by(CampaignEvent.id.desc())).first()
    assert (event.action, event.actor_id, event.note) == ("suspend", moderator.id, "Reported as a copy of another product.")

    assert "Dodgy Gadget" not in client.get("/").get_data(as_text=True)
    assert "Dodgy Gadget" not in client.get("/campaigns").get_data(as_text=True)
    assert "Dodgy Gadget" not in client.get("/campaigns?q=dodgy").get_data(as_text=True)
    assert client.get(f"/campaigns/{campaign.slug}").status_code == 404
    assert clients["member"].get(f"/campaigns/{campaign.slug}").status_code == 404
    page = clients["moderator"].get(f"/moderation/campaigns/{campaign.slug}").get_data(as_text=True)
    assert "Suspended" in page and "Reported as a copy of another product." in page and 'class="card border-danger' not in page


@pytest.mark.parametrize("state", ["submitted", "approved", "suspended"])
def test_suspend_only_live_campaigns(app, people, state):
    creator, _moderator, _member, clients = people
    campaign = make_campaign(creator, state)
    before = _counts()
    response = clients["moderator"].post(f"/moderation/campaigns/{campaign.slug}/suspend", data={"note": "Fraud"})
    assert response.status_code == 422 and "so it cannot be suspended" in response.get_data(as_text=True)
    assert _state(campaign) == state and _counts() == before


# --- CSRF ------------------------------------------------------------------------------------

def test_every_moderation_form_carries_a_csrf_token(app, make_app):
    """With CSRF on (as in production): every form on the review page has a token, and a POST without one fails."""
    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        creator = make_user("creator@example.com")
        make_user("mod@example.com", moderator=True)
        submitted = make_campaign(creator, "submitted")
        live = make_campaign(creator, "live")
        client = app.test_client()
        page = client.get("/auth/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        client.post("/auth/login", data={"email": "mod@example.com", "password": "correct horse battery", "csrf_token": token})
        for campaign in (submitted, live):
            page = client.get(f"/moderation/campaigns/{campaign.slug}").get_data(as_text=True)
            forms = re.findall(r"<form method=\"post\".*?</form>", page, re.S)
            assert forms and all('name="csrf_token"' in form for form in forms)
        assert client.post(f"/moderation/campaigns/{submitted.slug}", data={"decision": "approve"}).status_code == 400
        assert client.post(f"/moderation/campaigns/{live.slug}/suspend", data={"note": "x"}).status_code == 400
        assert client.post(f"/moderation/campaigns/{live.slug}/feature", data={"featured": "1"}).status_code == 400
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        assert client.post(f"/moderation/campaigns/{live.slug}/feature", data={"featured": "1", "csrf_token": token}).status_code == 302
