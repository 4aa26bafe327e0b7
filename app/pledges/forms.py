"""The pledge form (SPEC §12): `tier` (empty = no reward), `amount` (a pledge without a reward),
`bonus`, `addons-<id>` quantities, `country` and the `total` the page showed. The card goes to
Stripe.js, never to us. The form reads what was typed; the service decides what it adds up to."""
from __future__ import annotations

import re

from flask import request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import HiddenField, RadioField, SelectField, StringField, SubmitField
from wtforms.validators import InputRequired, Length, ValidationError

from app import money
from app.campaigns import shipping
from app.campaigns.forms import money_error_message
from app.campaigns.services import load_offer
from app.forms import BaseForm, trimmed
from app.ids import parse_id
from app.pledges.services import Choice, destination_countries

#: The quantity of an add-on: a whole number, at most four digits (limits are checked by the service).
_QUANTITY = re.compile(r"\d{1,4}")
ADDON_PREFIX = "addons-"


def _upper(value):
    return value.strip().upper() if isinstance(value, str) else value


class PledgeForm(BaseForm):
    tier = RadioField(_l("Reward"), choices=[], validate_choice=False, default="")
    amount = StringField(_l("Pledge amount"), filters=[trimmed], validators=[Length(max=32)])
    bonus = StringField(_l("Bonus support (optional)"), filters=[trimmed], validators=[Length(max=32)])
    country = SelectField(_l("Ship to"), choices=[], validate_choice=False, filters=[_upper], default="")
    #: The total the page's summary showed, in minor units (set by the page's script).
    total = HiddenField(validators=[Length(max=32)])
    submit = SubmitField(_l("Pledge"))

    def __init__(self, *args, campaign, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.campaign = campaign
        self.tier.choices = [("", _("No reward, I just want to help"))] + [(str(t.id), t.title) for t in campaign.tiers]
        # Called when the field is rendered or read: a cached form's page never loads the destinations.
        self.country.choices = lambda: [("", _("Choose your country"))] + destination_countries(load_offer(campaign))
        #: addons-<id> -> the quantity as typed (kept when the form comes back with errors).
        self.quantities_typed: dict[str, str] = {}
        #: addons-<id> -> messages (the add-on fields are not WTForms fields: one per add-on on offer).
        self.addon_errors: dict[str, list[str]] = {}
        self.choice: Choice | None = None

    @property
    def errors(self):
        return {**super().errors, **self.addon_errors}

    def show_error(self, error: Exception) -> bool:
        name = getattr(error, "field", None) or ""
        if name in {f"{ADDON_PREFIX}{addon.id}" for addon in self.campaign.addons}:  # a field the page shows
            self.addon_errors.setdefault(name, []).append(str(error))
            return True
        return super().show_error(error)

    def fill(self, choice: Choice) -> None:
        """Show a saved choice (the edit page)."""
        self.tier.data = str(choice.tier_id) if choice.tier_id else ""
        currency = self.campaign.currency
        self.amount.data = money.to_input(choice.amount, currency) if choice.tier_id is None else ""
        self.bonus.data = money.to_input(choice.bonus, currency) if choice.bonus else ""
        self.country.data = choice.country or ""
        self.quantities_typed = {f"{ADDON_PREFIX}{addon_id}": str(quantity) for addon_id, quantity in choice.quantities.items()}

    def validate_tier(self, field) -> None:
        value = field.data or ""
        if value in ("", "None"):
            return
        if value not in {str(t.id) for t in self.campaign.tiers}:
            raise ValidationError(_("Choose one of this campaign’s rewards."))

    def _money(self, field, required: bool) -> int | None:
        if not field.data:
            if required:
                field.errors = [*field.errors, _("Enter the amount you pledge.")]
            return None
        try:
            return money.parse(field.data, self.campaign.currency)
        except money.MoneyError as error:
            field.errors = [*field.errors, money_error_message(error)]
            return None

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        formdata = request.form
        quantities: dict[int, int] = {}
        for name in formdata:
            if not name.startswith(ADDON_PREFIX):
                continue
            typed = trimmed(formdata.get(name)) or ""
            self.quantities_typed[name] = typed[:8]
            addon_id = parse_id(name[len(ADDON_PREFIX):])
            if addon_id is None:
                self.form_errors.append(_("This add-on is not offered by this campaign."))
            elif typed and not _QUANTITY.fullmatch(typed):
                self.addon_errors[name] = [_("Enter a whole number of units, 0 or more.")]
            elif typed and int(typed):
                quantities[addon_id] = int(typed)
        no_reward = self.tier.data in ("", "None", None)
        # A pledge without a reward is its `amount`; with a reward, the reward's price plus `bonus`.
        # A client that sends `amount` and no `bonus` with a reward (the form before add-ons) means the
        # reward and its bonus together: the service splits it.
        legacy = not no_reward and "bonus" not in formdata and "amount" in formdata
        amount = self._money(self.amount, required=no_reward or legacy)
        bonus = None if no_reward else self._money(self.bonus, required=False)
        country = self.country.data or None
        if country is not None and not shipping.is_country(country):
            self.country.errors = [*self.country.errors, _("Choose a country from the list.")]
        shown = None
        if self.total.data:
            shown = int(self.total.data) if self.total.data.isascii() and self.total.data.isdigit() else -1
        if self.addon_errors or self.form_errors or any(field.errors for field in self):
            return False
        self.choice = Choice(tier_id=None if no_reward else int(self.tier.data), amount=amount if (no_reward or legacy) else None, bonus=bonus or 0,
                             quantities=quantities, country=country, shown_total=shown)
        return valid


class ConfirmForm(BaseForm):
    """Sent by the page's script once Stripe.js has confirmed the card setup."""

    setup_intent = HiddenField(validators=[InputRequired(), Length(max=64)])
