"""The demo database's mark, and what only a demo may do: keep its dates alive, end a campaign now.

Seeding writes one `demo_marks` row. Without it, a database is not the demo's, and the commands
below refuse to touch it: they rewrite dates, which nothing else in Threshold ever does.

- `move_forward()` (run by `seed-demo` on every `make run`): when the demo was last used a while
  ago, every date and time in the database moves forward by the pause, so the demo reads as it did
  when it was left — the featured campaign still live, the funded one just paid.
- `flask --app wsgi demo end SLUG`: a live campaign's deadline becomes now; the running worker's
  next pass decides it (funded or not) and charges or releases its pledges, as at a real deadline.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

import click
from flask.cli import with_appcontext
from sqlalchemy import Date, DateTime, Integer, bindparam, func, select, update
from sqlalchemy.orm import Mapped, mapped_column

from app import clock
from app.campaigns.models import Campaign, CampaignState
from app.extensions import db

#: A pause shorter than this is not worth moving the dates for.
STALE_AFTER = timedelta(minutes=5)


class DemoMark(db.Model):
    """The one row that says "this database is the offline demo's" (written by `seed-demo`)."""

    __tablename__ = "demo_marks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seeded_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    #: The last time the dates were known to be current (seeding, or the last move forward).
    anchor_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)


class NotTheDemo(click.ClickException):
    """Refused: this database was not made by `seed-demo`."""


def mark() -> DemoMark | None:
    return db.session.scalar(select(DemoMark).order_by(DemoMark.id).limit(1))


def set_mark(seeded_at: datetime | None = None) -> DemoMark:
    """Mark this database as the demo's (seeding does it). Commits."""
    now = clock.utcnow()
    found = mark()
    if found is None:
        found = DemoMark(seeded_at=seeded_at or now, anchor_at=now)
        db.session.add(found)
    db.session.commit()
    return found


def require_demo() -> DemoMark:
    found = mark()
    if found is None:
        raise NotTheDemo("this database is not the demo's (no demo mark, written by `flask --app wsgi seed-demo`): "
                         "demo commands rewrite dates and are refused here")
    return found


# --- keeping the demo alive --------------------------------------------------------------------

#: Columns that say when something happened (as opposed to deadlines, leases and other plans).
ACTIVITY_COLUMNS = ("created_at", "updated_at", "received_at", "ran_at", "occurred_at")


def last_activity(since: datetime) -> datetime:
    """The latest moment something happened here: the newest of the ACTIVITY_COLUMNS of every table,
    never later than now (the demo plans things ahead, it does not do them ahead), or `since`."""
    now = clock.utcnow()
    latest = since
    for table in db.metadata.sorted_tables:
        for name in ACTIVITY_COLUMNS:
            column = table.columns.get(name)
            if column is not None and isinstance(column.type, DateTime):
                value = db.session.scalar(select(func.max(column)).where(column <= now))
                if value is not None and value > latest:
                    latest = value
    return latest


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    return day.replace(year=day.year + month // 12, month=month % 12 + 1, day=1)


def _shift_date(day: date, delta: timedelta) -> date:
    """Dates move by whole days; a first-of-month (an estimated delivery month) stays a first-of-month."""
    if day.day == 1:
        return _add_months(day, round(delta.days / 30.44))
    return day + timedelta(days=delta.days)


def shift_all(delta: timedelta) -> int:
    """Move every DateTime (and Date) column of every row forward by `delta`. Returns the rows changed. Commits."""
    changed = 0
    for table in db.metadata.sorted_tables:
        moments = [c for c in table.columns if isinstance(c.type, DateTime)]
        days = [c for c in table.columns if isinstance(c.type, Date)]
        keys = list(table.primary_key.columns)
        if not (moments or days) or not keys:
            continue
        rows = db.session.execute(select(*keys, *moments, *days)).all()
        if not rows:
            continue
        params = []
        for row in rows:
            values = row._mapping
            item = {f"k_{c.name}": values[c] for c in keys}
            item |= {f"v_{c.name}": None if values[c] is None else values[c] + delta for c in moments}
            item |= {f"v_{c.name}": None if values[c] is None else _shift_date(values[c], delta) for c in days}
            params.append(item)
        statement = update(table).values({c.name: bindparam(f"v_{c.name}") for c in moments + days})
        for c in keys:
            statement = statement.where(c == bindparam(f"k_{c.name}"))
        db.session.execute(statement, params, execution_options={"synchronize_session": False})
        changed += len(rows)
    db.session.commit()
    db.session.expire_all()
    return changed


def move_forward() -> timedelta | None:
    """If the demo was left more than STALE_AFTER ago, move all its dates forward by the pause; returns
    the pause (None when the dates were current). Refused on a database that is not the demo's."""
    found = require_demo()
    pause = clock.utcnow() - last_activity(found.anchor_at)
    if pause < STALE_AFTER:
        return None
    shift_all(pause)  # moves anchor_at too: the mark's dates are dates like any other
    found = require_demo()
    found.anchor_at = clock.utcnow()
    db.session.commit()
    return pause


# --- ending a campaign now ---------------------------------------------------------------------

def end_now(slug: str) -> Campaign:
    """Set a live campaign's deadline to now (demo only: a real deadline is never changed). Commits."""
    require_demo()
    campaign = db.session.scalar(select(Campaign).where(Campaign.slug == slug))
    live = [row for row in db.session.scalars(select(Campaign.slug).where(Campaign.state == CampaignState.LIVE.value).order_by(Campaign.slug))]
    if campaign is None:
        raise click.ClickException(f"no campaign {slug!r}; live ones: {', '.join(live) or 'none'}")
    if campaign.state != CampaignState.LIVE.value:
        raise click.ClickException(f"{slug} is {campaign.state}, not live; live ones: {', '.join(live) or 'none'}")
    now = clock.utcnow()
    campaign.deadline = now
    campaign.updated_at = now  # visitors' cached pages show the change
    db.session.commit()
    return campaign


@click.group("demo")
def demo_cli() -> None:
    """The offline demo's own commands (refused on a database that seed-demo did not make)."""


@demo_cli.command("end")
@click.argument("slug")
@with_appcontext
def end_command(slug: str) -> None:
    """End the live demo campaign SLUG now; the running worker settles it on its next pass."""
    from app.money import to_major

    campaign = end_now(slug)
    funded = campaign.pledged_total >= campaign.goal
    click.echo(f"{campaign.title} ({slug}) ended now with {to_major(campaign.pledged_total, campaign.currency)} "
               f"of {to_major(campaign.goal, campaign.currency)} {campaign.currency}: "
               f"{'funded, its pledges will be charged' if funded else 'not funded, its pledges will be released'}. "
               "The running worker settles it on its next pass (every 5 s under `make run`); "
               "without one, `.venv/bin/flask --app wsgi settle` does.")


@demo_cli.command("refresh")
@with_appcontext
def refresh_command() -> None:
    """Move the demo's dates forward by the time it was left (seed-demo does it on every start)."""
    pause = move_forward()
    click.echo(f"demo dates moved forward by {_human(pause)}" if pause else "demo dates are current")


def _human(pause: timedelta) -> str:
    if pause >= timedelta(days=2):
        return f"{pause.days} days"
    if pause >= timedelta(hours=2):
        return f"{int(pause.total_seconds() // 3600)} hours"
    return f"{int(pause.total_seconds() // 60)} minutes"
