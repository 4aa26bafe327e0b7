"""Configuration: bad settings stop the start with one clear line."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config import Config, ConfigError

ROOT = Path(__file__).resolve().parent.parent
#: What production needs besides a SECRET_KEY and a BASE_URL.
PRODUCTION_SERVICES = {"STRIPE_SECRET_KEY": "sk_test_x", "STRIPE_PUBLISHABLE_KEY": "pk_test_x", "STRIPE_WEBHOOK_SECRET": "whsec_x",
                       "MAIL_SERVER": "smtp.threshold.example"}


def _config(monkeypatch, **env) -> Config:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Config()


@pytest.mark.parametrize(
    "key,value",
    [
        ("STRIPE_SECRET_KEY", "sk_live_abc"),
        ("STRIPE_SECRET_KEY", "rk_live_abc"),
        ("STRIPE_PUBLISHABLE_KEY", "pk_live_abc"),
    ],
)
def test_live_stripe_keys_are_refused(monkeypatch, key, value):
    with pytest.raises(ConfigError, match="live Stripe key"):
        _config(monkeypatch, **{key: value}).validate()


def test_test_keys_are_accepted(monkeypatch):
    _config(monkeypatch, STRIPE_SECRET_KEY="sk_test_x", STRIPE_PUBLISHABLE_KEY="pk_test_x").validate()


def test_production_needs_a_secret_key(monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="SECRET_KEY must be set"):
        _config(monkeypatch, APP_ENV="production").validate()
    config = _config(monkeypatch, APP_ENV="production", SECRET_KEY="s" * 32, BASE_URL="https://threshold.example", **PRODUCTION_SERVICES)
    config.validate()
    assert config.SESSION_COOKIE_SECURE and config.REMEMBER_COOKIE_SECURE


@pytest.mark.parametrize(
    "env,message",
    [
        ({"PLATFORM_FEE_PERCENT": "abc"}, "PLATFORM_FEE_PERCENT must be a number"),
        ({"PLATFORM_FEE_PERCENT": "150"}, "between"),
        ({"CAMPAIGN_MAX_DAYS": "ten"}, "whole number"),
        ({"RATELIMIT_ENABLED": "maybe"}, "true or false"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"CAMPAIGN_MIN_DAYS": "30", "CAMPAIGN_MAX_DAYS": "10"}, "must not exceed"),
        ({"ADDRESS_RETENTION_DAYS": "0"}, "ADDRESS_RETENTION_DAYS must be between 1 and 3650"),
    ],
)
def test_bad_settings_fail_at_start(monkeypatch, env, message):
    with pytest.raises(ConfigError, match=message):
        _config(monkeypatch, **env).validate()


def test_defaults(monkeypatch):
    for key in ("DATABASE_URL", "PLATFORM_FEE_PERCENT", "REDIS_URL", "STRIPE_API_BASE", "STRIPE_JS_URL"):
        monkeypatch.delenv(key, raising=False)
    config = _config(monkeypatch)
    assert config.SQLALCHEMY_DATABASE_URI.startswith("sqlite:///") and "instance" in config.SQLALCHEMY_DATABASE_URI
    assert config.PLATFORM_FEE_PERCENT == 5
    assert (config.CAMPAIGN_MIN_DAYS, config.CAMPAIGN_MAX_DAYS, config.PAYMENT_RETRY_DAYS) == (1, 60, 7)
    assert config.RATELIMIT_STORAGE_URI == "memory://"
    assert config.STRIPE_JS_URL == "https://js.stripe.com/v3/"
    assert _config(monkeypatch, REDIS_URL="redis://127.0.0.1:6379/0").RATELIMIT_STORAGE_URI.startswith("redis://")
    assert _config(monkeypatch, DATABASE_URL="postgresql://u@h/db").SQLALCHEMY_DATABASE_URI == "postgresql+psycopg://u@h/db"
    assert _config(monkeypatch, STRIPE_API_BASE="http://127.0.0.1:8420/").STRIPE_JS_URL == "http://127.0.0.1:8420/js.stripe.com/v3/"


def test_the_start_stops_with_one_clear_line():
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRIPE_")}
    env["STRIPE_SECRET_KEY"] = "sk_live_123"
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "routes"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert lines == ["Threshold cannot start: STRIPE_SECRET_KEY is a live Stripe key; Threshold runs in Stripe test mode only"]


# --- issue 14, finding 7: configuration fails closed ------------------------------------------

@pytest.mark.parametrize(
    "env,message",
    [
        ({"APP_ENV": "Production"}, "APP_ENV must be one of development, production, got 'Production'"),
        ({"APP_ENV": "prod"}, "APP_ENV must be one of development, production, got 'prod'"),
        ({"APP_ENV": "", "FLASK_ENV": "staging"}, "got 'staging'"),
        ({"APP_ENV": "production", "SECRET_KEY": "a"}, "at least 32 bytes"),
        ({"APP_ENV": "production", "SECRET_KEY": "s" * 31}, "at least 32 bytes"),
        ({"APP_ENV": "production", "SECRET_KEY": "dev-only-not-secret"}, "published development key"),
        ({"APP_ENV": "production", "SECRET_KEY": "s" * 32, "FLASK_DEBUG": "1"}, "cannot be on in production"),
        ({"APP_ENV": "production", "SECRET_KEY": "s" * 32, "FLASK_DEBUG": "true"}, "cannot be on in production"),
    ],
)
def test_finding_7_configuration_fails_closed(monkeypatch, env, message):
    with pytest.raises(ConfigError, match=message):
        _config(monkeypatch, **env).validate()


def test_finding_7_production_with_a_real_key_starts(monkeypatch):
    config = _config(monkeypatch, APP_ENV="production", SECRET_KEY="é" * 16, FLASK_DEBUG="0",  # 32 bytes in UTF-8
                     BASE_URL="https://threshold.example", **PRODUCTION_SERVICES)
    config.validate()
    assert config.PRODUCTION and not config.DEBUG


@pytest.mark.parametrize("env", [{"APP_ENV": "prod"}, {"APP_ENV": "production", "SECRET_KEY": "s" * 40, "FLASK_DEBUG": "1"}])
def test_finding_7_a_refused_environment_is_one_line_per_problem_at_start(env):
    """`flask run --debug` in production or a misspelt APP_ENV never reaches the dev server; each
    problem is one line (issue 19: all of them at once, not one per attempt)."""
    clean = {k: v for k, v in os.environ.items() if k not in ("APP_ENV", "FLASK_ENV", "FLASK_DEBUG", "SECRET_KEY")}
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "routes"], cwd=ROOT, env={**clean, **env},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert lines and all(line.startswith("Threshold cannot start: ") for line in lines)
    assert any(("FLASK_DEBUG" if env["APP_ENV"] == "production" else "APP_ENV") in line for line in lines)


def test_base_url_and_trusted_hosts(monkeypatch):
    monkeypatch.delenv("TRUSTED_HOSTS", raising=False)
    config = _config(monkeypatch, BASE_URL="https://threshold.example:8443/site/")
    config.validate()
    assert config.BASE_URL == "https://threshold.example:8443/site" and config.TRUSTED_HOSTS == ["threshold.example"]
    config = _config(monkeypatch, TRUSTED_HOSTS=" a.example, .b.example ,")
    assert config.TRUSTED_HOSTS == ["a.example", ".b.example"]
    monkeypatch.delenv("TRUSTED_HOSTS")
    assert _config(monkeypatch, BASE_URL="http://127.0.0.1:5000").TRUSTED_HOSTS == ["127.0.0.1", "localhost"]
    for bad in ("threshold.example", "ftp://threshold.example", "https://", "https://x.example/?a=1"):
        with pytest.raises(ConfigError, match="BASE_URL must read like"):
            _config(monkeypatch, BASE_URL=bad).validate()
    monkeypatch.delenv("BASE_URL")
    with pytest.raises(ConfigError, match="BASE_URL must be set in production"):
        _config(monkeypatch, APP_ENV="production", SECRET_KEY="s" * 32).validate()


# --- issue 19: what production needs, all refusals at once --------------------------------------

@pytest.mark.parametrize(
    "missing,message",
    [
        ("STRIPE_SECRET_KEY", "STRIPE_SECRET_KEY must be set in production"),
        ("STRIPE_WEBHOOK_SECRET", "STRIPE_WEBHOOK_SECRET must be set in production"),
        ("MAIL_SERVER", "MAIL_SERVER must be set in production"),
    ],
)
def test_production_needs_stripe_and_mail(monkeypatch, missing, message):
    env = {"APP_ENV": "production", "SECRET_KEY": "s" * 32, "BASE_URL": "https://threshold.example", **PRODUCTION_SERVICES}
    env.pop(missing)
    monkeypatch.delenv(missing, raising=False)
    [problem] = _config(monkeypatch, **env).problems()
    assert problem.startswith(message)
    with pytest.raises(ConfigError, match=message):
        _config(monkeypatch, **env).validate()


def test_production_needs_https(monkeypatch):
    config = _config(monkeypatch, APP_ENV="production", SECRET_KEY="s" * 32, BASE_URL="http://threshold.example", **PRODUCTION_SERVICES)
    assert config.problems() == ["BASE_URL must start with https:// in production: the session cookie is sent over HTTPS only"]
    # development on plain HTTP is fine
    assert _config(monkeypatch, APP_ENV="development").problems() == []


def test_every_problem_is_named_at_once(monkeypatch):
    for key in (*PRODUCTION_SERVICES, "SECRET_KEY", "BASE_URL", "FLASK_DEBUG", "CLOCK_OFFSET_SECONDS"):
        monkeypatch.delenv(key, raising=False)
    config = _config(monkeypatch, APP_ENV="production", CLOCK_OFFSET_SECONDS="60", CAMPAIGN_MIN_DAYS="30", CAMPAIGN_MAX_DAYS="10")
    with pytest.raises(ConfigError) as refused:
        config.validate()
    assert refused.value.problems == config.problems() == [
        "SECRET_KEY must be set when APP_ENV is production",
        "CLOCK_OFFSET_SECONDS is for demos and tests; it cannot be set in production",
        "BASE_URL must be set in production: links in mail are built from it",
        "STRIPE_SECRET_KEY, STRIPE_PUBLISHABLE_KEY, STRIPE_WEBHOOK_SECRET must be set in production: cards are saved and charged through Stripe",
        "MAIL_SERVER must be set in production: without it password resets and receipts never leave the server",
        "CAMPAIGN_MIN_DAYS must not exceed CAMPAIGN_MAX_DAYS",
    ]
