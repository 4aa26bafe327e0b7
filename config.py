"""Configuration read from the environment (SPEC §9). Bad configuration fails at start."""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent
LIVE_KEY_PREFIXES = ("sk_live_", "rk_live_", "pk_live_")
ENVIRONMENTS = ("development", "production")
#: Signs development sessions so that they survive a restart of the demo; published, so never in production.
DEV_SECRET_KEY = "dev-only-not-secret"
#: The shortest SECRET_KEY production accepts (256 bits, as `secrets.token_hex(32)` gives).
MIN_SECRET_KEY_BYTES = 32


class ConfigError(RuntimeError):
    """Raised at start-up when the environment cannot run the app: one clear line per problem."""

    def __init__(self, *problems: str) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


def _int(name: str, default: int, low: int | None = None, high: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _float(name: str, default: float, low: float, high: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _list(name: str) -> list[str]:
    """A comma-separated setting as a list, blanks dropped."""
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def _hosts_of(base_url: str) -> list[str]:
    """The default TRUSTED_HOSTS: BASE_URL's host (both loopback names for a site on this machine)."""
    host = urlsplit(base_url).hostname or ""
    return ["127.0.0.1", "localhost"] if host in ("127.0.0.1", "localhost") else [host]


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        return f"sqlite:///{BASE_DIR / 'instance' / 'threshold.db'}"
    # Heroku-style URLs name the old driver; we use psycopg 3.
    if url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url[len("postgres://"):]
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    if not (url.startswith("sqlite") or url.startswith("postgresql+psycopg://")):
        raise ConfigError("DATABASE_URL must be a sqlite:// or postgresql+psycopg:// URL")
    return url


class Config:
    """Settings for every environment; values come from the environment at import of the class."""

    def __init__(self) -> None:
        env = os.environ.get("APP_ENV") or os.environ.get("FLASK_ENV") or "development"
        if env not in ENVIRONMENTS:
            # Fail closed: "prod" or "Production" must not quietly start a development server.
            raise ConfigError(f"APP_ENV must be one of {', '.join(ENVIRONMENTS)}, got {env!r}")
        self.APP_ENV = env
        self.PRODUCTION = env == "production"
        #: What `flask run --debug` (or FLASK_DEBUG=1) asks for: the Werkzeug debugger, never in production.
        self.DEBUG = _bool("FLASK_DEBUG", False)
        self.SECRET_KEY = os.environ.get("SECRET_KEY") or ""
        self.SQLALCHEMY_DATABASE_URI = _database_url()
        #: No pool_pre_ping: app.database checks a pooled connection once per request (the login-session
        #: check is its own ping), which survives a database restart at a fraction of the round trips.
        self.SQLALCHEMY_ENGINE_OPTIONS: dict = {}
        self.STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "")
        self.STRIPE_PUBLISHABLE_KEY = os.environ.get("STRIPE_PUBLISHABLE_KEY", "")
        self.STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
        self.STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "").rstrip("/")
        default_js = (
            f"{self.STRIPE_API_BASE}/js.stripe.com/v3/" if self.STRIPE_API_BASE else "https://js.stripe.com/v3/"
        )
        self.STRIPE_JS_URL = os.environ.get("STRIPE_JS_URL") or default_js
        self.STRIPE_MAX_REQUESTS_PER_SECOND = _float("STRIPE_MAX_REQUESTS_PER_SECOND", 20.0, 0.1, 1000)
        self.STRIPE_MAX_RETRIES = _int("STRIPE_MAX_RETRIES", 4, 0, 10)
        self.STRIPE_RETRY_BASE_SECONDS = _float("STRIPE_RETRY_BASE_SECONDS", 0.5, 0.0, 60)
        self.STRIPE_RETRY_MAX_SECONDS = _float("STRIPE_RETRY_MAX_SECONDS", 8.0, 0.0, 300)
        self.STRIPE_TIMEOUT_SECONDS = _float("STRIPE_TIMEOUT_SECONDS", 30.0, 1.0, 300)
        self.PLATFORM_FEE_PERCENT = _float("PLATFORM_FEE_PERCENT", 5.0, 0, 100)
        self.CAMPAIGN_MIN_DAYS = _int("CAMPAIGN_MIN_DAYS", 1, 1, 365)
        self.CAMPAIGN_MAX_DAYS = _int("CAMPAIGN_MAX_DAYS", 60, 1, 365)
        self.PAYMENT_RETRY_DAYS = _int("PAYMENT_RETRY_DAYS", 7, 1, 60)
        #: Days after a funded campaign's deadline before its creator is paid (chargebacks and refunds come first).
        self.PAYOUT_HOLD_DAYS = _int("PAYOUT_HOLD_DAYS", 14, 0, 120)
        #: Days a shipping address is kept after its items were delivered, then erased (SPEC §14).
        self.ADDRESS_RETENTION_DAYS = _int("ADDRESS_RETENTION_DAYS", 90, 1, 3650)
        #: Days after an item was marked shipped before it counts as delivered without the backer's word.
        self.DELIVERED_AFTER_DAYS = _int("DELIVERED_AFTER_DAYS", 60, 1, 365)
        self.WORKER_INTERVAL_SECONDS = _int("WORKER_INTERVAL_SECONDS", 60, 1, 86400)
        self.SETTLE_BATCH_SIZE = _int("SETTLE_BATCH_SIZE", 50, 1, 1000)
        #: Stripe requests in flight at once while settling a batch (the database work stays in one thread).
        #: To use the whole pace, at least STRIPE_MAX_REQUESTS_PER_SECOND × Stripe's answer time (about
        #: 0.3 s for a charge): 8 fills test mode's 25/s; live mode's 100/s wants about 32.
        self.SETTLE_CONCURRENCY = _int("SETTLE_CONCURRENCY", 8, 1, 64)
        #: Where the site is reached: every link that leaves it (mail, unsubscribe headers) is built from this.
        self.BASE_URL = (os.environ.get("BASE_URL") or f"http://127.0.0.1:{os.environ.get('PORT') or 5000}").rstrip("/")
        self._base_url_given = bool(os.environ.get("BASE_URL"))
        #: Host names the site answers to (any port); a request for another Host is refused with 400.
        #: A leading dot admits subdomains (".example.org"). Default: the host of BASE_URL (for the demo
        #: on 127.0.0.1, localhost too).
        self.TRUSTED_HOSTS = _list("TRUSTED_HOSTS") or _hosts_of(self.BASE_URL)
        #: How many reverse proxies stand in front of the app (their X-Forwarded-For/-Proto are believed).
        self.TRUSTED_PROXIES = _int("TRUSTED_PROXIES", 0, 0, 5)
        #: How long a public page may be served from the cache to visitors (0 turns the cache off).
        self.PUBLIC_PAGE_CACHE_SECONDS = _int("PUBLIC_PAGE_CACHE_SECONDS", 10, 0, 3600)
        #: How often each process rereads the campaigns' version behind that cache (changes made by
        #: another process reach visitors within this many seconds; 0 reads it on every request).
        self.PUBLIC_PAGE_VERSION_SECONDS = _int("PUBLIC_PAGE_VERSION_SECONDS", 1, 0, 60)
        self.MAIL_SERVER = os.environ.get("MAIL_SERVER", "")
        #: Without MAIL_SERVER, emails are also appended to this file (the demo's mail box).
        self.MAIL_LOG_FILE = os.environ.get("MAIL_LOG_FILE", "")
        self.MAIL_PORT = _int("MAIL_PORT", 25, 1, 65535)
        self.MAIL_USE_TLS = _bool("MAIL_USE_TLS", False)
        self.MAIL_USERNAME = os.environ.get("MAIL_USERNAME") or None
        self.MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD") or None
        self.MAIL_DEFAULT_SENDER = os.environ.get("MAIL_DEFAULT_SENDER", "Threshold <no-reply@threshold.test>")
        self.REDIS_URL = os.environ.get("REDIS_URL", "")
        self.RATELIMIT_ENABLED = _bool("RATELIMIT_ENABLED", True)
        self.RATELIMIT_STORAGE_URI = self.REDIS_URL or "memory://"
        self.RATELIMIT_HEADERS_ENABLED = True
        #: Comments and questions to a creator, per member (Flask-Limiter's syntax, e.g. "10 per minute").
        self.COMMENT_RATE_LIMIT = os.environ.get("COMMENT_RATE_LIMIT") or "10 per minute"
        # Lets the demo and the browser tests move "now" for a process (never in production).
        self.CLOCK_OFFSET_SECONDS = _int("CLOCK_OFFSET_SECONDS", 0)
        #: Failed logins one account may have within LOGIN_FAILURE_WINDOW_MINUTES before it is locked
        #: for LOGIN_LOCK_MINUTES (besides the per-address limit; its owner is told by mail).
        self.LOGIN_FAILURES_MAX = _int("LOGIN_FAILURES_MAX", 10, 3, 1000)
        self.LOGIN_FAILURE_WINDOW_MINUTES = _int("LOGIN_FAILURE_WINDOW_MINUTES", 15, 1, 1440)
        self.LOGIN_LOCK_MINUTES = _int("LOGIN_LOCK_MINUTES", 15, 1, 1440)
        self.PASSWORD_RESET_MAX_AGE = _int("PASSWORD_RESET_MAX_AGE", 3600, 60, 7 * 86400)
        self.UPLOAD_FOLDER = os.environ.get("UPLOAD_FOLDER") or str(BASE_DIR / "instance" / "uploads")
        self.MAX_CONTENT_LENGTH = 6 * 1024 * 1024
        self.BABEL_DEFAULT_LOCALE = "en"
        self.BABEL_DEFAULT_TIMEZONE = "UTC"
        #: The languages the site speaks (catalogs in app/translations), the default first.
        self.LANGUAGES = ["en", "fr", "zh_Hans_CN"]
        self.BABEL_TRANSLATION_DIRECTORIES = str(BASE_DIR / "app" / "translations")
        self.BOOTSTRAP_SERVE_LOCAL = True
        self.WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.REMEMBER_COOKIE_HTTPONLY = True
        self.REMEMBER_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_SECURE = self.PRODUCTION
        self.REMEMBER_COOKIE_SECURE = self.PRODUCTION
        self.PREFERRED_URL_SCHEME = "https" if self.PRODUCTION else "http"
        #: bench/pages.py only: serve /_bench/ceiling, a trivial template, as the benchmark's ceiling.
        self.BENCH_CEILING = _bool("BENCH_CEILING", False)
        self.TESTING = False

    def problems(self) -> list[str]:
        """Every rule these settings break, one line each (empty when they are fine). The one list of
        rules: `validate` refuses the start on any, `flask --app wsgi check` prints them all."""
        found = []
        for name in ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY"):
            value = getattr(self, name)
            if value.startswith(LIVE_KEY_PREFIXES):
                found.append(f"{name} is a live Stripe key; Threshold runs in Stripe test mode only")
        if self.STRIPE_SECRET_KEY and not self.STRIPE_SECRET_KEY.startswith(("sk_test_", "rk_test_", *LIVE_KEY_PREFIXES)):
            found.append("STRIPE_SECRET_KEY must be a test key (sk_test_…)")
        base = urlsplit(self.BASE_URL)
        if self.PRODUCTION:
            if not self.SECRET_KEY:
                found.append("SECRET_KEY must be set when APP_ENV is production")
            elif self.SECRET_KEY == DEV_SECRET_KEY:
                found.append("SECRET_KEY is the published development key; set a secret one in production")
            elif len(self.SECRET_KEY.encode()) < MIN_SECRET_KEY_BYTES:
                found.append(f"SECRET_KEY must be at least {MIN_SECRET_KEY_BYTES} bytes in production "
                             "(e.g. python3 -c 'import secrets; print(secrets.token_hex(32))')")
            if self.DEBUG:
                found.append("FLASK_DEBUG (debug mode) cannot be on in production: it serves the Werkzeug debugger")
            if self.CLOCK_OFFSET_SECONDS:
                found.append("CLOCK_OFFSET_SECONDS is for demos and tests; it cannot be set in production")
            if not self._base_url_given:
                found.append("BASE_URL must be set in production: links in mail are built from it")
            elif base.scheme == "http":
                found.append("BASE_URL must start with https:// in production: the session cookie is sent over HTTPS only")
            missing = [name for name in ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET") if not getattr(self, name)]
            if missing:
                found.append(f"{', '.join(missing)} must be set in production: cards are saved and charged through Stripe")
            if not self.MAIL_SERVER:
                found.append("MAIL_SERVER must be set in production: without it password resets and receipts never leave the server")
        if base.scheme not in ("http", "https") or not base.hostname or base.query or base.fragment:
            found.append(f"BASE_URL must read like https://example.org, got {self.BASE_URL!r}")
        try:
            from limits import parse_many

            parse_many(self.COMMENT_RATE_LIMIT)
        except ValueError:
            found.append(f"COMMENT_RATE_LIMIT must read like '10 per minute', got {self.COMMENT_RATE_LIMIT!r}")
        if self.CAMPAIGN_MIN_DAYS > self.CAMPAIGN_MAX_DAYS:
            found.append("CAMPAIGN_MIN_DAYS must not exceed CAMPAIGN_MAX_DAYS")
        return found

    def validate(self) -> None:
        """Refuse to start on settings that would be wrong later: a ConfigError naming every problem."""
        if found := self.problems():
            raise ConfigError(*found)
        if not self.SECRET_KEY:
            self.SECRET_KEY = DEV_SECRET_KEY


class TestConfig(Config):
    """Settings for the test suite: fast hashes, no real limits unless a test asks."""

    def __init__(self) -> None:
        super().__init__()
        self.TESTING = True
        self.SECRET_KEY = "test-secret"
        self.SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_DATABASE_URL") or self.SQLALCHEMY_DATABASE_URI
        self.WTF_CSRF_ENABLED = False
        self.RATELIMIT_ENABLED = False
        self.RATELIMIT_STORAGE_URI = "memory://"
        self.MAIL_SERVER = ""
        self.SERVER_NAME = "localhost"
        self.BASE_URL = "http://localhost"
        self._base_url_given = True
        self.TRUSTED_HOSTS = _hosts_of(self.BASE_URL)  # the test client, and the webhook tests' real server
        # localstripe on loopback has no rate limit; pacing has its own tests.
        self.STRIPE_MAX_REQUESTS_PER_SECOND = 1000.0
        # Tests freeze the clock, and the page cache keys on update times: it has tests of its own.
        self.PUBLIC_PAGE_CACHE_SECONDS = 0
        self.PUBLIC_PAGE_VERSION_SECONDS = 0
        self.STRIPE_RETRY_BASE_SECONDS = 0.01
        self.STRIPE_RETRY_MAX_SECONDS = 0.05
        # Cheap hashes: the suite makes hundreds of accounts (production keeps the RFC 9106 cost).
        self.ARGON2_TIME_COST = 1
        self.ARGON2_MEMORY_KIB = 1024
