"""Members' pages (issue 20) cost the same statements however many campaigns, tiers, add-ons and
pledges they show: a member's campaign page (with "you back this"), the pledge form, /me/pledges,
/me/campaigns and the home page, and beside them the visitors' home, browse and campaign pages.
Measured without the page cache (every part rendered); the small case already holds one of each
kind of thing (an add-on, a draft, an ended campaign), whose first one may cost its own query."""
from __future__ import annotations

from app.campaigns import services as campaigns
from tests.factories import fresh_email, login, make_user
from tests.queries import counting
from tests.test_campaigns_helpers import build_campaign
from tests.test_pledges import pledge_with_card

MEMBER_PAGES = ["/campaigns/{backed}", "/campaigns/{open}/pledge", "/me/pledges", "/me/campaigns", "/", "/campaigns?sort=funded"]
VISITOR_PAGES = ["/", "/campaigns?sort=funded", "/campaigns/{backed}"]


def _measure(member, visitor, slugs: dict) -> dict[str, int]:
    counts = {}
    for who, client, pages in (("member", member, MEMBER_PAGES), ("visitor", visitor, VISITOR_PAGES)):
        for page in pages:
            path = page.format(**slugs)
            client.get(path)  # warm: a connection's first use is not the page's
            with counting() as statements:
                response = client.get(path)
            assert response.status_code == 200, (who, path, response.status_code)
            counts[f"{who} {page}"] = len(statements)
    return counts


def _enlarge(campaign, creator, n: int) -> None:
    """n more tiers and n add-ons (each shipping, offered with every tier)."""
    for k in range(n):
        campaigns.add_tier(campaign, creator, campaigns.TierInput(f"More {k}", "More.", 5000 + k, None, None, ""))
        campaigns.add_addon(campaign, creator, campaigns.AddonInput(f"Extra {k}", "An extra.", 700 + k, None))


def test_member_pages_cost_the_same_with_more_campaigns_tiers_addons_and_pledges(app, localstripe):
    creator = make_user(fresh_email("creator"))
    member_email = fresh_email("member")
    member_user = make_user(member_email, name="Mo Member")
    member, visitor = app.test_client(), app.test_client()
    login(member, member_email)
    backed = [build_campaign(creator, "live", tiers=2, title=f"Lamp {n}") for n in range(2)]
    open_one = build_campaign(creator, "live", tiers=2, title="Lamp open")
    for n, state in enumerate(("live", "draft", "successful")):  # each kind of row the dashboard shows, once
        build_campaign(member_user, state, tiers=1, title=f"Mo's lamp {n}")
    for campaign in (*backed, open_one):  # each kind of thing the offer shows, once
        _enlarge(campaign, creator, 1)
    for campaign in backed:
        pledge_with_card(member, localstripe, campaign, tier=str(campaign.tiers[0].id), amount="60")
    slugs = {"backed": backed[0].slug, "open": open_one.slug}
    small = _measure(member, visitor, slugs)

    for campaign in (*backed, open_one):
        _enlarge(campaign, creator, 3)
    for n in range(4):
        more = build_campaign(creator, "live", tiers=4, featured=n % 2 == 0, title=f"Lamp more {n}")
        _enlarge(more, creator, 2)
        pledge_with_card(member, localstripe, more, tier=str(more.tiers[1].id), amount="70")
        build_campaign(member_user, ("live", "draft", "successful")[n % 3], tiers=3, title=f"Mo's lamp {n + 3}")
    large = _measure(member, visitor, slugs)
    assert large == small, {page: (small[page], large[page]) for page in small if small[page] != large[page]}
