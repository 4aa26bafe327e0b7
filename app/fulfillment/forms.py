"""Forms of the fulfillment area. Each part keeps to its own section (surveys, data rights and
fulfillment are written side by side)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, FileRequired
from wtforms import RadioField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import InputRequired, Length

from app.forms import BaseForm, multi_line, one_line, trimmed
from app.fulfillment.models import CARRIER_MAX, PROBLEM_MAX, TRACKING_MAX, ProblemKind

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
