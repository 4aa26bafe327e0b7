"""What a person reads when their bank refuses a card, in their language.

Stripe's own messages are English; its codes are not. A decline code (or an error code of the card)
picks one of our translated sentences; codes that say why a card is suspect (lost, stolen, fraud)
get the plain "declined", as Stripe advises. `for_script` hands the same sentences to the pledge
page's script, which shows Stripe.js's refusals.
"""
from __future__ import annotations

from flask_babel import get_locale
from flask_babel import lazy_gettext as _l

DECLINED = _l("Your card was declined. Please use another card or contact your bank.")
_MESSAGES = {
    "insufficient_funds": _l("Your card does not have enough funds."),
    "expired_card": _l("Your card has expired."),
    "incorrect_cvc": _l("Your card’s security code is incorrect."),
    "invalid_cvc": _l("Your card’s security code is incorrect."),
    "incorrect_number": _l("Your card number is incorrect."),
    "invalid_number": _l("Your card number is incorrect."),
    "invalid_expiry_month": _l("Your card’s expiry date is incorrect."),
    "invalid_expiry_year": _l("Your card’s expiry date is incorrect."),
    "incorrect_zip": _l("Your card’s postal code is incorrect."),
    "processing_error": _l("Your bank could not process the card. Please try again in a moment."),
    "card_velocity_exceeded": _l("Your card has reached its limit. Please use another card."),
    "currency_not_supported": _l("Your card cannot pay in this currency. Please use another card."),
    "card_not_supported": _l("Your card does not support this kind of payment. Please use another card."),
    "authentication_required": _l("Your bank asks you to confirm this payment."),
    "setup_intent_authentication_failure": _l("Your bank could not confirm it is you. Please try again or use another card."),
    "payment_intent_authentication_failure": _l("Your bank could not confirm it is you. Please try again or use another card."),
}


def lazy_message_for(code: str | None):
    """The sentence for a decline or card error code (the plain "declined" for any other code), to be
    translated where it is shown: an email is rendered in its recipient's language."""
    return _MESSAGES.get(code or "", DECLINED)


def message_for(code: str | None) -> str:
    """The sentence for a decline or card error code, in the current language."""
    return str(lazy_message_for(code))


_translated: dict[str, dict[str, str]] = {}  # by language: the sentences do not change while a process runs


def for_script() -> dict[str, str]:
    """Every sentence by code, and `card_declined` for the rest, in the current language."""
    language = str(get_locale())
    found = _translated.get(language)
    if found is None:
        found = _translated[language] = {"card_declined": str(DECLINED), **{code: str(text) for code, text in _MESSAGES.items()}}
    return found
