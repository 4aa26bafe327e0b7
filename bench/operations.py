"""Operations figures benchmark (issue 19): the statements and the time of each figure of the moderators'
operations page (app/operations/figures.py), and of the public stats page's one statement, on the page
benchmark's data set on PostgreSQL.

    .venv/bin/python bench/operations.py [--campaigns 2000] [--pledges 200000] [--repeat 5] [--keep]

Data: bench/pages.py's generator (users, campaigns three quarters live, tiers, active pledges), then,
for the figures that read what it does not make: every campaign's audit rows (submitted, approved,
launched, and funded for the successful ones), a charge attempt for one pledge in four (one in ten of
those failing first, half of these collected on a second attempt), refunds of one collected pledge in
a hundred, and reports. Needs PostgreSQL (DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/postgres:
a database named threshold_bench_operations is created next to it and dropped at the end unless --keep).
Each figure is run once to warm up, then --repeat times; the median is written to bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, event, text  # noqa: E402

from bench.pages import generate, machine  # noqa: E402
from bench.settlement import write_results  # noqa: E402
from tests import databases  # noqa: E402

DB_NAME = "threshold_bench_operations"


def add_history(database_url: str) -> dict:
    """What the page generator does not make: audit rows, charge attempts, refunds, reports."""
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO campaign_events (campaign_id, from_state, to_state, action, note, created_at) "
            "SELECT c.id, e.from_state, e.to_state, e.action, '', c.launched_at + e.shift + (c.id % 48) * interval '1 hour' "
            "FROM campaigns c CROSS JOIN (VALUES ('draft', 'submitted', 'submit', interval '-5 days'), "
            "  ('submitted', 'approved', 'approve', interval '-3 days'), ('approved', 'live', 'launch', interval '0')) "
            "  AS e(from_state, to_state, action, shift)"
        ))
        conn.execute(text(
            "INSERT INTO campaign_events (campaign_id, from_state, to_state, action, note, created_at) "
            "SELECT id, 'live', state, CASE WHEN state = 'successful' THEN 'succeed' ELSE 'fail' END, '', deadline "
            "FROM campaigns WHERE state <> 'live'"
        ))
        # One pledge in four charged; one in ten of those fails first, and half of these are collected later.
        conn.execute(text(
            "INSERT INTO charge_attempts (pledge_id, attempt, amount, currency, status, created_at, finished_at) "
            "SELECT id, 1, amount, currency, CASE WHEN id % 40 = 0 THEN 'failed' ELSE 'succeeded' END, "
            "  activated_at + interval '2 days', activated_at + interval '2 days' FROM pledges WHERE id % 4 = 0"
        ))
        conn.execute(text(
            "INSERT INTO charge_attempts (pledge_id, attempt, amount, currency, status, created_at, finished_at) "
            "SELECT id, 2, amount, currency, 'succeeded', activated_at + interval '3 days', activated_at + interval '3 days' "
            "FROM pledges WHERE id % 80 = 0"
        ))
        conn.execute(text(
            "INSERT INTO pledge_events (pledge_id, from_state, to_state, action, amount, note, created_at) "
            "SELECT id, 'collected', 'refunded', 'refund', amount, 'bench', activated_at + interval '4 days' FROM pledges WHERE id % 400 = 4"
        ))
        conn.execute(text(
            "INSERT INTO campaign_reports (campaign_id, reporter_id, reason, note, created_at, updated_at, resolved_at, resolution, "
            "  resolution_note) "
            "SELECT c.id, (c.id % 150) + 1, 'other', 'bench', c.launched_at + interval '1 day', c.launched_at + interval '1 day', "
            "  CASE WHEN c.id % 2 = 0 THEN c.launched_at + interval '2 days' END, CASE WHEN c.id % 2 = 0 THEN 'dismissed' END, '' "
            "FROM campaigns c WHERE c.id % 5 = 0"
        ))
        counts = conn.execute(text(
            "SELECT (SELECT count(*) FROM campaign_events), (SELECT count(*) FROM charge_attempts), "
            "(SELECT count(*) FROM pledge_events), (SELECT count(*) FROM campaign_reports)"
        )).one()
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    engine.dispose()
    return {"events": counts[0], "attempts": counts[1], "refunds": counts[2], "reports": counts[3]}


def measure(database_url: str, repeat: int) -> list[tuple[str, int, int, float]]:
    """(figure, weeks, statements, median ms) for each figure of both pages."""
    os.environ.update(DATABASE_URL=database_url, APP_ENV="development", SECRET_KEY="bench", STRIPE_API_BASE="http://127.0.0.1:9")
    from app import create_app
    from app.extensions import db
    from app.operations import figures

    app = create_app()
    rows = []
    with app.test_request_context():
        statements = [0]

        def tick(*_args):
            statements[0] += 1

        event.listen(db.engine, "before_cursor_execute", tick)
        for weeks in (12, 52):
            period = figures.period(weeks)
            parts = [
                ("pledged and collected by week, average pledge", lambda p=period: figures.money_by_week(p)),
                ("campaigns submitted / approved / launched / funded", lambda p=period: figures.funnel(p)),
                ("success rate by category and goal size", lambda p=period: figures.outcomes(p)),
                ("median time to review", lambda p=period: figures.review_times(p)),
                ("repeat backers", lambda p=period: figures.repeat_backers(p)),
                ("charge failures and recoveries", lambda p=period: figures.charges(p)),
                ("refunds", lambda p=period: figures.refunds(p)),
                ("reports", lambda p=period: figures.reports(p)),
                ("the whole operations page's figures", lambda w=weeks: figures.operations(w)),
            ]
            if weeks == 12:
                parts.append(("public stats page (all time)", figures.public_stats))
            for name, run in parts:
                run()  # warm: plans cached, pages in memory
                times = []
                for _ in range(repeat):
                    statements[0] = 0
                    started = time.perf_counter()
                    run()
                    times.append((time.perf_counter() - started) * 1000)
                    db.session.rollback()
                rows.append((name, weeks if "public" not in name else 0, statements[0], statistics.median(times)))
                print(f"{name:55} {weeks:3} weeks {statements[0]:3} statements {statistics.median(times):9.1f} ms", flush=True)
        event.remove(db.engine, "before_cursor_execute", tick)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaigns", type=int, default=2000)
    parser.add_argument("--pledges", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help=f"keep the {DB_NAME} database")
    args = parser.parse_args()
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    url = databases.create_fresh(os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"), DB_NAME)
    try:
        env = dict(os.environ, DATABASE_URL=url, APP_ENV="development", SECRET_KEY="bench", STRIPE_API_BASE="http://127.0.0.1:9")
        subprocess.run([str(Path(sys.executable).parent / "flask"), "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env,
                       check=True, capture_output=True)
        started = time.time()
        data = generate(url, args.campaigns, args.pledges)
        history = add_history(url)
        print(f"data: {data['campaigns']} campaigns, {data['pledges']} pledges, {history['events']} audit rows, "
              f"{history['attempts']} charge attempts in {time.time() - started:.0f}s", flush=True)
        rows = measure(url, args.repeat)
    finally:
        if not args.keep:
            databases.drop(url)
    table = ["| figure | period | statements | median ms |", "|---|---:|---:|---:|"]
    for name, weeks, statements, ms in rows:
        table.append(f"| {name} | {f'{weeks} weeks' if weeks else 'all time'} | {statements} | {ms:.1f} |")
    command = "`.venv/bin/python bench/operations.py" + (f" --campaigns {args.campaigns}" if args.campaigns != 2000 else "") \
        + (f" --pledges {args.pledges}" if args.pledges != 200_000 else "") + (f" --repeat {args.repeat}" if args.repeat != 5 else "") + "`"
    section = "\n".join([
        "## Operations figures (bench/operations.py)",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {machine()} (load average {load_before} at the start; the machine is shared)",
        f"Data: bench/pages.py's generator — {data['campaigns']} campaigns, {data['pledges']} pledges, {data['users']} users — and "
        f"{history['events']} campaign audit rows, {history['attempts']} charge attempts, {history['refunds']} refunds, "
        f"{history['reports']} reports. Each figure run once to warm up, then {args.repeat} times: the median.",
        "",
        f"Command: {command} (PostgreSQL: DATABASE_URL, default the local server)",
        "",
        *table,
        "",
        "The statement counts do not depend on the data (tests/test_operations.py holds them to figures.STATEMENTS).",
    ])
    write_results(section, "operations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
