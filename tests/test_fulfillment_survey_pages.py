"""The backer survey's pages (issue 17): the creator's builder (questions, their refusals next to the
field, the preview per tier), sending and locking; the backer's answers with the address of the
country paid for; the pledge page's panel; who may see what; CSRF."""
from __future__ import annotations

import re
from html import unescape

import pytest
from flask_babel import force_locale
from sqlalchemy import select

from app.extensions import db
from app.fulfillment import addresses, surveys
from app.fulfillment.models import ShippingAddress, SurveyQuestion
from app.notifications.models import OutboxMessage
from tests.factories import PASSWORD, csrf_token, login, make_campaign
from tests.test_fulfillment_addresses import PARIS
from tests.test_fulfillment_surveys import _fresh, _questions, en, funded  # noqa: F401  (fixtures)


def _client(app, user):
    client = app.test_client()
    response = login(client, user.email)
    assert response.status_code == 302, "login failed"
    return client


def _page(response) -> str:
    return unescape(response.get_data(as_text=True)).replace("\r\n", "\n")


def _error(page: str, field_id: str) -> str:
    """The message shown next to a field (its `<id>-error` element), and that the field points at it."""
    match = re.search(rf'<div id="{re.escape(field_id)}-error" class="invalid-feedback d-block">([^<]*)</div>', page)
    assert match, f"no message next to {field_id}"
    assert re.search(rf'aria-describedby="[^"]*{re.escape(field_id)}-error', page), f"{field_id} does not point at its message"
    return match.group(1)


def _builder(funded) -> str:  # noqa: F811
    return f"/campaigns/{funded.shop.campaign.slug}/survey"


# --- the creator's builder -------------------------------------------------------------------------

def test_builder_adds_questions_and_refuses_bad_ones_next_to_the_field(app, funded, en):  # noqa: F811
    creator = _client(app, funded.creator)
    url = _builder(funded)
    page = _page(creator.get(url))
    assert "Draft" in page and "The shipping address is asked automatically" in page
    assert not re.search(r"<[^>]+\sstyle=|<style", page)  # the CSP allows no inline style
    assert "No question yet" in page

    def refused(data: dict, field: str) -> str:
        response = creator.post(url, data={"kind": "text", "prompt": "Size?", **data})
        assert response.status_code == 422
        return _page(response)

    page = refused({"prompt": "   "}, "prompt")
    assert _error(page, "prompt") == "Write the question."
    page = refused({"prompt": "x" * 301}, "prompt")
    assert _error(page, "prompt") == "Keep the question under 300 characters." and 'value="' + "x" * 301 + '"' in page
    page = refused({"kind": "choice", "prompt": "Colour?", "options": "Only one"}, "options")
    assert _error(page, "options") == "Give between 2 and 20 options."
    assert ">\nOnly one</textarea>" in page and 'value="Colour?"' in page  # typed values kept
    assert re.search(r'id="kind-1" value="choice" checked', page)
    page = refused({"kind": "choices", "prompt": "Many?", "options": "\n".join(str(n) for n in range(21))}, "options")
    assert _error(page, "options") == "Give between 2 and 20 options."
    page = refused({"kind": "choice", "prompt": "Long?", "options": "S\n" + "x" * 101}, "options")
    assert _error(page, "options") == "Keep each option under 100 characters."
    page = refused({"kind": "choice", "prompt": "Twice?", "options": "Red\n red "}, "options")
    assert _error(page, "options") == "Each option must be different."
    page = refused({"kind": "essay"}, "kind")
    assert "Choose the kind of question." in page
    page = refused({"tiers": str(2**64)}, "tiers")
    assert "Choose rewards of this campaign." in page
    assert db.session.scalar(select(SurveyQuestion.id)) is None

    lamp, battery = funded.shop.lamp, funded.shop.battery
    response = creator.post(url, data={"kind": "choice", "prompt": "Lamp colour", "options": "Red\r\nBlue\r\n\r\n",
                                       "required": "y", "tiers": str(lamp.id)})
    assert response.status_code == 302
    response = creator.post(url, data={"kind": "choices", "prompt": "Battery plugs", "options": "EU\nUK\nUS",
                                       "addons": str(battery.id)}, follow_redirects=True)
    page = _page(response)
    assert "The question is added to the survey." in page
    assert "for backers of: Lamp" in page and "for backers of: Battery" in page
    survey = surveys.survey_of(funded.shop.campaign)
    assert [(q.prompt, q.options, q.required) for q in survey.questions] == [
        ("Lamp colour", ["Red", "Blue"], True), ("Battery plugs", ["EU", "UK", "US"], False)]


def test_builder_edits_moves_and_removes_while_draft(app, funded, en):  # noqa: F811
    ids = _questions(funded)
    creator = _client(app, funded.creator)
    url = _builder(funded)
    edit = f"{url}/questions/{ids['colour']}/edit"
    page = _page(creator.get(edit))
    assert 'value="Lamp colour"' in page and ">\nRed\nBlue</textarea>" in page
    response = creator.post(edit, data={"kind": "choice", "prompt": "Lamp colour", "options": "Red"})
    assert response.status_code == 422 and _error(_page(response), "options") == "Give between 2 and 20 options."
    assert db.session.get(SurveyQuestion, ids["colour"]).options == ["Red", "Blue"]
    response = creator.post(edit, data={"kind": "choice", "prompt": "Shade", "options": "Red\nBlue\nGreen",
                                        "tiers": str(funded.shop.lamp.id)})
    assert response.status_code == 302
    assert db.session.get(SurveyQuestion, ids["colour"]).options == ["Red", "Blue", "Green"]

    def order() -> list[int]:
        db.session.expire_all()
        return [q.id for q in surveys.survey_of(funded.shop.campaign).questions]

    assert order() == [ids["everyone"], ids["colour"], ids["plugs"]]
    assert creator.post(f"{url}/questions/{ids['plugs']}/move", data={"direction": "up"}).status_code == 302
    assert order() == [ids["everyone"], ids["plugs"], ids["colour"]]
    creator.post(f"{url}/questions/{ids['everyone']}/move", data={"direction": "down"})
    assert order() == [ids["plugs"], ids["everyone"], ids["colour"]]
    assert creator.post(f"{url}/questions/{ids['everyone']}/move", data={"direction": "sideways"}).status_code == 400
    creator.post(f"{url}/questions/{ids['everyone']}/remove")
    assert order() == [ids["plugs"], ids["colour"]]
    assert creator.post(f"{url}/questions/{10**6}/remove").status_code == 404
    # Once sent, nothing changes.
    surveys.send(funded.shop.campaign, funded.creator)
    page = _page(creator.get(edit, follow_redirects=True))
    assert "its questions can no longer change" in page
    response = creator.post(f"{url}/questions/{ids['colour']}/remove", follow_redirects=True)
    assert "its questions can no longer change" in _page(response) and ids["colour"] in order()
    assert "Move up" not in _page(creator.get(url)) and "Add a question" not in _page(creator.get(url))


def test_preview_shows_only_what_a_backer_of_that_tier_is_asked(app, funded, en):  # noqa: F811
    _questions(funded)
    creator = _client(app, funded.creator)
    url = _builder(funded)
    shop = funded.shop

    def preview(query: str) -> str:
        page = _page(creator.get(f"{url}?{query}"))
        start = page.index('class="border rounded p-3 bg-light survey-preview-body')
        return page[start:page.index("Send your answers</button>", start)]

    lamp = preview(f"tier={shop.lamp.id}&country=FR")
    assert "Anything we should know?" in lamp and "Lamp colour" in lamp and "Battery plugs" not in lamp
    assert "Where your reward goes" in lamp and 'value="France"' in lamp and "Postal code" in lamp
    assert re.search(r'<textarea[^>]*disabled[^>]*name="q-', lamp) and re.search(r'<fieldset class="mb-3 field-q-\d+"[^>]*disabled', lamp)
    assert re.search(r'<input[^>]*disabled[^>]*name="postal_code"', lamp)
    assert "<form" not in lamp  # not submittable
    poster = preview(f"tier={shop.poster.id}")
    assert "Anything we should know?" in poster and "Lamp colour" not in poster and "Battery plugs" not in poster
    assert "Where your reward goes" not in poster  # the poster ships nothing
    with_battery = preview(f"tier={shop.poster.id}&addons={shop.battery.id}&country=DE")
    assert "Battery plugs" in with_battery and "Lamp colour" not in with_battery
    assert 'value="Germany"' in with_battery
    # Hostile choices fall back, never a 500.
    assert creator.get(f"{url}?tier=x&addons=99999999999999999999&country=%00").status_code == 200


def test_send_then_lock_and_the_counts(app, funded, en):  # noqa: F811
    ids = _questions(funded)
    creator = _client(app, funded.creator)
    url = _builder(funded)
    page = _page(creator.post(f"{url}/send", follow_redirects=True))
    assert "The survey is sent to 4 backers." in page
    assert "Sent to 4 backers · 0 answered" in page and "Lock the answers" in page
    body = db.session.scalar(select(OutboxMessage.body).where(OutboxMessage.recipient == funded.lamp.backer.email,
                                                              OutboxMessage.kind == "survey_sent"))
    assert f"{app.config['BASE_URL'].rstrip('/')}/pledges/{funded.lamp.id}/survey" in body
    poster = _fresh(funded.poster)
    surveys.answer(poster, poster.backer, {ids["everyone"]: "Fine"})
    assert "Sent to 4 backers · 1 answered" in _page(creator.get(url))
    # Sending twice is refused with a message, not a 500.
    assert "can no longer change" in _page(creator.post(f"{url}/send", follow_redirects=True))
    page = _page(creator.post(f"{url}/lock", follow_redirects=True))
    assert "The survey is locked" in page and "Locked" in page
    assert "Only a survey that was sent can be locked." in _page(creator.post(f"{url}/lock", follow_redirects=True))


def test_dashboard_links_the_survey_of_a_funded_campaign(app, funded, en):  # noqa: F811
    creator = _client(app, funded.creator)
    page = _page(creator.get("/me/campaigns"))
    assert f'href="/campaigns/{funded.shop.campaign.slug}/survey"' in page and "Backer survey" in page


# --- the backer's answers --------------------------------------------------------------------------

def _form_fields(page: str) -> list[str]:
    """The names of the survey form's fields, in page order (each once)."""
    form = page[page.index('class="survey-form"'):]
    names = re.findall(r'<(?:input|select|textarea)[^>]*name="([^"]+)"', form[:form.index("</form>")])
    return list(dict.fromkeys(name for name in names if name not in ("csrf_token", "submit")))


def test_a_backer_answers_with_a_french_address_then_changes_it(app, funded, en):  # noqa: F811
    ids = _questions(funded)
    surveys.send(funded.shop.campaign, funded.creator)
    lamp = _fresh(funded.lamp)
    backer = _client(app, lamp.backer)
    pledge_page = _page(backer.get(f"/pledges/{lamp.id}"))
    assert "Answer the survey" in pledge_page and f'href="/pledges/{lamp.id}/survey"' in pledge_page
    url = f"/pledges/{lamp.id}/survey"
    page = _page(backer.get(url))
    assert not re.search(r"<[^>]+\sstyle=|<style", page + pledge_page)
    spec = addresses.form_spec("FR", "en")
    questions = [f"q-{ids['everyone']}", f"q-{ids['colour']}"]
    assert _form_fields(page) == [*questions, "country", *[each.name for each in spec.fields]]
    for each in spec.fields:
        assert f'<label class="form-label" for="{each.name}">{each.label}' in page
    assert 'value="France"' in page and 'name="country" type="hidden" value="FR"' in page
    assert "Battery plugs" not in page

    typed = {**PARIS, "postal_code": "7501", questions[0]: "Ring twice", "phone": ""}
    response = backer.post(url, data=typed)
    page = _page(response)
    assert response.status_code == 422
    assert _error(page, questions[1]) == "Choose an option."
    assert _error(page, "postal_code").startswith("This postal code is not valid for France")
    assert ">\nRing twice</textarea>" in page and 'value="7501"' in page and 'value="15 rue des Trois Frères"' in page
    assert db.session.scalar(select(ShippingAddress.id)) is None

    response = backer.post(url, data={**typed, "postal_code": "75018", questions[1]: "Blue", "phone": "06 12 34 56 78"})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/pledges/{lamp.id}")
    page = _page(backer.get(response.headers["Location"]))
    assert "Thank you! Your answers are saved." in page and "Change your answers" in page
    assert "PARIS" in page and "75018" in page and "15 rue des Trois Frères" in page  # the address on file, theirs
    assert surveys.answers_of(lamp)[ids["colour"]].value == "Blue"
    # Pre-filled, and changed.
    page = _page(backer.get(url))
    assert re.search(rf'id="{questions[1]}-1" value="Blue" checked', page) and ">\nRing twice</textarea>" in page
    assert 'value="+33612345678"' in page
    assert backer.post(url, data={**PARIS, questions[0]: "Knock", questions[1]: "Red", "line2": "Escalier C"}).status_code == 302
    db.session.expire_all()
    assert surveys.answers_of(lamp)[ids["colour"]].value == "Red"
    assert db.session.scalar(select(ShippingAddress.line2)) == "Escalier C"

    surveys.lock(funded.shop.campaign, funded.creator)
    page = _page(backer.get(url))
    assert "The creator locked the survey: your answers are final." in page and "<form method=\"post\" novalidate class=\"survey-form\"" not in page
    assert "Knock" in page and "Red" in page and "Escalier C" in page
    response = backer.post(url, data={**PARIS, questions[0]: "Late", questions[1]: "Blue"})
    assert response.status_code == 422 and "The survey is closed" in _page(response)
    assert surveys.answers_of(lamp)[ids["everyone"]].value == "Knock"
    assert "your answers are final" in _page(backer.get(f"/pledges/{lamp.id}"))


def test_an_address_in_a_country_not_paid_for_is_refused(app, funded, en):  # noqa: F811
    ids = _questions(funded)
    surveys.send(funded.shop.campaign, funded.creator)
    battery = _fresh(funded.battery)
    backer = _client(app, battery.backer)
    url = f"/pledges/{battery.id}/survey"
    berlin = {"name": "Max Muster", "line1": "Unter den Linden 1", "city": "Berlin", "postal_code": "10117", "country": "DE"}
    response = backer.post(url, data={**berlin, f"q-{ids['everyone']}": "Hi", f"q-{ids['plugs']}": ["EU", "UK"]})
    page = _page(response)
    assert response.status_code == 422
    assert _error(page, "country") == "Your pledge paid shipping to France: the address must be in France."
    assert 'value="Unter den Linden 1"' in page and re.search(rf'id="q-{ids["plugs"]}-1" value="UK" checked', page)
    assert db.session.scalar(select(ShippingAddress.id)) is None and surveys.request_of(battery).answered_at is None


def test_a_pledge_that_ships_nothing_is_asked_no_address(app, funded, en):  # noqa: F811
    ids = _questions(funded)
    surveys.send(funded.shop.campaign, funded.creator)
    poster = _fresh(funded.poster)
    backer = _client(app, poster.backer)
    page = _page(backer.get(f"/pledges/{poster.id}/survey"))
    assert _form_fields(page) == [f"q-{ids['everyone']}"] and "Where your reward goes" not in page
    assert backer.post(f"/pledges/{poster.id}/survey", data={f"q-{ids['everyone']}": "x" * 2001}).status_code == 422
    assert backer.post(f"/pledges/{poster.id}/survey", data={f"q-{ids['everyone']}": "Fine"}).status_code == 302


def test_the_survey_page_speaks_the_backers_language(app, funded, en):  # noqa: F811
    _questions(funded)
    surveys.send(funded.shop.campaign, funded.creator)
    lamp = _fresh(funded.lamp)
    lamp.backer.locale = "fr"
    db.session.commit()
    page = _page(_client(app, lamp.backer).get(f"/pledges/{lamp.id}/survey"))
    with force_locale("fr"):
        spec = addresses.form_spec("FR", "fr")
    assert spec.field("name").label != "Full name"  # the labels really are French
    assert 'value="France"' in page and "Envoyer vos réponses" in page and "Où envoyer votre contrepartie" in page
    for each in spec.fields:
        assert f'for="{each.name}">{each.label}' in page


# --- who may see what ------------------------------------------------------------------------------

def test_only_the_backer_reaches_a_pledges_survey(app, funded, en):  # noqa: F811
    ids = _questions(funded)
    lamp, stand = _fresh(funded.lamp), _fresh(funded.stand)
    backer = _client(app, lamp.backer)
    assert backer.get(f"/pledges/{lamp.id}/survey").status_code == 404  # not sent yet: nothing to answer
    surveys.send(funded.shop.campaign, funded.creator)
    surveys.answer(lamp, lamp.backer, {ids["everyone"]: "Hi", ids["colour"]: "Red"}, PARIS)
    other = _client(app, stand.backer)
    data = {**PARIS, f"q-{ids['everyone']}": "Mine now", f"q-{ids['colour']}": "Blue"}
    assert other.get(f"/pledges/{lamp.id}/survey").status_code == 404
    assert other.post(f"/pledges/{lamp.id}/survey", data=data).status_code == 404
    assert other.get(f"/pledges/{lamp.id}").status_code == 404
    assert "Amélie" not in _page(other.get(f"/pledges/{stand.id}"))  # their own page shows no one else's address
    creator = _client(app, funded.creator)
    assert creator.get(f"/pledges/{lamp.id}/survey").status_code == 404
    assert surveys.answers_of(lamp)[ids["everyone"]].value == "Hi"
    assert app.test_client().get(f"/pledges/{lamp.id}/survey").status_code == 302  # to the login page


def test_only_the_creator_of_a_funded_campaign_opens_the_builder(app, funded, en):  # noqa: F811
    url = _builder(funded)
    stranger_campaign = make_campaign(funded.lamp.backer, "successful")
    ids = _questions(funded)
    for person in (funded.lamp.backer, stranger_campaign.creator):
        client = _client(app, person)
        assert client.get(url).status_code == 403
        assert client.post(url, data={"kind": "text", "prompt": "Mine?"}).status_code == 403
        assert client.post(f"{url}/send").status_code == 403
        assert client.post(f"{url}/questions/{ids['everyone']}/remove").status_code == 403
    # Its own builder cannot reach this campaign's questions.
    own = _client(app, stranger_campaign.creator)
    assert own.get(f"/campaigns/{stranger_campaign.slug}/survey").status_code == 200
    assert own.post(f"/campaigns/{stranger_campaign.slug}/survey/questions/{ids['everyone']}/remove").status_code == 404
    assert len(surveys.survey_of(funded.shop.campaign).questions) == 3 and surveys.survey_of(funded.shop.campaign).state == "draft"
    # A campaign not funded has no survey.
    live = make_campaign(funded.creator, "live")
    assert _client(app, funded.creator).get(f"/campaigns/{live.slug}/survey").status_code == 404


def test_csrf_is_required(make_app, app, funded, en):  # noqa: F811
    ids = _questions(funded)
    surveys.send(funded.shop.campaign, funded.creator)
    strict = make_app(WTF_CSRF_ENABLED=True)
    lamp = _fresh(funded.lamp)
    client = strict.test_client()
    token = csrf_token(client, "/auth/login")
    assert client.post("/auth/login", data={"email": lamp.backer.email, "password": PASSWORD, "csrf_token": token}).status_code == 302
    url = f"/pledges/{lamp.id}/survey"
    data = {**PARIS, f"q-{ids['everyone']}": "Hi", f"q-{ids['colour']}": "Red"}
    assert client.post(url, data=data).status_code == 400
    assert surveys.request_of(lamp).answered_at is None
    assert client.post(url, data={**data, "csrf_token": csrf_token(client, url)}).status_code == 302


@pytest.mark.parametrize("path", ["survey", "survey/send", "survey/lock"])
def test_builder_posts_need_a_token(make_app, app, funded, path):  # noqa: F811
    strict = make_app(WTF_CSRF_ENABLED=True)
    client = strict.test_client()
    token = csrf_token(client, "/auth/login")
    client.post("/auth/login", data={"email": funded.creator.email, "password": PASSWORD, "csrf_token": token})
    assert client.post(f"/campaigns/{funded.shop.campaign.slug}/{path}", data={"kind": "text", "prompt": "Hi?"}).status_code == 400
    assert surveys.survey_of(funded.shop.campaign) is None
