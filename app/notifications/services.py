"""Queue and deliver mail. With MAIL_SERVER set, Flask-Mail sends it; otherwise it goes to the log.

Mail to a member (`queue_mail(user, …)`) is written in their language and time zone, carries a
one-click unsubscribe link in its footer and in its List-Unsubscribe headers (RFC 8058), and is
skipped when it belongs to an optional category (`updates`, `replies`, `reminders`, `backers`,
`moderation`) the member turned off.
Mail to a bare address (`queue_mail("a@b.c", …)`) is rendered as before, without them.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager, nullcontext
from typing import Any

from babel.dates import get_timezone as babel_timezone
from flask import current_app, g, has_request_context
from flask_babel import force_locale, get_locale
from flask_login import current_user
from flask_mail import Message
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select

from app import clock
from app.extensions import db, mail
from app.links import external_url
from app.notifications.models import OutboxMessage

log = logging.getLogger("threshold.mail")
MAX_ATTEMPTS = 10

#: Optional mail a member may turn off: category -> the member's boolean column. Every other mail
#: (pledges, payments, password, campaign decisions) is transactional and always sent.
CATEGORIES: dict[str, str] = {"updates": "email_updates", "replies": "email_replies", "reminders": "email_reminders",
                              "backers": "email_new_backers", "moderation": "email_moderation"}
#: New-backer mail is a choice of three, not a switch: "each" backer, a daily "digest", or "off".
NEW_BACKER_CHOICES = ("each", "digest", "off")
#: The token category of a transactional mail's unsubscribe link: it leads to the preferences.
TRANSACTIONAL = "all"
#: The category of the optional mails by template, for callers that do not name it.
TEMPLATE_CATEGORIES: dict[str, str] = {"community_update": "updates", "comment_reply": "replies",
                                       "survey_reminder": "updates", "campaign_reminder": "reminders",
                                       "new_backer": "backers", "backer_digest": "backers",
                                       "moderation_submitted": "moderation", "moderation_report": "moderation"}
_UNSUBSCRIBE_SALT = "unsubscribe"


# --- unsubscribe tokens ----------------------------------------------------------------------

def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_UNSUBSCRIBE_SALT)


def unsubscribe_token(user_id: int, category: str) -> str:
    """A signed token naming a member and a mail category (or TRANSACTIONAL); no login needed to use
    it, and it does not expire (a link in an old mail must still work)."""
    return _serializer().dumps({"u": int(user_id), "c": category})


def read_unsubscribe_token(token: str) -> tuple[int, str] | None:
    """(user id, category) from a token of `unsubscribe_token`, or None when it is not one of ours."""
    if not token or len(token) > 500:
        return None
    try:
        data = _serializer().loads(token)
    except (BadSignature, UnicodeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    user_id, category = data.get("u"), data.get("c")
    if not isinstance(user_id, int) or isinstance(user_id, bool) or category not in (*CATEGORIES, TRANSACTIONAL):
        return None
    return user_id, category


def wants(user: Any, category: str | None) -> bool:
    """Whether `user` gets mail of `category` (always, for transactional mail)."""
    if category is None:
        return True
    if category not in CATEGORIES:
        raise ValueError(f"unknown mail category {category!r}")
    value = getattr(user, CATEGORIES[category])
    return value != "off" if isinstance(value, str) else bool(value)


def turn_off(user: Any, category: str) -> None:
    """Stop one optional category for `user` (in the caller's transaction)."""
    column = CATEGORIES[category]
    setattr(user, column, "off" if isinstance(getattr(user, column), str) else False)


# --- queueing --------------------------------------------------------------------------------

def _render(template: str, **context) -> str:
    """An email template with only what it is given (and the app's filters and globals): unlike a page,
    a mail never reads the current request's user or CSRF token, so Flask's context processors, run
    for every page, are skipped (they were a third of the cost of a mail)."""
    return current_app.jinja_env.get_template(f"email/{template}.txt").render(context)


def _locale_of(user: Any) -> str:
    """The member's chosen language; else, when the request is their own (registering, asking for a
    password reset), the language their browser asked for; else the default."""
    default = current_app.config.get("BABEL_DEFAULT_LOCALE", "en")
    languages = current_app.config.get("LANGUAGES") or [default]
    chosen = getattr(user, "locale", None)
    if chosen in languages:
        return chosen
    if has_request_context():
        viewer = current_user
        if not getattr(viewer, "is_authenticated", False) or viewer.id == user.id:
            return str(get_locale() or default)
    return default


@contextmanager
def _as_seen_by(user: Any):
    """Render in the member's language and time zone, whoever's request this is."""
    from flask_babel import _get_current_context

    with force_locale(_locale_of(user)):
        ctx = _get_current_context()
        saved = getattr(ctx, "babel_tzinfo", None)
        try:
            zone = babel_timezone(getattr(user, "timezone", None) or current_app.config.get("BABEL_DEFAULT_TIMEZONE", "UTC"))
        except LookupError:
            zone = babel_timezone("UTC")
        if ctx is not None:
            ctx.babel_tzinfo = zone
        try:
            yield
        finally:
            if ctx is not None:
                ctx.babel_tzinfo = saved


def _render_for_user(user: Any, subject: Any, template: str, category: str | None, context: dict) -> tuple[str, str, dict]:
    if user.id is None:  # a member made in this transaction (the welcome mail): the token needs the id
        db.session.flush()
    token = unsubscribe_token(user.id, category or TRANSACTIONAL)
    link = external_url("accounts.unsubscribe", token=token)
    with _as_seen_by(user):
        body = _render(template, **context)
        body = body.rstrip("\n") + "\n\n" + _render("_unsubscribe", link=link, category=category,
                                                            preferences=external_url("accounts.notifications"))
        subject_text = str(subject)
    headers = {"List-Unsubscribe": f"<{link}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    return subject_text, body, headers


@contextmanager
def mail_batch():
    """Queue many mails outside a request (a settlement batch, an update's fan-out) in one made-up request
    context instead of one per mail: making and dropping a request context cost as much as the mail.
    Inside a real request it does nothing."""
    if has_request_context():
        yield
        return
    with current_app.test_request_context(base_url=current_app.config["BASE_URL"]):
        g.mail_batch = True
        try:
            yield
        finally:
            # Only a real request's end delivers queued mail: dropping this one must not commit the caller's work.
            g.pop("mail_queued", None)
            g.pop("mail_batch", None)


def queue_mail(recipient: Any, subject: Any, template: str, *, category: str | None = None, **context) -> OutboxMessage | None:
    """Add a message to the outbox in the caller's transaction (rendered from `email/<template>.txt`).

    `recipient` is a member (a `User`: preferred) or a bare address. For a member the mail is
    rendered in their language — pass the subject as a lazy string (`lazy_gettext`) so that it is
    translated too — and gets the unsubscribe footer and headers. `category` ("updates", "replies")
    marks optional mail: None is returned, and nothing queued, when the member turned it off (and for
    any mail to a member who deleted their account).
    """
    category = category or TEMPLATE_CATEGORIES.get(template)
    is_user = not isinstance(recipient, str)
    if is_user and (not wants(recipient, category) or getattr(recipient, "deleted_at", None) is not None):
        return None  # turned off, or the member deleted their account: nobody to write to
    in_request = has_request_context()
    # The worker or a command has no request: render in a made-up one, so links point at BASE_URL.
    with nullcontext() if in_request else mail_batch():
        if is_user:
            subject_text, body, headers = _render_for_user(recipient, subject, template, category, context)
            address = recipient.email
        else:
            subject_text, body, headers, address = str(subject), _render(template, **context), None, recipient
    message = OutboxMessage(recipient=address, subject=subject_text[:255], body=body, kind=template, headers=headers)
    db.session.add(message)
    if in_request and not g.get("mail_batch"):
        g.mail_queued = True
    return message


def deliver_pending(limit: int = 100) -> int:
    """Send up to `limit` queued messages; returns how many left. Each is committed on its own."""
    rows = db.session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.sent_at.is_(None), OutboxMessage.attempts < MAX_ATTEMPTS)
        .order_by(OutboxMessage.id)
        .limit(limit)
    ).all()
    sent = 0
    for message in rows:
        message.attempts += 1
        try:
            _send(message)
        except Exception as error:  # SMTP trouble: keep the row, try again on the next pass
            message.last_error = str(error)[:2000]
            log.warning("mail %s to %s failed: %s", message.id, message.recipient, error)
        else:
            message.sent_at = clock.utcnow()
            sent += 1
        db.session.commit()
    return sent


def _send(message: OutboxMessage) -> None:
    if current_app.config.get("MAIL_SERVER"):
        mail.send(Message(subject=message.subject, recipients=[message.recipient], body=message.body,
                          extra_headers=dict(message.headers or {})))
        log.info("mail %s sent to %s: %s", message.id, message.recipient, message.subject)
    else:
        extra = "".join(f"{name}: {value}\n" for name, value in (message.headers or {}).items())
        text = f"To: {message.recipient}\nSubject: {message.subject}\n{extra}\n{message.body}"
        mail_log = current_app.config.get("MAIL_LOG_FILE")
        if mail_log:  # the demo's mail box: every email, readable in one file (and only there)
            with open(mail_log, "a", encoding="utf-8") as handle:
                handle.write(f"--- mail {message.id} · {clock.utcnow():%Y-%m-%d %H:%M:%S} UTC ---\n{text}\n\n")
            log.info("mail %s to %s written to %s: %s", message.id, message.recipient, mail_log, message.subject)
        else:
            log.info("mail %s (no MAIL_SERVER, logged only)\n%s", message.id, text)
