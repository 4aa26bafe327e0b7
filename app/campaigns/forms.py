"""Campaign and tier forms (field names are part of the contract, SPEC §7)."""
from __future__ import annotations

import re
from datetime import date
from functools import lru_cache

from babel.numbers import get_currency_name
from flask import current_app
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from wtforms import IntegerField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, ValidationError

from app import clock, money
from app.campaigns.models import CATEGORIES
from app.campaigns.services import CampaignInput, TierInput
from app.forms import BaseForm, multi_line, one_line, trimmed

BLURB_MAX = 135
STORY_MAX = 50_000
RISKS_MAX = 10_000


def category_choices():
    labels = {
        "art": _l("Art"), "comics": _l("Comics"), "crafts": _l("Crafts"), "design": _l("Design"),
        "fashion": _l("Fashion"), "film": _l("Film & video"), "food": _l("Food"), "games": _l("Games"),
        "music": _l("Music"), "photography": _l("Photography"), "publishing": _l("Publishing"),
        "technology": _l("Technology"), "theater": _l("Theater"), "community": _l("Community"),
    }
    return [(c, labels[c]) for c in CATEGORIES]


def category_names() -> dict[str, str]:
    """Category labels in the current language (built once per language)."""
    return _category_names_in(str(get_locale() or "en"))


@lru_cache(maxsize=16)
def _category_names_in(_locale: str) -> dict[str, str]:
    return {value: str(label) for value, label in category_choices()}


def money_error_message(error: money.MoneyError) -> str:
    """The translated message for a money parsing error."""
    # Only the message for this error is formatted: each one takes its own parameters.
    if error.code == "empty":
        return _("Enter an amount.")
    if error.code == "negative":
        return _("The amount must be more than zero.")
    if error.code == "whole":
        return _("%(currency)s has no cents: enter a whole number.", currency=error.params.get("currency", ""))
    if error.code == "decimals":
        return _("Use at most %(digits)s decimal places.", digits=error.params.get("digits", 2))
    if error.code == "currency":
        return _("Choose a supported currency.")
    if error.code == "other_currency":
        currency = str(error.params.get("currency", ""))
        return _("Enter the amount in %(name)s (%(currency)s): another currency’s sign or code is not converted.",
                 name=get_currency_name(currency, locale=money.current_locale()), currency=currency)
    return _("Enter the amount as a number, for example 25 or 25.50.")


def parse_amount(field, currency: str, *, minimum: int, maximum: int) -> int:
    """Read a money field typed in major units; raise ValidationError with a message for the field."""
    try:
        amount = money.parse(field.data, currency)
    except money.MoneyError as error:
        raise ValidationError(money_error_message(error)) from None
    if amount < minimum:
        raise ValidationError(_("The amount must be at least %(min)s.", min=money.format_money(minimum, currency)))
    if amount > maximum:
        raise ValidationError(_("The amount must be at most %(max)s.", max=money.format_money(maximum, currency)))
    return amount


class CampaignForm(BaseForm):
    title = StringField(_l("Title"), filters=[one_line], validators=[DataRequired(_l("Give your campaign a title.")), Length(max=80)])
    blurb = StringField(_l("Short blurb"), filters=[one_line], validators=[DataRequired(_l("Sum the project up in a sentence.")), Length(max=BLURB_MAX)])
    category = SelectField(_l("Category"), choices=category_choices, validate_choice=True)
    goal = StringField(_l("Funding goal"), filters=[one_line], validators=[InputRequired(_l("Enter the funding goal."))])
    currency = SelectField(_l("Currency"), choices=[(c, c) for c in money.CURRENCIES], default="USD")
    duration_days = IntegerField(_l("Duration in days"), default=30, validators=[InputRequired(_l("Enter the number of days."))])
    story = TextAreaField(_l("Story"), filters=[multi_line], validators=[Length(max=STORY_MAX)])
    risks = TextAreaField(_l("Risks and challenges"), filters=[multi_line], validators=[Length(max=RISKS_MAX)])
    cover = FileField(_l("Cover image"))
    submit = SubmitField(_l("Save draft"))

    goal_minor: int = 0

    def validate_goal(self, field) -> None:
        currency = self.currency.data if self.currency.data in money.CURRENCIES else "USD"
        self.goal_minor = parse_amount(field, currency, minimum=money.MIN_CHARGE[currency], maximum=money.max_goal(currency))

    def validate_duration_days(self, field) -> None:
        low, high = current_app.config["CAMPAIGN_MIN_DAYS"], current_app.config["CAMPAIGN_MAX_DAYS"]
        if field.data is None or not low <= field.data <= high:
            raise ValidationError(_("Choose between %(low)d and %(high)d days.", low=low, high=high))

    def to_input(self) -> CampaignInput:
        return CampaignInput(
            title=self.title.data, blurb=self.blurb.data, category=self.category.data, goal=self.goal_minor,
            currency=self.currency.data, duration_days=self.duration_days.data,
            story=self.story.data or "", risks=self.risks.data or "",
        )

    def fill_from(self, campaign) -> None:
        for name in ("title", "blurb", "category", "currency", "duration_days", "story", "risks"):
            getattr(self, name).data = getattr(campaign, name)
        self.goal.data = money.to_input(campaign.goal, campaign.currency)


_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class TierForm(BaseForm):
    title = StringField(_l("Title"), filters=[one_line], validators=[DataRequired(_l("Give the tier a title.")), Length(max=80)])
    description = TextAreaField(_l("Description"), filters=[multi_line, trimmed], validators=[DataRequired(_l("Say what backers of this tier get.")), Length(max=2000)])
    amount = StringField(_l("Minimum pledge"), filters=[one_line], validators=[InputRequired(_l("Enter the minimum pledge."))])
    quantity_limit = IntegerField(
        _l("Quantity limit"), validators=[Optional(), NumberRange(min=1, max=1_000_000, message=_l("Enter a number from 1 to 1,000,000, or leave it empty."))]
    )
    estimated_delivery = StringField(
        _l("Estimated delivery (YYYY-MM)"), filters=[one_line], validators=[DataRequired(_l("Enter the estimated delivery month, for example 2027-03."))]
    )
    shipping_note = StringField(_l("Shipping note"), filters=[one_line], validators=[Length(max=200)])
    submit = SubmitField(_l("Save tier"))

    amount_minor: int = 0
    delivery: date | None = None

    def __init__(self, *args, currency: str = "USD", saved_delivery: date | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.currency = currency
        #: The month already stored: kept as is even once it has passed (the tier was saved in time).
        self.saved_delivery = saved_delivery

    def validate_amount(self, field) -> None:
        self.amount_minor = parse_amount(field, self.currency, minimum=money.MIN_CHARGE[self.currency], maximum=money.MAX_CHARGE)

    def validate_estimated_delivery(self, field) -> None:
        match = _MONTH.match(field.data or "")
        if not match or not 1 <= int(match.group(2)) <= 12 or not 2000 <= int(match.group(1)) <= 2100:
            raise ValidationError(_("Use the form YYYY-MM, for example 2027-03."))
        month = date(int(match.group(1)), int(match.group(2)), 1)
        today = clock.utcnow().date()
        if month < today.replace(day=1) and month != self.saved_delivery:
            raise ValidationError(_("The delivery month cannot be in the past."))
        self.delivery = month

    def to_input(self) -> TierInput:
        return TierInput(
            title=self.title.data, description=self.description.data or "", amount=self.amount_minor,
            quantity_limit=self.quantity_limit.data, estimated_delivery=self.delivery, shipping_note=self.shipping_note.data or "",
        )

    def fill_from(self, tier) -> None:
        self.title.data, self.description.data, self.shipping_note.data = tier.title, tier.description, tier.shipping_note
        self.amount.data = money.to_input(tier.amount, self.currency)
        self.quantity_limit.data = tier.quantity_limit
        self.estimated_delivery.data = tier.estimated_delivery.strftime("%Y-%m") if tier.estimated_delivery else ""
