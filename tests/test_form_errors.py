"""Every field error is tied to its field (issue 18, WCAG 2.2 AA 3.3.1 and 1.3.1).

Bad input is posted to each form of the site that shows errors next to its fields, and one checker
reads the page that comes back: every error message (an `invalid-feedback` block with text) has an
id, and an input, select or text area marked `aria-invalid="true"` names that id in its
`aria-describedby`; no field says it is invalid without pointing at a message that exists. A
message about the whole form (not a field) is announced instead (`role="alert"`) and not counted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest
from sqlalchemy import select

from app.campaigns.forms import STORY_MAX
from app.campaigns.models import Tier
from app.community import reports
from app.community.models import Comment
from app.extensions import db
from app.fulfillment import shipments, surveys
from app.pledges.models import Pledge
from tests.community_helpers import back, client_for, make_world
from tests.factories import make_campaign, make_user
from tests.test_campaigns_addons import ADDON_FORM
from tests.test_campaigns_helpers import TIER_FORM, form_of
from tests.test_fulfillment_addresses import PARIS
from tests.test_fulfillment_surveys import _questions, en, funded  # noqa: F401  (fixtures)

_CONTROLS = {"input", "select", "textarea"}
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass
class _Block:
    id: str | None
    alert: bool
    text: list[str] = field(default_factory=list)


class _Reader(HTMLParser):
    """The page's error blocks (with their text), its invalid controls, and every id."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[_Block] = []
        self.invalid: list[dict[str, str | None]] = []
        self.ids: set[str] = set()
        self._open: list[_Block | None] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag in _CONTROLS and attrs.get("aria-invalid") == "true":
            self.invalid.append(attrs)
        if tag in _VOID:
            return
        block = None
        if "invalid-feedback" in (attrs.get("class") or "").split():
            block = _Block(attrs.get("id"), attrs.get("role") == "alert")
            self.blocks.append(block)
        self._open.append(block)

    def handle_endtag(self, tag):
        if tag not in _VOID and self._open:
            self._open.pop()

    def handle_data(self, data):
        for block in self._open:
            if block is not None:
                block.text.append(data)


def assert_errors_tied(page: str) -> int:
    """Check the rule above on a page; returns how many field messages it holds (for the caller to
    know the page did show its errors)."""
    reader = _Reader()
    reader.feed(page)
    described = {}
    for control in reader.invalid:
        names = (control.get("aria-describedby") or "").split()
        label = control.get("id") or control.get("name")
        assert names, f"{label} is marked invalid but points at no message"
        for name in names:
            assert name in reader.ids, f"{label} points at #{name}, which is not on the page"
            described.setdefault(name, []).append(label)
    shown = [b for b in reader.blocks if "".join(b.text).strip() and not b.alert]
    for block in shown:
        message = " ".join("".join(block.text).split())
        assert block.id, f"the message {message!r} has no id, so no field can point at it"
        assert block.id in described, f"no field marked invalid points at #{block.id} ({message!r})"
    assert len({b.id for b in shown}) == len(shown), "two messages share an id"
    return len(shown)


def _refused(response, fields: int = 1) -> str:
    assert response.status_code in (400, 422), response.status_code
    page = response.get_data(as_text=True)
    found = assert_errors_tied(page)
    assert found >= fields, f"{found} field messages, {fields} expected: " + " | ".join(_messages(page))
    return page


def _messages(page: str) -> list[str]:
    reader = _Reader()
    reader.feed(page)
    return [f"#{b.id}{' (alert)' if b.alert else ''}: {' '.join(''.join(b.text).split())}" for b in reader.blocks if ''.join(b.text).strip()]


# --- the community's forms ---------------------------------------------------------------------

@pytest.fixture
def world(app):
    return make_world()


def test_community_forms(app, world):
    slug = world.slug
    backer, creator = client_for(app, "backer@example.com"), client_for(app, "creator@example.com")
    member = client_for(app, "member@example.com")
    _refused(member.post(f"/campaigns/{slug}/report", data={"reason": "bogus", "note": "x" * 2001}), fields=2)
    page = _refused(backer.post(f"/campaigns/{slug}/comments", data={"body": "   "}))
    assert 'id="comment-body"' in page and 'aria-describedby="comment-body-errors"' in page
    backer.post(f"/campaigns/{slug}/comments", data={"body": "A first comment."})
    parent = db.session.scalar(select(Comment.id).where(Comment.campaign_id == world.id))
    page = _refused(creator.post(f"/campaigns/{slug}/comments", data={"body": " ", "parent_id": str(parent)}))
    assert f'aria-describedby="reply-{parent}-errors"' in page
    _refused(creator.post(f"/campaigns/{slug}/faq/new", data={"question": "", "answer": ""}), fields=2)
    _refused(creator.post(f"/campaigns/{slug}/updates/new", data={"title": "", "body": ""}), fields=2)
    _refused(backer.post(f"/campaigns/{slug}/ask", data={"body": ""}))


# --- moderation ----------------------------------------------------------------------------------

def test_moderation_forms(app, world):
    moderator = client_for(app, "mod@example.com")
    creator = db.session.get(type(world.creator), world.creator_id)
    submitted = make_campaign(creator, "submitted")
    page = _refused(moderator.post(f"/moderation/campaigns/{submitted.slug}", data={"decision": "bogus", "note": "x" * 5001}), fields=2)
    assert 'aria-describedby="decision-errors"' in page
    _refused(moderator.post(f"/moderation/campaigns/{world.slug}/suspend", data={"note": " "}))
    reports.report(world, db.session.scalar(select(type(world.creator)).where(type(world.creator).email == "member@example.com")),
                   "fraud", "Looks wrong.")
    _refused(moderator.post(f"/moderation/campaigns/{world.slug}/reports", data={"resolution": "bogus", "note": "x" * 5001}), fields=2)
    successful = make_campaign(creator, "successful")
    pledge_owner = back(successful, state="collected")
    pledge = db.session.scalar(select(Pledge).where(Pledge.backer_id == pledge_owner.id))
    _refused(moderator.post(f"/moderation/pledges/{pledge.id}/refund", data={"note": " "}))
    _refused(moderator.post(f"/moderation/campaigns/{successful.slug}/payout", data={"decision": "bogus", "note": "x" * 5001}), fields=2)


# --- the creator's offer: the campaign, tiers with their destinations, add-ons ------------------

def test_offer_forms(app, client):
    creator = make_user("creator@example.com", name="Cat Creator")
    client = client_for(app, creator.email)
    campaign = make_campaign(creator, "draft", tiers=1)
    page = _refused(client.post(f"/campaigns/{campaign.slug}/edit", data=form_of(campaign, story="x" * (STORY_MAX + 1), category="")), fields=2)
    assert 'aria-describedby="story-help story-errors"' in page
    # Each destination row has inputs of its own: the messages of rows 0 and 2 point at their own fields.
    rows = {"ships": "destinations", "destinations-0-country": "FR", "destinations-0-cost": "-5",
            "destinations-1-country": "DE", "destinations-1-cost": "6", "destinations-2-country": "FR", "destinations-2-cost": "7"}
    page = _refused(client.post(f"/campaigns/{campaign.slug}/tiers/new", data={**TIER_FORM, **rows}), fields=2)
    assert 'aria-describedby="destinations-0-cost-errors"' in page and 'aria-describedby="destinations-2-country-errors"' in page
    _refused(client.post(f"/campaigns/{campaign.slug}/tiers/new", data={**TIER_FORM, "ships": "bogus"}))
    _refused(client.post(f"/campaigns/{campaign.slug}/addons/new", data={**ADDON_FORM, "tiers": "abc", "shipping_per": "parcel"}), fields=2)


# --- pledges, payouts, mail preferences -------------------------------------------------------------

def test_backer_and_account_forms(app, world):
    backer = client_for(app, "backer@example.com")
    member = client_for(app, "member@example.com")
    # Without JavaScript the pledge form posts a plain form and gets the page back with its errors.
    _refused(member.post(f"/campaigns/{world.slug}/pledge", data={"tier": "", "amount": "abc"}))
    pledge = db.session.scalar(select(Pledge).where(Pledge.campaign_id == world.id))
    tier = db.session.scalar(select(Tier).where(Tier.campaign_id == world.id))
    _refused(backer.post(f"/pledges/{pledge.id}/edit", data={"tier": str(tier.id), "amount": "", "bonus": "-3"}))
    _refused(backer.post(f"/pledges/{pledge.id}/edit", data={"tier": "999999"}))
    _refused(backer.post("/me/payouts", data={"country": "XX"}))
    _refused(backer.post("/auth/notifications", data={"email_new_backers": "bogus"}))
    _refused(app.test_client().post("/auth/register", data={"email": "not-an-email", "display_name": "", "password": "short"}), fields=3)


# --- fulfillment: the survey builder and answers, shipping, problems, the tracking import -------------

def test_fulfillment_forms(app, funded, en):  # noqa: F811  (fixtures)
    ids = _questions(funded)
    slug = funded.shop.campaign.slug
    creator = client_for(app, funded.creator.email)
    shipments.ensure_items(funded.shop.campaign)
    _refused(creator.post(f"/campaigns/{slug}/survey", data={"kind": "bogus", "prompt": "   "}))
    _refused(creator.post(f"/campaigns/{slug}/survey", data={"kind": "text", "prompt": "   "}))
    page = _refused(creator.post(f"/pledges/{funded.lamp.id}/items/reward/ship", data={"carrier": "", "tracking": "", "shipped_on": "01/02/2026"}))
    assert "-error" in page
    _refused(creator.post(f"/campaigns/{slug}/fulfillment/import", data={"check": "1"}))
    surveys.send(funded.shop.campaign, funded.creator)
    lamp = db.session.get(Pledge, funded.lamp.id)
    backer = client_for(app, lamp.backer.email)
    _refused(backer.post(f"/pledges/{lamp.id}/survey", data={**PARIS, "postal_code": "7501", f"q-{ids['everyone']}": ""}), fields=3)
    _refused(backer.post(f"/pledges/{lamp.id}/items/reward/problem", data={"kind": "bogus", "body": "Broken."}))
    _refused(backer.post(f"/pledges/{lamp.id}/items/reward/problem", data={"kind": "damaged", "body": " "}))
