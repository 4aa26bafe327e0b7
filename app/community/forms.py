"""Forms for updates, comments, moderators' notes, the FAQ, backers' questions and saved campaigns."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, HiddenField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, ValidationError

from app.content.markdown import MAX_MARKDOWN_LENGTH
from app.forms import BaseForm, multi_line, one_line, trimmed
from app.ids import parse_id

UPDATE_TITLE_MAX = 120
COMMENT_MAX = 5_000
NOTE_MAX = 1_000
QUESTION_MAX = 300
ASK_MAX = 2_000
ANSWER_MAX = 10_000

class UpdateForm(BaseForm):
    title = StringField(_l("Title"), filters=[one_line], validators=[DataRequired(_l("Give the update a title.")), Length(max=UPDATE_TITLE_MAX)])
    body = TextAreaField(_l("Update"), filters=[multi_line, trimmed], render_kw={"rows": 12},
                         validators=[DataRequired(_l("Write the update.")), Length(max=MAX_MARKDOWN_LENGTH)])
    backers_only = BooleanField(_l("For backers only"))
    delivery_news = BooleanField(_l("Delivery news"))
    submit = SubmitField(_l("Post update"))


class CommentForm(BaseForm):
    body = TextAreaField(_l("Comment"), filters=[multi_line, trimmed], render_kw={"rows": 3},
                         validators=[DataRequired(_l("Write something first.")), Length(max=COMMENT_MAX)])
    #: The comment replied to (empty for a new thread).
    parent_id = HiddenField()
    submit = SubmitField(_l("Post comment"))

    def validate_parent_id(self, field) -> None:
        value = field.data
        if value in (None, ""):
            field.data = None
            return
        field.data = parse_id(value)
        if field.data is None:
            raise ValidationError(_l("That comment cannot be replied to."))


class HideCommentForm(BaseForm):
    note = TextAreaField(_l("Why is it hidden?"), filters=[multi_line, trimmed], render_kw={"rows": 3},
                         validators=[DataRequired(_l("Write a note: the author will see it.")), Length(max=NOTE_MAX)])
    submit = SubmitField(_l("Hide comment"))


class FaqForm(BaseForm):
    question = StringField(_l("Question"), filters=[one_line], validators=[DataRequired(_l("Write the question.")), Length(max=QUESTION_MAX)])
    answer = TextAreaField(_l("Answer"), filters=[multi_line, trimmed], render_kw={"rows": 6},
                           validators=[DataRequired(_l("Write the answer.")), Length(max=ANSWER_MAX)])
    submit = SubmitField(_l("Save"))


class MoveForm(BaseForm):
    direction = SelectField(_l("Direction"), choices=[("up", _l("Up")), ("down", _l("Down"))],
                            validators=[DataRequired()])


class SaveForm(BaseForm):
    """The "Remind me" and "Remove" buttons: a CSRF token, and which page to go back to."""

    back = HiddenField(default="campaign")


class AskForm(BaseForm):
    body = TextAreaField(_l("Your question"), filters=[multi_line, trimmed], render_kw={"rows": 3},
                         validators=[DataRequired(_l("Write your question.")), Length(max=ASK_MAX)])
    submit = SubmitField(_l("Send to the creator"))


class AnswerForm(BaseForm):
    answer = TextAreaField(_l("Answer"), filters=[multi_line, trimmed], render_kw={"rows": 6},
                           validators=[DataRequired(_l("Write the answer.")), Length(max=ANSWER_MAX)])
    reply = BooleanField(_l("Send the answer to the backer by email"), default=True)
    publish = BooleanField(_l("Publish the question and answer in the FAQ"))
    faq_question = StringField(_l("Question as shown in the FAQ"), filters=[one_line], validators=[Length(max=QUESTION_MAX)])
    submit = SubmitField(_l("Send answer"))

    def validate_reply(self, field) -> None:
        if not field.data and not self.publish.data:
            raise ValidationError(_l("Choose to send the answer to the backer, publish it in the FAQ, or both."))

    def validate_faq_question(self, field) -> None:
        if self.publish.data and not field.data:
            raise ValidationError(_l("Write the question as it should appear in the FAQ."))
