"""Helpers shared by the tests/test_campaigns_*.py modules, and a check that they build what they claim.

`build_campaign` reaches any state through the real services (so every audit row is the one the app
writes); `snapshot` dumps the campaign tables, to prove a refused request changed nothing;
`field_block` finds a form field's wrapper in a page, to prove an error sits next to its field.
"""
from __future__ import annotations

import re
from datetime import date
from html.parser import HTMLParser

import pytest
from sqlalchemy import select, text

from app.accounts.models import User
from app.campaigns.models import Campaign, CampaignEvent, CampaignState
from app.campaigns.services import TierInput
from app.extensions import db
from tests.factories import make_campaign, make_user

CAMPAIGN_FIELDS = {
    "title": "Solar Lantern",
    "blurb": "A lantern that charges in the sun.",
    "category": "design",
    "goal": 500_000,
    "currency": "USD",
    "duration_days": 30,
    "story": "We build **lanterns**.",
    "risks": "Shipping may be late.",
}

#: The campaign form as a person fills it in (SPEC §7 field names).
CAMPAIGN_FORM = {
    "title": "Solar Lantern",
    "blurb": "A lantern that charges in the sun.",
    "category": "design",
    "goal": "5000",
    "currency": "USD",
    "duration_days": "30",
    "story": "We build **lanterns**.",
    "risks": "Shipping may be late.",
}

#: The tier form as a person fills it in.
TIER_FORM = {
    "title": "Early bird",
    "description": "One lantern.",
    "amount": "25",
    "quantity_limit": "5",
    "estimated_delivery": "2030-03",
    "shipping_note": "Worldwide",
}

#: The moves that reach each state from a fresh draft (moderator actions marked by a leading "*").
PATHS: dict[str, tuple[str, ...]] = {
    "draft": (),
    "submitted": ("submit",),
    "changes_requested": ("submit", "*request_changes"),
    "approved": ("submit", "*approve"),
    "rejected": ("submit", "*reject"),
    "live": ("submit", "*approve", "launch"),
    "successful": ("submit", "*approve", "launch", "!succeed"),
    "unsuccessful": ("submit", "*approve", "launch", "!fail"),
    "canceled": ("submit", "*approve", "launch", "cancel"),
    "suspended": ("submit", "*approve", "launch", "*suspend"),
}
STATES = tuple(PATHS)


def tier_input(n: int = 1, **fields) -> TierInput:
    values = {
        "title": f"Tier {n}",
        "description": f"Reward number {n}.",
        "amount": 1000 * n,
        "quantity_limit": None,
        "estimated_delivery": date(2030, 3, 1),
        "shipping_note": "",
    }
    values.update(fields)
    return TierInput(**values)


def moderator() -> User:
    found = db.session.scalar(select(User).where(User.is_moderator.is_(True)).order_by(User.id))
    return found or make_user(moderator=True)


def build_campaign(creator: User, state: str = "draft", *, tiers: int = 1, featured: bool = False, **fields) -> Campaign:
    """A campaign of `creator` in `state` (default: a draft titled "Solar Lantern"), through tests.factories."""
    fields.setdefault("title", CAMPAIGN_FIELDS["title"])
    campaign = make_campaign(creator, state, moderator=moderator(), tiers=tiers, featured=featured, note="Please say more.", **fields)
    assert campaign.state == state
    return campaign


def form_of(campaign: Campaign, **changes: str) -> dict[str, str]:
    """The campaign form as the edit page fills it for `campaign`, with `changes` typed over it."""
    from app import money

    data = {name: str(getattr(campaign, name)) for name in ("title", "blurb", "category", "currency", "duration_days", "story", "risks")}
    return {**data, "goal": money.to_input(campaign.goal, campaign.currency), **changes}


#: The tables a tier or add-on change writes.
OFFER_TABLES = ("campaigns", "tiers", "addons", "addon_tiers", "shipping_destinations")


def snapshot(*tables: str) -> dict[str, list[tuple]]:
    """Every row of `tables` (by default the campaign tables), to compare before and after a request."""
    db.session.expire_all()
    tables = tables or ("campaigns", "tiers", "campaign_events")
    return {t: [tuple(row) for row in db.session.execute(text(f'SELECT * FROM "{t}" ORDER BY 1'))] for t in tables}


def field_block(page: str, name: str) -> str:
    """The `<div class="mb-3">` wrapper the field macro writes around field `name` (label, input, help, errors)."""
    for block in re.split(r'(?=<div class="mb-3">)', page):
        if block.startswith('<div class="mb-3">') and re.search(rf'<(?:input|select|textarea)[^>]* name="{re.escape(name)}"', block):
            return block
    raise AssertionError(f"no field {name!r} in the page")


class TagCollector(HTMLParser):
    """Every start tag with its attributes, as a browser would parse them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    handle_startendtag = handle_starttag


def parse_tags(page: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    parser = TagCollector()
    parser.feed(page)
    parser.close()
    return parser.tags


# --- the helpers themselves -------------------------------------------------------------------


@pytest.mark.parametrize("state", STATES)
def test_build_campaign_reaches_every_state_through_the_services(app, state):
    creator = make_user()
    campaign = build_campaign(creator, state)
    db.session.expire_all()
    assert db.session.get(Campaign, campaign.id).status == CampaignState(state)
    actions = db.session.scalars(select(CampaignEvent.action).where(CampaignEvent.campaign_id == campaign.id).order_by(CampaignEvent.id)).all()
    assert actions == ["create", *(step.lstrip("*!") for step in PATHS[state])]
