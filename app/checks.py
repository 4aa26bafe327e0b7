"""`flask --app wsgi check`: what a start with these settings would refuse, and why, without starting.

The settings' rules are config.py's (`Config.problems`), the same list the start refuses on: when one
is broken, `wsgi.py` stops before this command can run and prints one line per broken rule. Once the
settings are fine, this checks what only a running site would find out: the database answers and is
at the migrations' head, and the rate limiter's Redis answers.
"""
from __future__ import annotations

import click
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app
from flask.cli import with_appcontext
from limits.storage import storage_from_string
from sqlalchemy.engine import make_url

from app.extensions import db

UPGRADE = ".venv/bin/flask --app wsgi db upgrade"


def database_problems() -> tuple[list[str], str]:
    """(problems, what was found) for the database: it answers and its schema is at the head."""
    url = make_url(current_app.config["SQLALCHEMY_DATABASE_URI"]).render_as_string(hide_password=True)
    config = current_app.extensions["migrate"].migrate.get_config()
    heads = set(ScriptDirectory.from_config(config).get_heads())
    try:
        with db.engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    except Exception as error:  # any driver's refusal: the line names it
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        return [f"the database at {url} does not answer: {reason}"], url
    if not current:
        return [f"the database at {url} has no schema: run {UPGRADE}"], url
    if current != heads:
        return [f"the database at {url} is at migration {', '.join(sorted(current))}, not the head "
                f"{', '.join(sorted(heads))}: run {UPGRADE}"], url
    return [], f"{url} at migration {', '.join(sorted(current))} (the head)"


def rate_limit_problems() -> tuple[list[str], str]:
    """(problems, what was found) for the rate limiter's shared storage (Redis), if there is one."""
    uri = current_app.config["RATELIMIT_STORAGE_URI"]
    if not current_app.config["RATELIMIT_ENABLED"]:
        return [], "off (RATELIMIT_ENABLED=false)"
    if uri.startswith("memory://"):
        return [], "counted in each process (no REDIS_URL)"
    shown = make_url(uri).render_as_string(hide_password=True) if "://" in uri else uri
    try:
        answers = storage_from_string(uri).check()
    except Exception as error:
        answers, shown = False, f"{shown} ({error})"
    if not answers:
        return [f"the rate limiter's storage at {shown} does not answer (REDIS_URL)"], shown
    return [], f"{shown} answers"


@click.command("check")
@with_appcontext
def check() -> None:
    """Say what a start with these settings would refuse and why; exit 0 when nothing."""
    config = current_app.config
    problems: list[str] = []
    for name, probe in (("database", database_problems), ("rate limits", rate_limit_problems)):
        found, seen = probe()
        problems += found
        if not found:
            click.echo(f"ok: {name}: {seen}")
    if problems:
        for problem in problems:
            click.echo(f"problem: {problem}", err=True)
        raise SystemExit(1)
    environment = config["APP_ENV"]
    click.echo(f"ok: settings for APP_ENV={environment}"
               + ("" if config["PRODUCTION"] else " (production's rules were not applied: set APP_ENV=production)"))
