"""The creator's path: draft, tiers, submit, review, launch, public page — through the pages."""
from __future__ import annotations

import io
from datetime import timedelta

from PIL import Image
from sqlalchemy import select

from app import clock
from app.campaigns.models import Campaign, CampaignEvent
from app.extensions import db
from tests.factories import login, make_user
from tests.localstripe_fixture import browser_onboard

CAMPAIGN = {
    "title": "Solar Lantern",
    "blurb": "A lantern that charges in the sun.",
    "category": "design",
    "goal": "5,000",
    "currency": "USD",
    "duration_days": "30",
    "story": "# Hello\n\nWe build **lanterns**.",
    "risks": "Shipping may be late.",
}
# The delivery month must not be in the past: a year from whenever the suite runs (the clock runs here).
TIER = {"title": "Early bird", "description": "One lantern.", "amount": "25", "quantity_limit": "5",
        "estimated_delivery": f"{clock.utcnow().year + 1}-03", "shipping_note": "Worldwide"}


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(out, "PNG")
    return out.getvalue()


def test_creator_to_live_campaign(app, client):
    make_user("creator@example.com", name="Cat")
    make_user("mod@example.com", moderator=True)
    login(client, "creator@example.com")
    data = dict(CAMPAIGN, cover=(io.BytesIO(png_bytes()), "cover.png"))
    response = client.post("/campaigns/new", data=data, content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)
    campaign = db.session.scalar(select(Campaign))
    assert campaign.slug == "solar-lantern" and campaign.goal == 500000 and campaign.state == "draft" and campaign.cover
    assert client.get(f"/uploads/covers/{campaign.cover}").status_code == 200

    response = client.post("/campaigns/solar-lantern/submit")
    assert response.status_code == 302
    page = client.get("/campaigns/solar-lantern/edit").get_data(as_text=True)
    assert "at least one funding tier" in page
    assert client.post("/campaigns/solar-lantern/tiers/new", data=TIER).status_code == 302
    page = client.get("/campaigns/solar-lantern/preview").get_data(as_text=True)
    assert "Preview" in page and "Early bird" in page and "<h2>Hello</h2>" in page or "Hello" in page
    assert client.post("/campaigns/solar-lantern/submit").status_code == 302
    db.session.expire_all()
    assert db.session.scalar(select(Campaign.state)) == "submitted"

    # the public cannot see it yet
    visitor = app.test_client()
    assert visitor.get("/campaigns/solar-lantern").status_code == 404

    from app.campaigns import services
    mod = services.db.session.scalar(select(services.User).where(services.User.email == "mod@example.com"))
    campaign = db.session.scalar(select(Campaign))
    services.decide(campaign, mod, "approve")
    # Launch waits for a payout account: the creator sets one up through Stripe's onboarding.
    refused = client.post("/campaigns/solar-lantern/launch", follow_redirects=True).get_data(as_text=True)
    assert "a payout account that can receive money" in refused
    assert "Set up payouts" in client.get("/campaigns/solar-lantern/edit").get_data(as_text=True)
    browser_onboard(client.post("/me/payouts", data={"country": "US"}).location)
    client.get("/me/payouts/return")
    assert client.post("/campaigns/solar-lantern/launch").status_code == 302
    campaign = db.session.scalar(select(Campaign))
    assert campaign.state == "live" and campaign.deadline - campaign.launched_at == timedelta(days=30)

    page = visitor.get("/campaigns/solar-lantern").get_data(as_text=True)
    assert "Solar Lantern" in page and "$5,000.00" in page and "0%" in page and "5 of 5 left" in page
    assert "Solar Lantern" in visitor.get("/").get_data(as_text=True)
    assert "Solar Lantern" in visitor.get("/campaigns?q=lantern").get_data(as_text=True)
    assert "Solar Lantern" not in visitor.get("/campaigns?q=zebra").get_data(as_text=True)
    for sort in ("ending", "newest", "funded", "backers", "bogus"):
        assert visitor.get(f"/campaigns?sort={sort}&page=abc&category=nope").status_code == 200
    actions = db.session.scalars(select(CampaignEvent.action).order_by(CampaignEvent.id)).all()
    assert actions == ["create", "submit", "approve", "launch"]
    assert "Solar Lantern" in client.get("/me/campaigns").get_data(as_text=True)
    clock.advance(timedelta(0))


def test_submitting_saves_what_is_typed_first(app, client):
    """Issue 18, defect 1: "Submit for review" belongs to the editing form — the text typed is saved, then
    the campaign is submitted; when something is still missing the typed text is saved all the same."""
    make_user("creator@example.com", name="Cat")
    login(client, "creator@example.com")
    assert client.post("/campaigns/new", data=CAMPAIGN).status_code == 302
    edit = client.get("/campaigns/solar-lantern/edit").get_data(as_text=True)
    assert 'id="campaign-form"' in edit and 'data-warn-unsaved' in edit
    assert 'form="campaign-form" name="and_submit" value="1"' in edit  # the status panel's button
    # No tier yet: saved, not submitted, and told why.
    typed = dict(CAMPAIGN, risks="Shipping may be late. Parts may be late too.", and_submit="1")
    response = client.post("/campaigns/solar-lantern/edit", data=typed, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "Changes saved." in page and "at least one funding tier" in page
    db.session.expire_all()
    campaign = db.session.scalar(select(Campaign))
    assert (campaign.state, campaign.risks) == ("draft", "Shipping may be late. Parts may be late too.")
    assert client.post("/campaigns/solar-lantern/tiers/new", data=TIER).status_code == 302
    typed["risks"] = "The moderator asked: we now say what happens if parts are late."
    response = client.post("/campaigns/solar-lantern/edit", data=typed, follow_redirects=True)
    assert "Saved and submitted for review." in response.get_data(as_text=True)
    db.session.expire_all()
    campaign = db.session.scalar(select(Campaign))
    assert (campaign.state, campaign.risks) == ("submitted", typed["risks"])
