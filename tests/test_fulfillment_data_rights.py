"""Data rights (issue 17, SPEC §14): `GET /me/data` holds everything about one member and nothing of
another; `POST /me/delete` erases the member's personal data at once, keeps the money records with
their amounts, cancels live pledges, and is refused while a campaign of theirs needs them."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
import stripe
from flask_babel import force_locale
from sqlalchemy import func, select

from app import clock
from app.accounts.models import AccountEvent, LoginSession, User
from app.campaigns.models import Campaign
from app.community.models import Comment
from app.extensions import db
from app.fulfillment import addresses, data_rights
from app.fulfillment.models import ShippingAddress, Survey, SurveyAnswer, SurveyQuestion, SurveyRequest
from app.pledges.models import Pledge
from app.settlement import services as settlement
from app.settlement.models import ChargeAttempt
from tests.factories import PASSWORD, csrf_token, fresh_email, login, make_campaign, make_user
from tests.localstripe_fixture import browser_client
from tests.test_pledges import pledge_with_card
from tests.test_pledges_composition import _pledge, make_shop

PEOPLE = [
    {"name": "Amélie Poulain", "line1": "15 rue des Trois Frères", "city": "Paris", "postal_code": "75018",
     "comment": "Can't wait for the lamp, it will light my reading corner!", "answer": "Moss green please"},
    {"name": "Bruno Verdier", "line1": "8 avenue Jean Médecin", "city": "Nice", "postal_code": "06000",
     "comment": "Does the stand fold flat for travel?", "answer": "Burnt orange for me"},
]


@dataclass
class World:
    campaign: Campaign
    pledges: list[Pledge]
    emails: list[str]


def _clients(app, n):
    return [app.test_client() for _ in range(n)]


@pytest.fixture
def world(app, localstripe) -> World:
    """A funded campaign shipping lamps to France; two backers, each with a collected pledge, an
    address, a comment and a survey answer."""
    shop = make_shop()
    made, emails = [], []
    for person, client in zip(PEOPLE, _clients(app, 2), strict=True):
        email = fresh_email("rights")
        make_user(email, name=person["name"])
        login(client, email)
        made.append(_pledge(client, localstripe, shop, tier=str(shop.lamp.id), country="fr", total="5600"))
        emails.append(email)
        db.session.add(Comment(campaign_id=shop.campaign.id, author_id=made[-1].backer_id, body=person["comment"]))
    db.session.commit()
    clock.set_offset(timedelta(days=31))
    settlement.run_pass()
    db.session.expire_all()
    pledges = [db.session.get(Pledge, pledge.id) for pledge in made]
    assert all(pledge.state == "collected" for pledge in pledges)
    survey = Survey(campaign_id=shop.campaign.id, state="sent", sent_at=clock.utcnow())
    question = SurveyQuestion(survey=survey, kind="text", prompt="Which colour?", options=[])
    db.session.add_all([survey, question])
    db.session.flush()
    for pledge, person in zip(pledges, PEOPLE, strict=True):
        db.session.add(SurveyRequest(survey_id=survey.id, pledge_id=pledge.id, answered_at=clock.utcnow()))
        db.session.add(SurveyAnswer(pledge_id=pledge.id, question_id=question.id, text=person["answer"]))
        with app.test_request_context(), force_locale("en"):
            addresses.save_address(pledge, pledge.backer, {**person, "country": "FR"})
    db.session.commit()
    return World(db.session.get(Campaign, shop.campaign.id), pledges, emails)


def _export(client) -> tuple[dict, str]:
    response = client.get("/me/data")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    return json.loads(text), text


def _logged_in(app, email: str):
    client = app.test_client()
    assert login(client, email).status_code == 302
    return client


def _personal(person: dict, email: str) -> list[str]:
    return [email, person["name"], person["line1"], person["comment"], person["answer"]]


# --- the export --------------------------------------------------------------------------------

def test_the_export_holds_exactly_one_members_data(app, world):
    client = _logged_in(app, world.emails[0])
    response = client.get("/me/data")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert re.fullmatch(r"attachment; filename=threshold-data-\d{4}-\d{2}-\d{2}\.json",
                        response.headers["Content-Disposition"])
    assert "no-store" in response.headers["Cache-Control"]
    data, text = _export(client)
    # Everything of the member …
    for value in _personal(PEOPLE[0], world.emails[0]):
        assert value in text, value
    assert data["account"]["email"] == world.emails[0]
    [pledge] = data["pledges"]
    assert pledge["state"] == "collected" and pledge["amount"] == world.pledges[0].amount == 5600
    assert sum(pledge["parts"].values()) == pledge["amount"] and pledge["country"] == "FR"
    assert pledge["shipping_address"]["city"] == "PARIS" and pledge["charges"][0]["status"] == "succeeded"
    assert pledge["survey"]["answers"] == [{"question": "Which colour?", "answer": PEOPLE[0]["answer"],
                                           "updated_at": pledge["survey"]["answers"][0]["updated_at"]}]
    assert [c["body"] for c in data["comments"]] == [PEOPLE[0]["comment"]]
    assert data["logins"] and data["emails"] and data["audit"]["pledge_events"]
    # … and nothing of the other backer.
    for value in _personal(PEOPLE[1], world.emails[1]):
        assert value not in text, value
    # Each export is an audit row of the account.
    assert db.session.scalar(select(func.count()).select_from(AccountEvent).where(
        AccountEvent.action == "data_exported", AccountEvent.user_id == world.pledges[0].backer_id)) == 2


def test_the_creators_export_counts_backers_without_naming_them(app, world):
    creator = world.campaign.creator
    client = _logged_in(app, creator.email)
    data, text = _export(client)
    [campaign] = data["campaigns"]
    assert campaign["slug"] == world.campaign.slug and [t["title"] for t in campaign["tiers"]][-2:] == ["Lamp", "Poster"]
    assert campaign["pledges"] == {"collected": {"count": 2, "amount": 11200}}
    assert campaign["survey_questions"] == [{"prompt": "Which colour?", "kind": "text", "options": []}]
    assert data["payout_account"]["stripe_account_id"].startswith("acct_")
    assert any(event["action"] == "launch" for event in data["audit"]["campaign_events"])
    for person, email in zip(PEOPLE, world.emails, strict=True):
        for value in _personal(person, email):
            assert value not in text, value


def test_the_export_holds_no_secret(app, world):
    user = world.pledges[0].backer
    client = _logged_in(app, user.email)
    _data, text = _export(client)
    assert user.password_hash not in text and "argon2" not in text
    for session_id in db.session.scalars(select(LoginSession.id).where(LoginSession.user_id == user.id)):
        assert session_id not in text


def test_the_export_is_for_members_and_rate_limited(app, make_app):
    assert app.test_client().get("/me/data").headers["Location"].startswith("/auth/login")
    limited = make_app(RATELIMIT_ENABLED=True)
    client = limited.test_client()
    with limited.app_context():
        make_user("limits@example.com")
    login(client, "limits@example.com")
    codes = [client.get("/me/data").status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]


def _points_at(table, targets: set[str]) -> bool:
    return any(fk.column.table.name in targets for column in table.columns for fk in column.foreign_keys)


def test_every_table_about_a_member_has_a_decision(app):
    """A new table pointing at a member (or at a pledge) fails here until PERSONAL_TABLES says what the
    export and the deletion do with it. (`app`: the app made, every model is imported, whichever test ran
    before this one.)"""
    pointing = {table.name for table in db.metadata.sorted_tables if _points_at(table, {"users", "pledges"})}
    missing = pointing - set(data_rights.PERSONAL_TABLES) - {"users"}
    assert not missing, f"say what the export and account deletion do with: {sorted(missing)}"
    stale = set(data_rights.PERSONAL_TABLES) - {table.name for table in db.metadata.sorted_tables}
    assert not stale, stale


# --- deletion ----------------------------------------------------------------------------------

def _delete(client, password=PASSWORD, **extra):
    return client.post("/me/delete", data={"delete-password": password, **extra})


def test_deleting_erases_the_person_and_keeps_the_money(app, world, localstripe):
    pledge = world.pledges[0]
    user_id, email, customer = pledge.backer_id, world.emails[0], pledge.backer.stripe_customer_id
    other_device = _logged_in(app, email)
    assert other_device.get("/auth/profile").status_code == 200
    client = _logged_in(app, email)
    response = _delete(client)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert "Your account is deleted." in client.get("/").get_data(as_text=True)

    db.session.expire_all()
    user = db.session.get(User, user_id)
    assert user.email.endswith("@deleted.invalid") and user.email != email and user.display_name == "Deleted member"
    assert user.deleted_at is not None and user.locale is None and not user.email_updates
    # Every login ended at once, this browser's and the other device's.
    assert client.get("/auth/profile").headers["Location"].startswith("/auth/login")
    assert other_device.get("/auth/profile").headers["Location"].startswith("/auth/login")
    assert db.session.scalar(select(func.count()).select_from(LoginSession).where(
        LoginSession.user_id == user_id, LoginSession.revoked_at.is_(None))) == 0
    # The address is blank at once, the survey answer and the comment's words are gone.
    address = db.session.scalar(select(ShippingAddress).where(ShippingAddress.pledge_id == pledge.id))
    assert address.erased_reason == "account" and address.name == address.line1 == address.city == ""
    assert db.session.scalar(select(func.count()).select_from(SurveyAnswer).where(SurveyAnswer.pledge_id == pledge.id)) == 0
    comment = db.session.scalar(select(Comment).where(Comment.author_id == user_id))
    assert comment.body == "" and comment.deleted_at is not None
    # The money records stay, with their amounts.
    kept = db.session.get(Pledge, pledge.id)
    assert (kept.state, kept.amount, kept.backer_id) == ("collected", 5600, user_id)
    assert db.session.scalar(select(ChargeAttempt.amount).where(ChargeAttempt.pledge_id == pledge.id)) == 5600
    # The other backer is untouched.
    other = db.session.get(Pledge, world.pledges[1].id)
    assert other.backer.email == world.emails[1] and addresses.address_for(other, other.backer).name == PEOPLE[1]["name"]
    # One audit row; no mail for the deleted member, none kept for the old address.
    [event] = db.session.scalars(select(AccountEvent).where(AccountEvent.user_id == user_id, AccountEvent.action == "deleted"))
    assert "addresses_erased=1" in event.note and email not in event.note
    # Stripe keeps the customer whose charges the books reconcile, without the person's email or name.
    found = browser_client(localstripe).v1.customers.retrieve(customer)
    assert found["email"] == user.email and found["name"] == "Deleted member"
    # The old email logs in no more, and can make a new account.
    assert "do not match" in login(app.test_client(), email).get_data(as_text=True)
    again = app.test_client()
    response = again.post("/auth/register", data={"email": email, "display_name": "New Me", "password": PASSWORD})
    assert response.status_code == 302
    assert db.session.scalar(select(func.count()).select_from(User).where(User.email == email)) == 1


def test_deleting_cancels_live_pledges_and_the_stripe_customer(app, localstripe):
    creator = make_user(fresh_email("creator"))
    campaign = make_campaign(creator, "live", tiers=1)
    tier = campaign.tiers[0]
    tier.quantity_limit = 5
    db.session.commit()
    client = app.test_client()
    email = fresh_email("leaver")
    make_user(email)
    login(client, email)
    response, status = pledge_with_card(client, localstripe, campaign, tier=str(tier.id), amount="25")
    assert status == "succeeded" and response.status_code == 302
    pledge = db.session.scalar(select(Pledge).where(Pledge.campaign_id == campaign.id))
    assert pledge.state == "active" and db.session.get(type(tier), tier.id).claimed == 1
    customer = pledge.backer.stripe_customer_id
    assert _delete(client).status_code == 302
    db.session.expire_all()
    pledge = db.session.get(Pledge, pledge.id)
    assert pledge.state == "canceled" and pledge.amount == 2500 and pledge.card_released_at is not None
    assert db.session.get(type(tier), tier.id).claimed == 0
    assert db.session.get(Campaign, campaign.id).pledged_total == 0
    assert pledge.backer.stripe_customer_id is None
    with pytest.raises(stripe.InvalidRequestError) as gone:
        browser_client(localstripe).v1.customers.retrieve(customer)
    assert gone.value.http_status == 404


def test_a_creator_with_a_live_campaign_is_told_what_must_happen_first(app, localstripe):
    email = fresh_email("busy")
    creator = make_user(email)
    make_campaign(creator, "live", title="Tidal Clock")
    client = _logged_in(app, email)
    response = _delete(client)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Your campaign “Tidal Clock” is live" in page and "once it has ended and its payout has been made" in page
    assert 'id="delete-password"' in page and "is-invalid" in page
    db.session.expire_all()
    assert db.session.get(User, creator.id).email == email and db.session.get(User, creator.id).deleted_at is None
    assert client.get("/auth/profile").status_code == 200


def test_a_successful_campaign_waits_for_its_payout(app, localstripe):
    creator = make_user(fresh_email("funded"))
    make_campaign(creator, "successful", title="Kite Lamp")
    with app.test_request_context(), force_locale("en"):
        [reason] = data_rights.refusals(creator)
    assert "payout of your campaign “Kite Lamp” has not been made yet" in reason
    assert data_rights.refusals(make_user()) == []


def test_a_wrong_or_missing_password_deletes_nothing(app):
    make_user("careful@example.com")
    client = _logged_in(app, "careful@example.com")
    response = _delete(client, "not my password")
    assert response.status_code == 422 and "This is not your password." in response.get_data(as_text=True)
    response = _delete(client, "")
    assert response.status_code == 422 and "Enter your password to confirm." in response.get_data(as_text=True)
    assert db.session.scalar(select(User.deleted_at).where(User.email == "careful@example.com")) is None
    assert app.test_client().post("/me/delete", data={"delete-password": PASSWORD}).headers["Location"].startswith("/auth/login")


def test_deletion_needs_the_csrf_token(make_app):
    strict = make_app(WTF_CSRF_ENABLED=True)
    client = strict.test_client()
    with strict.app_context():
        make_user("token@example.com")
    token = csrf_token(client, "/auth/login")
    assert client.post("/auth/login", data={"email": "token@example.com", "password": PASSWORD, "csrf_token": token}).status_code == 302
    assert _delete(client).status_code == 400
    page = client.get("/auth/profile").get_data(as_text=True)
    assert "Download your data" in page and "Delete your account" in page
    token = re.search(r'name="delete-csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    assert _delete(client, **{"delete-csrf_token": token}).status_code == 302
    with strict.app_context():
        assert db.session.scalar(select(User.deleted_at).where(User.display_name == "Deleted member")) is not None


def test_the_unique_placeholder_lets_two_members_go(app):
    first, second = make_user(), make_user()
    for user in (first, second):
        with app.test_request_context(), force_locale("en"):
            data_rights.delete_account(user, PASSWORD)
    db.session.expire_all()
    emails = {db.session.get(User, u.id).email for u in (first, second)}
    assert len(emails) == 2 and all(e.endswith("@deleted.invalid") for e in emails)
