"""`make run`: the offline demo. One line per stage (payments, migrate, seed, settle, start), then the
address and the demo logins, printed last, once /healthz answers.

- Payments: localstripe (a fake Stripe over real HTTP) on a free loopback port, unless Stripe test
  keys are set; its events are signed to the app's /stripe/webhook, as Stripe's would be.
- Seed: the first time, the demo data (a one-line summary); afterwards, the demo database's dates
  move forward by the time it was left, so it reads as it did (app/demo_state.py).
- Start: the settlement worker (a pass every WORKER_INTERVAL_SECONDS, 5 s in the demo) and the app.

Every child's output goes to a log in the instance folder (app.log, worker.log, demo.log; mail in
mail.log); what the worker decides is echoed here. Any stop signal (Ctrl-C, SIGTERM, SIGHUP) stops
the app, the worker and localstripe, in that order, and the demo exits 0.

THRESHOLD_INSTANCE=/some/folder keeps everything (database, uploads, logs, localstripe's store) there
instead of ./instance.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FLASK = [str(BIN / "flask"), "--app", "wsgi"]


class Stop(Exception):
    """A stop signal arrived."""


def _on_signal(signum, _frame) -> None:
    raise Stop(signum)


def stage(name: str, text: str) -> None:
    print(f"==> {name}: {text}", flush=True)


def _die_with_parent() -> None:
    """This process gets SIGTERM when its parent dies (Linux): a child of a demo killed outright
    (SIGKILL) stops too, and so does the demo when the make that started it is killed."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Children:
    """The processes the demo started. Each runs in its own session, so that a Ctrl-C reaches the
    demo alone, which then stops them one by one (the app first, localstripe last)."""

    def __init__(self) -> None:
        self.running: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, args: list[str], env: dict, **kwargs) -> subprocess.Popen:
        process = subprocess.Popen(args, cwd=ROOT, env=env, start_new_session=True, preexec_fn=_die_with_parent, **kwargs)
        self.running.append((name, process))
        return process

    def run(self, name: str, args: list[str], env: dict, log: Path) -> str:
        """Run a command to its end (stdout returned, stderr to `log`); exits the demo if it fails."""
        with log.open("a") as err:
            process = self.start(name, args, env, stdout=subprocess.PIPE, stderr=err, text=True)
            out, _ = process.communicate()
        self.running.remove((name, process))
        with log.open("a") as handle:
            handle.write(out)
        if process.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            raise SystemExit(f"{name} failed (exit {process.returncode}); the end of {log}:\n{tail}")
        return out

    def stop_all(self) -> None:
        for _name, process in reversed(self.running):
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + 10
        for _name, process in reversed(self.running):
            try:
                process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.running.clear()


def start_localstripe(children: Children, env: dict, instance: Path) -> str:
    """localstripe on a free loopback port, its store under the instance folder (kept between runs)."""
    proc = children.start("localstripe", [sys.executable, "-m", "app.payments.localstripe_server", "--port", env.get("LOCALSTRIPE_PORT", "0"),
                                          "--state-dir", str(instance / "localstripe")],
                          env, stdout=subprocess.PIPE, stderr=(instance / "localstripe.log").open("a"), text=True)
    line = proc.stdout.readline().strip() if proc.stdout else ""
    if "listening on" not in line:
        raise SystemExit(f"localstripe did not start: {line or 'no output'} (see {instance / 'localstripe.log'})")
    return line.rsplit(" ", 1)[1]


def wait_for_health(url: str, app: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if app.poll() is not None or time.monotonic() > deadline:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            raise SystemExit(f"the app did not answer {url}healthz; the end of {log}:\n{tail}")
        time.sleep(0.2)


def echo_worker(worker: subprocess.Popen, ready: threading.Event) -> None:
    """What the worker decides, under the address block (its "nothing to do" passes are left out)."""
    assert worker.stdout is not None
    last = None
    for line in worker.stdout:
        line = line.rstrip()
        if line and line != "nothing to do" and not line.startswith("worker ") and line != last:
            ready.wait()
            print(f"  worker: {line}", flush=True)
            last = line  # a lease held for minutes is said once, not every pass


def main() -> int:
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _on_signal)
    # When whoever started the demo dies (make killed with SIGTERM does not pass it on), the demo stops too.
    _die_with_parent()
    children = Children()
    try:
        return run(children)
    except Stop as stop:
        print(f"\n==> stop: {signal.Signals(stop.args[0]).name} received, stopping the app, the worker and localstripe", flush=True)
        return 0
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C does not cut the stopping short
        children.stop_all()


def run(children: Children) -> int:
    port = os.environ.get("PORT", "5000")
    instance = Path(os.environ.get("THRESHOLD_INSTANCE") or ROOT / "instance").resolve()
    instance.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, FLASK_APP="wsgi", PYTHONUNBUFFERED="1")
    env.setdefault("APP_ENV", "development")
    env.setdefault("DATABASE_URL", f"sqlite:///{instance / 'threshold.db'}")
    env.setdefault("UPLOAD_FOLDER", str(instance / "uploads"))
    env.setdefault("MAIL_LOG_FILE", str(instance / "mail.log"))
    env.setdefault("WORKER_INTERVAL_SECONDS", "5")
    demo_log = instance / "demo.log"
    url = f"http://127.0.0.1:{port}/"

    if env.get("STRIPE_SECRET_KEY"):
        stage("payments", "Stripe's test mode (STRIPE_SECRET_KEY is set)")
    else:
        base = start_localstripe(children, env, instance)
        env["STRIPE_API_BASE"] = base
        env.pop("STRIPE_JS_URL", None)
        # Stripe's events reach the demo as they would a deployment: signed, over HTTP (a payout
        # account finishing onboarding, a card confirmed in the browser, a charge settled).
        env.setdefault("STRIPE_WEBHOOK_SECRET", f"whsec_demo_{secrets.token_hex(16)}")
        sys.path.insert(0, str(ROOT))
        from app.payments.localstripe_server import register_webhook

        register_webhook(base, "threshold-demo", f"{url}stripe/webhook", env["STRIPE_WEBHOOK_SECRET"])
        stage("payments", f"localstripe (offline Stripe) at {base}, its events signed to /stripe/webhook")

    started = time.monotonic()
    stage("migrate", f"{env['DATABASE_URL']} (log: {demo_log})")
    children.run("migrate", [*FLASK, "db", "upgrade"], env, demo_log)
    stage("seed", "demo accounts and campaigns (the first time: 20 to 60 s)…")
    seeding = time.monotonic()
    out = children.run("seed", [*FLASK, "seed-demo"], env, demo_log)
    stage("seed", f"{(out.strip().splitlines() or ['done'])[-1]} ({time.monotonic() - seeding:.0f} s)")
    # Decide the demo campaigns whose deadline has passed, so a funded one shows its money report.
    out = children.run("settle", [*FLASK, "settle"], env, demo_log)
    stage("settle", "; ".join(out.strip().splitlines()) or "nothing to do")
    # What happens after funding (the board game's survey, answers and first shipments) needs the pass above.
    out = children.run("fulfil", [*FLASK, "seed-demo", "--after-funding"], env, demo_log)
    stage("fulfil", (out.strip().splitlines() or ["done"])[-1])

    stage("start", f"worker (a pass every {env['WORKER_INTERVAL_SECONDS']} s) and app on {url} (logs: {instance / 'worker.log'}, {instance / 'app.log'})")
    ready = threading.Event()
    worker = children.start("worker", [*FLASK, "worker"], env, stdout=subprocess.PIPE,
                            stderr=(instance / "worker.log").open("a"), text=True)
    threading.Thread(target=echo_worker, args=(worker, ready), daemon=True).start()
    app_log = instance / "app.log"
    app = children.start("app", [*FLASK, "run", "--host", "127.0.0.1", "--port", port], env,
                         stdout=app_log.open("a"), stderr=subprocess.STDOUT)
    wait_for_health(url, app, app_log)
    print(f"""
  Threshold is running at {url}   (ready in {time.monotonic() - started:.0f} s)

  Log in (password: threshold-demo) as
    creator@example.com    runs campaigns
    backer@example.com     backs campaigns
    moderator@example.com  reviews campaigns
  Test card 4242 4242 4242 4242, any future date, any CVC.
  Emails go to {env['MAIL_LOG_FILE']}.
  See a deadline pass: .venv/bin/flask --app wsgi demo end solar-lantern
  Stop with Ctrl-C.
""", flush=True)
    ready.set()
    parent = os.getppid()
    while True:
        if os.getppid() != parent:  # where PR_SET_PDEATHSIG is missing
            raise Stop(signal.SIGHUP)
        for name, process in list(children.running):
            if process.poll() is not None:
                print(f"==> stop: the {name} stopped (exit {process.returncode}); see the logs in {instance}", flush=True)
                return 1
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
