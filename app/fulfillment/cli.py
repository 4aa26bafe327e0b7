"""`flask --app wsgi addresses erase-due`: erase the shipping addresses delivered more than
ADDRESS_RETENTION_DAYS ago (run it daily, from cron or the worker's host)."""
from __future__ import annotations

import click
from flask.cli import AppGroup

addresses_cli = AppGroup("addresses", help="Backers' shipping addresses.")


@addresses_cli.command("erase-due")
def erase_due() -> None:
    """Erase the addresses whose items were delivered more than ADDRESS_RETENTION_DAYS ago."""
    from app.fulfillment.addresses import erase_due as erase

    click.echo(f"{erase()} addresses erased")
