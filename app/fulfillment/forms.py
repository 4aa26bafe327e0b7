"""Fulfillment forms."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import PasswordField, SubmitField
from wtforms.validators import DataRequired, Length

from app.accounts.services import PASSWORD_MAX
from app.forms import BaseForm

# --- data rights ---------------------------------------------------------------------------------


class DeleteAccountForm(BaseForm):
    """Deleting the account: the member types their password again to confirm."""

    password = PasswordField(_l("Your password, to confirm"),
                             validators=[DataRequired(_l("Enter your password to confirm.")), Length(max=PASSWORD_MAX)])
    submit = SubmitField(_l("Delete my account"))
