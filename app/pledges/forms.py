"""The pledge form: `tier` (empty = no reward) and `amount`; the card goes to Stripe.js, never to us."""
from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import HiddenField, RadioField, StringField, SubmitField
from wtforms.validators import InputRequired, Length, ValidationError

from app import money
from app.campaigns.forms import money_error_message
from app.forms import BaseForm


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class PledgeForm(BaseForm):
    tier = RadioField(_l("Reward"), choices=[], validate_choice=False, default="")
    amount = StringField(_l("Pledge amount"), filters=[_strip], validators=[InputRequired(_l("Enter the amount you pledge.")), Length(max=32)])
    submit = SubmitField(_l("Pledge"))

    amount_minor: int = 0
    tier_id: int | None = None

    def __init__(self, *args, campaign, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.campaign = campaign
        self.tier.choices = [("", _("No reward, I just want to help"))] + [(str(t.id), t.title) for t in campaign.tiers]

    def validate_tier(self, field) -> None:
        value = field.data or ""
        if value == "" or value == "None":
            self.tier_id = None
            return
        if value not in {str(t.id) for t in self.campaign.tiers}:
            raise ValidationError(_("Choose one of this campaign’s rewards."))
        self.tier_id = int(value)

    def validate_amount(self, field) -> None:
        try:
            self.amount_minor = money.parse(field.data, self.campaign.currency)
        except money.MoneyError as error:
            raise ValidationError(money_error_message(error)) from None


class ConfirmForm(BaseForm):
    """Sent by the page's script once Stripe.js has confirmed the card setup."""

    setup_intent = HiddenField(validators=[InputRequired(), Length(max=64)])
