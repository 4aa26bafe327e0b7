"""`flask --app wsgi mail send`: deliver queued mail now."""
from __future__ import annotations

import click
from flask.cli import AppGroup

mail_cli = AppGroup("mail", help="The outbox of queued email.")


@mail_cli.command("send")
@click.option("--limit", default=500, show_default=True, help="At most this many messages.")
def send(limit: int) -> None:
    """Deliver queued mail."""
    from app.notifications.services import deliver_pending

    click.echo(f"{deliver_pending(limit)} message(s) delivered")
