"""The campaign page's funding box knows who is looking (issue 18, defect 5): a visitor and a member who
has not pledged are asked to back the project; a backer sees their pledge and a way to manage it; the
creator sees their own tools, never a button that would refuse them."""
from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.pledges.models import Pledge
from tests.factories import fresh_email, login, make_campaign, make_user
from tests.test_pledges import backer, pledge_with_card


def _box(client, campaign) -> str:
    page = client.get(f"/campaigns/{campaign.slug}", headers={"Accept-Language": "en"}).get_data(as_text=True)
    start = page.index("funding-box")
    return page[start:page.index('campaign-creator', start)]


def test_visitor_member_backer_and_creator_each_see_their_own(app, localstripe):
    creator = make_user(fresh_email("creator"))
    campaign = make_campaign(creator, "live", tiers=1, currency="USD")
    visitor = app.test_client()
    assert "Back this project" in _box(visitor, campaign)
    member = app.test_client()
    backer(member, fresh_email("member"))
    assert "Back this project" in _box(member, campaign)

    supporter = app.test_client()
    backer(supporter, fresh_email())
    pledge_with_card(supporter, localstripe, campaign, tier=str(campaign.tiers[0].id), amount="60")
    pledge = db.session.scalar(select(Pledge))
    box = _box(supporter, campaign)
    assert "Back this project" not in box
    assert "You back this project · $60.00" in box and f'href="/pledges/{pledge.id}"' in box and "Manage your pledge" in box
    # Nobody else sees it: the visitor's (cached) page and another member's page ask them to back it.
    assert "You back this" not in _box(visitor, campaign) and "You back this" not in _box(member, campaign)

    own = app.test_client()
    login(own, creator.email)
    box = _box(own, campaign)
    assert "Back this project" not in box and "This is your campaign." in box
    assert f'href="/campaigns/{campaign.slug}/edit"' in box and 'href="/me/campaigns"' in box


def test_a_pledge_still_waiting_for_its_card_is_not_shown_as_backing(app):
    """A pending pledge (the card form left half-way) holds no place: the member is asked to back the
    project, not told they back it; once active, they are."""
    from tests.community_helpers import back

    creator = make_user(fresh_email("creator"))
    campaign = make_campaign(creator, "live", tiers=1, currency="USD")
    email = fresh_email()
    member = app.test_client()
    backer(member, email)
    user = db.session.scalar(select(type(creator)).filter_by(email=email))
    back(campaign, user, state="pending", amount=6000)
    box = _box(member, campaign)
    assert "Back this project" in box and "You back this" not in box
    db.session.execute(db.update(Pledge).values(state="active"))
    db.session.commit()
    assert "You back this project · $60.00" in _box(member, campaign)
