"""The payout account form (the country of the creator's bank) and the moderator's hold form."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import RadioField, SelectField, SubmitField, TextAreaField
from wtforms.validators import InputRequired, Length

from app.forms import BaseForm, trimmed

NOTE_MAX = 2000


class AccountForm(BaseForm):
    """Set up payouts: the country of the bank account (its currency follows); Stripe asks the rest."""

    country = SelectField(_l("Country of your bank account"), choices=[], validate_choice=False)
    submit = SubmitField(_l("Set up payouts"))


class HoldForm(BaseForm):
    """A moderator holds a campaign's payout (with a note) or releases it."""

    decision = RadioField(_l("Payout"), choices=[("hold", _l("Hold the payout")), ("release", _l("Release the payout"))],
                          validators=[InputRequired(_l("Choose hold or release."))])
    note = TextAreaField(_l("Note"), id="payout-note", filters=[trimmed],
                         validators=[Length(max=NOTE_MAX, message=_l("Keep the note under %(max)d characters."))])
    submit = SubmitField(_l("Save"))
