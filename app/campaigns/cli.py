"""`flask --app wsgi uploads sweep`: remove stored covers that no campaign shows any more."""
from __future__ import annotations

import click
from flask.cli import AppGroup

uploads_cli = AppGroup("uploads", help="Uploaded files.")


@uploads_cli.command("sweep")
def sweep() -> None:
    """Delete covers no campaign shows (and crashed uploads) older than a day; the worker runs it hourly."""
    from app.campaigns.services import sweep_orphan_covers

    click.echo(f"{sweep_orphan_covers()} orphan file(s) removed")
