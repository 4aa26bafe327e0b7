"""`flask --app wsgi check` (issue 19): what a production start would refuse and why, without starting;
exit 0 only when nothing."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from flask_migrate import upgrade

from app import create_app
from app.checks import check
from tests.conftest import make_config

ROOT = Path(__file__).resolve().parent.parent
FLASK = [sys.executable, "-m", "flask", "--app", "wsgi"]
#: The migrations' head and the revision before it, read from the scripts (a new migration moves both).
_SCRIPTS = ScriptDirectory(str(ROOT / "migrations"))
HEAD = _SCRIPTS.get_current_head()
BEHIND = _SCRIPTS.get_revision(HEAD).down_revision
#: A production environment every rule accepts.
PRODUCTION = {"APP_ENV": "production", "SECRET_KEY": "s" * 64, "BASE_URL": "https://threshold.example",
              "STRIPE_SECRET_KEY": "sk_test_x", "STRIPE_PUBLISHABLE_KEY": "pk_test_x", "STRIPE_WEBHOOK_SECRET": "whsec_x",
              "MAIL_SERVER": "smtp.threshold.example", "TRUSTED_PROXIES": "1"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(app):
    return app.test_cli_runner().invoke(check)  # click keeps stderr apart


def _env(**settings) -> dict:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("STRIPE_", "MAIL_", "APP_", "FLASK_", "SECRET_", "BASE_", "TRUSTED_", "REDIS_", "CLOCK_"))}
    return {**clean, **settings}


def test_a_migrated_database_passes(app):
    result = _run(app)
    assert result.exit_code == 0, result.stderr
    assert f"at migration {HEAD} (the head)" in result.stdout
    assert "ok: rate limits: off (RATELIMIT_ENABLED=false)" in result.stdout
    assert "ok: settings for APP_ENV=development (production's rules were not applied" in result.stdout
    assert result.stderr == ""


def test_a_database_without_schema_or_behind_the_head_is_named(tmp_path, _stripe_settings):
    app = create_app(make_config(f"sqlite:///{tmp_path / 'new.db'}", **_stripe_settings))
    with app.app_context():
        result = _run(app)
        assert result.exit_code == 1
        assert result.stderr.splitlines() == [
            f"problem: the database at sqlite:///{tmp_path / 'new.db'} has no schema: run .venv/bin/flask --app wsgi db upgrade"]
        upgrade(revision=BEHIND)
        result = _run(app)
        assert result.exit_code == 1
        assert f"is at migration {BEHIND}, not the head {HEAD}: run .venv/bin/flask --app wsgi db upgrade" in result.stderr
        upgrade()
        assert _run(app).exit_code == 0


def test_a_database_that_does_not_answer_is_named(_stripe_settings):
    app = create_app(make_config(f"postgresql+psycopg://threshold:secret@127.0.0.1:{_free_port()}/nowhere", **_stripe_settings))
    with app.app_context():
        result = _run(app)
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("problem: the database at postgresql+psycopg://threshold:***@127.0.0.1:") and "does not answer" in line
    assert "secret" not in result.stdout + result.stderr


def test_the_rate_limiters_redis_must_answer(app, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_ENABLED", True)
    monkeypatch.setitem(app.config, "RATELIMIT_STORAGE_URI", f"redis://127.0.0.1:{_free_port()}/0")
    result = _run(app)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"problem: the rate limiter's storage at {app.config['RATELIMIT_STORAGE_URI']} does not answer (REDIS_URL)"]


@pytest.fixture
def redis_url(tmp_path):
    """A real Redis of the test's own, on a free port."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    port = _free_port()
    process = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_redis_that_answers_passes(app, monkeypatch, redis_url):
    monkeypatch.setitem(app.config, "RATELIMIT_ENABLED", True)
    monkeypatch.setitem(app.config, "RATELIMIT_STORAGE_URI", redis_url)
    result = _run(app)
    assert result.exit_code == 0, result.stderr
    assert f"ok: rate limits: {redis_url} answers" in result.stdout


def test_the_command_lists_every_refusal_of_a_production_start_one_line_each():
    """As the README shows it: every broken rule on its own line, non-zero, nothing started."""
    result = subprocess.run([*FLASK, "check"], cwd=ROOT, env=_env(APP_ENV="production", BASE_URL="http://threshold.example",
                            FLASK_DEBUG="1", STRIPE_SECRET_KEY="sk_live_x"), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "Threshold cannot start: STRIPE_SECRET_KEY is a live Stripe key; Threshold runs in Stripe test mode only",
        "Threshold cannot start: SECRET_KEY must be set when APP_ENV is production",
        "Threshold cannot start: FLASK_DEBUG (debug mode) cannot be on in production: it serves the Werkzeug debugger",
        "Threshold cannot start: BASE_URL must start with https:// in production: the session cookie is sent over HTTPS only",
        "Threshold cannot start: STRIPE_PUBLISHABLE_KEY, STRIPE_WEBHOOK_SECRET must be set in production: cards are saved and charged through Stripe",
        "Threshold cannot start: MAIL_SERVER must be set in production: without it password resets and receipts never leave the server",
    ]
    assert result.stdout == ""


def test_a_clean_production_configuration_passes(tmp_path):
    database = f"sqlite:///{tmp_path / 'prod.db'}"
    upgraded = subprocess.run([*FLASK, "db", "upgrade"], cwd=ROOT, env=_env(DATABASE_URL=database), capture_output=True,
                              text=True, timeout=120)
    assert upgraded.returncode == 0, upgraded.stderr
    result = subprocess.run([*FLASK, "check"], cwd=ROOT, env=_env(**PRODUCTION, DATABASE_URL=database),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"ok: database: {database} at migration {HEAD} (the head)",
        "ok: rate limits: counted in each process (no REDIS_URL)",
        "ok: settings for APP_ENV=production",
    ]
