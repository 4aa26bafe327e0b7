"""Small factories and helpers for tests: real rows through the real services."""
from __future__ import annotations

import itertools
import re
import uuid

from app.accounts import services as accounts
from app.accounts.models import User

_seq = itertools.count(1)
PASSWORD = "correct horse battery"


def make_user(email: str | None = None, *, name: str | None = None, password: str = PASSWORD, moderator: bool = False) -> User:
    n = next(_seq)
    return accounts.register(email or f"user{n}@example.com", name or f"User {n}", password, moderator=moderator)


def fresh_email(prefix: str = "backer") -> str:
    """An address no other test uses: localstripe lives for the whole session (and is shared by the
    xdist workers' tests running at the same moment) and finds Stripe customers by email, so a test that
    reads Stripe's side back must not share a customer with another test."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def login(client, email: str, password: str = PASSWORD, **extra):
    return client.post("/auth/login", data={"email": email, "password": password, **extra})


def csrf_token(client, path: str) -> str:
    """The CSRF token of the form on `path`."""
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'name="csrf_token" value="([^"]+)"', page
    )
    assert match, f"no CSRF token on {path}"
    return match.group(1)


# --- campaigns -------------------------------------------------------------------------------

#: How `make_campaign` reaches each state from a submitted campaign (after the creator's submit).
_PATHS: dict[str, tuple[str, ...]] = {
    "draft": (),
    "submitted": ("submit",),
    "changes_requested": ("submit", "request_changes"),
    "approved": ("submit", "approve"),
    "rejected": ("submit", "reject"),
    "live": ("submit", "approve", "launch"),
    "successful": ("submit", "approve", "launch", "succeed"),
    "unsuccessful": ("submit", "approve", "launch", "fail"),
    "canceled": ("submit", "approve", "launch", "cancel"),
    "suspended": ("submit", "approve", "launch", "suspend"),
}

_CAMPAIGN_DEFAULTS = {
    "blurb": "A small thing worth making.",
    "category": "design",
    "goal": 500_000,
    "currency": "USD",
    "duration_days": 30,
    "story": "We make things.",
    "risks": "Shipping may be late.",
}


def make_campaign(creator: User, state: str = "live", *, moderator: User | None = None, tiers: int = 1,
                  note: str = "Please explain more.", featured: bool = False, **fields):
    """A campaign by `creator` in `state`, made through the real services (one tier by default).

    `fields` override the CampaignInput defaults (title, blurb, category, goal in minor units,
    currency, duration_days, story, risks). Decisions and suspensions are made by `moderator`
    (a new moderator when None); `note` is their note where one is needed.
    """
    from datetime import date

    from app.campaigns import services as campaigns

    n = next(_seq)
    data = campaigns.CampaignInput(**{"title": f"Campaign {n}", **_CAMPAIGN_DEFAULTS, **fields})
    campaign = campaigns.create_draft(creator, data)
    for i in range(tiers):
        campaigns.add_tier(campaign, creator, campaigns.TierInput(
            title=f"Tier {i + 1}", description="A reward.", amount=2500 * (i + 1), quantity_limit=None,
            estimated_delivery=date(2030, 1, 1), shipping_note="",
        ))
    steps = _PATHS[state]
    if any(step in ("approve", "request_changes", "reject", "suspend") for step in steps) and moderator is None:
        moderator = make_user(moderator=True)
    for step in steps:
        if step == "submit":
            campaigns.submit(campaign, creator)
        elif step in campaigns.DECISIONS:
            campaigns.decide(campaign, moderator, step, "" if step == "approve" else note)
        elif step == "launch":
            from tests.localstripe_fixture import onboard

            onboard(creator)
            campaigns.launch(campaign, creator)
            if featured:  # only a live campaign can be picked; it keeps the flag when it ends
                campaigns.set_featured(campaign, moderator or make_user(moderator=True), True)
        elif step == "cancel":
            campaigns.cancel(campaign, creator)
        elif step == "suspend":
            campaigns.suspend(campaign, moderator, note)
        else:  # the settlement pass's outcomes: no service of their own in the campaigns area
            from app import clock
            from app.extensions import db

            campaigns.transition(campaign, step, None)
            campaign.ended_at = clock.utcnow()
            db.session.commit()
    if featured and "launch" not in steps:
        raise ValueError("only a launched campaign can be featured")
    return campaign
