"""Settlement under faults (SPEC §6, SETTLEMENT.md): every pledge collected exactly once, checked
against localstripe's own PaymentIntents, when

a. Stripe moved the money but our process never learnt it (faults injected into our own modules: the
   answer to gateway.charge lost, the process dying after localstripe charged and before our commit,
   settlement._record dying before its commit; the same after the idempotency key expired), and a
   pass that outlasts its lease while another worker starts;
b. `flask --app wsgi settle` is SIGKILLed at random points, 20 to 24 times, then run to completion;
c. two `settle` processes run at once on PostgreSQL;
d. a second `settle` starts on SQLite while one holds the single-worker lock.

How the data is made: backers are real accounts (factories.make_user); each pledge goes through the
real services (`pledges.begin` makes the Stripe customer and SetupIntent, the card is confirmed over
HTTP against localstripe as Stripe.js would, `pledges.activate` reads it back and attaches it): about
eight requests to localstripe per pledge, 10-50 s for 200 depending on the machine's load. The
campaign stays live; the settle subprocesses see its deadline passed through CLOCK_OFFSET_SECONDS.

b runs on the session's database: the SQLite file when the suite runs on SQLite, PostgreSQL when
DATABASE_URL is PostgreSQL (each variant skips on the other); c needs PostgreSQL; d has its own SQLite
file (built by the migrations) whatever the session database is. Each `settle` subprocess pays the
app's start-up (about 2 s of CPU), which is most of b's time.
"""
from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from app import clock, create_app
from app.accounts.models import User
from app.campaigns.models import CampaignEvent
from app.extensions import db
from app.notifications.models import OutboxMessage
from app.payments import gateway, localstripe_stripe_like
from app.pledges import services as pledge_services
from app.pledges.models import Pledge, PledgeEvent
from app.settlement import services as settlement
from app.settlement.models import ChargeAttempt
from tests.conftest import make_config
from tests.factories import make_campaign, make_user
from tests.localstripe_fixture import CARD_OK, browser_confirm_setup
from tests.test_settlement import _intents

ROOT = Path(__file__).resolve().parent.parent
#: The campaigns made here end 30 days from now; the settle subprocesses live a day after that.
PAST_DEADLINE = timedelta(days=31)
#: Beyond a lease (settlement.LEASE), so that the next pass takes what a killed one held.
PAST_LEASE = settlement.LEASE + timedelta(minutes=1)
PLEDGES = 200
MIN_KILLS = 20
CHARGE_LINE = re.compile(r"threshold\.settlement: campaign \d+ pledge \d+ attempt \d+ ")


# --- data ------------------------------------------------------------------------------------

def fund(localstripe: str, backers: int, tag: str | None = None):
    """A live campaign (goal $10) with `backers` active pledges on CARD_OK, made through the services.

    Amounts differ (10.00, 10.01 …) so a PaymentIntent's amount is checked against its own pledge.
    Emails carry a fresh tag: localstripe lives for the whole session and finds customers by email.
    """
    tag = tag or uuid.uuid4().hex[:8]
    creator = make_user(f"creator-{tag}@example.com")
    campaign = make_campaign(creator, "live", tiers=1, goal=1000, currency="USD")
    for n in range(backers):
        backer = make_user(f"{tag}-b{n}@example.com")
        pledge, secret = pledge_services.begin(campaign, backer, pledge_services.Choice(None, 1000 + n))
        setup_id = secret.split("_secret_")[0]
        assert browser_confirm_setup(localstripe, setup_id, CARD_OK) == "succeeded"
        pledge_services.activate(pledge, backer, setup_id)
    campaign_id = campaign.id
    db.session.remove()  # no connection of ours holds a lock while a subprocess settles
    return campaign_id


@contextlib.contextmanager
def sqlite_file_app(path: Path, stripe_settings: dict) -> Iterator[tuple[Flask, str]]:
    """An app on a fresh SQLite file database built by the migrations; yields (app, url)."""
    from flask_migrate import upgrade

    url = f"sqlite:///{path}"
    new = create_app(make_config(url, **stripe_settings))
    with new.app_context():
        upgrade()
        try:
            yield new, url
        finally:
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def sqlite_app(tmp_path: Path, _stripe_settings: dict) -> Iterator[tuple[Flask, str]]:
    with sqlite_file_app(tmp_path / "settle.db", _stripe_settings) as made:
        yield made


@pytest.fixture
def postgres_app(app: Flask, database_url: str) -> tuple[Flask, str]:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("runs when DATABASE_URL is PostgreSQL")
    return app, database_url


# --- checks ----------------------------------------------------------------------------------

def assert_collected_exactly_once(localstripe: str, campaign_id: int) -> Counter:
    """Every pledge of the campaign collected once, in our database and at localstripe.

    At localstripe each pledge has exactly one PaymentIntent, succeeded, the one our attempt recorded,
    for the pledge's amount: a charge request sent again after a kill or a lost answer carried the same
    idempotency key, so localstripe answered with the first PaymentIntent instead of making another.
    Returns counts of what was seen."""
    db.session.rollback()
    db.session.expire_all()
    rows = db.session.execute(select(Pledge.id, Pledge.state, Pledge.amount, Pledge.lease_owner, User.email)
                              .join(User, User.id == Pledge.backer_id).where(Pledge.campaign_id == campaign_id)).all()
    ids = [r.id for r in rows]
    states = Counter(r.state for r in rows)
    assert states == {"collected": len(rows)}, states
    attempts: dict[int, list[ChargeAttempt]] = {}
    for attempt in db.session.scalars(select(ChargeAttempt).where(ChargeAttempt.pledge_id.in_(ids))):
        attempts.setdefault(attempt.pledge_id, []).append(attempt)
    intents = _intents(localstripe, ids)
    seen = Counter()
    for row in rows:
        [attempt] = attempts[row.id]  # one attempt per pledge: a pass that finds it open reuses it
        assert attempt.status == "succeeded" and attempt.payment_intent_id, (row.id, attempt.status)
        made = intents.get(row.id, [])
        assert [(i.id, i.status) for i in made] == [(attempt.payment_intent_id, "succeeded")], (row.id, [(i.id, i.status) for i in made])
        assert made[0].amount == row.amount == attempt.amount
    collect_events = Counter(db.session.scalars(
        select(PledgeEvent.pledge_id).where(PledgeEvent.pledge_id.in_(ids), PledgeEvent.action == "collect")))
    assert collect_events == Counter(ids), "one 'collect' audit row per pledge"
    mails = Counter(db.session.scalars(select(OutboxMessage.recipient).where(OutboxMessage.kind == "pledge_collected")))
    assert all(mails[r.email] == 1 for r in rows), "one 'collected' email per backer"
    decisions = db.session.scalar(select(func.count(CampaignEvent.id)).where(
        CampaignEvent.campaign_id == campaign_id, CampaignEvent.action == "succeed"))
    assert decisions == 1, "the campaign is decided once"
    db.session.rollback()
    seen["pledges"] = len(rows)
    return seen


# --- a. Stripe did it, we did not hear or did not record it -----------------------------------

def _one_pledge_state(pledge_id: int) -> tuple[str, object, list[ChargeAttempt]]:
    db.session.expire_all()
    pledge = db.session.get(Pledge, pledge_id)
    attempts = db.session.scalars(select(ChargeAttempt).where(ChargeAttempt.pledge_id == pledge_id)).all()
    return pledge.state, pledge.lease_until, attempts


class Spy:
    """Counts calls of a gateway function through the module attribute (the one charge_pledge uses)."""

    def __init__(self, monkeypatch, name: str) -> None:
        self.calls: list[str] = []
        real = getattr(gateway, name)

        def spy(*args, **kwargs):
            self.calls.append(str(args[0]))
            return real(*args, **kwargs)

        monkeypatch.setattr(gateway, name, spy)


def test_charge_succeeded_at_stripe_but_the_answer_was_lost(app, localstripe, monkeypatch):
    """The answer to the one charge request is lost (a timeout): the attempt has no PaymentIntent id.
    The next pass sends the same request with the same key and gets the same PaymentIntent back."""
    campaign_id = fund(localstripe, 3)
    real_charge = gateway.charge
    lost: list[tuple[int, str]] = []

    def charge_then_lose_the_answer(*args):
        state = real_charge(*args)  # localstripe charged: the money moved
        if not lost:
            lost.append((int(args[0]), state.id))
            raise gateway.StripeUnavailable(code="connection_error", detail="read timed out (injected)")
        return state

    monkeypatch.setattr(gateway, "charge", charge_then_lose_the_answer)
    clock.set_offset(PAST_DEADLINE)
    settlement.run_pass(concurrency=1)
    [(victim, intent)] = lost
    state, _lease, [attempt] = _one_pledge_state(victim)
    assert state == "charging" and attempt.status == "open" and attempt.payment_intent_id is None
    assert [(i.id, i.status) for i in _intents(localstripe, [victim])[victim]] == [(intent, "succeeded")]  # Stripe has it, we do not
    monkeypatch.setattr(gateway, "charge", real_charge)
    charges = Spy(monkeypatch, "charge")
    # Once the pledge is due again: the same request, the same key, the same PaymentIntent recorded.
    clock.advance(settlement.LOOK_AGAIN)
    settlement.run_pass(concurrency=1)
    assert charges.calls == [str(victim)]
    assert _one_pledge_state(victim)[2][0].payment_intent_id == intent
    seen = assert_collected_exactly_once(localstripe, campaign_id)
    assert seen["pledges"] == 3


@pytest.mark.parametrize("dies_in", ["gateway.charge", "settlement._record"])
def test_killed_after_localstripe_charged_before_our_commit(app, localstripe, monkeypatch, dies_in):
    """The process dies after localstripe took the charge request and before anything of its answer
    was committed (the PaymentIntent id included): right after the request, or while recording the
    outcome. After the dead pass's lease: the same key again, one PaymentIntent at localstripe,
    collected once."""
    campaign_id = fund(localstripe, 3)
    module, name = (gateway, "charge") if dies_in == "gateway.charge" else (settlement, "_record")
    real = getattr(module, name)
    died: list[int] = []

    def dying(*args):
        if dies_in == "gateway.charge":
            result, pledge_id, collected = real(*args), int(args[0]), True
        else:
            result, pledge_id, collected = None, args[0].id, args[2].succeeded
        if collected and not died:
            died.append(pledge_id)
            raise RuntimeError("process died after the request, before the commit (injected)")
        return result if dies_in == "gateway.charge" else real(*args)

    monkeypatch.setattr(module, name, dying)
    clock.set_offset(PAST_DEADLINE)
    with pytest.raises(RuntimeError, match="injected"):
        settlement.run_pass(concurrency=1)
    db.session.rollback()
    [victim] = died
    state, lease_until, [attempt] = _one_pledge_state(victim)
    assert state == "charging" and lease_until > clock.utcnow() and attempt.status == "open" and attempt.payment_intent_id is None
    assert [i.status for i in _intents(localstripe, [victim])[victim]] == ["succeeded"]
    monkeypatch.setattr(module, name, real)
    charges = Spy(monkeypatch, "charge")
    # While the dead pass's lease holds, nobody touches the pledge.
    settlement.run_pass(concurrency=1)
    assert str(victim) not in charges.calls and _one_pledge_state(victim)[0] == "charging"
    # After it: sent again with the same key; localstripe replays the first answer.
    clock.advance(PAST_LEASE)
    settlement.run_pass(concurrency=1)
    assert charges.calls.count(str(victim)) == 1
    assert_collected_exactly_once(localstripe, campaign_id)


def test_after_the_key_expired_the_charge_is_found_by_its_metadata(app, localstripe, monkeypatch):
    """Killed after the request, and no pass came back before Stripe forgot the key (24 h): sending it
    again would charge again. The pass looks the attempt's PaymentIntent up among the customer's own
    by our metadata and records it; an attempt Stripe never heard of is charged then, once."""
    campaign_id = fund(localstripe, 3)
    real_charge = gateway.charge
    charged_then_died: list[int] = []
    never_sent: list[int] = []

    def lost(*args):
        if not charged_then_died:
            charged_then_died.append(int(args[0]))
            real_charge(*args)
        elif not never_sent:
            never_sent.append(int(args[0]))  # the connection failed before the request left
        else:
            return real_charge(*args)
        raise gateway.StripeUnavailable(code="connection_error", detail="(injected)")

    monkeypatch.setattr(gateway, "charge", lost)
    clock.set_offset(PAST_DEADLINE)
    settlement.run_pass(concurrency=1)
    [victim], [unsent] = charged_then_died, never_sent
    assert [i.status for i in _intents(localstripe, [victim])[victim]] == ["succeeded"] and unsent not in _intents(localstripe, [unsent])
    # A day later, for us and for localstripe (which forgets every key at once here).
    monkeypatch.setattr(localstripe_stripe_like, "IDEMPOTENCY_SECONDS", 0)
    monkeypatch.setattr(gateway, "charge", real_charge)
    charges, lookups = Spy(monkeypatch, "charge"), Spy(monkeypatch, "find_charge")
    clock.advance(gateway.IDEMPOTENCY_KEY_LIFETIME)
    settlement.run_pass(concurrency=1)
    assert_collected_exactly_once(localstripe, campaign_id)
    assert len(lookups.calls) == 2  # both attempts without a PaymentIntent id, past their key's life
    assert charges.calls == [str(unsent)]  # found: no second request for the victim


def test_a_pass_longer_than_the_lease_keeps_its_claims(app, localstripe, monkeypatch):
    """A large settlement outlasts one lease (10,000 pledges at the default 20 requests/s: ~25 min).
    A second worker starting meanwhile must not take the pledges the first claims after that point:
    each claim's lease runs from the time of the claim, not from the start of the pass."""
    campaign_id = fund(localstripe, 3)
    real_charge = gateway.charge
    charges: list[str] = []

    def slow_pass_and_a_second_worker(*args):
        charges.append(args[0])
        if len(charges) == 1:
            clock.advance(PAST_LEASE)  # the first charges took longer than a lease
        elif len(charges) == 2:
            # Another worker's pass starts now, while this one is about to charge its second pledge.
            monkeypatch.setattr(gateway, "charge", real_charge)
            with app.app_context():
                settlement.run_pass(concurrency=1)
                db.session.remove()
            monkeypatch.setattr(gateway, "charge", slow_pass_and_a_second_worker)
        return real_charge(*args)

    monkeypatch.setattr(gateway, "charge", slow_pass_and_a_second_worker)
    clock.set_offset(PAST_DEADLINE)
    settlement.run_pass(batch=1, concurrency=1)
    assert_collected_exactly_once(localstripe, campaign_id, )


# --- b. SIGKILL at random points ---------------------------------------------------------------

def _env(database_url: str, localstripe: str, offset: timedelta, rate: float = 1000, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEST_DATABASE_URL", "APP_ENV", "FLASK_ENV")}
    env.update(DATABASE_URL=database_url, STRIPE_API_BASE=localstripe, STRIPE_SECRET_KEY="sk_test_x",
               STRIPE_PUBLISHABLE_KEY="", STRIPE_MAX_REQUESTS_PER_SECOND=str(rate),
               CLOCK_OFFSET_SECONDS=str(int(offset.total_seconds())), PYTHONUNBUFFERED="1", **extra)
    return env


def spawn_settle(database_url: str, localstripe: str, offset: timedelta, log: Path, *args: str, rate: float = 1000,
                 **extra_env: str) -> subprocess.Popen:
    """`python -m flask --app wsgi settle` in its own process, its output in `log`."""
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "settle", *args], cwd=ROOT,
                                env=_env(database_url, localstripe, offset, rate, **extra_env), stdout=out, stderr=subprocess.STDOUT)


def run_settle(database_url: str, localstripe: str, offset: timedelta, log: Path, *args: str) -> str:
    proc = spawn_settle(database_url, localstripe, offset, log, *args)
    assert proc.wait(timeout=300) == 0, log.read_text()
    return log.read_text()


def _charges_logged(log: Path) -> int:
    try:
        return len(CHARGE_LINE.findall(log.read_text(errors="replace")))
    except FileNotFoundError:
        return 0


def _wait_for(proc: subprocess.Popen, condition, timeout: float = 120, every: float = 0.002) -> bool:
    """Poll until `condition()` or the process ends; True if the condition came first."""
    end = time.monotonic() + timeout
    while proc.poll() is None:
        if condition():
            return True
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError("settle neither progressed nor ended")
        time.sleep(every)
    return False


def _pass_started_probe(database_url: str, run: int) -> tuple[dict[str, str], object]:
    """(extra environment, condition): the condition turns true once the subprocess's pass has begun,
    i.e. its imports are done (they take seconds on a busy machine and are not worth killing in).

    SQLite: `settle` creates its single-worker lock file just before the pass. PostgreSQL: the pass's
    first query opens a connection, which pg_stat_activity shows under the PGAPPNAME we give it."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    if database_url.startswith("sqlite"):
        lock = Path(make_url(database_url).database + ".settle.lock")
        lock.unlink(missing_ok=True)  # the previous holder is dead: nobody holds it
        return {}, lock.exists
    name = f"threshold-settle-kill-{os.getpid()}-{run}"

    def connected() -> bool:
        found = db.session.execute(text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :n"), {"n": name}).scalar()
        db.session.rollback()
        return bool(found)

    return {"PGAPPNAME": name}, connected


def kill_settle_until_done(database_url: str, localstripe: str, campaign_id: int, logs: Path, seed: int) -> Counter:
    """Run `settle` and SIGKILL it at a random point, again and again (20-24 times), then run it to the end.

    Each run's clock is one lease further on, so it takes up what the killed run held (the recovery
    path: open attempts, saved-but-unconfirmed and confirmed-but-unrecorded PaymentIntents). The first
    run and a fifth of the others are killed 0-150 ms after their pass began (the decision, the sweeps,
    the first claim and charges); the others once a random number of charges were logged, plus
    0-40 ms, i.e. anywhere inside the next charges (that number is drawn so the work lasts for all the
    kills). Stops killing early if a run ends by itself (the work is done). Returns counts."""
    rng = random.Random(seed)
    logs.mkdir(exist_ok=True)
    target = MIN_KILLS + rng.randint(0, 4)
    stats = Counter()
    offset = PAST_DEADLINE
    while stats["kills"] < target:
        assert stats["runs"] < 100, f"settlement does not progress under kills: {stats}"
        remaining = db.session.scalar(select(func.count(Pledge.id)).where(Pledge.campaign_id == campaign_id, Pledge.state != "collected"))
        db.session.rollback()
        run, log = stats["runs"], logs / f"run{stats['runs']:03d}.log"
        extra_env, started = _pass_started_probe(database_url, run)
        # Small leased batches of varied sizes: a pass works a batch in steps (attempts, PaymentIntents,
        # confirmations, outcomes), so kills land in every step and between batches.
        proc = spawn_settle(database_url, localstripe, offset, log, "--batch", str(rng.choice((1, 2, 5, 10))), **extra_env)
        stats["runs"] += 1
        if run == 0 or rng.random() < 0.2:
            alive = _wait_for(proc, started, every=0.005)
            time.sleep(rng.uniform(0, 0.15))
            kind = "early"
        else:
            mean = max(1.0, remaining / (target - stats["kills"] + 1))
            wanted = rng.randint(1, max(1, round(2 * mean) - 1))
            alive = _wait_for(proc, lambda log=log, wanted=wanted: _charges_logged(log) >= wanted)
            time.sleep(rng.uniform(0, 0.04))
            kind = "after charges"
        if not (alive and proc.poll() is None):
            assert proc.wait() == 0, log.read_text()
            stats["ended by itself"] += 1
            break
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
        stats["kills"] += 1
        stats[f"kills {kind}"] += 1
        if run == 0 and "decided successful" not in log.read_text():
            stats["killed before the decision's commit"] += 1
        offset += PAST_LEASE
    # To completion: passes one lease later each, until nothing is left (the last one says so).
    for n in range(4):
        offset += PAST_LEASE
        out = run_settle(database_url, localstripe, offset, logs / f"finish{n}.log")
        stats["finishing passes"] += 1
        if "nothing to do" in out:
            break
    else:
        raise AssertionError("settle never reached 'nothing to do'")
    return stats


def _kill_test(database_url: str, localstripe: str, tmp_path: Path) -> Counter:
    started = time.monotonic()
    campaign_id = fund(localstripe, PLEDGES)
    made = time.monotonic()
    seed = random.SystemRandom().randrange(1 << 32)
    stats = kill_settle_until_done(database_url, localstripe, campaign_id, tmp_path / "logs", seed)
    assert stats["kills"] >= MIN_KILLS, f"seed {seed}: {dict(stats)}"
    stats.update(assert_collected_exactly_once(localstripe, campaign_id))
    assert stats["pledges"] == PLEDGES
    assert db.session.scalar(select(func.count(Pledge.id)).where(Pledge.state == "charging")) == 0
    print(f"\nseed {seed}: {dict(stats)}; {made - started:.0f} s to make {PLEDGES} pledges, {time.monotonic() - made:.0f} s of kills")
    return stats


@pytest.fixture
def sqlite_session_app(app: Flask, database_url: str) -> tuple[Flask, str]:
    if db.engine.dialect.name != "sqlite":
        pytest.skip("runs when the suite runs on SQLite (its session database is a file)")
    return app, database_url


@pytest.mark.slow
def test_sigkill_at_random_points_sqlite(sqlite_session_app, localstripe, tmp_path):
    _app, url = sqlite_session_app
    _kill_test(url, localstripe, tmp_path)


@pytest.mark.slow
def test_sigkill_at_random_points_postgres(postgres_app, localstripe, tmp_path):
    _app, url = postgres_app
    _kill_test(url, localstripe, tmp_path)


# --- c. two settle processes at once (PostgreSQL) ----------------------------------------------

def test_two_settle_processes_at_once_postgres(postgres_app, localstripe, tmp_path):
    _app, url = postgres_app
    campaign_id = fund(localstripe, PLEDGES)
    procs = [spawn_settle(url, localstripe, PAST_DEADLINE, tmp_path / f"p{n}.log") for n in range(2)]
    for n, proc in enumerate(procs):
        assert proc.wait(timeout=300) == 0, (tmp_path / f"p{n}.log").read_text()
    outputs = [(tmp_path / f"p{n}.log").read_text() for n in range(2)]
    assert_collected_exactly_once(localstripe, campaign_id, )
    # Both took part (SKIP LOCKED hands them different batches); the decision was made by one.
    done = [sum(int(n) for line in out.splitlines() if line.startswith("campaign ") for n in re.findall(r"(\d+) collected", line))
            for out in outputs]
    assert sum(done) == PLEDGES, done
    assert sum("successful" in out for out in outputs) == 1
    print(f"\ncollected per process: {done}")


# --- d. SQLite: one settlement process at a time -----------------------------------------------

def test_second_settle_on_sqlite_is_refused_while_one_runs(sqlite_app, localstripe, tmp_path):
    _app, url = sqlite_app
    campaign_id = fund(localstripe, 3)
    # The first is slowed to a request every 5 s, so that it surely holds the lock while the second
    # starts (seconds on a busy machine); it is killed once the second has been refused.
    first = spawn_settle(url, localstripe, PAST_DEADLINE, tmp_path / "first.log", rate=0.2)
    assert _wait_for(first, lambda: "decided successful" in (tmp_path / "first.log").read_text(), timeout=60)
    second = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "settle"], cwd=ROOT, capture_output=True, text=True,
                            env=_env(url, localstripe, PAST_DEADLINE), timeout=120)
    assert first.poll() is None, "the first was still running"
    assert second.returncode != 0
    assert ("Error: another settlement process is running on this SQLite database; SQLite allows one at a time "
            "(use PostgreSQL for several)") in second.stderr
    assert not CHARGE_LINE.search(second.stderr + second.stdout)  # it did nothing
    # A SIGKILLed holder leaves no stale lock: the next settle runs (and finishes the work once).
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    run_settle(url, localstripe, PAST_DEADLINE + PAST_LEASE, tmp_path / "after.log")
    assert_collected_exactly_once(localstripe, campaign_id)
