"""Campaign, tier and add-on forms (field names are part of the contract, SPEC §7 and §12)."""
from __future__ import annotations

import re
from datetime import date
from functools import lru_cache

from babel.numbers import get_currency_name
from flask import current_app
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    FieldList,
    FormField,
    IntegerField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, ValidationError

from app import clock, money
from app.campaigns import shipping
from app.campaigns.models import CATEGORIES
from app.campaigns.services import AddonInput, CampaignInput, DestinationError, TierInput
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


def category_choices_to_pick():
    """The create form's choices: an empty first option, so that no category is chosen silently."""
    return [("", _l("Choose a category")), *category_choices()]


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


def parse_amount(field, currency: str, *, minimum: int, maximum: int, messages: dict[str, str] | None = None) -> int:
    """Read a money field typed in major units; raise ValidationError with a message for the field
    (`messages` replaces the message of some parsing errors, by code)."""
    try:
        amount = money.parse(field.data, currency)
    except money.MoneyError as error:
        raise ValidationError((messages or {}).get(error.code) or money_error_message(error)) from None
    if amount < minimum:
        raise ValidationError(_("The amount must be at least %(min)s.", min=money.format_money(minimum, currency)))
    if amount > maximum:
        raise ValidationError(_("The amount must be at most %(max)s.", max=money.format_money(maximum, currency)))
    return amount


class CampaignForm(BaseForm):
    title = StringField(_l("Title"), filters=[one_line], validators=[DataRequired(_l("Give your campaign a title.")), Length(max=80)])
    blurb = StringField(_l("Short blurb"), filters=[one_line], validators=[DataRequired(_l("Sum the project up in a sentence.")), Length(max=BLURB_MAX)])
    category = SelectField(_l("Category"), choices=category_choices_to_pick, validate_choice=True,
                           validators=[DataRequired(_l("Choose a category."))])
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


class MarkdownPreviewForm(BaseForm):
    """The story editor's live preview: the text typed so far (`text`), at most as long as a story."""

    text = TextAreaField(_l("Story"), filters=[multi_line], validators=[Length(max=STORY_MAX)])


class StoryImageForm(BaseForm):
    """A picture uploaded into the story from the editor (`image`); checked by app.content.images."""

    image = FileField(_l("Picture"), validators=[FileRequired(_l("Choose a picture to upload."))])


class DestinationForm(BaseForm):
    """One destination row: `destinations-N-country`, `destinations-N-cost`."""

    class Meta:
        csrf = False  # a part of the tier or add-on form, which carries the token

    country = SelectField(_l("Destination"), choices=shipping.choices, validate_choice=False)
    cost = StringField(_l("Shipping cost"), filters=[one_line])


#: Empty destination rows a new form shows (the "add another destination" button gives more).
BLANK_ROWS = 3
#: More rows than destinations exist (every country and the rest of the world) would only be repeats.
MAX_ROWS = 260


class ShippingFields:
    """The shipping part of the tier and add-on forms (SPEC §12): `ships` and the destination rows.

    A blank row is ignored. `destination_costs` holds country -> cost in minor units once valid.
    """

    ships = RadioField(
        _l("Shipping"), choices=[("none", _l("No shipping (digital, an event, a thank-you)")), ("destinations", _l("Ships to the destinations below"))],
        default="none",
    )
    destinations = FieldList(FormField(DestinationForm), min_entries=BLANK_ROWS, max_entries=MAX_ROWS)
    #: Without JavaScript: the same page again, with one more empty row.
    add_destination = SubmitField(_l("Add another destination"))

    currency: str
    destination_costs: dict[str, int]

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        return self._read_destinations() and valid

    def _read_destinations(self) -> bool:
        self.destination_costs = {}
        if self.ships.data != "destinations":
            return True  # no shipping: whatever the rows say is not kept
        ok, seen = True, set()
        for entry in self.destinations.entries:
            row = entry.form
            country, typed = row.country.data or "", (row.cost.data or "").strip()
            if not country and not typed:
                continue
            if not shipping.is_destination(country):
                row.country.errors = [*row.country.errors, _("Choose a destination from the list.")]
            elif country in seen:
                row.country.errors = [*row.country.errors, _("%(country)s is already in the list.", country=shipping.country_name(country))]
            seen.add(country)
            try:
                cost = parse_amount(row.cost, self.currency, minimum=0, maximum=money.MAX_CHARGE, messages={
                    "empty": _("Enter the shipping cost: 0 for free shipping."),
                    "negative": _("A shipping cost cannot be negative."),
                })
            except ValidationError as error:
                row.cost.errors = [*row.cost.errors, str(error)]
            if row.country.errors or row.cost.errors:
                ok = False
            else:
                self.destination_costs[country] = cost
        if ok and not self.destination_costs:
            self.ships.errors = [*self.ships.errors, _("Add at least one destination, or choose “No shipping”.")]
            return False
        if not ok:
            self._gather_row_errors()
        return ok

    def _gather_row_errors(self) -> None:
        # The list's errors are worked out once, when it validates: rows refused later (here, or by
        # the service) must be added, so that the form counts as refused.
        self.destinations.errors = [entry.errors for entry in self.destinations.entries]

    def more_rows(self) -> None:
        """One more empty row (the "add another destination" button), and shipping on."""
        self.ships.data = "destinations"
        if len(self.destinations.entries) < MAX_ROWS:
            self.destinations.append_entry()

    def fill_destinations(self, item) -> None:
        """The rows of a saved tier or add-on, then a few empty ones."""
        self.ships.data = "destinations" if item.ships else "none"
        self.destinations.entries, self.destinations.last_index = [], -1
        for country, _name, cost in shipping.by_name(item.destinations):
            self.destinations.append_entry({"country": country, "cost": money.to_input(cost, self.currency)})
        while len(self.destinations.entries) < len(item.destinations) + 2 or len(self.destinations.entries) < BLANK_ROWS:
            self.destinations.append_entry()

    def show_error(self, error: Exception) -> bool:
        """A refused destination next to its row; other refusals as BaseForm places them."""
        if isinstance(error, DestinationError):
            for entry in self.destinations.entries:
                if entry.form.country.data == error.country:
                    entry.form.cost.errors = [*entry.form.cost.errors, str(error)]
                    self._gather_row_errors()
                    return True
        return super().show_error(error)


_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class TierForm(ShippingFields, BaseForm):
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
            ships=self.ships.data == "destinations", destinations=self.destination_costs,
        )

    def fill_from(self, tier) -> None:
        self.title.data, self.description.data, self.shipping_note.data = tier.title, tier.description, tier.shipping_note
        self.amount.data = money.to_input(tier.amount, self.currency)
        self.quantity_limit.data = tier.quantity_limit
        self.estimated_delivery.data = tier.estimated_delivery.strftime("%Y-%m") if tier.estimated_delivery else ""
        self.fill_destinations(tier)


class AddonForm(ShippingFields, BaseForm):
    title = StringField(_l("Title"), filters=[one_line], validators=[DataRequired(_l("Give the add-on a title.")), Length(max=80)])
    description = TextAreaField(_l("Description"), filters=[multi_line, trimmed], validators=[Length(max=2000)])
    amount = StringField(_l("Price"), filters=[one_line], validators=[InputRequired(_l("Enter the price."))])
    quantity_limit = IntegerField(
        _l("Quantity limit"), validators=[Optional(), NumberRange(min=1, max=1_000_000, message=_l("Enter a number from 1 to 1,000,000, or leave it empty."))]
    )
    shipping_per = RadioField(
        _l("Shipping is charged"), choices=[("unit", _l("for each unit")), ("pledge", _l("once per pledge, whatever the quantity"))], default="unit",
    )
    tiers = SelectMultipleField(_l("Offered with"), coerce=str, validate_choice=False)
    submit = SubmitField(_l("Save add-on"))

    amount_minor: int = 0
    tier_ids: frozenset[int] = frozenset()

    def __init__(self, *args, currency: str = "USD", tiers=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.currency = currency
        self.tiers.choices = [(str(tier.id), tier.title) for tier in tiers]

    def validate_amount(self, field) -> None:
        self.amount_minor = parse_amount(field, self.currency, minimum=money.MIN_CHARGE[self.currency], maximum=money.MAX_CHARGE)

    def validate_tiers(self, field) -> None:
        offered = {value for value, _label in field.choices}
        chosen = set(field.data or ())
        if not chosen <= offered:
            raise ValidationError(_("Choose among this campaign's tiers."))
        self.tier_ids = frozenset(int(value) for value in chosen)

    def to_input(self) -> AddonInput:
        ships = self.ships.data == "destinations"
        return AddonInput(
            title=self.title.data, description=self.description.data or "", amount=self.amount_minor,
            quantity_limit=self.quantity_limit.data, ships=ships, shipping_per=self.shipping_per.data if ships else "unit",
            tier_ids=self.tier_ids, destinations=self.destination_costs,
        )

    def fill_from(self, addon) -> None:
        self.title.data, self.description.data = addon.title, addon.description
        self.amount.data = money.to_input(addon.amount, self.currency)
        self.quantity_limit.data = addon.quantity_limit
        self.shipping_per.data = addon.shipping_per
        self.tiers.data = [str(tier_id) for tier_id in sorted(addon.tier_ids)]
        self.fill_destinations(addon)
