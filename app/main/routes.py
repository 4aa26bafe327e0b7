"""Home page (discover), the public stats page and the health check."""
from __future__ import annotations

from flask import current_app, render_template
from sqlalchemy import text

from app.caching import public_page
from app.campaigns import services as campaigns
from app.extensions import db, limiter
from app.main import bp
from app.operations import charts as operations_charts
from app.operations import figures


@bp.route("/")
@public_page
def index():
    return render_template("main/index.html", discover_campaigns=campaigns.discover)


@bp.route("/stats")
@public_page
def stats():
    """Campaigns launched and funded, what was pledged, success rates: public facts only."""
    return render_template("main/stats.html", stats=figures.public_stats(), charts=operations_charts)


@bp.route("/healthz")
@limiter.exempt
def healthz():
    """200 when the app and its database answer, 503 otherwise."""
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:
        db.session.rollback()
        return {"status": "error", "database": "unreachable"}, 503
    return {"status": "ok", "database": "ok"}


@bp.app_context_processor
def _endpoints():
    return {"has_endpoint": lambda name: name in current_app.view_functions}


def bench_ceiling():
    """A trivial template through the same app and server: the ceiling the page benchmark compares with."""
    return render_template("main/bench_ceiling.html")
