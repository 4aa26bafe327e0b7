"""Alembic has one head, and the migrations build exactly the schema of the models."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app

from app.extensions import db


def test_one_head(app):
    config = current_app.extensions["migrate"].migrate.get_config()
    assert len(ScriptDirectory.from_config(config).get_heads()) == 1


def test_migrations_match_the_models(app):
    # The test database was built by `flask db upgrade` (conftest), not by create_all.
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "render_as_batch": True})
        diff = compare_metadata(context, db.metadata)
    assert diff == []


def test_existing_pledges_keep_their_amount_as_reward_and_bonus(database_url, tmp_path, _stripe_settings):
    """Issue 15's data migration: a pledge made before add-ons keeps its amount, as the tier's price
    (the reward) plus the rest (bonus); a pledge without a reward is all reward."""
    import os
    import re

    from flask_migrate import downgrade, upgrade
    from sqlalchemy import text

    from app import create_app
    from tests import databases
    from tests.conftest import make_config
    from tests.factories import make_campaign, make_user

    base = os.environ.get("DATABASE_URL", "")
    url = (databases.create_fresh(base, re.sub(r"\W", "_", f"migrate_{os.getpid()}")) if base.startswith("postgres")
           else f"sqlite:///{tmp_path / 'migrate.db'}")
    app = create_app(make_config(url, **_stripe_settings))  # the campaign launches: its creator onboards at localstripe
    try:
        with app.app_context():
            upgrade()
            creator, backer = make_user("c@example.com"), make_user("b@example.com")
            campaign = make_campaign(creator, "live", tiers=1)  # the tier's price is 25.00
            tier_id = campaign.tiers[0].id
            rows = [(tier_id, 4000), (None, 1500)]
            for n, (tier, amount) in enumerate(rows):
                db.session.execute(text(
                    "INSERT INTO pledges (campaign_id, backer_id, tier_id, amount, currency, state, created_at, updated_at) "
                    "VALUES (:c, :b, :t, :a, 'USD', :s, :now, :now)"),
                    {"c": campaign.id, "b": backer.id, "t": tier, "a": amount, "s": ["active", "canceled"][n], "now": "2026-12-01 00:00:00"})
            db.session.commit()
            downgrade(revision="f15a00000001")
            upgrade()
            parts = db.session.execute(text(
                "SELECT amount, reward_amount, addons_amount, shipping_amount, bonus_amount, country FROM pledges ORDER BY amount DESC")).all()
            assert [tuple(row) for row in parts] == [(4000, 2500, 0, 0, 1500, None), (1500, 1500, 0, 0, 0, None)]
            db.session.remove()
            db.engine.dispose()
    finally:
        if base.startswith("postgres"):
            databases.drop(url)
