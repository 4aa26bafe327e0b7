"""Fulfillment forms. Input checks only: the rules (limits of a question, of an answer, an address
in the country paid for) are the services', whose refusals name the field they are about."""
from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    HiddenField,
    PasswordField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length

from app.accounts.services import PASSWORD_MAX
from app.forms import BaseForm, multi_line, one_line, trimmed
from app.fulfillment.models import CARRIER_MAX, PROBLEM_MAX, TRACKING_MAX, ProblemKind, QuestionKind, SurveyQuestion

# --- the backer survey: the creator's questions ----------------------------------------------------


def _ids(values) -> frozenset[int]:
    """The ids ticked; anything that is no id becomes -1, which the service refuses as not this campaign's."""
    return frozenset(int(value) if value.isdigit() and len(value) < 12 else -1 for value in values or () if value)


class QuestionForm(BaseForm):
    """A survey question: its kind, the question, the options of a choice (one per line), whether it
    must be answered, and whom it is for (ticked rewards and add-ons; none ticked: every backer)."""

    kind = RadioField(_l("Kind of answer"), default=QuestionKind.TEXT.value, validate_choice=False, choices=[
        (QuestionKind.TEXT.value, _l("Short text")), (QuestionKind.CHOICE.value, _l("One choice")),
        (QuestionKind.CHOICES.value, _l("Several choices")),
    ])
    prompt = StringField(_l("Question"), filters=[one_line])
    options = TextAreaField(_l("Options, one per line"), filters=[multi_line], render_kw={"rows": 4})
    required = BooleanField(_l("Backers must answer it"))
    tiers = SelectMultipleField(_l("Rewards"), coerce=str, validate_choice=False)
    addons = SelectMultipleField(_l("Add-ons"), coerce=str, validate_choice=False)
    submit = SubmitField(_l("Add the question"))

    def __init__(self, *args, campaign, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.tiers.choices = [(str(tier.id), tier.title) for tier in campaign.tiers if tier.deleted_at is None]
        self.addons.choices = [(str(addon.id), addon.title) for addon in campaign.addons if addon.deleted_at is None]

    def to_input(self):
        from app.fulfillment.surveys import QuestionInput

        lines = (self.options.data or "").split("\n")
        return QuestionInput(kind=self.kind.data or "", prompt=self.prompt.data or "", options=lines,
                             required=bool(self.required.data), tier_ids=_ids(self.tiers.data), addon_ids=_ids(self.addons.data))

    def fill_from(self, question: SurveyQuestion) -> None:
        self.kind.data, self.prompt.data, self.required.data = question.kind, question.prompt, question.required
        self.options.data = "\n".join(question.options)
        self.tiers.data = [str(tier.id) for tier in question.tiers]
        self.addons.data = [str(addon.id) for addon in question.addons]


class MoveQuestionForm(BaseForm):
    direction = SelectField(_l("Direction"), choices=[("up", _l("Up")), ("down", _l("Down"))], validators=[DataRequired()])


class SurveyActionForm(BaseForm):
    """Send, lock, remove: one button, the CSRF token."""


# --- the backer survey: the backer's answers -------------------------------------------------------

class AnswerForm(BaseForm):
    """The base of a pledge's survey form; `answer_form` adds its questions (`q-<id>`) and, when the
    pledge ships, the address fields of its country (SPEC §14 names)."""

    submit = SubmitField(_l("Send your answers"))

    questions: list[SurveyQuestion] = []
    address_fields: list = []

    def answers(self) -> dict[str, str | list[str]]:
        return {f"q-{question.id}": self[f"q-{question.id}"].data for question in self.questions}

    def address(self) -> dict[str, str] | None:
        if not self.address_fields:
            return None
        return {spec.name: self[spec.name].data or "" for spec in self.address_fields} | {"country": self.country.data or ""}

    def show_errors(self, errors: dict[str, str]) -> None:
        """Each of a refusal's messages next to its field; those about no field above the form."""
        for name, message in errors.items():
            if name in self:
                self[name].errors = [*self[name].errors, message]
            else:
                self.form_errors.append(message)


def answer_form(questions: list[SurveyQuestion], spec=None, **kwargs) -> AnswerForm:
    """The survey form of one pledge: a field per question asked, in order, and the address form of
    `spec` (an `addresses.FormSpec`: its fields, labels and order, region choices), the country fixed."""
    fields: dict = {}
    for question in questions:
        name = f"q-{question.id}"
        options = [(option, option) for option in question.options]
        if question.kind == QuestionKind.CHOICE:
            fields[name] = RadioField(question.prompt, choices=options, validate_choice=False)
        elif question.kind == QuestionKind.CHOICES:
            fields[name] = SelectMultipleField(question.prompt, choices=options, coerce=str, validate_choice=False)
        else:
            fields[name] = TextAreaField(question.prompt, filters=[multi_line, trimmed], render_kw={"rows": 2})
    specs = list(spec.fields) if spec is not None else []
    for each in specs:
        if each.choices:
            fields[each.name] = SelectField(each.label, choices=[("", _("Choose…")), *each.choices], validate_choice=False)
        else:
            fields[each.name] = StringField(each.label, filters=[one_line])
    if spec is not None:
        fields["country"] = HiddenField(default=spec.country)
    form_class = type("PledgeSurveyForm", (AnswerForm,), {**fields, "questions": list(questions), "address_fields": specs})
    return form_class(**kwargs)


# --- data rights ---------------------------------------------------------------------------------


class DeleteAccountForm(BaseForm):
    """Deleting the account: the member types their password again to confirm."""

    password = PasswordField(_l("Your password, to confirm"),
                             validators=[DataRequired(_l("Enter your password to confirm.")), Length(max=PASSWORD_MAX)])
    submit = SubmitField(_l("Delete my account"))


# --- fulfillment ---


class ShipForm(BaseForm):
    """The creator marks one item shipped (the page names the fields per row: carrier-<item id> …)."""

    carrier = StringField(_l("Carrier"), filters=[one_line], validators=[
        InputRequired(_l("Enter the carrier.")), Length(max=CARRIER_MAX, message=_l("Keep the carrier under %(max)d characters."))])
    tracking = StringField(_l("Tracking number or link"), filters=[trimmed], validators=[
        InputRequired(_l("Enter the tracking number or link.")),
        Length(max=TRACKING_MAX, message=_l("Keep the tracking under %(max)d characters."))])
    shipped_on = StringField(_l("Shipped on"), filters=[trimmed], validators=[InputRequired(_l("Enter the day it was shipped."))])
    submit = SubmitField(_l("Mark shipped"))


class ImportForm(BaseForm):
    """A tracking file: checked first (a dry run), applied only when every row is right."""

    file = FileField(_l("Tracking file (CSV)"), validators=[FileRequired(_l("Choose a CSV file."))])
    check = SubmitField(_l("Check"))
    apply = SubmitField(_l("Apply"))


class DeliveredForm(BaseForm):
    submit = SubmitField(_l("I received it"))


def _problem_choices():
    return [(ProblemKind.LOST.value, _l("Lost on the way")), (ProblemKind.DAMAGED.value, _l("Arrived damaged")),
            (ProblemKind.WRONG_ITEM.value, _l("Wrong item"))]


class ProblemForm(BaseForm):
    """The backer reports a problem with an item: what went wrong, and a first message to the creator."""

    kind = RadioField(_l("What went wrong?"), choices=_problem_choices(), validators=[InputRequired(_l("Choose what went wrong."))])
    body = TextAreaField(_l("Tell the creator what happened"), filters=[multi_line, trimmed], validators=[
        InputRequired(_l("Write a message.")), Length(max=PROBLEM_MAX, message=_l("Keep the message under %(max)d characters."))])
    submit = SubmitField(_l("Report the problem"))


class MessageForm(BaseForm):
    """A message in an item's problem thread (its backer or the campaign's creator)."""

    body = TextAreaField(_l("Your message"), filters=[multi_line, trimmed], validators=[
        InputRequired(_l("Write a message.")), Length(max=PROBLEM_MAX, message=_l("Keep the message under %(max)d characters."))])
    submit = SubmitField(_l("Send"))


class FilterForm(BaseForm):
    """The fulfillment page's filters (a GET form: no CSRF token, nothing changes)."""

    class Meta:
        csrf = False

    tier = SelectField(_l("Reward"), choices=[], validate_choice=False)
    country = SelectField(_l("Country"), choices=[], validate_choice=False)
    state = SelectField(_l("State"), choices=[], validate_choice=False)
