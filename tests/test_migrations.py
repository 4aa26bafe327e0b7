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
