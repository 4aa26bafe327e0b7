"""Browser tests: the app served by a real process, localstripe behind it, Debian's Chromium in front.

Session fixtures, bottom to top:

- ``e2e_stripe``: localstripe (a fake Stripe) in its own process on a free loopback port — not the
  in-process server of the other tests, whose store is global to the process: what this one records
  (the PaymentIntents the journey checks) is the journey's alone;
- ``e2e_database``: a fresh database — an SQLite file in a temporary folder, or, when DATABASE_URL
  names PostgreSQL, a new database ``threshold_e2e_<pid>`` on that server, dropped at the end —
  built with ``flask --app wsgi db upgrade``;
- ``server``: ``flask --app wsgi run`` on a free loopback port, ready once ``/healthz`` answers; it
  also runs other ``flask --app wsgi …`` commands (users create, settle) with the same environment;
- ``demo``: the shared server seeded with the demo (campaigns in every state), the ended ones settled;
- ``own_server``: the three above for one test alone (the journey, once per language: its settlement
  passes move the clock, and it counts every payment localstripe holds);
- ``browser``: Chromium from /usr/bin/chromium with a fresh profile (a plain launch).

None of them touches the root ``app`` fixture: these tests see the app only as a browser (and the
command line) does.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests import databases

ROOT = Path(__file__).resolve().parents[2]
FLASK = str(Path(sys.executable).parent / "flask")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Variables of the calling shell that would change what the served app does.
_SCRUBBED = ("CLOCK_OFFSET_SECONDS", "STRIPE_JS_URL", "STRIPE_WEBHOOK_SECRET", "FLASK_DEBUG", "FLASK_APP",
             "MAIL_SERVER", "REDIS_URL", "SECRET_KEY", "TEST_DATABASE_URL", "BASE_URL", "PORT")


def free_port() -> int:
    """A port nobody listens on right now (on 127.0.0.1)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def localstripe_process(folder: Path) -> Iterator[str]:
    """Base URL of a localstripe process on 127.0.0.1 (a free port), keeping nothing on disk."""
    log_path = folder / "localstripe.log"
    with log_path.open("w") as log:  # a file, not a pipe nobody reads once it has started
        process = subprocess.Popen(
            [sys.executable, "-u", "-m", "app.payments.localstripe_server", "--port", "0"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        while not (found := re.search(r"listening on (http://\S+)", log_path.read_text(errors="replace"))):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"localstripe did not start:\n{log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)  # polling, bounded by the deadline above
        yield found.group(1)
    finally:
        _stop(process)


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


@pytest.fixture(scope="session")
def e2e_stripe(e2e_tmp: Path) -> Iterator[str]:
    with localstripe_process(e2e_tmp) as url:
        yield url


@pytest.fixture(scope="session")
def e2e_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@contextlib.contextmanager
def fresh_database(folder: Path, name: str) -> Iterator[str]:
    """The URL of a fresh, empty database: an SQLite file in `folder`, or, when DATABASE_URL names
    PostgreSQL, a new database `name` on that server, dropped at the end."""
    base = os.environ.get("DATABASE_URL", "")
    if base.startswith("postgres"):
        url = databases.create_fresh(base, name)
        try:
            yield url
        finally:
            databases.drop(url)
    else:
        yield f"sqlite:///{folder / (name + '.db')}"


@pytest.fixture(scope="session")
def e2e_database(e2e_tmp: Path) -> Iterator[str]:
    with fresh_database(e2e_tmp, f"threshold_e2e_{os.getpid()}") as url:
        yield url


@dataclass
class Server:
    """The app served on 127.0.0.1, and the `flask --app wsgi` command line with the same settings."""

    url: str
    env: dict[str, str]
    log_path: Path
    stripe_base: str
    process: subprocess.Popen | None = field(default=None, repr=False)

    def flask(self, *args: str, clock_offset_seconds: int | None = None, timeout: float = 120) -> str:
        """Run `flask --app wsgi ARGS…` (optionally with the app clock moved); returns its output."""
        env = dict(self.env)
        if clock_offset_seconds is not None:
            env["CLOCK_OFFSET_SECONDS"] = str(clock_offset_seconds)
        done = subprocess.run([FLASK, "--app", "wsgi", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise AssertionError(f"flask {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done.stdout + done.stderr

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"


def _wait_healthy(url: str, process: subprocess.Popen, log_path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited ({process.returncode}):\n{log_path.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.1)  # polling, bounded by the deadline above
    raise RuntimeError(f"the app did not answer /healthz within {timeout} s ({last}):\n{log_path.read_text(errors='replace')[-3000:]}")


@contextlib.contextmanager
def app_server(stripe_base: str, database_url: str, folder: Path) -> Iterator[Server]:
    """The app in its own process on a free loopback port, over the database and localstripe given."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    port = free_port()
    env.update(
        APP_ENV="development",
        DATABASE_URL=database_url,
        STRIPE_API_BASE=stripe_base,
        STRIPE_SECRET_KEY="sk_test_e2e",
        STRIPE_PUBLISHABLE_KEY="pk_test_e2e",
        RATELIMIT_ENABLED="false",
        UPLOAD_FOLDER=str(folder / "uploads"),
        BASE_URL=f"http://127.0.0.1:{port}",
        PYTHONUNBUFFERED="1",
    )
    log_path = folder / "server.log"
    srv = Server(url=f"http://127.0.0.1:{port}", env=env, log_path=log_path, stripe_base=stripe_base)
    srv.flask("db", "upgrade")
    with log_path.open("w") as log:
        srv.process = subprocess.Popen(
            [FLASK, "--app", "wsgi", "run", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(srv.url, srv.process, log_path)
        yield srv
    finally:
        _stop(srv.process)


@pytest.fixture(scope="session")
def server(e2e_stripe: str, e2e_database: str, e2e_tmp: Path) -> Iterator[Server]:
    """One app server for the session's browser tests (over one database and one localstripe)."""
    with app_server(e2e_stripe, e2e_database, e2e_tmp) as srv:
        yield srv


@pytest.fixture
def own_server(e2e_tmp: Path, request: pytest.FixtureRequest) -> Iterator[Server]:
    """An app server with a database and a localstripe of its own, for a test that moves the clock
    (its settlement passes stamp rows in the future) or counts every payment Stripe holds."""
    folder = e2e_tmp / re.sub(r"\W", "_", request.node.name)
    folder.mkdir()
    with localstripe_process(folder) as stripe_base, \
            fresh_database(folder, f"threshold_e2e_{os.getpid()}_{folder.name}".lower()[:60]) as database_url, \
            app_server(stripe_base, database_url, folder) as srv:
        yield srv


@pytest.fixture(scope="session")
def demo(server: Server) -> Server:
    """The shared server with the demo's accounts and campaigns in every state (`seed-demo`), the ended
    ones decided by a settlement pass: the data of the tests that read pages rather than make them."""
    server.flask("seed-demo")
    server.flask("settle")
    return server


@pytest.fixture(scope="session")
def browser(e2e_tmp: Path):
    """Debian's Chromium, headless, with a fresh profile (Playwright's own browsers are not used)."""
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """When a browser test fails, show the end of the app's log next to the failure."""
    outcome = yield
    report = outcome.get_result()
    funcargs = getattr(item, "funcargs", {})
    srv = funcargs.get("own_server") or funcargs.get("server")
    if report.when == "call" and report.failed and isinstance(srv, Server):
        report.sections.append(("app server log (last lines)", srv.log_tail()))
