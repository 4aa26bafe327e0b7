"""The report form (members) — the moderators' resolution form lives in `moderation.forms`."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import RadioField, SelectChoice, SubmitField, TextAreaField
from wtforms.validators import AnyOf, InputRequired, Length

from app.community.reports import NOTE_MAX, REASONS
from app.forms import BaseForm


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class ReportForm(BaseForm):
    """Report a live campaign to the moderators: a reason from the list and a note."""

    reason = RadioField(
        _l("What is wrong with this campaign?"),
        choices=[SelectChoice(value, label) for value, label in REASONS.items()],
        validate_choice=False,  # a bogus value gets our message, not WTForms' "Not a valid choice"
        validators=[InputRequired(_l("Choose a reason.")), AnyOf(tuple(REASONS), message=_l("Choose a reason."))],
    )
    note = TextAreaField(
        _l("Tell the moderators more"),
        filters=[_strip],
        validators=[InputRequired(_l("Tell the moderators what is wrong.")),
                    Length(max=NOTE_MAX, message=_l("Keep the note under %(max)d characters."))],
        description=_l("What you saw, and where (the story, a reward, an image…). Only moderators read it."),
    )
    submit = SubmitField(_l("Send report"))
