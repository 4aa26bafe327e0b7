"""`make run`: start offline payments (localstripe) unless Stripe test keys are set, migrate, seed the
demo, and serve the app on 127.0.0.1:$PORT. Ctrl-C stops everything."""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def start_localstripe(env: dict) -> tuple[subprocess.Popen, str]:
    """localstripe on a free loopback port, its store under instance/localstripe (kept between runs)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.payments.localstripe_server", "--port", env.get("LOCALSTRIPE_PORT", "0"),
         "--state-dir", str(ROOT / "instance" / "localstripe")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
    )
    line = proc.stdout.readline().strip() if proc.stdout else ""
    if "listening on" not in line:
        proc.kill()
        sys.exit(f"localstripe did not start: {line or 'no output'}")
    return proc, line.rsplit(" ", 1)[1]


def main() -> int:
    port = os.environ.get("PORT", "5000")
    env = dict(os.environ, FLASK_APP="wsgi", PYTHONUNBUFFERED="1")
    env.setdefault("APP_ENV", "development")
    env.setdefault("MAIL_LOG_FILE", str(ROOT / "instance" / "mail.log"))
    (ROOT / "instance").mkdir(exist_ok=True)
    children: list[subprocess.Popen] = []
    if not env.get("STRIPE_SECRET_KEY"):
        proc, base = start_localstripe(env)
        children.append(proc)
        env["STRIPE_API_BASE"] = base
        env.pop("STRIPE_JS_URL", None)
        # Stripe's events reach the demo as they would a deployment: signed, over HTTP (a payout
        # account finishing onboarding, a card confirmed in the browser, a charge settled).
        env.setdefault("STRIPE_WEBHOOK_SECRET", f"whsec_demo_{secrets.token_hex(16)}")
        sys.path.insert(0, str(ROOT))
        from app.payments.localstripe_server import register_webhook

        register_webhook(base, "threshold-demo", f"http://127.0.0.1:{port}/stripe/webhook", env["STRIPE_WEBHOOK_SECRET"])
        print(f"Offline payments: localstripe at {base}, its events signed to /stripe/webhook", flush=True)
    flask = [str(BIN / "flask"), "--app", "wsgi"]
    try:
        subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True)
        subprocess.run([*flask, "seed-demo"], cwd=ROOT, env=env, check=True)
        # Decide the demo campaigns whose deadline has passed, so a funded one shows its money report.
        subprocess.run([*flask, "settle"], cwd=ROOT, env=env, check=True)
        print(f"\n  Threshold is running at http://127.0.0.1:{port}/\n"
              "  Log in as creator@example.com, backer@example.com or moderator@example.com (password: threshold-demo).\n"
              "  Test card: 4242 4242 4242 4242, any future date, any CVC.\n"
              f"  Emails are printed below and kept in {env['MAIL_LOG_FILE']}.\n", flush=True)
        # The settlement worker: decides campaigns at their deadline and sends queued mail.
        children.append(subprocess.Popen([*flask, "worker", "--interval", env.get("WORKER_INTERVAL_SECONDS", "60")], cwd=ROOT, env=env))
        app = subprocess.Popen([*flask, "run", "--host", "127.0.0.1", "--port", port], cwd=ROOT, env=env)
        children.append(app)
        return app.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
                try:
                    child.wait(10)
                except subprocess.TimeoutExpired:
                    child.kill()


if __name__ == "__main__":
    sys.exit(main())
