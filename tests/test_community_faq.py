"""The FAQ (the creator's questions and answers) and backers' questions to the creator."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.community import services
from app.community.models import CampaignQuestion, FaqEntry
from app.extensions import db
from tests.community_helpers import back, client_for, dangerous_markup, make_world, outbox
from tests.factories import make_campaign, make_user

XSS_LINE = '<script>alert("q")</script><img src=x onerror=alert(1)>'
XSS_MARKDOWN = '<script>alert("a")</script>\n\n<img src=x onerror=alert(2)>\n\n[click](javascript:alert(3)) [ok](https://example.com)'


@pytest.fixture
def world(app):
    return make_world()



def _entries() -> list[FaqEntry]:
    return list(db.session.scalars(select(FaqEntry).order_by(FaqEntry.position, FaqEntry.id)).all())


def _questions() -> list[CampaignQuestion]:
    return list(db.session.scalars(select(CampaignQuestion).order_by(CampaignQuestion.id)).all())


# --- the creator's FAQ -----------------------------------------------------------------------

def test_the_creator_adds_edits_reorders_and_deletes_entries(app, world):
    cora = client_for(app, "creator@example.com")
    base = f"/campaigns/{world.slug}/faq"
    assert cora.get(base + "/new").status_code == 200
    for n in range(3):
        assert cora.post(base + "/new", data={"question": f"Question {n}?", "answer": f"Answer **{n}**."}).status_code == 302
    assert [e.question for e in _entries()] == ["Question 0?", "Question 1?", "Question 2?"]
    page = client_for(app).get(f"/campaigns/{world.slug}").get_data(as_text=True)
    assert "Answer <strong>1</strong>." in page and 'faq-count">3<' in page
    assert page.index("Question 0?") < page.index("Question 1?") < page.index("Question 2?")
    first, second, third = _entries()
    assert cora.post(f"{base}/{third.id}/move", data={"direction": "up"}).status_code == 302
    assert [e.question for e in _entries()] == ["Question 0?", "Question 2?", "Question 1?"]
    assert cora.post(f"{base}/{first.id}/move", data={"direction": "up"}).status_code == 302  # already first
    assert cora.post(f"{base}/{first.id}/move", data={"direction": "down"}).status_code == 302
    assert [e.question for e in _entries()] == ["Question 2?", "Question 0?", "Question 1?"]
    assert cora.post(f"{base}/{first.id}/move", data={"direction": "sideways"}).status_code == 400
    assert cora.get(f"{base}/{second.id}/edit").status_code == 200
    assert cora.post(f"{base}/{second.id}/edit", data={"question": "Renamed?", "answer": "New."}).status_code == 302
    assert cora.post(f"{base}/{third.id}/delete").status_code == 302
    assert [e.question for e in _entries()] == ["Question 0?", "Renamed?"]


@pytest.mark.parametrize("who", [None, "member@example.com", "backer@example.com", "mod@example.com"])
def test_only_the_creator_manages_the_faq(app, world, who):
    entry = services.add_faq(world, world.creator, "Mine?", "Yes.")
    client = client_for(app, who)
    base = f"/campaigns/{world.slug}/faq"
    answers = [
        client.get(base + "/new").status_code,
        client.post(base + "/new", data={"question": "Q?", "answer": "A."}).status_code,
        client.post(f"{base}/{entry.id}/edit", data={"question": "Q?", "answer": "A."}).status_code,
        client.post(f"{base}/{entry.id}/delete").status_code,
        client.post(f"{base}/{entry.id}/move", data={"direction": "down"}).status_code,
    ]
    assert set(answers) == ({302} if who is None else {403})
    assert [(e.question, e.answer) for e in _entries()] == [("Mine?", "Yes.")]


def test_an_entry_of_another_campaign_is_not_found(app, world):
    other = make_campaign(make_user(), "live")
    theirs = services.add_faq(other, other.creator, "Theirs?", "Yes.")
    cora = client_for(app, "creator@example.com")
    base = f"/campaigns/{world.slug}/faq/{theirs.id}"
    assert cora.get(base + "/edit").status_code == 404
    assert cora.post(base + "/delete").status_code == 404
    assert cora.post(base + "/move", data={"direction": "up"}).status_code == 404
    assert len(_entries()) == 1


def test_a_bad_faq_form_keeps_what_was_typed(app, world):
    response = client_for(app, "creator@example.com").post(f"/campaigns/{world.slug}/faq/new", data={"question": "Kept question?", "answer": ""})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Write the answer." in page and "Kept question?" in page and _entries() == []


def test_faq_text_is_escaped_and_answers_sanitised(app, world):
    cora = client_for(app, "creator@example.com")
    assert cora.post(f"/campaigns/{world.slug}/faq/new", data={"question": XSS_LINE, "answer": XSS_MARKDOWN}).status_code == 302
    for who in (None, "creator@example.com"):
        page = client_for(app, who).get(f"/campaigns/{world.slug}").get_data(as_text=True)
        assert dangerous_markup(page) == []
        assert "&lt;script&gt;alert" in page and '<a href="https://example.com" rel="nofollow noopener ugc">ok</a>' in page


# --- backers' questions ----------------------------------------------------------------------

def test_a_backer_asks_and_the_creator_gets_it(app, world):
    ben = client_for(app, "backer@example.com")
    page = ben.get(f"/campaigns/{world.slug}").get_data(as_text=True)
    assert 'class="mt-3 ask-form"' in page
    response = ben.post(f"/campaigns/{world.slug}/ask", data={"body": "Does it float?"})
    assert response.status_code == 302
    (question,) = _questions()
    assert question.body == "Does it float?" and question.asker.email == "backer@example.com"
    (mail,) = outbox("question_asked")
    assert mail.recipient == "creator@example.com" and "Does it float?" in mail.body
    assert f"/campaigns/{world.slug}/questions/{question.id}/answer" in mail.body
    listing = client_for(app, "creator@example.com").get(f"/campaigns/{world.slug}/questions").get_data(as_text=True)
    assert "Does it float?" in listing and "Backer Ben" in listing and "Waiting for you" in listing
    assert "Does it float?" not in client_for(app).get(f"/campaigns/{world.slug}").get_data(as_text=True)  # private


@pytest.mark.parametrize("who, expected", [(None, "login"), ("member@example.com", 403), ("creator@example.com", 403),
                                           ("mod@example.com", 403), ("collected@example.com", 302), ("canceled@example.com", 403)])
def test_only_backers_ask(app, world, who, expected):
    back(world, make_user("collected@example.com"), state="collected")
    back(world, make_user("canceled@example.com"), state="canceled")
    response = client_for(app, who).post(f"/campaigns/{world.slug}/ask", data={"body": "Hello?"})
    if expected == "login":
        assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    else:
        assert response.status_code == expected
    assert len(_questions()) == (1 if expected == 302 else 0)


def test_a_bad_question_is_refused_next_to_the_field(app, world):
    response = client_for(app, "backer@example.com").post(f"/campaigns/{world.slug}/ask", data={"body": ""})
    assert response.status_code == 422 and "Write your question." in response.get_data(as_text=True)
    response = client_for(app, "backer@example.com").post(f"/campaigns/{world.slug}/ask", data={"body": "x" * 2001})
    assert response.status_code == 422 and _questions() == []


def _ask(world, text="Does it float?"):
    from app.accounts.models import User

    ben = db.session.scalar(select(User).where(User.email == "backer@example.com"))
    return services.ask(world, ben, text)


def test_the_creator_answers_privately(app, world):
    question = _ask(world)
    cora = client_for(app, "creator@example.com")
    path = f"/campaigns/{world.slug}/questions/{question.id}/answer"
    form = cora.get(path).get_data(as_text=True)
    assert "Does it float?" in form
    assert cora.post(path, data={"answer": "Yes, in fresh water.", "reply": "y", "faq_question": "Does it float?"}).status_code == 302
    (mail,) = outbox("question_answered")
    assert mail.recipient == "backer@example.com" and "Yes, in fresh water." in mail.body and "Does it float?" in mail.body
    assert _entries() == []
    db.session.refresh(question)
    assert question.answer == "Yes, in fresh water." and question.answered_at and question.faq_entry_id is None


def test_the_creator_publishes_an_answer_to_the_faq_in_one_step(app, world):
    question = _ask(world, "does it float??")
    cora = client_for(app, "creator@example.com")
    path = f"/campaigns/{world.slug}/questions/{question.id}/answer"
    response = cora.post(path, data={"answer": "It **does**.", "publish": "y", "faq_question": "Does it float?"})
    assert response.status_code == 302
    (entry,) = _entries()
    assert (entry.question, entry.answer) == ("Does it float?", "It **does**.")
    db.session.refresh(question)
    assert question.faq_entry_id == entry.id
    assert outbox("question_answered") == []  # not sent: the creator did not tick it
    page = client_for(app).get(f"/campaigns/{world.slug}").get_data(as_text=True)
    assert "Does it float?" in page and "It <strong>does</strong>." in page
    other = _ask(world, "And in the sea?")
    cora.post(f"/campaigns/{world.slug}/questions/{other.id}/answer",
              data={"answer": "Also.", "publish": "y", "reply": "y", "faq_question": "And in the sea?"})
    assert len(_entries()) == 2 and len(outbox("question_answered")) == 1


def test_an_answer_must_go_somewhere(app, world):
    question = _ask(world)
    cora = client_for(app, "creator@example.com")
    path = f"/campaigns/{world.slug}/questions/{question.id}/answer"
    response = cora.post(path, data={"answer": "Kept answer", "faq_question": "Q"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Choose to send the answer to the backer" in page and "Kept answer" in page
    response = cora.post(path, data={"answer": "Kept answer", "publish": "y", "faq_question": ""})
    assert response.status_code == 422 and "Write the question as it should appear in the FAQ." in response.get_data(as_text=True)
    assert _entries() == [] and outbox("question_answered") == []


@pytest.mark.parametrize("who", ["member@example.com", "backer@example.com", "mod@example.com"])
def test_only_the_creator_reads_and_answers_questions(app, world, who):
    question = _ask(world)
    client = client_for(app, who)
    assert client.get(f"/campaigns/{world.slug}/questions").status_code == 403
    path = f"/campaigns/{world.slug}/questions/{question.id}/answer"
    assert client.get(path).status_code == 403
    assert client.post(path, data={"answer": "x", "reply": "y", "publish": "y", "faq_question": "q"}).status_code == 403
    assert _entries() == [] and outbox("question_answered") == []


def test_a_question_of_another_campaign_is_not_found(app, world):
    cora_other = make_user("other@example.com")
    other = make_campaign(cora_other, "live")
    from app.accounts.models import User

    ben = db.session.scalar(select(User).where(User.email == "backer@example.com"))
    back(other, ben)
    theirs = services.ask(other, ben, "Elsewhere?")
    assert client_for(app, "creator@example.com").get(f"/campaigns/{world.slug}/questions/{theirs.id}/answer").status_code == 404


def test_question_text_is_escaped_everywhere(app, world):
    question = _ask(world, XSS_LINE)
    cora = client_for(app, "creator@example.com")
    for path in (f"/campaigns/{world.slug}/questions", f"/campaigns/{world.slug}/questions/{question.id}/answer"):
        page = cora.get(path).get_data(as_text=True)
        assert dangerous_markup(page) == [] and "&lt;script&gt;alert" in page
    cora.post(f"/campaigns/{world.slug}/questions/{question.id}/answer",
              data={"answer": XSS_MARKDOWN, "publish": "y", "faq_question": XSS_LINE})
    page = client_for(app).get(f"/campaigns/{world.slug}").get_data(as_text=True)
    assert dangerous_markup(page) == [] and "&lt;script&gt;alert" in page


def test_publishing_an_answer_again_corrects_the_entry(app, world):
    question = _ask(world)
    cora = client_for(app, "creator@example.com")
    path = f"/campaigns/{world.slug}/questions/{question.id}/answer"
    cora.post(path, data={"answer": "Yes.", "publish": "y", "faq_question": "Does it float?"})
    cora.post(path, data={"answer": "Yes, in fresh water.", "publish": "y", "faq_question": "Does it float on water?"})
    (entry,) = _entries()
    assert (entry.question, entry.answer) == ("Does it float on water?", "Yes, in fresh water.")


def test_the_creator_sees_move_buttons_only_where_they_move(app, world):
    for n in range(3):
        services.add_faq(world, world.creator, f"Q{n}?", "A.")
    page = client_for(app, "creator@example.com").get(f"/campaigns/{world.slug}").get_data(as_text=True)
    assert page.count(">Move up<") == 2 and page.count(">Move down<") == 2
    assert ">Move up<" not in client_for(app, "backer@example.com").get(f"/campaigns/{world.slug}").get_data(as_text=True)
