"""Account forms (field names are part of the contract, SPEC §7)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    PasswordField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    SubmitField,
)
from wtforms.validators import AnyOf, DataRequired, Email, EqualTo, Length, ValidationError

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


def _language_choices():
    from app.i18n import LANGUAGE_NAMES, html_lang  # each language in its own name, never translated

    return [SelectChoice("", _l("Automatic (your browser’s language)")),
            *(SelectChoice(code, name, render_kw={"lang": html_lang(code)}) for code, name in LANGUAGE_NAMES.items())]


def _timezone_choices():
    from app.i18n import timezones

    names = sorted(name for name in timezones() if "/" in name and not name.startswith(("Etc/", "SystemV/", "US/")))
    return [SelectChoice("", _l("Automatic (your browser’s time zone)")), SelectChoice("UTC", "UTC"),
            *(SelectChoice(n, n.split("/", 1)[1].replace("_", " "), optgroup=n.split("/", 1)[0]) for n in names)]


class ProfileForm(BaseForm):
    display_name = StringField(
        _l("Display name"),
        validators=[DataRequired(_l("Enter the name other people will see.")), Length(max=80), _display_name_ok],
    )
    locale = SelectField(_l("Language"), choices=_language_choices, default="")
    timezone = SelectField(_l("Time zone"), choices=_timezone_choices, default="",
                           description=_l("Dates and deadlines are shown in this time zone."))
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


class NotificationsForm(BaseForm):
    """The optional emails a member gets; transactional ones are always sent."""

    email_updates = BooleanField(_l("Updates from campaigns I back"))
    email_replies = BooleanField(_l("Replies to my comments"))
    email_reminders = BooleanField(_l("Reminders for campaigns I saved"))
    email_new_backers = RadioField(
        _l("New backers of my campaigns"),
        choices=[SelectChoice("each", _l("Each new backer")), SelectChoice("digest", _l("A daily digest")),
                 SelectChoice("off", _l("Off"))],
        validators=[AnyOf(("each", "digest", "off"))], default="each",
    )
    #: Removed from the form for members who are not moderators (see `accounts.notifications`).
    email_moderation = BooleanField(_l("Campaigns submitted for review and new reports (moderators)"))
    submit = SubmitField(_l("Save email settings"))

    def choices(self) -> dict:
        """The chosen settings, as `accounts.services.set_notifications` takes them."""
        return {"updates": self.email_updates.data, "replies": self.email_replies.data,
                "reminders": self.email_reminders.data, "new_backers": self.email_new_backers.data,
                "moderation": self.email_moderation.data if "email_moderation" in self else None}


class UnsubscribeForm(BaseForm):
    """The confirm button of an unsubscribe link (one category)."""

    submit = SubmitField(_l("Unsubscribe"))
