"""The authorization matrix (issue 7): every route of `app.url_map` × {visitor, member, owner,
moderator} × the object states that matter, against one table of expected answers written below.
A route without a row fails the test, so a new route cannot ship without its rules written down.

Answers: a status code, or "login" (sent to the login page). POSTs carry an empty form: what is
checked is who may reach the action, not the action's own validation (422 means "reached, refused
on its input"). The owner is the campaign's creator, or the pledge's backer.
"""
from __future__ import annotations

import re

import pytest
from sqlalchemy import update

from app.campaigns import totals
from app.campaigns.models import Addon
from app.extensions import db
from app.pledges.models import Pledge
from tests.factories import login, make_campaign, make_user

ACTORS = ("visitor", "member", "owner", "moderator")

#: (endpoint, method, state) -> answers for visitor, member, owner, moderator.
#: state: "draft" or "live" for campaign routes, "active" for pledge routes, "-" otherwise.
MATRIX: dict[tuple[str, str, str], str] = {
    ("main.index", "GET", "-"): "200 200 200 200",
    ("main.healthz", "GET", "-"): "200 200 200 200",
    # the figures (issue 19): the public stats for everyone; the operations page for moderators only
    ("main.stats", "GET", "-"): "200 200 200 200",
    ("moderation.operations", "GET", "-"): "login 403 403 200",
    ("accounts.login", "GET", "-"): "200 302 302 302",
    ("accounts.login", "POST", "-"): "422 422 422 422",
    ("accounts.logout", "POST", "-"): "302 302 302 302",
    ("accounts.register", "GET", "-"): "200 302 302 302",
    ("accounts.register", "POST", "-"): "422 302 302 302",
    ("accounts.profile", "GET", "-"): "login 200 200 200",
    ("accounts.profile", "POST", "-"): "login 200 200 200",
    ("accounts.reset_request", "GET", "-"): "200 200 200 200",
    ("accounts.reset_request", "POST", "-"): "422 422 422 422",
    ("accounts.reset_password", "GET", "-"): "302 302 302 302",
    ("accounts.reset_password", "POST", "-"): "302 302 302 302",
    # email settings (issue 8): the page for members; the unsubscribe link for anyone holding a valid token
    ("accounts.notifications", "GET", "-"): "login 200 200 200",
    ("accounts.notifications", "POST", "-"): "login 302 302 302",
    ("accounts.unsubscribe", "GET", "-"): "404 404 404 404",
    ("accounts.unsubscribe", "POST", "-"): "404 404 404 404",
    ("campaigns.browse", "GET", "-"): "200 200 200 200",
    ("campaigns.new", "GET", "-"): "login 200 200 200",
    ("campaigns.new", "POST", "-"): "login 422 422 422",
    ("campaigns.cover", "GET", "-"): "404 404 404 404",
    # the story editor (issue 18, defect 7): the preview renders any member's text (an empty one: 200);
    # pictures go into a campaign's story by its creator only; stored pictures are served like covers
    ("campaigns.preview_markdown", "POST", "-"): "login 200 200 200",
    ("campaigns.story_image", "GET", "-"): "404 404 404 404",
    ("campaigns.upload_story_image", "POST", "draft"): "login 404 422 403",
    ("campaigns.upload_story_image", "POST", "live"): "login 403 422 403",
    ("campaigns.mine", "GET", "-"): "login 200 200 200",
    ("pledges.mine", "GET", "-"): "login 200 200 200",
    ("moderation.queue", "GET", "-"): "login 403 403 200",
    ("webhooks.stripe_webhook", "POST", "-"): "400 400 400 400",
    # the footer's language switcher: everyone may choose, and is sent back (issue 9)
    ("i18n.set_language", "GET", "-"): "302 302 302 302",
    ("i18n.set_language", "POST", "-"): "302 302 302 302",
    # campaigns: a draft is nobody's business but its creator's (and the moderators')
    ("campaigns.show", "GET", "draft"): "404 404 302 302",
    ("campaigns.show", "GET", "live"): "200 200 200 200",
    ("campaigns.preview", "GET", "draft"): "login 404 200 200",
    ("campaigns.preview", "GET", "live"): "login 302 200 200",
    ("campaigns.edit", "GET", "draft"): "login 404 200 403",
    ("campaigns.edit", "GET", "live"): "login 403 200 403",
    ("campaigns.edit", "POST", "draft"): "login 404 422 403",
    ("campaigns.edit", "POST", "live"): "login 403 422 403",
    ("campaigns.new_tier", "GET", "draft"): "login 404 200 403",
    ("campaigns.new_tier", "GET", "live"): "login 403 200 403",
    ("campaigns.new_tier", "POST", "draft"): "login 404 422 403",
    ("campaigns.new_tier", "POST", "live"): "login 403 422 403",
    ("campaigns.edit_tier", "GET", "draft"): "login 404 200 403",
    ("campaigns.edit_tier", "GET", "live"): "login 403 200 403",
    ("campaigns.edit_tier", "POST", "draft"): "login 404 422 403",
    ("campaigns.edit_tier", "POST", "live"): "login 403 422 403",
    ("campaigns.delete_tier", "POST", "draft"): "login 404 302 403",
    ("campaigns.delete_tier", "POST", "live"): "login 403 302 403",
    # add-ons (issue 15): the tiers' rules
    ("campaigns.new_addon", "GET", "draft"): "login 404 200 403",
    ("campaigns.new_addon", "GET", "live"): "login 403 200 403",
    ("campaigns.new_addon", "POST", "draft"): "login 404 422 403",
    ("campaigns.new_addon", "POST", "live"): "login 403 422 403",
    ("campaigns.edit_addon", "GET", "draft"): "login 404 200 403",
    ("campaigns.edit_addon", "GET", "live"): "login 403 200 403",
    ("campaigns.edit_addon", "POST", "draft"): "login 404 422 403",
    ("campaigns.edit_addon", "POST", "live"): "login 403 422 403",
    ("campaigns.delete_addon", "POST", "draft"): "login 404 302 403",
    ("campaigns.delete_addon", "POST", "live"): "login 403 302 403",
    ("campaigns.submit", "POST", "draft"): "login 404 302 403",
    ("campaigns.submit", "POST", "live"): "login 403 302 403",
    ("campaigns.launch", "POST", "draft"): "login 404 302 403",
    ("campaigns.launch", "POST", "live"): "login 403 302 403",
    ("campaigns.cancel", "POST", "draft"): "login 404 302 403",
    ("campaigns.cancel", "POST", "live"): "login 403 302 403",
    ("settlement.backers_csv", "GET", "draft"): "login 404 200 200",
    ("settlement.backers_csv", "GET", "live"): "login 403 200 200",
    ("pledges.create", "GET", "draft"): "login 404 302 302",
    ("pledges.create", "GET", "live"): "login 200 302 200",
    ("pledges.create", "POST", "draft"): "login 404 422 422",
    ("pledges.create", "POST", "live"): "login 422 422 422",
    ("moderation.review", "GET", "draft"): "login 403 403 200",
    ("moderation.review", "GET", "live"): "login 403 403 200",
    ("moderation.review", "POST", "draft"): "login 403 403 422",
    ("moderation.review", "POST", "live"): "login 403 403 422",
    ("moderation.feature", "POST", "draft"): "login 403 403 302",
    ("moderation.feature", "POST", "live"): "login 403 403 302",
    ("moderation.suspend", "POST", "draft"): "login 403 403 422",
    ("moderation.suspend", "POST", "live"): "login 403 403 422",
    # reports (issue 8): members report live campaigns (not their own, not drafts); moderators resolve
    ("community.report", "GET", "draft"): "login 404 302 302",
    ("community.report", "GET", "live"): "login 200 302 200",
    ("community.report", "POST", "draft"): "login 404 302 302",
    ("community.report", "POST", "live"): "login 422 302 422",
    ("moderation.resolve_reports", "POST", "draft"): "login 403 403 422",
    ("moderation.resolve_reports", "POST", "live"): "login 403 403 422",
    # the creator's public profile: anyone, once they have a public campaign
    ("community.creator", "GET", "-"): "200 200 200 200",
    # community (issue 8 part A): updates, comments, FAQ and questions. The backer is not an actor here:
    # "member" backs nothing, so commenting and asking are refused to everyone but the creator.
    ("community.updates", "GET", "draft"): "404 404 200 200",
    ("community.updates", "GET", "live"): "200 200 200 200",
    ("community.update", "GET", "draft"): "404 404 200 200",
    ("community.update", "GET", "live"): "200 200 200 200",
    ("community.new_update", "GET", "draft"): "login 404 302 403",
    ("community.new_update", "GET", "live"): "login 403 200 403",
    ("community.new_update", "POST", "draft"): "login 404 302 403",
    ("community.new_update", "POST", "live"): "login 403 422 403",
    ("community.edit_update", "GET", "draft"): "login 404 200 403",
    ("community.edit_update", "GET", "live"): "login 403 200 403",
    ("community.edit_update", "POST", "draft"): "login 404 422 403",
    ("community.edit_update", "POST", "live"): "login 403 422 403",
    ("community.comments", "GET", "draft"): "404 404 200 200",
    ("community.comments", "GET", "live"): "200 200 200 200",
    ("community.comment", "POST", "draft"): "login 404 302 302",
    ("community.comment", "POST", "live"): "login 403 422 403",
    ("community.delete_comment", "POST", "draft"): "login 404 403 403",
    ("community.delete_comment", "POST", "live"): "login 403 403 403",
    ("community.hide_comment", "GET", "draft"): "login 404 403 200",
    ("community.hide_comment", "GET", "live"): "login 403 403 200",
    ("community.hide_comment", "POST", "draft"): "login 404 403 422",
    ("community.hide_comment", "POST", "live"): "login 403 403 422",
    ("community.new_faq", "GET", "draft"): "login 404 200 403",
    ("community.new_faq", "GET", "live"): "login 403 200 403",
    ("community.new_faq", "POST", "draft"): "login 404 422 403",
    ("community.new_faq", "POST", "live"): "login 403 422 403",
    ("community.edit_faq", "GET", "draft"): "login 404 200 403",
    ("community.edit_faq", "GET", "live"): "login 403 200 403",
    ("community.edit_faq", "POST", "draft"): "login 404 422 403",
    ("community.edit_faq", "POST", "live"): "login 403 422 403",
    ("community.delete_faq", "POST", "draft"): "login 404 302 403",
    ("community.delete_faq", "POST", "live"): "login 403 302 403",
    ("community.move_faq", "POST", "draft"): "login 404 400 403",
    ("community.move_faq", "POST", "live"): "login 403 400 403",
    ("community.ask", "GET", "draft"): "login 404 403 403",
    ("community.ask", "GET", "live"): "login 403 403 403",
    ("community.ask", "POST", "draft"): "login 404 403 403",
    ("community.ask", "POST", "live"): "login 403 403 403",
    ("community.questions", "GET", "draft"): "login 404 200 403",
    ("community.questions", "GET", "live"): "login 403 200 403",
    ("community.answer", "GET", "draft"): "login 404 200 403",
    ("community.answer", "GET", "live"): "login 403 200 403",
    ("community.answer", "POST", "draft"): "login 404 422 403",
    ("community.answer", "POST", "live"): "login 403 422 403",
    # saved campaigns (issue 18): any member on a campaign they can see; the service refuses the
    # creator and campaigns that are not live with a message (302 back to the page)
    ("community.follow", "POST", "draft"): "login 404 302 302",
    ("community.follow", "POST", "live"): "login 302 302 302",
    ("community.unfollow", "POST", "draft"): "login 404 302 302",
    ("community.unfollow", "POST", "live"): "login 302 302 302",
    # pledges: only their backer sees or touches them; a moderator acts only through refunds
    ("pledges.show", "GET", "active"): "login 404 200 404",
    ("pledges.edit", "GET", "active"): "login 404 200 404",
    ("pledges.edit", "POST", "active"): "login 404 422 404",
    ("pledges.cancel", "POST", "active"): "login 404 302 404",
    ("pledges.confirm", "POST", "active"): "login 404 400 404",
    ("pledges.card", "POST", "active"): "login 404 200 404",
    ("pledges.card_confirm", "POST", "active"): "login 404 400 404",
    ("settlement.payment", "POST", "active"): "login 404 302 404",
    ("settlement.fix_card", "POST", "active"): "login 404 422 404",
    ("settlement.fix_card_confirm", "POST", "active"): "login 404 400 404",
    # payouts (issue 16): a member's own account (the owner has one: their campaign launched); a
    # campaign's payout page is its creator's alone; holds are the moderators'
    ("payouts.account", "GET", "-"): "login 200 200 200",
    ("payouts.account", "POST", "-"): "login 422 302 422",
    ("payouts.onboarding_return", "GET", "-"): "login 302 302 302",
    ("payouts.campaign", "GET", "draft"): "login 404 200 403",
    ("payouts.campaign", "GET", "live"): "login 403 200 403",
    ("moderation.payout", "POST", "draft"): "login 403 403 422",
    ("moderation.payout", "POST", "live"): "login 403 403 422",
    # fulfillment (issue 17): a funded campaign's page is its creator's, read by moderators; import and
    # export are the creator's alone. Here no campaign is funded and the pledge has no items yet.
    ("fulfillment.page", "GET", "draft"): "login 404 404 404",
    ("fulfillment.page", "GET", "live"): "login 403 404 404",
    ("fulfillment.import_tracking", "POST", "draft"): "login 404 404 403",
    ("fulfillment.import_tracking", "POST", "live"): "login 403 404 403",
    ("fulfillment.export", "GET", "draft"): "login 404 404 403",
    ("fulfillment.export", "GET", "live"): "login 403 404 403",
    ("fulfillment.ship", "POST", "active"): "login 404 404 404",
    ("fulfillment.delivered", "POST", "active"): "login 404 404 404",
    ("fulfillment.problem", "POST", "active"): "login 404 404 404",
    ("fulfillment.message", "POST", "active"): "login 404 404 404",
    ("moderation.refund", "GET", "active"): "login 403 403 200",
    # the backer survey (issue 17): the builder is the creator's, once the campaign is funded (neither
    # state here is: 404 to the owner); a pledge's survey is its backer's, once sent (not here: 404)
    ("fulfillment.survey", "GET", "draft"): "login 404 404 403",
    ("fulfillment.survey", "GET", "live"): "login 403 404 403",
    ("fulfillment.survey", "POST", "draft"): "login 404 404 403",
    ("fulfillment.survey", "POST", "live"): "login 403 404 403",
    ("fulfillment.edit_question", "GET", "draft"): "login 404 404 403",
    ("fulfillment.edit_question", "GET", "live"): "login 403 404 403",
    ("fulfillment.edit_question", "POST", "draft"): "login 404 404 403",
    ("fulfillment.edit_question", "POST", "live"): "login 403 404 403",
    ("fulfillment.remove_question", "POST", "draft"): "login 404 404 403",
    ("fulfillment.remove_question", "POST", "live"): "login 403 404 403",
    ("fulfillment.move_question", "POST", "draft"): "login 404 404 403",
    ("fulfillment.move_question", "POST", "live"): "login 403 404 403",
    ("fulfillment.send_survey", "POST", "draft"): "login 404 404 403",
    ("fulfillment.send_survey", "POST", "live"): "login 403 404 403",
    ("fulfillment.lock_survey", "POST", "draft"): "login 404 404 403",
    ("fulfillment.lock_survey", "POST", "live"): "login 403 404 403",
    ("fulfillment.answer", "GET", "active"): "login 404 404 404",
    ("fulfillment.answer", "POST", "active"): "login 404 404 404",
    ("moderation.refund", "POST", "active"): "login 403 403 422",
    # data rights (issue 17): a member's own data, their own account (an empty form deletes nothing)
    ("fulfillment.my_data", "GET", "-"): "login 200 200 200",
    ("fulfillment.delete_account", "POST", "-"): "login 422 422 422",
}

SKIP_ENDPOINTS = {"static", "bootstrap.static", "bench_ceiling"}


def _routes(app) -> list[tuple[str, str, str]]:
    rows = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in SKIP_ENDPOINTS:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            args = set(rule.arguments)
            states = ("draft", "live") if "slug" in args else ("active",) if "pledge_id" in args else ("-",)
            rows.extend((rule.endpoint, method, state) for state in states)
    return sorted(rows)


def test_every_route_has_a_row(app):
    missing = [row for row in _routes(app) if row not in MATRIX]
    stale = [row for row in MATRIX if row not in _routes(app)]
    assert not missing, f"routes without a row in MATRIX: {missing}"
    assert not stale, f"rows for routes that no longer exist: {stale}"


def _world(app, state: str):
    """Fresh people and objects for one row: the owner's campaign (and a backer's pledge)."""
    owner = make_user("owner@example.com", name="Owner")
    make_user("member@example.com", name="Member")
    make_user("mod@example.com", name="Mod", moderator=True)
    campaign = make_campaign(owner, state if state in ("draft", "live") else "live", tiers=1)
    db.session.add(Addon(campaign_id=campaign.id, title="Extra", description="", amount=500))
    pledge_owner = make_user("backer@example.com", name="Backer")
    pledge = Pledge(campaign_id=campaign.id, backer_id=pledge_owner.id, tier_id=campaign.tiers[0].id, amount=2500,
                    currency="USD", state="active", payment_method_id="pm_matrix", card_brand="visa", card_last4="4242")
    db.session.add(pledge)
    db.session.execute(update(type(campaign.tiers[0])).where(type(campaign.tiers[0]).id == campaign.tiers[0].id).values(claimed=1))
    totals.add(campaign.id, 2500, 1)  # the counters the pledge service would have moved
    db.session.commit()
    _community_world(campaign, pledge)
    return campaign, pledge


def _community_world(campaign, pledge) -> None:
    """An update, a comment by the backer, a FAQ entry and a backer's question on the campaign."""
    from app.community.models import CampaignQuestion, CampaignUpdate, Comment, FaqEntry

    db.session.add_all([
        CampaignUpdate(campaign_id=campaign.id, author_id=campaign.creator_id, title="News", body="Body"),
        Comment(campaign_id=campaign.id, author_id=pledge.backer_id, body="A comment"),
        FaqEntry(campaign_id=campaign.id, question="Q?", answer="A.", position=1),
        CampaignQuestion(campaign_id=campaign.id, asker_id=pledge.backer_id, body="Why?"),
    ])
    db.session.commit()


def _community_ids(campaign) -> dict[str, int]:
    from app.community.models import CampaignQuestion, CampaignUpdate, Comment, FaqEntry

    first = {name: db.session.scalar(db.select(model.id).where(model.campaign_id == campaign.id))
             for name, model in (("update_id", CampaignUpdate), ("comment_id", Comment), ("entry_id", FaqEntry),
                                 ("question_id", CampaignQuestion))}
    return {name: value or 0 for name, value in first.items()}


def _path(app, endpoint: str, campaign, pledge) -> str:
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    values = {"slug": campaign.slug, "tier_id": campaign.tiers[0].id, "pledge_id": pledge.id, "token": "not-a-token", "name": "0" * 32 + ".jpg",
              "user_id": campaign.creator_id, "item": "reward", "addon_id": db.session.scalar(db.select(Addon.id).where(Addon.campaign_id == campaign.id)),
              **_community_ids(campaign)}
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m.group(1)]), rule.rule)


def _answer(response) -> str:
    if response.status_code == 302 and "/auth/login" in response.headers.get("Location", ""):
        return "login"
    return str(response.status_code)


@pytest.mark.parametrize("row", sorted(MATRIX), ids=lambda row: "-".join(row))
def test_the_matrix(app, row):
    endpoint, method, state = row
    campaign, pledge = _world(app, state)
    path = _path(app, endpoint, campaign, pledge)
    owner_email = "backer@example.com" if "pledge_id" in path or endpoint.startswith(("pledges.show", "moderation.refund")) else "owner@example.com"
    if endpoint.startswith(("pledges.", "settlement.payment", "settlement.fix", "moderation.refund")) and "<slug>" not in next(
        r.rule for r in app.url_map.iter_rules() if r.endpoint == endpoint
    ):
        owner_email = "backer@example.com"
    emails = {"visitor": None, "member": "member@example.com", "owner": owner_email, "moderator": "mod@example.com"}
    got = []
    for actor in ("visitor", "member", "moderator", "owner"):  # the owner last: their action may change the object
        client = app.test_client()
        if emails[actor]:
            login(client, emails[actor])
        response = client.open(path, method=method, data={} if method == "POST" else None)
        got.append((actor, _answer(response)))
    answers = dict(got)
    assert " ".join(answers[a] for a in ACTORS) == MATRIX[row], f"{method} {path} ({state}): {answers}"


def test_every_post_route_needs_a_csrf_token(app, make_app):
    """With CSRF on (as in production), every form POST without its token is refused: 400."""
    from tests.factories import PASSWORD, csrf_token

    strict = make_app(WTF_CSRF_ENABLED=True)
    campaign, pledge = _world(app, "live")
    client = strict.test_client()
    token = csrf_token(client, "/auth/login")
    assert client.post("/auth/login", data={"email": "owner@example.com", "password": PASSWORD, "csrf_token": token}).status_code == 302
    posts = sorted({endpoint for endpoint, method, _state in MATRIX if method == "POST"})
    refused = {}
    for endpoint in posts:
        if endpoint == "webhooks.stripe_webhook":
            continue  # Stripe signs it instead
        with strict.test_request_context():
            path = _path(strict, endpoint, campaign, pledge)
        refused[path] = client.post(path, data={}).status_code
    assert refused and set(refused.values()) == {400}, refused
    # The webhook alone takes no token: a bad signature is its refusal.
    assert client.post("/stripe/webhook", data=b"{}", headers={"Stripe-Signature": "t=1,v1=0"}).status_code == 400


def test_security_headers_on_every_html_response(app):
    """CSP (our origin and the configured Stripe.js origin only), no framing, nosniff, referrer policy."""
    campaign, pledge = _world(app, "live")
    stripe_origin = app.config["STRIPE_API_BASE"]
    seen = 0
    for email in (None, "owner@example.com", "backer@example.com", "mod@example.com"):
        client = app.test_client()
        if email:
            login(client, email)
        for endpoint, method, _state in sorted(MATRIX):
            if method != "GET":
                continue
            response = client.get(_path(app, endpoint, campaign, pledge))
            if not response.mimetype == "text/html":
                continue
            seen += 1
            headers = response.headers
            csp = headers["Content-Security-Policy"]
            assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
            assert f"script-src 'self' {stripe_origin};" in csp
            assert headers["X-Content-Type-Options"] == "nosniff"
            assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
            assert headers["X-Frame-Options"] == "DENY"
    assert seen > 40
