"""`flask --app wsgi seed-demo`: demo accounts (and, as the product grows, campaigns and pledges)."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from app.accounts import services as accounts

DEMO_PASSWORD = "threshold-demo"
#: (email, display name, moderator)
DEMO_USERS = [
    ("moderator@example.com", "Morgan (moderator)", True),
    ("creator@example.com", "Camille Creator", False),
    ("backer@example.com", "Bao Backer", False),
]


def seed_users() -> dict[str, object]:
    """Create the demo accounts that do not exist yet; return them by email."""
    users = {}
    for email, name, moderator in DEMO_USERS:
        user = accounts.find_by_email(email) or accounts.register(email, name, DEMO_PASSWORD, moderator=moderator)
        users[email] = user
    return users


@click.command("seed-demo")
@with_appcontext
def seed_demo() -> None:
    """Fill the database with demo data (safe to run again: existing rows are kept)."""
    users = seed_users()
    click.echo(f"Demo accounts ready ({len(users)}), password: {DEMO_PASSWORD}")
    for email, _name, moderator in DEMO_USERS:
        click.echo(f"  {email}{'  (moderator)' if moderator else ''}")
