"""`flask --app wsgi settle` (one pass) and `flask --app wsgi worker` (passes in a loop, plus mail)."""
from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import threading
from datetime import timedelta
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from app import clock
from app.extensions import db

#: How often the worker reconciles the ledger with Stripe.
RECONCILE_EVERY = timedelta(days=1)
#: How often the worker sweeps orphan uploads.
SWEEP_EVERY = timedelta(hours=1)


@contextlib.contextmanager
def _single_worker_on_sqlite():
    """SQLite has no SKIP LOCKED: one settlement process at a time, enforced with a file lock."""
    if db.engine.dialect.name != "sqlite":
        yield
        return
    database = db.engine.url.database or "memory"
    lock_path = Path(database + ".settle.lock") if database not in ("", ":memory:", "memory") else Path("/tmp/threshold-settle.lock")
    with open(lock_path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise click.ClickException("another settlement process is running on this SQLite database; "
                                       "SQLite allows one at a time (use PostgreSQL for several)") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@click.command("settle")
@click.option("--batch", type=click.IntRange(1, 1000), default=None, help="Pledges leased per batch (default 50).")
@click.option("--concurrency", type=click.IntRange(1, 64), default=None, help="Stripe requests in flight at once (default 4).")
@with_appcontext
def settle(batch: int | None, concurrency: int | None) -> None:
    """Run one settlement pass: decide campaigns past their deadline, charge, retry, drop, release."""
    from app.settlement.services import run_pass

    if batch:
        current_app.config["SETTLE_BATCH_SIZE"] = batch
    if concurrency:
        current_app.config["SETTLE_CONCURRENCY"] = concurrency
    with _single_worker_on_sqlite():
        run_pass(progress=click.echo)


@contextlib.contextmanager
def _stop_on_signal(stop: threading.Event):
    """SIGTERM or SIGINT lets the pass under way finish, then the worker exits 0 (a second one stops it
    at once: a pass killed at any instant is finished by the next, without a double charge)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum, _frame) -> None:
        if stop.is_set():
            raise SystemExit(1)
        stop.set()
        click.echo(f"worker {os.getpid()}: {signal.Signals(signum).name}, stopping after this pass")

    previous = {signum: signal.signal(signum, handle) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@click.command("worker")
@click.option("--interval", type=click.IntRange(1, 86400), default=None, help="Seconds between passes (default WORKER_INTERVAL_SECONDS).")
@click.option("--passes", type=click.IntRange(0), default=0, help="Stop after this many passes (0 = run until stopped).")
@with_appcontext
def worker(interval: int | None, passes: int) -> None:
    """Run settlement passes in a loop and send queued mail; SIGTERM or Ctrl-C stops it after the pass."""
    from app.campaigns.services import sweep_orphan_covers
    from app.community.follows import remind_due as remind_savers
    from app.community.services import fan_out_updates
    from app.fulfillment.addresses import erase_due
    from app.fulfillment.shipments import auto_deliver_due, ensure_missing
    from app.fulfillment.surveys import remind_due, request_missing
    from app.notifications.services import deliver_pending
    from app.payouts import reconcile
    from app.payouts.services import run_pass as pay_creators
    from app.pledges.backer_mail import send_digests
    from app.settlement.services import run_pass

    interval = interval or current_app.config["WORKER_INTERVAL_SECONDS"]
    engine = db.engine.dialect.name
    click.echo(f"worker {os.getpid()}: a pass every {interval}s on {engine}"
               + (" (SQLite: one worker at a time)" if engine == "sqlite" else " (several workers may run at once)"))
    done = 0
    swept_at = None
    digested_for = None
    stop = threading.Event()
    with _single_worker_on_sqlite(), _stop_on_signal(stop):
        while not stop.is_set():
            try:
                run_pass(progress=click.echo)
                pay_creators()  # funded campaigns past their hold (app/payouts)
                request_missing()  # the survey for pledges collected after it was sent (app/fulfillment)
                ensure_missing()  # fulfillment items for pledges collected late (app/fulfillment)
                fan_out_updates()  # campaign updates' mail to backers, in batches (app/community)
                remind_savers()  # saved campaigns ending within 48 hours: every pass, so never a pass late (app/community)
                if digested_for != (today := clock.utcnow().date()):
                    send_digests()  # yesterday's new backers, for creators who chose the daily digest (app/pledges)
                    digested_for = today
                deliver_pending(limit=500)
                if swept_at is None or clock.utcnow() - swept_at >= SWEEP_EVERY:
                    sweep_orphan_covers()  # replaced covers are deleted at once; this catches what a crash left
                    swept_at = clock.utcnow()
                last = reconcile.last_run()
                if last is None or clock.utcnow() - last.ran_at >= RECONCILE_EVERY:
                    reconcile.run()  # the ledger against Stripe; moderators see the result
                    erase_due()  # addresses past ADDRESS_RETENTION_DAYS after delivery (app/fulfillment), daily too
                    remind_due()  # survey reminders, at most one a week each
                    auto_deliver_due()  # items shipped DELIVERED_AFTER_DAYS ago count as delivered
            except Exception:  # keep the loop alive; the next pass picks the work up again
                db.session.rollback()
                current_app.logger.exception("settlement pass failed")
            finally:
                db.session.remove()
            done += 1
            if passes and done >= passes:
                return
            stop.wait(interval)
