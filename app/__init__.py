"""The application factory."""
from __future__ import annotations

from datetime import timedelta

from flask import Flask

from config import BASE_DIR, Config


def create_app(config: Config | None = None) -> Flask:
    """Build the app: check the settings, bind extensions, register blueprints, errors and CLI."""
    config = config or Config()
    config.validate()

    app = Flask(__name__, instance_relative_config=False)
    app.config.from_object(config)
    if app.config["TRUSTED_PROXIES"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # The client's address and scheme as the proxies saw them (rate limits per client, not per
        # proxy). Not X-Forwarded-Host: the Host header itself must pass TRUSTED_HOSTS.
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    from app.ids import IdConverter

    app.url_map.converters["id"] = IdConverter
    from app import clock, logs

    logs.init_app(app)  # first: its request id and timer start before any other hook answers

    if app.config["CLOCK_OFFSET_SECONDS"]:
        clock.set_offset(timedelta(seconds=app.config["CLOCK_OFFSET_SECONDS"]))

    from app import caching, database, errors, i18n, links, security
    from app.extensions import babel, bootstrap, csrf, db, limiter, login_manager, mail, migrate

    database.engine_options(app.config)
    db.init_app(app)
    with app.app_context():
        database.init_engine(db.engine)
    migrate.init_app(app, db, directory=str(BASE_DIR / "migrations"))
    csrf.init_app(app)
    limiter.init_app(app)
    mail.init_app(app)
    bootstrap.init_app(app)
    babel.init_app(app, locale_selector=i18n.select_locale, timezone_selector=i18n.select_timezone)
    login_manager.init_app(app)
    from app.accounts.cookies import RememberedCookieSessions

    app.session_interface = RememberedCookieSessions()
    i18n.init_app(app)
    security.init_app(app)
    caching.init_app(app)
    errors.init_app(app)
    links.init_app(app)

    from app.accounts import bp as accounts_bp
    from app.accounts.cli import users_cli
    from app.campaigns import bp as campaigns_bp
    from app.campaigns.cli import uploads_cli
    from app.checks import check
    from app.community import bp as community_bp
    from app.demo import seed_demo
    from app.demo_state import demo_cli
    from app.fulfillment import bp as fulfillment_bp
    from app.fulfillment import models as _fulfillment_models  # noqa: F401  (the schema knows every table)
    from app.fulfillment.cli import addresses_cli
    from app.main import bp as main_bp
    from app.moderation import bp as moderation_bp
    from app.notifications import init_app as notifications_init
    from app.payouts import bp as payouts_bp
    from app.payouts.cli import payouts_cli, reconcile
    from app.pledges import bp as pledges_bp
    from app.pledges import chart as pledge_chart
    from app.settlement import bp as settlement_bp
    from app.settlement import models as _settlement_models  # noqa: F401  (the schema knows every table)
    from app.settlement.cli import settle, worker
    from app.webhooks import bp as webhooks_bp

    if app.config.get("BENCH_CEILING"):
        from app.main.routes import bench_ceiling

        app.add_url_rule("/_bench/ceiling", "bench_ceiling", bench_ceiling)
    app.register_blueprint(main_bp)
    app.register_blueprint(campaigns_bp)
    app.register_blueprint(pledges_bp)
    app.register_blueprint(settlement_bp)
    app.register_blueprint(payouts_bp)
    app.register_blueprint(fulfillment_bp)
    app.register_blueprint(community_bp)
    app.register_blueprint(accounts_bp, url_prefix="/auth")
    app.register_blueprint(moderation_bp, url_prefix="/moderation")
    app.register_blueprint(webhooks_bp)
    app.cli.add_command(users_cli)
    app.cli.add_command(uploads_cli)
    app.cli.add_command(seed_demo)
    app.cli.add_command(demo_cli)
    app.cli.add_command(settle)
    app.cli.add_command(worker)
    app.cli.add_command(payouts_cli)
    app.cli.add_command(reconcile)
    app.cli.add_command(addresses_cli)
    app.cli.add_command(check)
    notifications_init(app)
    pledge_chart.init_app(app)

    return app
