"""Queue and deliver mail. With MAIL_SERVER set, Flask-Mail sends it; otherwise it goes to the log."""
from __future__ import annotations

import logging

from flask import current_app, g, has_request_context, render_template
from flask_mail import Message
from sqlalchemy import select

from app import clock
from app.extensions import db, mail
from app.notifications.models import OutboxMessage

log = logging.getLogger("threshold.mail")
MAX_ATTEMPTS = 10


def queue_mail(recipient: str, subject: str, template: str, **context) -> OutboxMessage:
    """Add a message to the outbox in the caller's transaction (rendered from `email/<template>.txt`)."""
    if has_request_context():
        body = render_template(f"email/{template}.txt", **context)
    else:  # the worker or a command: links point at BASE_URL
        with current_app.test_request_context(base_url=current_app.config["BASE_URL"]):
            body = render_template(f"email/{template}.txt", **context)
    message = OutboxMessage(recipient=recipient, subject=str(subject), body=body, kind=template)
    db.session.add(message)
    if has_request_context():
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
        mail.send(Message(subject=message.subject, recipients=[message.recipient], body=message.body))
        log.info("mail %s sent to %s: %s", message.id, message.recipient, message.subject)
    else:
        text = f"To: {message.recipient}\nSubject: {message.subject}\n\n{message.body}"
        log.info("mail %s (no MAIL_SERVER, logged only)\n%s", message.id, text)
        mail_log = current_app.config.get("MAIL_LOG_FILE")
        if mail_log:  # the demo's mail box: every email, readable in one file
            with open(mail_log, "a", encoding="utf-8") as handle:
                handle.write(f"--- mail {message.id} · {clock.utcnow():%Y-%m-%d %H:%M:%S} UTC ---\n{text}\n\n")
