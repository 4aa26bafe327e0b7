"""Account forms (field names are part of the contract, SPEC §7)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, EmailField, HiddenField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Email, EqualTo, Length, ValidationError

from app.accounts.services import PASSWORD_MAX, PASSWORD_MIN, clean_display_name
from app.forms import BaseForm


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _display_name_ok(form, field) -> None:
    if not clean_display_name(field.data or ""):
        raise ValidationError(_l("Enter the name other people will see."))


_email = [DataRequired(_l("Enter your email address.")), Length(max=254), Email(_l("Enter a valid email address."), check_deliverability=False)]
_new_password = [
    DataRequired(_l("Choose a password.")),
    Length(min=PASSWORD_MIN, max=PASSWORD_MAX, message=_l("Use between %(min)d and %(max)d characters.")),
]


class RegisterForm(BaseForm):
    email = EmailField(_l("Email"), validators=_email, filters=[_strip])
    display_name = StringField(
        _l("Display name"),
        validators=[DataRequired(_l("Enter the name other people will see.")), Length(max=80), _display_name_ok],
    )
    password = PasswordField(_l("Password"), validators=_new_password)
    submit = SubmitField(_l("Create account"))


class LoginForm(BaseForm):
    email = EmailField(_l("Email"), validators=[DataRequired(_l("Enter your email address.")), Length(max=254)], filters=[_strip])
    password = PasswordField(_l("Password"), validators=[DataRequired(_l("Enter your password.")), Length(max=PASSWORD_MAX)])
    remember = BooleanField(_l("Keep me logged in"))
    next = HiddenField()
    submit = SubmitField(_l("Log in"))


class ProfileForm(BaseForm):
    display_name = StringField(
        _l("Display name"),
        validators=[DataRequired(_l("Enter the name other people will see.")), Length(max=80), _display_name_ok],
    )
    submit = SubmitField(_l("Save profile"))


class PasswordForm(BaseForm):
    current_password = PasswordField(_l("Current password"), validators=[DataRequired(_l("Enter your current password.")), Length(max=PASSWORD_MAX)])
    new_password = PasswordField(_l("New password"), validators=_new_password)
    confirm = PasswordField(
        _l("Repeat the new password"), validators=[EqualTo("new_password", _l("The two passwords do not match."))]
    )
    submit = SubmitField(_l("Change password"))


class ResetRequestForm(BaseForm):
    email = EmailField(_l("Email"), validators=_email, filters=[_strip])
    submit = SubmitField(_l("Send reset link"))


class ResetPasswordForm(BaseForm):
    password = PasswordField(_l("New password"), validators=_new_password)
    confirm = PasswordField(_l("Repeat the new password"), validators=[EqualTo("password", _l("The two passwords do not match."))])
    submit = SubmitField(_l("Set new password"))
