"""The campaign state machine (SPEC §2): every allowed move, every refused one, the audit log,
what submit needs, the freeze while in review, launch's deadline, cancel, and slugs."""
from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app import clock
from app.campaigns import services
from app.campaigns.models import TRANSITIONS, Campaign, CampaignEvent, CampaignState, Tier
from app.campaigns.services import CampaignError, CampaignInput
from app.extensions import db
from tests.factories import login, make_user
from tests.localstripe_fixture import onboard
from tests.test_campaigns_helpers import (
    CAMPAIGN_FIELDS,
    CAMPAIGN_FORM,
    STATES,
    TIER_FORM,
    build_campaign,
    moderator,
    snapshot,
    tier_input,
)

ACTIONS = sorted({action for _state, action in TRANSITIONS})
REFUSED = [(s, a) for s, a in itertools.product(STATES, ACTIONS) if (CampaignState(s), a) not in TRANSITIONS]
ALLOWED = [(s.value, a, t.value) for (s, a), t in TRANSITIONS.items()]


def _events(campaign_id: int) -> list[CampaignEvent]:
    return list(db.session.scalars(select(CampaignEvent).where(CampaignEvent.campaign_id == campaign_id).order_by(CampaignEvent.id)))


def _draft_in(state: str) -> Campaign:
    """A complete draft put straight into `state` (transition() reads nothing else)."""
    campaign = build_campaign(make_user())
    campaign.state = state
    db.session.commit()
    return campaign


def test_the_table_covers_the_lifecycle_of_the_spec():
    assert len(ALLOWED) == 10 and len(REFUSED) == len(STATES) * len(ACTIONS) - 10
    assert set(ACTIONS) == {"submit", "approve", "request_changes", "reject", "launch", "succeed", "fail", "cancel", "suspend"}


# --- the table -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("state", "action", "target"), ALLOWED)
def test_every_allowed_transition_moves_and_writes_one_audit_row(app, frozen_clock, state, action, target):
    campaign = _draft_in(state)
    actor = make_user()
    before = len(_events(campaign.id))
    clock.advance(timedelta(minutes=7))
    event = services.transition(campaign, action, actor, note="why not")
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Campaign, campaign.id).state == target
    events = _events(campaign.id)
    assert len(events) == before + 1 and events[-1].id == event.id
    last = events[-1]
    assert (last.from_state, last.to_state, last.action, last.actor_id, last.note) == (state, target, action, actor.id, "why not")
    assert last.created_at == frozen_clock + timedelta(minutes=7)  # UTC, from app.clock


def test_the_system_is_recorded_as_no_actor(app):
    campaign = _draft_in("live")
    services.transition(campaign, "succeed", None)
    db.session.commit()
    assert _events(campaign.id)[-1].actor_id is None


@pytest.mark.parametrize(("state", "action"), REFUSED)
def test_every_refused_transition_raises_a_clear_error_and_changes_nothing(app, state, action):
    campaign = _draft_in(state)
    before = snapshot()
    with pytest.raises(CampaignError) as raised:
        services.transition(campaign, action, campaign.creator, note="no")
    db.session.commit()  # even a commit afterwards writes nothing
    message = str(raised.value)
    assert message.startswith("This campaign is ") and services.state_label(state) in message
    assert services.action_label(action) in message and "cannot be" in message
    assert snapshot() == before


def test_an_unknown_action_is_refused(app):
    campaign = _draft_in("draft")
    with pytest.raises(CampaignError):
        services.transition(campaign, "explode", None)
    assert campaign.state == "draft"


def test_a_transition_lost_to_a_concurrent_one_is_refused(app):
    """Two moves from one state (the creator cancels while settlement closes it): only one wins."""
    campaign = build_campaign(make_user(), "live")
    assert campaign.state == "live"
    # Another process decides the outcome after this session read the campaign.
    with db.engine.begin() as other:
        other.execute(update(Campaign).where(Campaign.id == campaign.id).values(state="successful"))
    assert campaign.state == "live"  # this session's copy is stale
    with pytest.raises(CampaignError):
        services.cancel(campaign, campaign.creator)
    db.session.expire_all()
    assert db.session.get(Campaign, campaign.id).state == "successful"
    assert [e.action for e in _events(campaign.id)][-1] == "launch"


# --- the creator's and moderator's services refuse what the table refuses -------------------------


SERVICE_CALLS = {
    "submit": lambda c: services.submit(c, c.creator),
    "launch": lambda c: services.launch(c, c.creator),
    "cancel": lambda c: services.cancel(c, c.creator),
    "approve": lambda c: services.decide(c, moderator(), "approve"),
    "request_changes": lambda c: services.decide(c, moderator(), "request_changes", "More photos."),
    "reject": lambda c: services.decide(c, moderator(), "reject", "Not a project."),
    "suspend": lambda c: services.suspend(c, moderator(), "Fraud."),
}


@pytest.mark.parametrize(("state", "action"), [(s, a) for s, a in REFUSED if a in SERVICE_CALLS])
def test_services_refuse_moves_outside_the_table(app, state, action):
    moderator()
    campaign = build_campaign(make_user(), state)
    before = snapshot()
    with pytest.raises(CampaignError):
        SERVICE_CALLS[action](campaign)
    assert snapshot() == before


def test_request_changes_and_reject_need_a_note(app):
    campaign = build_campaign(make_user(), "submitted")
    for decision in ("request_changes", "reject"):
        with pytest.raises(CampaignError) as raised:
            services.decide(campaign, moderator(), decision, "   ")
        assert raised.value.field == "note"
    assert campaign.state == "submitted"


def test_a_moderator_cannot_review_their_own_campaign(app):
    mod = make_user(moderator=True)
    campaign = build_campaign(mod, "submitted")
    with pytest.raises(CampaignError):
        services.decide(campaign, mod, "approve")
    assert campaign.state == "submitted"


def test_members_cannot_moderate(app):
    campaign = build_campaign(make_user(), "submitted")
    with pytest.raises(CampaignError):
        services.decide(campaign, make_user(), "approve")
    live = build_campaign(make_user(), "live")
    with pytest.raises(CampaignError):
        services.suspend(live, make_user(), "Fraud.")
    assert campaign.state == "submitted" and live.state == "live"


def test_only_the_creator_moves_their_campaign(app):
    campaign = build_campaign(make_user(), "approved")
    with pytest.raises(CampaignError):
        services.launch(campaign, make_user())
    with pytest.raises(CampaignError):
        services.launch(campaign, moderator())
    assert campaign.state == "approved" and campaign.launched_at is None


# --- submit --------------------------------------------------------------------------------------


def test_submit_lists_everything_missing(app):
    creator = make_user()
    empty = dict(CAMPAIGN_FIELDS, title=" ", blurb="", story="", risks=" \n ")
    campaign = services.create_draft(creator, CampaignInput(**empty))
    with pytest.raises(CampaignError) as raised:
        services.submit(campaign, creator)
    assert raised.value.missing == ["a title", "a short blurb", "the story", "risks and challenges", "at least one funding tier"]
    assert "Before you submit, add: a title, a short blurb, the story, risks and challenges, at least one funding tier." == str(raised.value)
    assert campaign.state == "draft" and campaign.submitted_at is None
    campaign.goal = 0  # not possible through the form or the CHECK; the rule still names it
    assert "a funding goal" in services.missing_for_submit(campaign)
    db.session.rollback()


def test_the_cover_is_optional_and_a_complete_draft_submits(app, frozen_clock):
    creator = make_user()
    campaign = build_campaign(creator)
    assert campaign.cover is None and services.missing_for_submit(campaign) == []
    services.submit(campaign, creator)
    assert campaign.state == "submitted" and campaign.submitted_at == frozen_clock


def test_a_removed_tier_does_not_count_for_submit(app):
    creator = make_user()
    campaign = build_campaign(creator, tiers=1)
    services.delete_tier(campaign, creator, campaign.tiers[0])
    with pytest.raises(CampaignError) as raised:
        services.submit(campaign, creator)
    assert raised.value.missing == ["at least one funding tier"]


def test_submit_through_the_page_shows_what_is_missing(app, client):
    creator = make_user()
    login(client, creator.email)
    campaign = services.create_draft(creator, CampaignInput(**dict(CAMPAIGN_FIELDS, story="", risks="")))
    response = client.post(f"/campaigns/{campaign.slug}/submit")
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Before you submit, add: the story, risks and challenges, at least one funding tier." in page
    assert db.session.get(Campaign, campaign.id).state == "draft"


# --- frozen while in review ------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["submitted", "approved", "rejected", "successful", "unsuccessful", "canceled", "suspended"])
def test_a_campaign_out_of_the_creators_hands_is_frozen(app, client, state):
    creator = make_user()
    campaign = build_campaign(creator, state)
    tier = campaign.tiers[0]
    login(client, creator.email)
    before = snapshot()
    slug = campaign.slug
    response = client.post(f"/campaigns/{slug}/edit", data=dict(CAMPAIGN_FORM, title="Changed", story="Changed"))
    assert response.status_code == 302
    assert "cannot be edited now" in client.get(response.headers["Location"]).get_data(as_text=True)
    for path in (f"/campaigns/{slug}/tiers/new", f"/campaigns/{slug}/tiers/{tier.id}/edit"):
        response = client.post(path, data=dict(TIER_FORM, title="Changed"))
        assert response.status_code == 302, path
        assert "cannot be changed" in client.get(response.headers["Location"]).get_data(as_text=True)
        assert client.get(path).status_code == 302  # not even the form
    assert client.post(f"/campaigns/{slug}/tiers/{tier.id}/delete").status_code == 302
    assert snapshot() == before
    # the services refuse as well, whatever a page does
    with pytest.raises(CampaignError):
        services.update_content(campaign, creator, CampaignInput(**dict(CAMPAIGN_FIELDS, title="Changed")))
    with pytest.raises(CampaignError):
        services.add_tier(campaign, creator, tier_input(9))
    with pytest.raises(CampaignError):
        services.update_tier(campaign, creator, tier, tier_input(9))
    with pytest.raises(CampaignError):
        services.delete_tier(campaign, creator, tier)
    assert snapshot() == before


def test_changes_requested_opens_the_campaign_again(app, client):
    creator = make_user()
    campaign = build_campaign(creator, "changes_requested")
    login(client, creator.email)
    page = client.get(f"/campaigns/{campaign.slug}/edit").get_data(as_text=True)
    assert "Please say more." in page  # the moderator's note is shown to the creator
    assert client.post(f"/campaigns/{campaign.slug}/edit", data=dict(CAMPAIGN_FORM, story="More photos now.")).status_code == 302
    assert client.post(f"/campaigns/{campaign.slug}/tiers/new", data=TIER_FORM).status_code == 302
    assert client.post(f"/campaigns/{campaign.slug}/submit").status_code == 302
    db.session.expire_all()
    campaign = db.session.get(Campaign, campaign.id)
    assert campaign.state == "submitted" and campaign.story == "More photos now." and len(campaign.tiers) == 2


# --- launch and cancel -----------------------------------------------------------------------------


@pytest.mark.parametrize("days", [1, 30, 60])
def test_launch_fixes_the_deadline_from_the_clock(app, client, frozen_clock, days):
    creator = make_user()
    campaign = build_campaign(creator, "approved", duration_days=days)
    onboard(creator)
    clock.advance(timedelta(days=3, hours=5))  # approved days ago: the countdown starts at launch
    login(client, creator.email)
    assert client.post(f"/campaigns/{campaign.slug}/launch").status_code == 302
    db.session.expire_all()
    campaign = db.session.get(Campaign, campaign.id)
    launched = frozen_clock + timedelta(days=3, hours=5)
    assert campaign.state == "live" and campaign.launched_at == launched
    assert campaign.deadline == launched + timedelta(days=days)
    last = _events(campaign.id)[-1]
    assert (last.action, last.from_state, last.to_state, last.actor_id, last.created_at) == ("launch", "approved", "live", creator.id, launched)


def test_cancel_only_while_live(app, client, frozen_clock):
    creator = make_user()
    login(client, creator.email)
    for state in ("draft", "submitted", "approved"):
        campaign = build_campaign(creator, state)
        before = snapshot()
        response = client.post(f"/campaigns/{campaign.slug}/cancel")
        assert response.status_code == 302
        assert "so it cannot be canceled" in client.get(response.headers["Location"]).get_data(as_text=True)
        assert snapshot() == before
    live = build_campaign(creator, "live")
    clock.advance(timedelta(days=2))
    assert client.post(f"/campaigns/{live.slug}/cancel").status_code == 302
    db.session.expire_all()
    live = db.session.get(Campaign, live.id)
    assert live.state == "canceled" and live.ended_at == frozen_clock + timedelta(days=2)
    assert (_events(live.id)[-1].action, _events(live.id)[-1].actor_id) == ("cancel", creator.id)


def test_cancel_is_refused_once_the_deadline_has_passed(app, frozen_clock):
    """The outcome is decided at the deadline; a creator cannot cancel a campaign that already ran its course."""
    creator = make_user()
    campaign = build_campaign(creator, "live", duration_days=10)
    clock.advance(timedelta(days=10))
    with pytest.raises(CampaignError) as raised:
        services.cancel(campaign, creator)
    assert "deadline" in str(raised.value)
    assert campaign.state == "live" and campaign.ended_at is None


def test_cancel_sends_the_campaign_closed_signal(app):
    seen = []

    def receiver(campaign, **_extra):
        seen.append(campaign.state)

    services.campaign_closed.connect(receiver)
    try:
        creator = make_user()
        services.cancel(build_campaign(creator, "live"), creator)
    finally:
        services.campaign_closed.disconnect(receiver)
    assert seen == ["canceled"]


# --- slugs -----------------------------------------------------------------------------------------


def test_slugs_are_unique_and_stable(app):
    creator = make_user()
    first = build_campaign(creator, title="Solar Lantern")
    second = build_campaign(creator, title="Solar  lantern!")
    third = build_campaign(make_user(), title="SOLAR LANTERN")
    assert (first.slug, second.slug, third.slug) == ("solar-lantern", "solar-lantern-2", "solar-lantern-3")
    services.update_content(first, creator, CampaignInput(**dict(CAMPAIGN_FIELDS, title="Moon Lamp")))
    assert first.title == "Moon Lamp" and first.slug == "solar-lantern"
    fourth = build_campaign(creator, title="Solar Lantern")
    assert fourth.slug == "solar-lantern-4"
    assert build_campaign(creator, title="Moon Lamp").slug == "moon-lamp"


def test_slug_survives_a_title_change(app, client):
    creator = make_user()
    campaign = build_campaign(creator, "draft")
    login(client, creator.email)
    response = client.post(f"/campaigns/{campaign.slug}/edit", data=dict(CAMPAIGN_FORM, title="Lantern, renamed"))
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Campaign, campaign.id).slug == "solar-lantern"
    assert "Lantern, renamed" in client.get("/campaigns/solar-lantern/preview").get_data(as_text=True)


@pytest.mark.parametrize(
    ("title", "slug"),
    [("Café Ünïcode", "cafe-unicode"), ("日本の提灯", "campaign"), ("--A  B--", "a-b"), ("x" * 80, "x" * 60), ("New", "new-2")],
)
def test_slug_shapes(app, client, title, slug):
    creator = make_user()
    campaign = build_campaign(creator, title=title)
    assert campaign.slug == slug
    login(client, creator.email)
    assert client.get(f"/campaigns/{slug}/edit").status_code == 200


def test_a_slug_taken_meanwhile_gets_the_next_number(app, monkeypatch):
    """Two drafts with one title at once: the unique index refuses the second insert; it retries."""
    creator = make_user()
    build_campaign(creator, title="Solar Lantern")
    calls = []
    real = services._unique_slug

    def stale(title):
        calls.append(title)
        return "solar-lantern" if len(calls) == 1 else real(title)

    monkeypatch.setattr(services, "_unique_slug", stale)
    campaign = services.create_draft(creator, CampaignInput(**CAMPAIGN_FIELDS))
    assert campaign.slug == "solar-lantern-2" and len(calls) == 2
    assert db.session.scalar(select(func.count()).select_from(Campaign)) == 2
    assert db.session.scalar(select(func.count()).select_from(Tier)) == 1
