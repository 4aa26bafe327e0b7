"""Every form, fuzzed through the test client with Hypothesis (SPEC §10): arbitrary text, huge values,
negative and fractional money, unicode, missing fields and wrong types — never a 500, never a changed
row when the form is refused, and the typed values kept on the page."""
from __future__ import annotations

import hashlib
import re
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import escape
from sqlalchemy import text

from app.accounts.models import User
from app.extensions import db
from tests.factories import PASSWORD, login, make_campaign, make_user

EXAMPLES = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

NASTY = st.sampled_from([
    "", " ", "0", "-1", "-0.01", "0.001", "1e9", "NaN", "inf", "٢٥", "２５", "9" * 40, "1" * 19, "25,50", "1.2.3", "$-5",
    "<script>alert(1)</script>", "\x00", "\u202e", "𝟘𝟙", "'; DROP TABLE users; --", "{{7*7}}", "../../etc/passwd",
    "2027-13", "9999-99", "2000-01", "javascript:alert(1)", "a" * 5000,
])
VALUE = st.one_of(
    st.none(),  # the field is missing
    NASTY,
    st.text(max_size=60),
    st.text(min_size=300, max_size=3000),
    st.from_regex(r"-?[0-9]{0,14}([.,][0-9]{0,6})?", fullmatch=True),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.lists(st.text(max_size=8), min_size=2, max_size=3),  # the same field twice: a wrong type
)


def fingerprint() -> str:
    """A hash of every row of every table: equal before and after means nothing changed."""
    digest = hashlib.sha256()
    for table in db.metadata.sorted_tables:
        for row in db.session.execute(text(f'SELECT * FROM "{table.name}" ORDER BY 1')):
            digest.update(repr(tuple(row)).encode())
    db.session.rollback()
    return digest.hexdigest()


def _visible(value: str) -> str:
    return "".join(ch for ch in value if unicodedata.category(ch) != "Cc" or ch in "\n\t")


def check(client, path: str, data: dict, echoed: tuple[str, ...], *, accepted=(302,)) -> None:
    """POST `data`; no 500; a refusal changes nothing and shows the typed text values again."""
    form = {k: v for k, v in data.items() if v is not None}
    before = fingerprint()
    response = client.post(path, data=form)
    assert response.status_code < 500, f"{path} answered {response.status_code} to {form!r}"
    if response.status_code in accepted:
        return
    assert response.status_code in (400, 403, 404, 405, 409, 422), response.status_code
    assert fingerprint() == before, f"{path} refused the form but changed rows"
    if response.status_code == 422:
        page = _visible(response.get_data(as_text=True))
        for name in echoed:
            value = form.get(name)
            if not isinstance(value, str) or len(value) > 200 or "\r" in value:
                continue
            # Control characters may be dropped on the way; what a person can see must come back.
            visible = _visible(value)
            if visible.strip():
                # A one-line field shows a typed line break as a space.
                kept = (str(escape(visible.strip())), str(escape(" ".join(visible.split()))),
                        str(escape(re.sub(r"\s*[\t\n]\s*", " ", visible).strip())))
                assert any(k in page for k in kept), f"{name}={value!r} not kept on {path}"


@pytest.fixture
def member(app, client):
    user = make_user("member@example.com", name="Member")
    login(client, "member@example.com")
    return user


@EXAMPLES
@given(email=VALUE, display_name=VALUE, password=VALUE)
def test_register(app, email, display_name, password):
    check(app.test_client(), "/auth/register", {"email": email, "display_name": display_name, "password": password}, ("display_name",))


@EXAMPLES
@given(email=VALUE, password=VALUE, remember=VALUE, next_=VALUE)
def test_login(app, email, password, remember, next_):
    check(app.test_client(), "/auth/login", {"email": email, "password": password, "remember": remember, "next": next_}, ())


@EXAMPLES
@given(name=VALUE, current=VALUE, new=VALUE, confirm=VALUE, which=st.sampled_from(["profile", "password"]))
def test_profile(app, client, member, name, current, new, confirm, which):
    data = {"profile-display_name": name, "profile-submit": "1"} if which == "profile" else {
        "password-current_password": current, "password-new_password": new, "password-confirm": confirm, "password-submit": "1"}
    check(client, "/auth/profile", data, ("profile-display_name",))


CAMPAIGN_FIELDS = ("title", "blurb", "category", "goal", "currency", "duration_days", "story", "risks")


@EXAMPLES
@given(values=st.fixed_dictionaries({name: VALUE for name in CAMPAIGN_FIELDS}))
def test_campaign_new(app, client, member, values):
    check(client, "/campaigns/new", values, ("title", "blurb", "goal", "story", "risks"))


@EXAMPLES
@given(values=st.fixed_dictionaries({name: VALUE for name in CAMPAIGN_FIELDS}))
def test_campaign_edit(app, client, member, values):
    campaign = _draft(member)
    check(client, f"/campaigns/{campaign.slug}/edit", values, ("title", "blurb", "goal", "story", "risks"))


TIER_FIELDS = ("title", "description", "amount", "quantity_limit", "estimated_delivery", "shipping_note")
#: The shipping part of the tier and add-on forms (issue 15): plausible values mixed with any.
SHIPPING = {
    "ships": st.one_of(st.sampled_from(["none", "destinations"]), VALUE),
    "destinations-0-country": st.one_of(st.sampled_from(["FR", "ZZ", "EU", "fr", ""]), VALUE),
    "destinations-0-cost": VALUE,
    "destinations-1-country": st.one_of(st.sampled_from(["FR", "DE"]), VALUE),
    "destinations-1-cost": VALUE,
}
SHIPPING_ECHOED = ("destinations-0-cost", "destinations-1-cost")


def _draft(member):
    from app.campaigns.models import Campaign

    return db.session.scalar(db.select(Campaign).where(Campaign.creator_id == member.id)) or make_campaign(member, "draft")


@EXAMPLES
@given(values=st.fixed_dictionaries({**{name: VALUE for name in TIER_FIELDS}, **SHIPPING}))
def test_tier_new_and_edit(app, client, member, values):
    campaign = _draft(member)
    echoed = ("title", "description", "amount", "shipping_note", *SHIPPING_ECHOED)
    check(client, f"/campaigns/{campaign.slug}/tiers/new", values, echoed)
    tier = campaign.tiers[0]
    check(client, f"/campaigns/{campaign.slug}/tiers/{tier.id}/edit", values, echoed)


ADDON_FIELDS = ("title", "description", "amount", "quantity_limit", "shipping_per", "tiers")


@EXAMPLES
@given(values=st.fixed_dictionaries({**{name: VALUE for name in ADDON_FIELDS}, **SHIPPING}), own_tier=st.booleans())
def test_addon_new_and_edit(app, client, member, values, own_tier):
    from app.campaigns import services

    campaign = _draft(member)
    if own_tier:  # a real choice now and then, so that more than the tiers check is reached
        values = {**values, "tiers": str(campaign.tiers[0].id)}
    echoed = ("title", "description", "amount", *SHIPPING_ECHOED)
    check(client, f"/campaigns/{campaign.slug}/addons/new", values, echoed)
    addon = campaign.addons[:1] or [services.add_addon(campaign, member, services.AddonInput("Extra", "", 500, None))]
    check(client, f"/campaigns/{campaign.slug}/addons/{addon[0].id}/edit", values, echoed)


@EXAMPLES
@given(tier=VALUE, amount=VALUE)
def test_pledge(app, client, member, tier, amount):
    from app.campaigns.models import Campaign

    creator = make_user() if not db.session.scalar(db.select(Campaign).where(Campaign.state == "live")) else None
    campaign = db.session.scalar(db.select(Campaign).where(Campaign.state == "live")) or make_campaign(creator, "live", tiers=2)
    # Without the card form's script (a plain POST) nothing may start, valid or not.
    check(client, f"/campaigns/{campaign.slug}/pledge", {"tier": tier, "amount": amount}, ("amount",))


@EXAMPLES
@given(decision=VALUE, note=VALUE)
def test_moderation_decision(app, decision, note):
    from app.campaigns.models import Campaign

    moderator = db.session.scalar(db.select(db.text("1")).select_from(db.text("users")).where(db.text("email = 'mod@example.com'")))
    if moderator is None:
        make_user("mod@example.com", moderator=True)
        make_campaign(make_user(), "submitted")
    client = app.test_client()
    login(client, "mod@example.com", PASSWORD)
    campaign = db.session.scalar(db.select(Campaign).where(Campaign.state == "submitted"))
    if campaign is None:
        campaign = make_campaign(make_user(), "submitted")
    check(client, f"/moderation/campaigns/{campaign.slug}", {"decision": decision, "note": note}, ())


# --- issue 8 part B: reports, their resolution, email settings and the unsubscribe link -------

def _live_by_someone_else(member):
    from app.campaigns.models import Campaign

    return db.session.scalar(db.select(Campaign).where(Campaign.state == "live", Campaign.creator_id != member.id)) or make_campaign(
        make_user(), "live")


@EXAMPLES
@given(reason=VALUE, note=VALUE)
def test_report(app, client, member, reason, note):
    campaign = _live_by_someone_else(member)
    check(client, f"/campaigns/{campaign.slug}/report", {"reason": reason, "note": note}, ("note",))


@EXAMPLES
@given(resolution=VALUE, note=VALUE)
def test_resolve_reports(app, resolution, note):
    from app.community import reports

    if db.session.scalar(db.select(db.text("1")).select_from(db.text("users")).where(db.text("email = 'mod@example.com'"))) is None:
        make_user("mod@example.com", moderator=True)
    campaign = make_campaign(make_user(), "live")  # a fresh one each time: a suspension ends it
    reports.report(campaign, make_user(), "fraud", "Looks like a scam.")
    client = app.test_client()
    login(client, "mod@example.com", PASSWORD)
    check(client, f"/moderation/campaigns/{campaign.slug}/reports", {"resolution": resolution, "note": note}, ("note",))


@EXAMPLES
@given(updates=VALUE, replies=VALUE)
def test_email_settings(app, client, member, updates, replies):
    check(client, "/auth/notifications", {"email_updates": updates, "email_replies": replies, "submit": "1"}, ())


@EXAMPLES
@given(category=st.sampled_from(["updates", "replies", "all"]), one_click=VALUE, updates=VALUE, replies=VALUE)
def test_unsubscribe(app, category, one_click, updates, replies):
    from app.notifications.services import unsubscribe_token

    user = db.session.scalar(db.select(User).where(User.email == "reader@example.com")) or make_user("reader@example.com")
    path = f"/auth/unsubscribe/{unsubscribe_token(user.id, category)}"
    check(app.test_client(), path, {"List-Unsubscribe": one_click, "email_updates": updates, "email_replies": replies}, (), accepted=(200, 302))
    assert app.test_client().post(path[:-3] + "xyz", data={"List-Unsubscribe": "One-Click"}).status_code == 404


# --- community (issue 8 part A): updates, comments, moderators' notes, FAQ, questions -----------

def _live_campaign_of(user):
    from app.campaigns.models import Campaign

    return db.session.scalar(db.select(Campaign).where(Campaign.creator_id == user.id, Campaign.state == "live")) or make_campaign(user, "live")


def _backed_campaign(member):
    """A live campaign of someone else that `member` backs (an active pledge)."""
    from app.campaigns.models import Campaign
    from app.pledges.models import Pledge

    campaign = db.session.scalar(db.select(Campaign).where(Campaign.creator_id != member.id, Campaign.state == "live"))
    if campaign is None:
        campaign = make_campaign(make_user(), "live")
        db.session.add(Pledge(campaign_id=campaign.id, backer_id=member.id, amount=2500, currency="USD", state="active"))
        db.session.commit()
    return campaign


@EXAMPLES
@given(title=VALUE, body=VALUE, backers_only=VALUE)
def test_community_update_new_and_edit(app, client, member, title, body, backers_only):
    from app.community import services

    campaign = _live_campaign_of(member)
    data = {"title": title, "body": body, "backers_only": backers_only}
    check(client, f"/campaigns/{campaign.slug}/updates/new", data, ("title", "body"))
    item = services.list_updates(campaign)[0][:1] or [services.post_update(campaign, member, "First", "Body", False)]
    check(client, f"/campaigns/{campaign.slug}/updates/{item[0].id}/edit", data, ("title", "body"))


@EXAMPLES
@given(body=VALUE, parent_id=st.one_of(VALUE, st.just("existing")))
def test_community_comment(app, client, member, body, parent_id):
    from app.community.models import Comment

    campaign = _live_campaign_of(member)
    if parent_id == "existing":
        parent_id = str(db.session.scalar(db.select(Comment.id).limit(1)) or "")
    check(client, f"/campaigns/{campaign.slug}/comments", {"body": body, "parent_id": parent_id}, ("body",))


@EXAMPLES
@given(note=VALUE)
def test_community_hide_comment(app, note):
    from app.community import services

    moderator = db.session.scalar(db.select(db.text("1")).select_from(db.text("users")).where(db.text("email = 'mod@example.com'")))
    if moderator is None:
        make_user("mod@example.com", moderator=True)
        creator = make_user()
        services.add_comment(make_campaign(creator, "live"), creator, "Something to hide")
    from app.community.models import Comment

    comment = db.session.scalar(db.select(Comment).limit(1))
    client = app.test_client()
    login(client, "mod@example.com", PASSWORD)
    check(client, f"/campaigns/{comment.campaign.slug}/comments/{comment.id}/hide", {"note": note}, ("note",))


@EXAMPLES
@given(question=VALUE, answer=VALUE, direction=VALUE)
def test_community_faq(app, client, member, question, answer, direction):
    from app.community import services

    campaign = _live_campaign_of(member)
    check(client, f"/campaigns/{campaign.slug}/faq/new", {"question": question, "answer": answer}, ("question", "answer"))
    entry = services.faq_entries(campaign)[:1] or [services.add_faq(campaign, member, "Q?", "A.")]
    check(client, f"/campaigns/{campaign.slug}/faq/{entry[0].id}/edit", {"question": question, "answer": answer}, ("question", "answer"))
    check(client, f"/campaigns/{campaign.slug}/faq/{entry[0].id}/move", {"direction": direction}, ())


@EXAMPLES
@given(body=VALUE)
def test_community_ask(app, client, member, body):
    campaign = _backed_campaign(member)
    check(client, f"/campaigns/{campaign.slug}/ask", {"body": body}, ("body",))


@EXAMPLES
@given(answer=VALUE, reply=VALUE, publish=VALUE, faq_question=VALUE)
def test_community_answer(app, client, member, answer, reply, publish, faq_question):
    from app.community import services

    campaign = _live_campaign_of(member)
    question = services.list_questions(campaign)[0][:1]
    if not question:
        backer = make_user()
        from app.pledges.models import Pledge

        db.session.add(Pledge(campaign_id=campaign.id, backer_id=backer.id, amount=2500, currency="USD", state="active"))
        db.session.commit()
        question = [services.ask(campaign, backer, "Does it float?")]
    data = {"answer": answer, "reply": reply, "publish": publish, "faq_question": faq_question}
    check(client, f"/campaigns/{campaign.slug}/questions/{question[0].id}/answer", data, ("answer", "faq_question"))
