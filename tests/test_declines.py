"""A refused card and a deadline, as each backer reads them: in their language, in their time zone
(issue 9). Stripe's own messages are English; its codes pick our translated sentences."""
from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta
from html import unescape

import pytest
from flask_babel import force_locale, gettext
from sqlalchemy import select

from app import clock
from app.extensions import db
from app.notifications.models import OutboxMessage
from app.payments import declines
from app.pledges.models import Pledge
from app.settlement import services as settlement
from tests.factories import login, make_campaign, make_user
from tests.localstripe_fixture import CARD_DECLINE_ON_CHARGE, CARD_DECLINE_ON_SETUP, CARD_OK
from tests.test_pledges import pledge_with_card

DECLINED = {
    "en": "Your card was declined. Please use another card or contact your bank.",
    "fr": "Votre carte a été refusée. Utilisez une autre carte ou contactez votre banque.",
    "zh_Hans_CN": "您的银行卡被拒绝。请使用其他银行卡或联系您的银行。",
}


def member(app, locale: str | None = None, timezone: str | None = None):
    """A logged-in member with fresh addresses (localstripe finds customers by email for the whole session)."""
    email = f"{locale or 'en'}-{uuid.uuid4().hex[:8]}@example.com"
    user = make_user(email, name="Noor")
    user.locale, user.timezone = locale, timezone
    db.session.commit()
    client = app.test_client()
    login(client, email)
    return user, client


@pytest.fixture
def campaign(app):
    return make_campaign(make_user("creator@example.com"), "live", tiers=1, goal=10000, currency="USD", title="Tide Lamp")


def _mail(user, kind: str) -> OutboxMessage:
    return db.session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == user.email, OutboxMessage.kind == kind)).one()


@pytest.mark.parametrize("locale", ["fr", "zh_Hans_CN"])
def test_a_card_refused_when_saved_is_explained_in_the_backers_language(app, localstripe, campaign, locale):
    """The page's script shows Stripe.js's refusal (translated by its code, from the page's data); had
    it posted anyway, the server reads the setup from Stripe and refuses in the backer's language."""
    _user, client = member(app, locale)
    response, status = pledge_with_card(client, localstripe, campaign, card=CARD_DECLINE_ON_SETUP)
    assert status != "succeeded"
    page = unescape(client.get(response.headers["Location"]).get_data(as_text=True))
    with app.test_request_context(), force_locale(locale):
        said = gettext("Your card was not saved. Please try again or use another card.")
    assert said in page and "Your card" not in page


@pytest.mark.parametrize("locale", ["en", "fr", "zh_Hans_CN"])
def test_the_pledge_page_gives_its_script_the_refusals_in_the_pages_language(app, campaign, locale):
    _user, client = member(app, locale)
    page = client.get(f"/campaigns/{campaign.slug}/pledge").get_data(as_text=True)
    given = json.loads(unescape(re.search(r"data-declines='([^']*)'", page).group(1)))
    assert given["card_declined"] == DECLINED[locale]
    assert set(given) >= {"insufficient_funds", "expired_card", "incorrect_cvc", "authentication_required"}
    assert len(set(given.values())) > 5  # a sentence of its own for the common refusals


def test_a_code_nobody_listed_reads_as_a_plain_decline(app):
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        assert declines.message_for("lost_card") == declines.message_for(None) == DECLINED["fr"]
        assert declines.message_for("insufficient_funds") == "Le solde de votre carte est insuffisant."


@pytest.mark.parametrize("locale,timezone,local,utc_in_brackets", [
    # The campaign's deadline is 30 days from the real date: winter or summer time, whichever it falls in.
    ("fr", "Europe/Paris", re.compile("heure (normale|d’été) d’Europe centrale"), True),
    ("zh_Hans_CN", "Asia/Shanghai", "中国标准时间", True),
    ("en", None, "Coordinated Universal Time", False),
])
def test_the_pledge_mail_gives_the_deadline_in_the_backers_zone(app, localstripe, campaign, locale, timezone, local, utc_in_brackets):
    user, client = member(app, locale, timezone)
    pledge_with_card(client, localstripe, campaign, card=CARD_OK)
    body = _mail(user, "pledge_confirmed").body
    utc = campaign.deadline.strftime("%Y-%m-%d %H:%M UTC")
    assert local.search(body) if isinstance(local, re.Pattern) else local in body, body
    assert (f"({utc})" in body) is utc_in_brackets, body


def test_a_charge_refused_at_the_deadline_is_explained_in_french_on_the_page_and_in_the_mail(app, localstripe, campaign):
    user, client = member(app, "fr", "Europe/Paris")
    pledge_with_card(client, localstripe, campaign, card=CARD_DECLINE_ON_CHARGE, amount="120")
    clock.set_offset(timedelta(days=31))
    settlement.run_pass()
    pledge = db.session.scalar(select(Pledge).where(Pledge.backer_id == user.id))
    assert pledge.state == "errored"
    page = unescape(client.get(f"/pledges/{pledge.id}").get_data(as_text=True))
    assert f'<p class="mb-2 bank-message">{DECLINED["fr"]}</p>' in page
    body = _mail(user, "pledge_errored").body
    assert DECLINED["fr"] in body and "Your card was declined" not in body
    assert re.search("heure (normale|d’été) d’Europe centrale", body) and " UTC)" in body
