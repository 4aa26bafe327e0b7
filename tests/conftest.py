"""Shared fixtures: one app and schema per test session (built by Alembic), emptied after each test.

Set DATABASE_URL to a PostgreSQL URL to run the suite there: a fresh database is created for the
session (one per xdist worker) and dropped at the end.
"""
from __future__ import annotations

import contextvars
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app import clock, create_app
from app.extensions import db
from config import TestConfig
from tests import databases

pytest_plugins = ["tests.localstripe_fixture"]

TMP = Path(tempfile.mkdtemp(prefix="threshold-tests-"))
WEBHOOK_SECRET = "whsec_threshold_tests"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Freeze the clock before any fixture other than `app` runs.

    A fixture that makes people or campaigns before `frozen_clock` stamps them with the real date,
    so a test's ages and "waiting N hours" would depend on the day the suite runs.
    """
    for item in items:
        names = getattr(item, "fixturenames", None)
        if names and "frozen_clock" in names:
            names.remove("frozen_clock")
            names.insert(0, "frozen_clock")


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    base = os.environ.get("DATABASE_URL", "")
    if base.startswith("postgres"):
        # One database per run and per xdist worker, named after the one DATABASE_URL names.
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        named = make_url(databases.psycopg_url(base)).database or "threshold"
        url = databases.create_fresh(base, re.sub(r"\W", "_", f"{named}_t{os.getpid()}_{worker}"))
        yield url
        databases.drop(url)
    else:
        yield f"sqlite:///{TMP / ('test-' + os.environ.get('PYTEST_XDIST_WORKER', 'main') + '.db')}"


def make_config(database_url: str, **overrides) -> TestConfig:
    config = TestConfig()
    config.SQLALCHEMY_DATABASE_URI = database_url
    config.UPLOAD_FOLDER = str(TMP / "uploads")
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


@pytest.fixture(scope="session")
def _schema(database_url: str) -> str:
    """Build the schema once, through the migrations (so they are exercised on every run)."""
    from flask_migrate import upgrade

    app = create_app(make_config(database_url))
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return database_url


_sequences: list[str] = []


def _empty_tables() -> None:
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    if db.engine.dialect.name == "postgresql":
        # DELETE and setval, not TRUNCATE … RESTART IDENTITY: a TRUNCATE makes new files for every table and
        # took about a second a test on two busy cores; a DELETE of a test's few rows takes milliseconds.
        if not _sequences:
            _sequences.extend(db.session.scalars(text(
                "SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename) FROM pg_sequences"
                " WHERE schemaname = current_schema()")))
        db.session.execute(text("; ".join(f'DELETE FROM "{t}"' for t in tables)))
        if _sequences:
            db.session.execute(text("SELECT " + ", ".join(f"setval('{s}', 1, false)" for s in _sequences)))
    else:
        for table in tables:
            db.session.execute(text(f'DELETE FROM "{table}"'))
        db.session.execute(text("DELETE FROM sqlite_sequence")) if db.session.execute(
            text("SELECT 1 FROM sqlite_master WHERE name='sqlite_sequence'")
        ).first() else None
    db.session.commit()


class IsolatedClient(FlaskClient):
    """Runs each request in its own context, as a server would: its own app context, `g` and
    database session, even while the test holds an app context open to look at the database."""

    def open(self, *args, **kwargs):
        response = contextvars.Context().run(super().open, *args, **kwargs)
        try:
            db.session.expire_all()  # the test's own session sees what the request wrote
        except RuntimeError:
            pass  # no app context in the test
        return response


def _build(config: TestConfig) -> Flask:
    new = create_app(config)
    new.test_client_class = IsolatedClient
    return new


@pytest.fixture(scope="session")
def _stripe_settings(localstripe: str) -> dict:
    """Every app in the suite talks to the session's real localstripe server."""
    return {"STRIPE_API_BASE": localstripe, "STRIPE_JS_URL": f"{localstripe}/js.stripe.com/v3/",
            "STRIPE_SECRET_KEY": "sk_test_threshold", "STRIPE_PUBLISHABLE_KEY": "pk_test_threshold",
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET}


@pytest.fixture(scope="session")
def _shared_app(_schema: str, _stripe_settings: dict) -> Flask:
    return _build(make_config(_schema, **_stripe_settings))


@pytest.fixture
def app(_shared_app: Flask) -> Iterator[Flask]:
    """The app inside an app context; every table is emptied after the test."""
    clock.reset()
    with _shared_app.app_context():
        yield _shared_app
        db.session.rollback()
        _empty_tables()
        db.session.remove()
    clock.reset()


@pytest.fixture
def make_app(_schema: str, _stripe_settings: dict):
    """Build a separate app with some settings changed (CSRF on, rate limits on …) on the same database."""
    made: list[Flask] = []

    def factory(**overrides) -> Flask:
        new = _build(make_config(_schema, **{**_stripe_settings, **overrides}))
        made.append(new)
        return new

    yield factory
    if made:
        with made[0].app_context():  # what the test wrote through its own apps (it may hold no `app` to empty the tables)
            db.session.rollback()
            _empty_tables()
            db.session.remove()
        # One Limiter serves every app of the process and the last init_app set it up: a test that
        # switched rate limits on must not leave them on (or their counts) for the rest of the suite.
        from app.extensions import limiter

        limiter.enabled = False
        if limiter._storage is not None:  # no storage until an app of the process had limits on
            limiter.reset()


@pytest.fixture
def client(app: Flask):
    return app.test_client()


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()


@pytest.fixture
def frozen_clock(app: Flask):
    """Freeze the app clock at a fixed time; tests move it with clock.advance().

    It runs right after `app` (which resets the clock) and before every other fixture of the test
    (see pytest_collection_modifyitems), so nothing a test makes is stamped with the real date.
    """
    from datetime import datetime

    start = datetime(2026, 11, 23, 12, 0, 0)
    clock.freeze(start)
    yield start
    clock.reset()
