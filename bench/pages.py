"""Page benchmark (issues 7 and 20): a large data set on PostgreSQL, gunicorn (sync workers as deployed: 2 per core + 1, or --workers), wrk at 32
connections on visitors' pages (/, /campaigns?sort=funded, a campaign page) and a member's (a campaign
they back, a pledge form, /me/pledges with 50 pledges, /me/campaigns with 10 campaigns, /), beside a
bare route of the same app and server that renders a trivial template: the ceiling on this machine,
and with the member's cookie the member ceiling (the same page plus the login-session check).

    .venv/bin/python bench/pages.py [--campaigns 2000] [--pledges 200000] [--duration 15] [--rounds 3] [--workers N] [--keep]

Every page is measured in each of `--rounds` rounds (the ceilings first in each), its ratios taken against
the ceilings of its own round, and the table shows each figure's median over the rounds with the ratios'
range: on a shared machine one round's ceiling and page can fall in different moments of load.

Needs PostgreSQL (DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/postgres: a database
named threshold_bench is created next to it and dropped at the end unless --keep) and wrk (Debian).
Writes its figures to bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import os
import platform
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from tests import databases  # noqa: E402

CONNECTIONS = 32
CPU_PASSES, CPU_REQUESTS = 3, 200  # the app-CPU column: the lowest of this many passes of this many requests a page


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def generate(database_url: str, campaigns: int, pledges: int, seed: int = 7) -> dict:
    """Bulk-insert users, campaigns (three quarters live), tiers and active pledges; returns sample ids."""
    from app.accounts.passwords import _hasher_for

    rng = random.Random(seed)
    engine = create_engine(database_url)
    now = datetime.now(UTC).replace(tzinfo=None)
    per_campaign = max(1, pledges // campaigns)
    # Backers back a few campaigns each (three on average), as on a crowdfunding site: with a few
    # hundred backers of hundreds of campaigns each, PostgreSQL's planner took any backer's pledges for
    # hundreds and read whole tables to join a member's fifty.
    backers = max(per_campaign * 3, pledges // 3)
    password = _hasher_for(1, 1024)[0].hash("bench-password")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO users (email, display_name, password_hash, is_moderator, created_at, password_changed_at) "
            "SELECT 'u' || g || '@bench.example', 'Backer ' || g, :pw, false, :now, :now FROM generate_series(1, :n) g"
        ), {"pw": password, "now": now, "n": backers + 200})
        categories = ["art", "design", "games", "music", "technology", "food", "publishing", "film"]
        rows = []
        for i in range(campaigns):
            live = i % 4 != 3
            launched = now - timedelta(days=rng.randint(1, 29) if live else rng.randint(40, 90))
            rows.append({
                "slug": f"bench-campaign-{i}", "creator": backers + 1 + i % 200, "title": f"Bench campaign {i} {rng.choice(['lamp', 'game', 'book', 'album'])}",
                "blurb": "A project made for the benchmark, with a blurb of ordinary length to render.",
                "category": rng.choice(categories), "goal": rng.choice([100000, 500000, 1000000, 2500000]),
                "state": "live" if live else rng.choice(["successful", "unsuccessful"]),
                "launched": launched, "deadline": launched + timedelta(days=30), "featured": i % 97 == 0,
                "story": "## Story\n\n" + "We make a thing. " * 80, "risks": "Things can be late. " * 10,
            })
        conn.execute(text(
            "INSERT INTO campaigns (slug, creator_id, title, blurb, category, goal, currency, duration_days, story, risks, state, featured, "
            "created_at, updated_at, submitted_at, launched_at, deadline) VALUES (:slug, :creator, :title, :blurb, :category, :goal, 'USD', 30, "
            ":story, :risks, :state, :featured, :launched, :launched, :launched, :launched, :deadline)"
        ), rows)
        conn.execute(text(
            "INSERT INTO tiers (campaign_id, title, description, amount, quantity_limit, claimed, shipping_note, created_at) "
            "SELECT c.id, t.title, 'A reward for the benchmark.', t.amount, t.qlimit, 0, '', :now FROM campaigns c "
            "CROSS JOIN (VALUES ('Postcard', 1000, NULL), ('The thing', 5000, NULL), ('Early bird', 4000, 100000)) AS t(title, amount, qlimit)"
        ), {"now": now})
        # Active pledges on live campaigns: distinct backers per campaign, a tier or none.
        conn.execute(text(
            "INSERT INTO pledges (campaign_id, backer_id, tier_id, amount, currency, state, created_at, updated_at, activated_at, card_brand, card_last4) "
            "SELECT c.id, ((c.id * 7 + g) % :backers) + 1, "
            "  (SELECT t.id FROM tiers t WHERE t.campaign_id = c.id ORDER BY t.amount LIMIT 1 OFFSET (g % 3)), "
            "  1000 + (g % 20) * 500, 'USD', 'active', c.launched_at, c.launched_at, c.launched_at + (g || ' minutes')::interval, 'visa', '4242' "
            "FROM campaigns c CROSS JOIN generate_series(1, :per) g WHERE c.state = 'live'"
        ), {"backers": backers, "per": per_campaign * 4 // 3})
        # The member the member rows log in as: 10 campaigns of their own (every 200th campaign is
        # theirs) and 50 pledges on other live campaigns, with rewards.
        member_id = backers + 150
        conn.execute(text(
            "INSERT INTO pledges (campaign_id, backer_id, tier_id, amount, currency, state, created_at, updated_at, activated_at, card_brand, card_last4) "
            "SELECT c.id, :member, (SELECT t.id FROM tiers t WHERE t.campaign_id = c.id ORDER BY t.amount DESC LIMIT 1), 5000, 'USD', 'active', "
            "  c.launched_at, c.launched_at, c.launched_at, 'visa', '4242' "
            "FROM campaigns c WHERE c.state = 'live' AND c.creator_id <> :member "
            "  AND NOT EXISTS (SELECT 1 FROM pledges p WHERE p.campaign_id = c.id AND p.backer_id = :member) ORDER BY c.id LIMIT 50"
        ), {"member": member_id})
        conn.execute(text(
            "UPDATE tiers t SET claimed = s.n FROM (SELECT tier_id, count(*) n FROM pledges WHERE state = 'active' GROUP BY tier_id) s WHERE s.tier_id = t.id"
        ))
        conn.execute(text(  # the live counters the pledge service keeps (campaigns/totals.py)
            "UPDATE campaigns c SET pledged_total = s.total, backers_count = s.n FROM "
            "(SELECT campaign_id, sum(amount) total, count(*) n FROM pledges WHERE state = 'active' GROUP BY campaign_id) s WHERE s.campaign_id = c.id"
        ))
        conn.execute(text(  # ended campaigns show their snapshot
            "UPDATE campaigns SET pledged_at_deadline = goal / 3, backers_at_deadline = 40, ended_at = deadline WHERE state <> 'live'"
        ))
        counts = conn.execute(text("SELECT (SELECT count(*) FROM campaigns), (SELECT count(*) FROM pledges), (SELECT count(*) FROM users)")).one()
        sample = conn.execute(text(  # a live campaign the member neither made nor backs (its pledge form)
            "SELECT slug FROM campaigns c WHERE state = 'live' AND creator_id <> :id "
            "AND NOT EXISTS (SELECT 1 FROM pledges p WHERE p.campaign_id = c.id AND p.backer_id = :id) ORDER BY id LIMIT 1 OFFSET 10"
        ), {"id": member_id}).scalar_one()
        member = conn.execute(text("SELECT email FROM users WHERE id = :id"), {"id": member_id}).scalar_one()
        backed = conn.execute(text(  # a campaign the member backs (its page says "you back this")
            "SELECT c.slug FROM campaigns c JOIN pledges p ON p.campaign_id = c.id WHERE p.backer_id = :id ORDER BY c.id LIMIT 1 OFFSET 5"
        ), {"id": member_id}).scalar_one()
        mine = conn.execute(text("SELECT count(*) FROM campaigns WHERE creator_id = :id"), {"id": member_id}).scalar_one()
        member_pledges = conn.execute(text("SELECT count(*) FROM pledges WHERE backer_id = :id"), {"id": member_id}).scalar_one()
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    engine.dispose()
    return {"campaigns": counts[0], "pledges": counts[1], "users": counts[2], "slug": sample, "member": member,
            "backed": backed, "member_campaigns": mine, "member_pledges": member_pledges}


def wait_for(url: str, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def login_form(page: str, email: str) -> dict:
    """The login form's fields for `email`, with the CSRF token of the login `page`."""
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    return {"email": email, "password": "bench-password", "csrf_token": token}


def login_cookie(base: str, email: str) -> str:
    """Log in through the form (CSRF token and all) and return the session cookie header."""
    import http.cookiejar

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/auth/login").read().decode()
    data = urllib.parse.urlencode(login_form(page, email)).encode()
    opener.open(f"{base}/auth/login", data=data)
    return "; ".join(f"{c.name}={c.value}" for c in jar)


def wrk(url: str, duration: int, cookie: str | None = None) -> dict:
    cmd = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{duration}s", "--timeout", "30s", "--latency", url]  # slow answers counted, not dropped
    if cookie:
        cmd[1:1] = ["-H", f"Cookie: {cookie}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout

    def ms(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "p50": ms("50"), "p99": ms("99"),
            "errors": int(non_2xx.group(1)) if non_2xx else 0}


def check_page(url: str, cookie: str | None, marker: str = "") -> None:
    """A measured page must be the page itself (200, not a redirect to a login or an error)."""
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    with urllib.request.build_opener(NoRedirect).open(request) as response:
        body = response.read().decode()
    if response.status != 200 or marker not in body:
        raise RuntimeError(f"{url}: {response.status}, {marker!r} {'found' if marker in body else 'missing'}")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise RuntimeError(f"{req.full_url} redirects to {newurl}")


def workers_rss_mib(server_pid: int) -> int:
    """Resident memory of gunicorn's workers, together."""
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    total = 0
    for pid in children:
        status = Path(f"/proc/{pid}/status").read_text()
        total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    return total // 1024


def cpu_per_request(env: dict, pages: list, member: str, requests: int = CPU_REQUESTS, passes: int = CPU_PASSES) -> dict[str, float]:
    """The app's own CPU time per request, in this process through the test client (the same app,
    data and cache settings; no server, no wrk): what load on a shared machine moves least. The lowest
    of `passes` passes over all the pages (a neighbour's burst lengthens one pass, not all)."""
    os.environ.update(env)
    from app import create_app

    app = create_app()
    visitor, member_client = app.test_client(), app.test_client()
    member_client.post("/auth/login", data=login_form(member_client.get("/auth/login").get_data(as_text=True), member))
    member_client.get("/")  # shows the login's flash, as the server's login follows its redirect: the cookie is then the same
    cpu: dict[str, float] = {}
    for _pass in range(passes):
        for name, path, cookie in pages:
            client = member_client if cookie else visitor
            for _ in range(10):
                client.get(path)
            started = time.process_time()
            for _ in range(requests):
                assert client.get(path).status_code == 200, path
            cpu[name] = min(cpu.get(name, float("inf")), (time.process_time() - started) * 1000 / requests)
    return cpu


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), "?")
    mem = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))) // 1024 // 1024
    return f"{os.cpu_count()} cores ({cpu}), {mem} GiB, Python {platform.python_version()}, PostgreSQL on 127.0.0.1"


def write_results(section: str) -> None:
    path = ROOT / "bench" / "RESULTS.md"
    text_ = path.read_text() if path.exists() else "# Benchmark results\n"
    start, end = "<!-- pages:start -->", "<!-- pages:end -->"
    block = f"{start}\n{section}\n{end}"
    text_ = re.sub(re.escape(start) + ".*?" + re.escape(end), block, text_, flags=re.S) if start in text_ else text_.rstrip() + "\n\n" + block + "\n"
    path.write_text(text_)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaigns", type=int, default=2000)
    parser.add_argument("--pledges", type=int, default=200_000)
    parser.add_argument("--duration", type=int, default=15, help="seconds of load per page")
    parser.add_argument("--rounds", type=int, default=3, help="times every page is measured (the table shows the medians)")
    parser.add_argument("--keep", action="store_true", help="keep the threshold_bench database")
    parser.add_argument("--workers", type=int, default=0,
                        help="gunicorn sync workers (default: deploy/gunicorn.conf.py's rule, 2 per core + 1)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install -y wrk")
    url = databases.create_fresh(os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"), "threshold_bench")
    env = dict(os.environ, DATABASE_URL=url, APP_ENV="development", RATELIMIT_ENABLED="false", BENCH_CEILING="1",
               STRIPE_API_BASE="http://127.0.0.1:9", SECRET_KEY="bench")
    bin_dir = Path(sys.executable).parent
    subprocess.run([str(bin_dir / "flask"), "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    started = time.time()
    data = generate(url, args.campaigns, args.pledges)
    made_in = time.time() - started
    print(f"data: {data['campaigns']} campaigns, {data['pledges']} pledges, {data['users']} users in {made_in:.0f}s", flush=True)
    port = free_port()
    workers = args.workers or 2 * (os.cpu_count() or 1) + 1
    server = subprocess.Popen(
        [str(bin_dir / "gunicorn"), "--workers", str(workers), "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "wsgi:app"],
        cwd=ROOT, env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/healthz")
        cookie = login_cookie(base, data["member"])
        pages = [
            ("ceiling: bare template", "/_bench/ceiling", None),
            ("member ceiling: bare template, logged in", "/_bench/ceiling", cookie),
            ("/", "/", None),
            ("/campaigns?sort=funded", "/campaigns?sort=funded", None),
            ("campaign page", f"/campaigns/{data['slug']}", None),
            ("member: campaign page (you back this)", f"/campaigns/{data['backed']}", cookie),
            ("member: pledge page", f"/campaigns/{data['slug']}/pledge", cookie),
            ("member: /me/pledges", "/me/pledges", cookie),
            ("member: /me/campaigns", "/me/campaigns", cookie),
            ("member: /", "/", cookie),
        ]
        for name, path, c in pages:
            check_page(base + path, c, "you-back-this" if "you back this" in name else "")
        for _name, path, c in pages:  # warm up every worker
            wrk(base + path, 2, c)
        rss_before = workers_rss_mib(server.pid)
        loads = [load()]
        rounds: list[dict[str, dict]] = []
        for round_ in range(1, args.rounds + 1):
            measured: dict[str, dict] = {}
            rounds.append(measured)
            for name, path, c in pages:
                result = measured[name] = wrk(base + path, args.duration, c)
                print(f"round {round_} {name:40} {result['rps']:8.0f} req/s  p50 {result['p50']:6.1f} ms  p99 {result['p99']:6.1f} ms  "
                      f"non-2xx {result['errors']}  load {load()}", flush=True)
            loads.append(load())
        rss_after = workers_rss_mib(server.pid)
        server.terminate()
        server.wait(10)
        cpu = cpu_per_request(env, pages, data["member"])
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(10)
        if not args.keep:
            databases.drop(url)
    ceiling, member_ceiling = pages[0][0], pages[1][0]

    def ratios(name: str, of: str) -> list[float]:
        return [measured[name]["rps"] / measured[of]["rps"] for measured in rounds]

    def median_range(values: list[float]) -> str:
        return f"**{statistics.median(values):.2f}**" + (f" ({min(values):.2f}–{max(values):.2f})" if len(values) > 1 else "")

    rows = ["| page | req/s | p50 ms | p99 ms (worst round) | × ceiling | × member ceiling | non-2xx | app CPU ms per request | CPU: member ceiling ÷ page |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, _path, _cookie in pages:
        member_row = name.startswith("member") and name != member_ceiling
        figures = [measured[name] for measured in rounds]
        rows.append(f"| {name} | {statistics.median(r['rps'] for r in figures):.0f} | {statistics.median(r['p50'] for r in figures):.1f} "
                    f"| {max(r['p99'] for r in figures):.1f} | {median_range(ratios(name, ceiling))} "
                    f"| {median_range(ratios(name, member_ceiling)) if member_row else ''} | {sum(r['errors'] for r in figures)} "
                    f"| {cpu[name]:.2f} | {f'{cpu[member_ceiling] / cpu[name]:.2f}' if member_row else ''} |")
    section = "\n".join([
        "## Pages (bench/pages.py)",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {machine()} · gunicorn {workers} sync workers · wrk 2 threads, {CONNECTIONS} connections, {args.duration} s per page, "
        f"{args.rounds} round{'s' if args.rounds > 1 else ''} · load average {loads[0]} before the first round, " + ", ".join(f"{x} after round {i}" for i, x in enumerate(loads[1:], 1)),
        f"Data: {data['campaigns']} campaigns (three quarters live), {data['pledges']} active pledges, {data['users']} users, made in {made_in:.0f} s; "
        f"the member has {data['member_pledges']} pledges and {data['member_campaigns']} campaigns.",
        f"Memory: gunicorn's {workers} workers together {rss_before} MiB after the warm-up, {rss_after} MiB after the last page.",
        "",
        "Command: `.venv/bin/python bench/pages.py" + "".join(f" --{option} {getattr(args, option)}" for option in ("campaigns", "pledges", "duration", "rounds", "workers")
                                                             if getattr(args, option) != parser.get_default(option)) + "`",
        "",
        *rows,
        "",
        "Targets (issue 20): the member ceiling at least 0.6 of the ceiling; visitors' pages at least 0.5 of the ceiling and "
        f"members' pages at least 0.5 of the member ceiling, p99 under 100 ms at {CONNECTIONS} connections. Each figure is the median over "
        "the rounds (p99: the worst round's), each ratio taken against the ceilings of its own round, the rounds' range in "
        "brackets. The load average is the machine's (shared: other work runs beside the benchmark). App CPU ms per request: the app's own CPU for one request "
        f"in the benchmark's process through the test client after the server stopped (the lowest of {CPU_PASSES} passes of {CPU_REQUESTS} requests a page, same data; not "
        "PostgreSQL's): the figure the machine's load moves least, so its ratio is the one to compare when the load is high.",
    ])
    write_results(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
