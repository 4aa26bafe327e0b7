"""The backer survey (issue 17, SPEC §14): one per successful campaign. The creator writes questions
(free text, one option, several options), each for every backer or only for chosen tiers and/or
add-ons, and sends it: every collected pledge gets a request and a mail. Backers answer — with the
shipping address when their pledge ships — and may change their answers until the creator locks the
survey. Unanswered requests are reminded weekly (optional mail, the `updates` category).

Plain functions that commit; a refusal is a SurveyError with a message fit to show and the form
field it is about (`errors` holds every field's message when an answer is refused).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app import clock
from app.accounts.models import User
from app.campaigns import services as campaigns_services
from app.campaigns.models import Addon, Campaign, CampaignState, Tier
from app.extensions import db
from app.fulfillment import addresses
from app.fulfillment.models import (
    ANSWER_MAX,
    OPTION_MAX,
    OPTIONS_MAX,
    OPTIONS_MIN,
    PROMPT_MAX,
    QuestionKind,
    Survey,
    SurveyAnswer,
    SurveyQuestion,
    SurveyRequest,
    SurveyState,
)
from app.links import external_url
from app.notifications import services as mail
from app.pledges.models import Pledge, PledgeState

#: How often an unanswered request is reminded (at most).
REMIND_EVERY = timedelta(days=7)
#: A reminder is optional mail: news from a campaign the member backs.
REMINDER_CATEGORY = "updates"


class SurveyError(ValueError):
    """A refused survey action, with a message fit to show; `field` names the form field (`q-<id>`
    for a question's answer, an address field's name); `errors` every field's message."""

    def __init__(self, message: str, field: str | None = None, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.errors = errors or ({field: message} if field else {})


@dataclass
class QuestionInput:
    kind: str
    prompt: str
    #: The options of a choice question (ignored for a text question).
    options: list[str] = field(default_factory=list)
    required: bool = False
    #: Whom it is for: empty and empty = every backer.
    tier_ids: frozenset[int] = frozenset()
    addon_ids: frozenset[int] = frozenset()


@dataclass(frozen=True)
class SurveyFor:
    """What one pledge is asked: its questions, in order, and whether it must give an address."""

    survey: Survey | None
    questions: list[SurveyQuestion]
    needs_address: bool


# --- the creator's side ------------------------------------------------------------------------

def survey_of(campaign: Campaign) -> Survey | None:
    return db.session.scalar(select(Survey).where(Survey.campaign_id == campaign.id))


def _check_creator(campaign: Campaign, creator: User) -> None:
    if creator is None or campaign.creator_id != creator.id:
        raise SurveyError(_("Only the campaign's creator can manage its survey."))
    if campaign.state != CampaignState.SUCCESSFUL:
        raise SurveyError(_("A survey is only for a campaign that was funded."))


def _draft(campaign: Campaign, creator: User) -> Survey:
    survey = get_or_create(campaign, creator)
    if survey.state != SurveyState.DRAFT:
        raise SurveyError(_("The survey was sent: its questions can no longer change."))
    return survey


def get_or_create(campaign: Campaign, creator: User) -> Survey:
    """The campaign's survey, made (a draft) on first use. Only its creator, once it was funded."""
    _check_creator(campaign, creator)
    survey = survey_of(campaign)
    if survey is not None:
        return survey
    survey = Survey(campaign_id=campaign.id, state=SurveyState.DRAFT)
    db.session.add(survey)
    try:
        db.session.commit()
    except IntegrityError:  # made at the same moment in another request
        db.session.rollback()
        survey = survey_of(campaign)
    return survey


def _clean_question(campaign: Campaign, data: QuestionInput) -> QuestionInput:
    try:
        kind = QuestionKind(data.kind)
    except ValueError:
        raise SurveyError(_("Choose the kind of question."), "kind") from None
    prompt = " ".join(str(data.prompt or "").split())
    if not prompt:
        raise SurveyError(_("Write the question."), "prompt")
    if len(prompt) > PROMPT_MAX:
        raise SurveyError(_("Keep the question under %(max)d characters.", max=PROMPT_MAX), "prompt")
    options: list[str] = []
    if kind != QuestionKind.TEXT:
        options = [" ".join(str(option or "").split()) for option in data.options or []]
        options = [option for option in options if option]
        if not OPTIONS_MIN <= len(options) <= OPTIONS_MAX:
            raise SurveyError(_("Give between %(min)d and %(max)d options.", min=OPTIONS_MIN, max=OPTIONS_MAX), "options")
        if any(len(option) > OPTION_MAX for option in options):
            raise SurveyError(_("Keep each option under %(max)d characters.", max=OPTION_MAX), "options")
        if len({option.casefold() for option in options}) != len(options):
            raise SurveyError(_("Each option must be different."), "options")
    tiers = {tier.id for tier in campaign.tiers if tier.deleted_at is None}
    if not set(data.tier_ids or ()) <= tiers:
        raise SurveyError(_("Choose rewards of this campaign."), "tiers")
    addons = {addon.id for addon in campaign.addons if addon.deleted_at is None}
    if not set(data.addon_ids or ()) <= addons:
        raise SurveyError(_("Choose add-ons of this campaign."), "addons")
    return QuestionInput(kind.value, prompt, options, bool(data.required),
                         frozenset(data.tier_ids or ()), frozenset(data.addon_ids or ()))


def _apply(question: SurveyQuestion, clean: QuestionInput) -> None:
    question.kind, question.prompt, question.options, question.required = (
        clean.kind, clean.prompt, list(clean.options), clean.required)
    question.tiers = list(db.session.scalars(select(Tier).where(Tier.id.in_(clean.tier_ids)))) if clean.tier_ids else []
    question.addons = list(db.session.scalars(select(Addon).where(Addon.id.in_(clean.addon_ids)))) if clean.addon_ids else []


def _question(survey: Survey, question_id: int) -> SurveyQuestion:
    question = db.session.get(SurveyQuestion, question_id)
    if question is None or question.survey_id != survey.id:
        raise SurveyError(_("This question is not in the survey."), "question")
    return question


def _renumber(survey: Survey) -> None:
    for position, question in enumerate(survey.questions):
        question.position = position


def add_question(campaign: Campaign, creator: User, data: QuestionInput) -> SurveyQuestion:
    """Add a question at the end of the draft survey."""
    survey = _draft(campaign, creator)
    clean = _clean_question(campaign, data)
    question = SurveyQuestion(survey_id=survey.id, position=len(survey.questions))
    _apply(question, clean)
    survey.questions.append(question)
    db.session.commit()
    return question


def update_question(campaign: Campaign, creator: User, question_id: int, data: QuestionInput) -> SurveyQuestion:
    survey = _draft(campaign, creator)
    question = _question(survey, question_id)
    _apply(question, _clean_question(campaign, data))
    db.session.commit()
    return question


def remove_question(campaign: Campaign, creator: User, question_id: int) -> None:
    survey = _draft(campaign, creator)
    survey.questions.remove(_question(survey, question_id))
    _renumber(survey)
    db.session.commit()


def move_question(campaign: Campaign, creator: User, question_id: int, position: int) -> None:
    """Move a question to `position` (0 = first; beyond the end = last)."""
    survey = _draft(campaign, creator)
    question = _question(survey, question_id)
    ordered = [q for q in survey.questions if q.id != question.id]
    ordered.insert(max(0, min(int(position), len(ordered))), question)
    for index, each in enumerate(ordered):
        each.position = index
    db.session.commit()
    db.session.expire(survey, ["questions"])


# --- what a pledge is asked ----------------------------------------------------------------------

def _targets(question: SurveyQuestion, tier_id: int | None, addon_ids: Iterable[int]) -> bool:
    if question.for_everyone:
        return True
    held = set(addon_ids)
    return any(tier.id == tier_id for tier in question.tiers) or any(addon.id in held for addon in question.addons)


def questions_for(pledge: Pledge) -> SurveyFor:
    """The questions this pledge sees — those for every backer, its tier's, its add-ons' — in the
    survey's order, and whether it must give an address (it paid shipping somewhere)."""
    survey = survey_of(pledge.campaign)
    needs_address = pledge.country is not None
    if survey is None:
        return SurveyFor(None, [], needs_address)
    held = pledge.addon_quantities()
    return SurveyFor(survey, [q for q in survey.questions if _targets(q, pledge.tier_id, held)], needs_address)


def preview(campaign: Campaign, tier_id: int | None, addon_ids: Iterable[int] = ()) -> SurveyFor:
    """What a backer of `tier_id` (None: no reward) holding `addon_ids` would be asked — the creator's
    preview, by the same targeting rule as `questions_for`. The address is asked when the tier or one
    of the add-ons ships."""
    survey = survey_of(campaign)
    held = set(addon_ids)
    tier = next((t for t in campaign.tiers if t.id == tier_id and t.deleted_at is None), None)
    ships = bool(tier and tier.ships) or any(a.ships for a in campaign.addons if a.id in held and a.deleted_at is None)
    if survey is None:
        return SurveyFor(None, [], ships)
    return SurveyFor(survey, [q for q in survey.questions if _targets(q, tier_id, held)], ships)


def counts(survey: Survey | None) -> tuple[int, int]:
    """How many pledges were sent the survey, and how many of them answered."""
    if survey is None:
        return 0, 0
    sent, answered = db.session.execute(
        select(func.count(SurveyRequest.id), func.count(SurveyRequest.answered_at)).where(SurveyRequest.survey_id == survey.id)
    ).one()
    return sent, answered


def request_of(pledge: Pledge) -> SurveyRequest | None:
    return db.session.scalar(select(SurveyRequest).where(SurveyRequest.pledge_id == pledge.id))


def answers_of(pledge: Pledge) -> dict[int, SurveyAnswer]:
    rows = db.session.scalars(select(SurveyAnswer).where(SurveyAnswer.pledge_id == pledge.id))
    return {row.question_id: row for row in rows}


# --- sending, late requests, locking -------------------------------------------------------------

def _mail_request(pledge: Pledge, campaign: Campaign, template: str, subject) -> None:
    mail.queue_mail(pledge.backer, subject, template, pledge=pledge, campaign=campaign,
                    link=external_url("fulfillment.answer", pledge_id=pledge.id))


def _sent_subject(campaign: Campaign):
    return _l("A few questions about your reward from “%(title)s”", title=campaign.title)


def send(campaign: Campaign, creator: User) -> int:
    """Send the draft survey: a request and a mail to each collected pledge. How many were sent."""
    survey = _draft(campaign, creator)
    pledges = db.session.scalars(
        select(Pledge).where(Pledge.campaign_id == campaign.id, Pledge.state == PledgeState.COLLECTED).order_by(Pledge.id)
    ).all()
    if not survey.questions and not any(pledge.country for pledge in pledges):
        raise SurveyError(_("Add a question first: there is nothing to ask."), "questions")
    now = clock.utcnow()
    survey.state, survey.sent_at = SurveyState.SENT, now
    already = set(db.session.scalars(select(SurveyRequest.pledge_id).where(SurveyRequest.survey_id == survey.id)))
    sent = 0
    with mail.mail_batch():
        for pledge in pledges:
            if pledge.id in already:
                continue
            db.session.add(SurveyRequest(survey_id=survey.id, pledge_id=pledge.id, sent_at=now))
            _mail_request(pledge, campaign, "survey_sent", _sent_subject(campaign))
            sent += 1
    db.session.commit()
    return sent


def request_late(pledge: Pledge) -> SurveyRequest | None:
    """A pledge collected after the survey was sent (a payment fixed later) gets its request and mail;
    nothing when it has one already, is not collected, or there is no survey open. Commits."""
    existing = request_of(pledge)
    if existing is not None or pledge.state != PledgeState.COLLECTED:
        return existing
    survey = survey_of(pledge.campaign)
    if survey is None or survey.state != SurveyState.SENT:
        return None
    request = SurveyRequest(survey_id=survey.id, pledge_id=pledge.id, sent_at=clock.utcnow())
    db.session.add(request)
    _mail_request(pledge, pledge.campaign, "survey_sent", _sent_subject(pledge.campaign))
    try:
        db.session.commit()
    except IntegrityError:  # settled twice at once: the other made it (and mailed)
        db.session.rollback()
        return request_of(pledge)
    return request


def request_missing(limit: int = 200) -> int:
    """The job behind `request_late`: collected pledges of campaigns whose survey is out that have no
    request yet (their payment was fixed after sending) get theirs. Settlement stays below this floor:
    it leaves the pledge collected, and the worker calls this. Returns how many were asked."""
    late = db.session.scalars(
        select(Pledge).join(Survey, Survey.campaign_id == Pledge.campaign_id)
        .where(Survey.state == SurveyState.SENT.value, Pledge.state == PledgeState.COLLECTED.value,
               ~select(SurveyRequest.id).where(SurveyRequest.pledge_id == Pledge.id).exists())
        .order_by(Pledge.id).limit(limit)
    ).all()
    return sum(1 for pledge in late if request_late(pledge) is not None)


def lock(campaign: Campaign, creator: User) -> Survey:
    """Make the answers final (the creator is about to ship)."""
    _check_creator(campaign, creator)
    survey = survey_of(campaign)
    if survey is None or survey.state != SurveyState.SENT:
        raise SurveyError(_("Only a survey that was sent can be locked."))
    survey.state, survey.locked_at = SurveyState.LOCKED, clock.utcnow()
    db.session.commit()
    return survey


# --- the backer's side ---------------------------------------------------------------------------

def _raw_for(answers: dict, question_id: int):
    for key in (question_id, str(question_id), f"q-{question_id}"):
        if key in answers:
            return answers[key]
    return None


def _check_answer(question: SurveyQuestion, raw) -> tuple[str, list[str]] | str:
    """(text, choices) to store, or the message saying what is wrong."""
    if question.kind == QuestionKind.TEXT:
        text = str(raw or "").strip()
        if question.required and not text:
            return _("Answer this question.")
        if len(text) > ANSWER_MAX:
            return _("Keep your answer under %(max)d characters.", max=ANSWER_MAX)
        return text, []
    if raw is None or raw == "":
        chosen: list[str] = []
    elif isinstance(raw, str):
        chosen = [raw]
    else:
        chosen = [str(value) for value in raw if value not in (None, "")]
    if any(value not in question.options for value in chosen):
        return _("Choose from the options given.")
    if question.kind == QuestionKind.CHOICE:
        if len(chosen) > 1:
            return _("Choose only one option.")
        if question.required and not chosen:
            return _("Choose an option.")
        return "", chosen
    if question.required and not chosen:
        return _("Choose at least one option.")
    if len(set(chosen)) != len(chosen):
        return _("Choose each option only once.")
    return "", [option for option in question.options if option in chosen]  # in the question's order


def answer(pledge: Pledge, backer: User, answers: dict, address: dict | None = None) -> SurveyRequest:
    """The backer answers (or changes their answers): every answer and the address (when the pledge
    ships) are checked first, and nothing is saved unless all pass. `answers` maps a question's id
    to what was typed or chosen (a list for a `choices` question). Refused when the survey is locked."""
    if backer is None or pledge.backer_id != backer.id:
        raise SurveyError(_("Only the backer can answer the survey of a pledge."))
    request = request_of(pledge)
    if request is None or pledge.state != PledgeState.COLLECTED:
        raise SurveyError(_("This pledge has no survey to answer."))
    asked = questions_for(pledge)
    if asked.survey is None or asked.survey.state != SurveyState.SENT:
        raise SurveyError(_("The survey is closed: answers can no longer change."))

    errors: dict[str, str] = {}
    checked: dict[int, tuple[str, list[str]]] = {}
    for question in asked.questions:
        outcome = _check_answer(question, _raw_for(answers or {}, question.id))
        if isinstance(outcome, str):
            errors[f"q-{question.id}"] = outcome
        else:
            checked[question.id] = outcome
    if asked.needs_address:
        try:
            addresses.validate(address or {}, pledge.country)
        except addresses.AddressError as error:
            errors.update(error.errors)
    if errors:
        first = next(iter(errors))
        raise SurveyError(errors[first], first, errors)

    now = clock.utcnow()
    existing = answers_of(pledge)
    for question_id, (text, choices) in checked.items():
        row = existing.get(question_id)
        if row is None:
            row = SurveyAnswer(pledge_id=pledge.id, question_id=question_id)
            db.session.add(row)
        row.text, row.choices, row.updated_at = text, choices, now
    request.answered_at = now
    if asked.needs_address:
        # Checked above; saving it commits the answers with it, in one transaction.
        addresses.save_address(pledge, backer, address or {})
    else:
        db.session.commit()
    return request


# --- reminders -----------------------------------------------------------------------------------

def remind_due(now: datetime | None = None) -> int:
    """Remind the backers who have not answered, a week after the survey came (or after the last
    reminder), at most once a week, unless they turned campaign updates off. How many were mailed.
    A plain job: the worker or cron calls it as often as it likes."""
    now = now or clock.utcnow()
    last = func.coalesce(SurveyRequest.last_reminded_at, SurveyRequest.sent_at)
    due = db.session.scalars(
        select(SurveyRequest)
        .join(Survey, Survey.id == SurveyRequest.survey_id)
        .join(Pledge, Pledge.id == SurveyRequest.pledge_id)
        .where(SurveyRequest.answered_at.is_(None), Survey.state == SurveyState.SENT,
               Pledge.state == PledgeState.COLLECTED, last <= now - REMIND_EVERY)
        .order_by(SurveyRequest.id)
    ).all()
    mailed = 0
    with mail.mail_batch():
        for request in due:
            request.last_reminded_at = now  # considered this week, mailed or not
            pledge = request.pledge
            campaign = pledge.campaign
            if mail.queue_mail(pledge.backer, _l("Reminder: your answers for “%(title)s”", title=campaign.title),
                               "survey_reminder", category=REMINDER_CATEGORY, pledge=pledge, campaign=campaign,
                               link=external_url("fulfillment.answer", pledge_id=pledge.id)) is not None:
                mailed += 1
    db.session.commit()
    return mailed


# --- the creator's dashboard -----------------------------------------------------------------

def _survey_to_send(campaigns: list[Campaign]) -> dict[int, str]:
    """Funded campaigns whose survey is not sent yet: the creator has no address to ship to (one statement)."""
    funded = [c.id for c in campaigns]
    sent = set(db.session.scalars(select(Survey.campaign_id).where(
        Survey.campaign_id.in_(funded), Survey.state != SurveyState.DRAFT.value)))
    return {cid: _("Send the backer survey: it asks your backers for their shipping address.") for cid in funded if cid not in sent}


campaigns_services.attention_checks.append((frozenset({CampaignState.SUCCESSFUL.value}), _survey_to_send))
