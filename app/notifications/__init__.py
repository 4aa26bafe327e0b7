"""Mail through an outbox table: queued in the sender's transaction, delivered after commit."""
from __future__ import annotations

from flask import Flask, g

from app.notifications.cli import mail_cli


def init_app(app: Flask) -> None:
    """Deliver the mail a request queued once the response is done (best effort; the worker retries)."""
    app.cli.add_command(mail_cli)

    @app.teardown_request
    def _deliver(exc: BaseException | None) -> None:
        if exc is None and g.pop("mail_queued", False):
            from app.notifications.services import deliver_pending

            try:
                deliver_pending(limit=20)
            except Exception:  # never fail a finished request over mail; the outbox keeps it
                app.logger.exception("Delivering mail after the request failed")
