"""`flask --app wsgi users …`: make accounts and moderators from the command line."""
from __future__ import annotations

import click
from flask.cli import AppGroup

from app.accounts import services

users_cli = AppGroup("users", help="Manage member accounts.")


@users_cli.command("create")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, help="The new password.")
@click.option("--name", "display_name", default=None, help="Display name (default: the part before @).")
@click.option("--moderator", is_flag=True, help="Make the account a moderator.")
def create(email: str, password: str, display_name: str | None, moderator: bool) -> None:
    """Create an account."""
    try:
        user = services.register(email, display_name or email.split("@")[0], password, moderator=moderator)
    except services.AccountError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Created {'moderator' if moderator else 'member'} {user.email} (id {user.id})")


@users_cli.command("promote")
@click.argument("email")
def promote(email: str) -> None:
    """Make an existing member a moderator."""
    try:
        user = services.promote(email)
    except services.AccountError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{user.email} is now a moderator")
