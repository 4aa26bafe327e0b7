"""Moderator forms (the decision form's field names, `decision` and `note`, are part of the contract, SPEC §7)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import HiddenField, RadioField, SelectChoice, SelectField, SubmitField, TextAreaField
from wtforms.validators import AnyOf, InputRequired, Length

from app.campaigns.services import DECISIONS
from app.forms import BaseForm
from app.operations.figures import DEFAULT_WEEKS, PERIODS

NOTE_MAX = 5000


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class DecisionForm(BaseForm):
    """Approve, request changes or reject a submitted campaign. Whether a note is needed is the
    service's rule (`campaigns.services.decide`), so it is checked there, once."""

    decision = RadioField(
        _l("Decision"),
        choices=[
            SelectChoice("approve", _l("Approve")),
            SelectChoice("request_changes", _l("Request changes")),
            SelectChoice("reject", _l("Reject")),
        ],
        # A bogus value gets our message, not WTForms' generic "Not a valid choice".
        validate_choice=False,
        validators=[InputRequired(_l("Choose a decision.")), AnyOf(DECISIONS, message=_l("Choose a decision."))],
    )
    note = TextAreaField(
        _l("Note to the creator"),
        filters=[_strip],
        validators=[Length(max=NOTE_MAX, message=_l("Keep the note under %(max)d characters."))],
    )
    submit = SubmitField(_l("Send decision"))


class FeatureForm(BaseForm):
    """Pick a live campaign for the home page ("1") or take it off ("0")."""

    featured = HiddenField(validators=[InputRequired(), AnyOf(("0", "1"))])


class SuspendForm(BaseForm):
    """Stop a live campaign; the reason is required (checked by `campaigns.services.suspend`)."""

    # Its own id: the decision form's `note` may be on the same page.
    note = TextAreaField(
        _l("Reason for the suspension"),
        id="suspend-note",
        filters=[_strip],
        validators=[Length(max=NOTE_MAX, message=_l("Keep the reason under %(max)d characters."))],
    )
    submit = SubmitField(_l("Suspend campaign"))


class RefundForm(BaseForm):
    """Refund a collected pledge; the note is required (checked by `settlement.refunds.refund`)."""

    note = TextAreaField(
        _l("Why is this pledge refunded?"),
        id="refund-note",
        filters=[_strip],
        validators=[Length(max=NOTE_MAX, message=_l("Keep the note under %(max)d characters."))],
    )
    submit = SubmitField(_l("Refund this pledge"))


class ResolveReportsForm(BaseForm):
    """Resolve every open report of a campaign: dismiss them, or suspend the campaign. The note is
    required either way (checked by `community.reports`)."""

    resolution = RadioField(
        _l("Resolution"),
        choices=[
            SelectChoice("dismissed", _l("Dismiss the reports: the campaign stays as it is")),
            SelectChoice("suspended", _l("Suspend the campaign: it stops and no backer is charged")),
        ],
        validate_choice=False,
        validators=[InputRequired(_l("Choose how to resolve the reports.")),
                    AnyOf(("dismissed", "suspended"), message=_l("Choose how to resolve the reports."))],
    )
    note = TextAreaField(
        _l("Note"),
        id="resolve-note",
        filters=[_strip],
        validators=[Length(max=NOTE_MAX, message=_l("Keep the note under %(max)d characters."))],
    )
    submit = SubmitField(_l("Resolve reports"))


class PeriodForm(BaseForm):
    """The operations page's period (a GET form: it changes nothing, so it carries no CSRF token)."""

    class Meta(BaseForm.Meta):
        csrf = False

    weeks = SelectField(
        _l("Period"),
        choices=[SelectChoice(str(weeks), _l("Last %(num)d weeks", num=weeks)) for weeks in PERIODS],
        default=str(DEFAULT_WEEKS),
        # A bogus value gets our message, not WTForms' generic "Not a valid choice".
        validate_choice=False,
        validators=[AnyOf([str(weeks) for weeks in PERIODS], message=_l("Choose one of the periods in the list."))],
    )
