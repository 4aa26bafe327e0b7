"""`make run`: migrate, seed the demo, start offline payments, and serve the app on 127.0.0.1:$PORT."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def main() -> int:
    port = os.environ.get("PORT", "5000")
    env = dict(os.environ, FLASK_APP="wsgi")
    env.setdefault("APP_ENV", "development")
    (ROOT / "instance").mkdir(exist_ok=True)
    flask = [str(BIN / "flask"), "--app", "wsgi"]
    subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True)
    subprocess.run([*flask, "seed-demo"], cwd=ROOT, env=env, check=True)
    print(f"\n  Threshold is running at http://127.0.0.1:{port}/\n", flush=True)
    try:
        return subprocess.call([*flask, "run", "--host", "127.0.0.1", "--port", port], cwd=ROOT, env=env)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
