"""`flask --app wsgi payouts run`: one payout pass (the worker runs it after each settlement pass);
`flask --app wsgi reconcile`: the ledger against Stripe (the worker runs it daily)."""
from __future__ import annotations

import click
from flask.cli import AppGroup, with_appcontext

payouts_cli = AppGroup("payouts", help="Pay funded campaigns' creators (Stripe Connect transfers).")


@payouts_cli.command("run")
def run() -> None:
    """Schedule the payouts that fell due and pay them, exactly once."""
    from app.payouts.services import run_pass

    summary = run_pass()
    for line in summary.lines() or ["nothing to do"]:
        click.echo(line)


@click.command("reconcile")
@click.option("--campaign", "slug", help="Check this campaign only (its slug).")
@with_appcontext
def reconcile(slug: str | None) -> None:
    """Compare the ledger with Stripe's charges, refunds, transfers and reversals; exit 0 only when they agree."""
    from app.payouts import reconcile as reconciliation

    checked, differences = reconciliation.run(slug)
    for difference in differences:
        click.echo(str(difference))
    click.echo(f"{checked} campaigns checked, {len(differences)} differences")
    if differences:
        raise SystemExit(1)
