"""The backer survey (issue 17, SPEC §14): the creator's questions and their limits, whom each
question is for (tier, add-on, everyone), sending to collected pledges, late requests, answers
checked all-or-nothing with the address, locking, weekly reminders, and who may do what."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from app import clock
from app.extensions import db
from app.fulfillment import surveys
from app.fulfillment.models import ShippingAddress, SurveyAnswer, SurveyRequest
from app.fulfillment.surveys import QuestionInput, SurveyError
from app.notifications.models import OutboxMessage
from app.pledges.models import Pledge, PledgeState
from app.settlement import services as settlement
from tests.factories import make_campaign, make_user
from tests.test_fulfillment_addresses import PARIS
from tests.test_pledges import backer
from tests.test_pledges_composition import Shop, _pledge, make_shop


@dataclass
class Funded:
    shop: Shop
    lamp: Pledge  # the lamp, shipped to France
    battery: Pledge  # the poster with a battery add-on, shipped to France
    poster: Pledge  # the poster alone: ships nothing
    stand: Pledge  # the lamp with a stand add-on, shipped to France

    @property
    def creator(self):
        return self.shop.campaign.creator


def _fresh(pledge: Pledge) -> Pledge:
    return db.session.get(Pledge, pledge.id)


@pytest.fixture
def funded(app, localstripe) -> Funded:
    """A funded campaign with four collected pledges (tiers, add-ons, one that ships nothing)."""
    shop = make_shop()
    tag = uuid.uuid4().hex[:8]
    lamp, poster = str(shop.lamp.id), str(shop.poster.id)
    made = []
    for n, data in enumerate([
        {"tier": lamp, "country": "fr", "total": "5600"},
        {"tier": poster, f"addons-{shop.battery.id}": "1", "country": "fr", "total": "2300"},
        {"tier": poster, "total": "1000"},
        {"tier": lamp, f"addons-{shop.stand.id}": "1", "country": "fr", "total": "8100"},
    ]):
        client = app.test_client()
        backer(client, f"survey-backer-{n}-{tag}@example.com")
        made.append(_pledge(client, localstripe, shop, **data))
    # Before the deadline the campaign is not funded: no survey yet.
    with app.test_request_context(), force_locale("en"), pytest.raises(SurveyError) as caught:
        surveys.get_or_create(shop.campaign, shop.campaign.creator)
    assert str(caught.value) == "A survey is only for a campaign that was funded."
    clock.advance(timedelta(days=31))  # works with a frozen clock too
    settlement.run_pass()
    db.session.expire_all()
    pledges = [_fresh(pledge) for pledge in made]
    assert [pledge.state for pledge in pledges] == ["collected"] * 4 and pledges[0].campaign.state == "successful"
    return Funded(shop, *pledges)


@pytest.fixture
def en(app):
    with app.test_request_context(), force_locale("en"):
        yield


def _questions(funded: Funded) -> dict[str, int]:
    """Three questions: for everyone (text, required), the lamp tier (one choice, required), the
    battery add-on (several choices, optional)."""
    campaign, creator = funded.shop.campaign, funded.creator
    everyone = surveys.add_question(campaign, creator, QuestionInput("text", "  Anything we should know? ", required=True))
    colour = surveys.add_question(campaign, creator, QuestionInput(
        "choice", "Lamp colour", ["Red", "Blue"], required=True, tier_ids=frozenset({funded.shop.lamp.id})))
    plugs = surveys.add_question(campaign, creator, QuestionInput(
        "choices", "Battery plugs", ["EU", "UK", "US"], addon_ids=frozenset({funded.shop.battery.id})))
    return {"everyone": everyone.id, "colour": colour.id, "plugs": plugs.id}


def _refused(call, *args, **kwargs) -> SurveyError:
    with pytest.raises(SurveyError) as caught:
        call(*args, **kwargs)
    return caught.value


def _kinds(kind: str) -> list[str]:
    return list(db.session.scalars(select(OutboxMessage.recipient).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)))


# --- the creator's questions ---------------------------------------------------------------------

def test_targeting_by_tier_and_by_add_on(funded, en):
    ids = _questions(funded)
    seen = {name: [q.id for q in surveys.questions_for(getattr(funded, name)).questions]
            for name in ("lamp", "battery", "poster", "stand")}
    assert seen == {"lamp": [ids["everyone"], ids["colour"]], "battery": [ids["everyone"], ids["plugs"]],
                    "poster": [ids["everyone"]], "stand": [ids["everyone"], ids["colour"]]}
    assert surveys.questions_for(funded.lamp).needs_address and not surveys.questions_for(funded.poster).needs_address
    assert surveys.questions_for(funded.lamp).questions[0].prompt == "Anything we should know?"
    # A question for a tier and an add-on reaches either.
    both = surveys.add_question(funded.shop.campaign, funded.creator, QuestionInput(
        "text", "Engraving?", tier_ids=frozenset({funded.shop.lamp.id}), addon_ids=frozenset({funded.shop.battery.id})))
    assert both.id in [q.id for q in surveys.questions_for(funded.battery).questions]
    assert both.id not in [q.id for q in surveys.questions_for(funded.poster).questions]


def test_every_limit_of_a_question(funded, en):
    campaign, creator = funded.shop.campaign, funded.creator

    def refusal(**data) -> tuple[str | None, str]:
        error = _refused(surveys.add_question, campaign, creator, QuestionInput(**{"kind": "text", "prompt": "Size?", **data}))
        return error.field, str(error)

    assert refusal(kind="essay") == ("kind", "Choose the kind of question.")
    assert refusal(prompt="   ") == ("prompt", "Write the question.")
    assert refusal(prompt="x" * 301) == ("prompt", "Keep the question under 300 characters.")
    assert refusal(kind="choice", options=["Only"]) == ("options", "Give between 2 and 20 options.")
    assert refusal(kind="choices", options=[str(n) for n in range(21)]) == ("options", "Give between 2 and 20 options.")
    assert refusal(kind="choice", options=["S", "x" * 101]) == ("options", "Keep each option under 100 characters.")
    assert refusal(kind="choice", options=["Red", " red "]) == ("options", "Each option must be different.")
    other = make_shop("USD")
    assert refusal(tier_ids=frozenset({other.lamp.id})) == ("tiers", "Choose rewards of this campaign.")
    assert refusal(addon_ids=frozenset({other.battery.id})) == ("addons", "Choose add-ons of this campaign.")
    assert db.session.scalar(select(func.count()).select_from(surveys.SurveyQuestion)) == 0
    # At the limits, and a text question keeps no options.
    fine = surveys.add_question(campaign, creator, QuestionInput("choices", "x" * 300, [str(n) for n in range(20)]))
    assert len(fine.options) == 20
    text = surveys.add_question(campaign, creator, QuestionInput("text", "Note", ["ignored", "too"]))
    assert text.options == []
    assert refusal(kind="choice", options=["", " ", "A"]) == ("options", "Give between 2 and 20 options.")
    with force_locale("fr"):
        assert refusal(prompt="")[1] != "Write the question."


def test_editing_moving_and_removing_only_while_draft(funded, en):
    campaign, creator = funded.shop.campaign, funded.creator
    ids = _questions(funded)
    surveys.update_question(campaign, creator, ids["plugs"], QuestionInput("choice", "Plug", ["EU", "UK"]))
    surveys.move_question(campaign, creator, ids["plugs"], 0)
    survey = surveys.survey_of(campaign)
    assert [(q.id, q.position) for q in survey.questions] == [(ids["plugs"], 0), (ids["everyone"], 1), (ids["colour"], 2)]
    surveys.move_question(campaign, creator, ids["plugs"], 99)
    surveys.remove_question(campaign, creator, ids["everyone"])
    db.session.expire_all()
    survey = surveys.survey_of(campaign)
    assert [(q.id, q.position, q.kind) for q in survey.questions] == [(ids["colour"], 0, "choice"), (ids["plugs"], 1, "choice")]
    # The update named no add-on: the question is now for every backer.
    assert [q.id for q in surveys.questions_for(funded.poster).questions] == [ids["plugs"]]
    assert _refused(surveys.remove_question, campaign, creator, 10**6).field == "question"
    surveys.send(campaign, creator)
    for call, args in ((surveys.add_question, (QuestionInput("text", "Late?"),)),
                       (surveys.update_question, (ids["colour"], QuestionInput("text", "Late?"))),
                       (surveys.remove_question, (ids["colour"],)), (surveys.move_question, (ids["colour"], 1)),
                       (surveys.send, ())):
        assert str(_refused(call, campaign, creator, *args)) == "The survey was sent: its questions can no longer change."


def test_only_the_campaigns_creator(funded, en):
    campaign = funded.shop.campaign
    ids = _questions(funded)
    elsewhere = make_campaign(make_user(), "live").creator
    for stranger in (funded.lamp.backer, elsewhere, make_user(moderator=True)):
        for call, args in ((surveys.get_or_create, ()), (surveys.add_question, (QuestionInput("text", "Hi?"),)),
                           (surveys.update_question, (ids["everyone"], QuestionInput("text", "Hi?"))),
                           (surveys.remove_question, (ids["everyone"],)), (surveys.move_question, (ids["everyone"], 1)),
                           (surveys.send, ()), (surveys.lock, ())):
            assert str(_refused(call, campaign, stranger, *args)) == "Only the campaign's creator can manage its survey."
    # Another campaign's creator cannot reach this campaign's questions through their own survey.
    other = make_shop("USD")
    other.campaign.state = "successful"
    db.session.commit()
    assert _refused(surveys.remove_question, other.campaign, other.campaign.creator, ids["everyone"]).field == "question"
    assert len(surveys.survey_of(campaign).questions) == 3


# --- sending -----------------------------------------------------------------------------------

def test_send_reaches_collected_pledges_only_then_late_ones(funded, en):
    campaign, creator = funded.shop.campaign, funded.creator
    _questions(funded)
    funded.stand.state = PledgeState.ERRORED  # its card failed: fixed later
    funded.poster.backer.locale = "fr"
    db.session.commit()
    assert surveys.send(campaign, creator) == 3
    survey = surveys.survey_of(campaign)
    assert survey.state == "sent" and survey.sent_at is not None
    requested = set(db.session.scalars(select(SurveyRequest.pledge_id)))
    assert requested == {funded.lamp.id, funded.battery.id, funded.poster.id}
    assert _kinds("survey_sent") == [funded.lamp.backer.email, funded.battery.backer.email, funded.poster.backer.email]
    body = db.session.scalar(select(OutboxMessage.body).where(OutboxMessage.recipient == funded.lamp.backer.email,
                                                              OutboxMessage.kind == "survey_sent"))
    assert "Lamp EUR" in body and f"/pledges/{funded.lamp.id}" in body and "give the address" in body
    french = db.session.scalar(select(OutboxMessage).where(OutboxMessage.recipient == funded.poster.backer.email,
                                                           OutboxMessage.kind == "survey_sent"))
    assert french.subject == "Quelques questions sur votre contrepartie de «\u00a0Lamp EUR\u00a0»"
    assert "Répondez au questionnaire" in french.body and "adresse" not in french.body  # the poster ships nothing
    # Not collected yet: nothing; collected later: one request and one mail, however often asked.
    assert surveys.request_late(_fresh(funded.stand)) is None
    funded.stand.state = PledgeState.COLLECTED
    db.session.commit()
    first = surveys.request_late(_fresh(funded.stand))
    assert surveys.request_late(_fresh(funded.stand)).id == first.id
    assert _kinds("survey_sent")[-1] == funded.stand.backer.email and len(_kinds("survey_sent")) == 4
    assert db.session.scalar(select(func.count()).select_from(SurveyRequest)) == 4


def test_a_survey_with_nothing_to_ask_is_not_sent(app, localstripe, en):
    shop = make_shop()
    client = app.test_client()
    backer(client, f"poster-{uuid.uuid4().hex[:6]}@example.com")
    _pledge(client, localstripe, shop, tier=str(shop.poster.id), bonus="95", total="10500")
    clock.set_offset(timedelta(days=31))
    settlement.run_pass()
    db.session.expire_all()
    campaign = db.session.get(type(shop.campaign), shop.campaign.id)
    assert campaign.state == "successful"
    assert _refused(surveys.send, campaign, campaign.creator).field == "questions"


# --- answering -----------------------------------------------------------------------------------

def _sent(funded: Funded) -> dict[str, int]:
    ids = _questions(funded)
    surveys.send(funded.shop.campaign, funded.creator)
    return ids


def test_answers_are_all_or_nothing_with_the_address(funded, en):
    ids = _sent(funded)
    pledge = _fresh(funded.battery)
    good = {ids["everyone"]: "Ring twice", ids["plugs"]: ["US", "EU"]}
    # A good answer but an address in another country than the one paid for: nothing is saved.
    error = _refused(surveys.answer, pledge, pledge.backer, good, {**PARIS, "country": "DE"})
    assert error.errors == {"country": "Your pledge paid shipping to France: the address must be in France."}
    # Bad answers and a bad address: every field's message at once.
    error = _refused(surveys.answer, pledge, pledge.backer, {ids["everyone"]: " ", ids["plugs"]: ["FR"]},
                     {**PARIS, "postal_code": "1"})
    assert set(error.errors) == {f"q-{ids['everyone']}", f"q-{ids['plugs']}", "postal_code"}
    assert error.field == f"q-{ids['everyone']}" and error.errors[error.field] == "Answer this question."
    assert error.errors[f"q-{ids['plugs']}"] == "Choose from the options given."
    # No address at all, for a pledge that ships.
    assert "name" in _refused(surveys.answer, pledge, pledge.backer, good, None).errors
    assert db.session.scalar(select(func.count()).select_from(SurveyAnswer)) == 0
    assert db.session.scalar(select(func.count()).select_from(ShippingAddress)) == 0
    assert surveys.request_of(pledge).answered_at is None

    request = surveys.answer(pledge, pledge.backer, good, PARIS)
    assert request.answered_at is not None
    saved = surveys.answers_of(pledge)
    assert saved[ids["everyone"]].value == "Ring twice" and saved[ids["plugs"]].value == ["EU", "US"]
    assert db.session.scalar(select(ShippingAddress.city).where(ShippingAddress.pledge_id == pledge.id)) == "PARIS"


def test_every_limit_of_an_answer(funded, en):
    ids = _sent(funded)
    lamp, poster = _fresh(funded.lamp), _fresh(funded.poster)

    def refusal(pledge, answers, address=PARIS) -> dict[str, str]:
        return _refused(surveys.answer, pledge, pledge.backer, answers, address if pledge.country else None).errors

    ok = {ids["everyone"]: "ok"}
    assert refusal(poster, {ids["everyone"]: "x" * 2001}) == {f"q-{ids['everyone']}": "Keep your answer under 2000 characters."}
    assert refusal(lamp, ok) == {f"q-{ids['colour']}": "Choose an option."}
    assert refusal(lamp, {**ok, ids["colour"]: "Green"}) == {f"q-{ids['colour']}": "Choose from the options given."}
    assert refusal(lamp, {**ok, ids["colour"]: ["Red", "Blue"]}) == {f"q-{ids['colour']}": "Choose only one option."}
    battery = _fresh(funded.battery)
    assert refusal(battery, {**ok, ids["plugs"]: ["EU", "EU"]}) == {f"q-{ids['plugs']}": "Choose each option only once."}
    # At the limits; an optional question may stay unanswered; keys may be the form's names.
    surveys.answer(poster, poster.backer, {f"q-{ids['everyone']}": "x" * 2000})
    surveys.answer(battery, battery.backer, {str(ids["everyone"]): "ok"}, PARIS)
    assert surveys.answers_of(battery)[ids["plugs"]].value == []
    surveys.answer(lamp, lamp.backer, {**ok, ids["colour"]: "Blue", ids["plugs"]: ["UK"]}, PARIS)
    assert ids["plugs"] not in surveys.answers_of(lamp)  # not asked of the lamp: ignored


def test_answers_change_until_locked(funded, en):
    ids = _sent(funded)
    lamp = _fresh(funded.lamp)
    surveys.answer(lamp, lamp.backer, {ids["everyone"]: "First", ids["colour"]: "Red"}, PARIS)
    surveys.answer(lamp, lamp.backer, {ids["everyone"]: "Second", ids["colour"]: "Blue"}, {**PARIS, "line2": "Escalier C"})
    saved = surveys.answers_of(lamp)
    assert (saved[ids["everyone"]].value, saved[ids["colour"]].value) == ("Second", "Blue")
    assert db.session.scalar(select(func.count()).select_from(SurveyAnswer)) == 2
    assert db.session.scalar(select(ShippingAddress.line2)) == "Escalier C"
    # Only the backer answers for their pledge.
    other = _fresh(funded.stand)
    assert str(_refused(surveys.answer, lamp, other.backer, {}, PARIS)) == "Only the backer can answer the survey of a pledge."
    assert str(_refused(surveys.answer, lamp, None, {}, PARIS)) == "Only the backer can answer the survey of a pledge."
    survey = surveys.lock(funded.shop.campaign, funded.creator)
    assert survey.state == "locked" and survey.locked_at is not None
    assert str(_refused(surveys.answer, lamp, lamp.backer, {ids["everyone"]: "Third", ids["colour"]: "Red"}, PARIS)) == (
        "The survey is closed: answers can no longer change.")
    assert surveys.answers_of(lamp)[ids["everyone"]].value == "Second"
    assert _refused(surveys.lock, funded.shop.campaign, funded.creator)
    assert surveys.request_late(_fresh(funded.stand)).pledge_id == funded.stand.id  # requested when sent


def test_no_answer_before_sending(funded, en):
    ids = _questions(funded)
    lamp = _fresh(funded.lamp)
    assert str(_refused(surveys.answer, lamp, lamp.backer, {ids["everyone"]: "Hi"}, PARIS)) == "This pledge has no survey to answer."


# --- reminders -----------------------------------------------------------------------------------

def test_reminders_weekly_and_only_to_those_who_want_them(funded, en):
    ids = _sent(funded)
    lamp, poster, battery = _fresh(funded.lamp), _fresh(funded.poster), _fresh(funded.battery)
    surveys.answer(poster, poster.backer, {ids["everyone"]: "Done"})
    battery.backer.email_updates = False  # turned campaign updates off
    db.session.commit()
    now = clock.utcnow()
    assert surveys.remind_due(now + timedelta(days=6, hours=23)) == 0
    assert surveys.remind_due(now + timedelta(days=7)) == 2  # the lamp and the stand; not the answered, not the unwilling
    assert sorted(_kinds("survey_reminder")) == sorted([lamp.backer.email, funded.stand.backer.email])
    assert surveys.remind_due(now + timedelta(days=8)) == 0  # at most one a week
    assert surveys.remind_due(now + timedelta(days=13, hours=23)) == 0
    surveys.answer(lamp, lamp.backer, {ids["everyone"]: "Ok", ids["colour"]: "Red"}, PARIS)
    assert surveys.remind_due(now + timedelta(days=14)) == 1
    assert _kinds("survey_reminder")[-1] == funded.stand.backer.email
    body = db.session.scalar(select(OutboxMessage.body).where(OutboxMessage.kind == "survey_reminder"))
    assert "Lamp EUR" in body and "Stop emails about campaign updates" in body
    # Once locked, nobody is reminded.
    surveys.lock(funded.shop.campaign, funded.creator)
    assert surveys.remind_due(now + timedelta(days=60)) == 0


def test_the_worker_asks_pledges_collected_after_sending(funded, en):
    """A payment fixed after the survey went out: the worker's job gives that pledge its request."""
    _questions(funded)
    funded.stand.state = PledgeState.ERRORED
    db.session.commit()
    assert surveys.send(funded.shop.campaign, funded.creator) == 3
    assert surveys.request_missing() == 0  # the errored pledge is not collected
    funded.stand.state = PledgeState.COLLECTED  # fixed by its backer
    db.session.commit()
    assert surveys.request_missing() == 1 and surveys.request_missing() == 0
    assert _kinds("survey_sent")[-1] == funded.stand.backer.email
