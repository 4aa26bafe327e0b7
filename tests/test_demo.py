"""The offline demo (issue 19): its mark, its dates kept alive, `demo end`, and `make run`'s script
started for real, then stopped with SIGTERM."""
from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest

from app import clock, demo_state
from app.campaigns.models import Campaign
from app.extensions import db
from app.settlement import services as settlement
from tests.factories import fresh_email, make_campaign, make_user
from tests.localstripe_fixture import CARD_OK
from tests.test_pledges import backer, pledge_with_card

ROOT = Path(__file__).resolve().parents[1]
FLASK = str(Path(sys.executable).parent / "flask")


# --- the mark and `demo end` ---------------------------------------------------------------------

def _live_campaign_with_pledges(app, localstripe, goal: int = 5000) -> Campaign:
    campaign = make_campaign(make_user(fresh_email("creator")), "live", goal=goal)
    for n in range(2):
        client = app.test_client()
        backer(client, fresh_email(f"demo{n}"))
        pledge_with_card(client, localstripe, campaign, card=CARD_OK, tier=campaign.tiers[0].id, amount="30")
    return campaign


def test_demo_end_is_refused_on_a_database_that_is_not_the_demo(app, runner, localstripe):
    campaign = _live_campaign_with_pledges(app, localstripe)
    result = runner.invoke(args=["demo", "end", campaign.slug])
    assert result.exit_code == 1 and "not the demo's" in result.output
    db.session.expire_all()
    assert db.session.get(Campaign, campaign.id).state == "live" and settlement.run_pass().decided == {}
    result = runner.invoke(args=["demo", "refresh"])
    assert result.exit_code == 1 and "not the demo's" in result.output


def test_demo_end_then_the_settlement_pass_decides_the_campaign(app, runner, localstripe):
    campaign = _live_campaign_with_pledges(app, localstripe)
    demo_state.set_mark()
    assert settlement.run_pass().decided == {}  # live, weeks before its deadline
    result = runner.invoke(args=["demo", "end", campaign.slug])
    assert result.exit_code == 0, result.output
    assert "ended now with 60.00 of 50.00 USD: funded" in result.output
    summary = settlement.run_pass()
    assert summary.decided == {campaign.id: "successful"}
    db.session.expire_all()
    assert db.session.get(Campaign, campaign.id).state == "successful"
    assert [line for line in summary.lines() if "2 collected" in line]
    # Only a live campaign can be ended; the refusal names the ones that can.
    other = make_campaign(make_user(fresh_email("creator")), "live")
    result = runner.invoke(args=["demo", "end", campaign.slug])
    assert result.exit_code == 1 and "successful, not live" in result.output and other.slug in result.output
    result = runner.invoke(args=["demo", "end", "no-such-campaign"])
    assert result.exit_code == 1 and f"live ones: {other.slug}" in result.output


def test_a_stale_demo_moves_its_dates_forward_by_the_pause(app, frozen_clock):
    campaign = make_campaign(make_user(fresh_email("creator")), "live")
    demo_state.set_mark()
    deadline, launched = campaign.deadline, campaign.launched_at
    assert demo_state.move_forward() is None  # just seeded: nothing to move
    clock.advance(timedelta(days=40))  # the demo was left for 40 days: its campaign would be over
    pause = demo_state.move_forward()
    assert pause == timedelta(days=40)
    db.session.expire_all()
    moved = db.session.get(Campaign, campaign.id)
    assert moved.deadline == deadline + pause and moved.launched_at == launched + pause
    assert moved.tiers[0].estimated_delivery.day == 1  # a delivery month stays a month
    assert moved.is_open_for_pledges(clock.utcnow())
    # The pause is counted from the last thing that happened, not from the seeding.
    clock.advance(timedelta(hours=1))
    make_user(fresh_email("visitor"))
    clock.advance(timedelta(days=2))
    assert demo_state.move_forward() == timedelta(days=2)


# --- `make run`'s script, for real ---------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.connect(("127.0.0.1", port))
        except OSError:
            return True
        return False


class _Output:
    """The demo's output, line by line, read in a thread (the demo prints while the test waits)."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(process.stdout,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            self._queue.put(line.rstrip())
        self._queue.put(None)

    def until(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
            if found := re.search(pattern, line):
                return found
        raise AssertionError(f"no line matching {pattern!r}; the demo printed:\n" + "\n".join(self.lines))

    def rest(self, timeout: float = 10) -> str:
        with contextlib.suppress(AssertionError):
            self.until(r"(?!)", timeout)
        return "\n".join(self.lines)


@pytest.mark.slow
def test_the_demo_starts_prints_its_address_last_settles_an_ended_campaign_and_stops_on_sigterm(tmp_path):
    port, stripe_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "STRIPE_SECRET_KEY", "STRIPE_API_BASE", "STRIPE_WEBHOOK_SECRET",
                                                            "CLOCK_OFFSET_SECONDS", "BASE_URL", "MAIL_SERVER", "FLASK_DEBUG", "SECRET_KEY")}
    env |= {"PORT": str(port), "LOCALSTRIPE_PORT": str(stripe_port), "THRESHOLD_INSTANCE": str(tmp_path / "instance")}
    process = subprocess.Popen([sys.executable, "scripts/demo.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    output = _Output(process)
    lines = output.lines
    try:
        output.until(rf"Threshold is running at http://127\.0\.0\.1:{port}/", timeout=300)
        stages = [line.split(":")[0] for line in lines if line.startswith("==> ")]
        assert stages == ["==> payments", "==> migrate", "==> seed", "==> seed", "==> settle", "==> fulfil", "==> start"], lines
        # After funding: the board game's survey answered and its first rewards shipped (issue 17).
        assert re.search(r"==> fulfil: board game: survey sent to \d+ backers, [1-9] answered, [1-9] items shipped", "\n".join(lines))
        assert re.search(r"Demo seeded: 11 accounts, \d+ campaigns \(\d+ live\), \d+ pledges, [1-9]\d* updates", "\n".join(lines))
        assert not [line for line in lines if "Subject:" in line]  # mail goes to mail.log, not the console
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert response.status == 200 and "Solar Lantern" in response.read().decode()
        output.until(r"Stop with Ctrl-C", timeout=10)  # the address block ends the start

        database = f"sqlite:///{tmp_path / 'instance' / 'threshold.db'}"
        ended = subprocess.run([FLASK, "--app", "wsgi", "demo", "end", "solar-lantern"], cwd=ROOT, capture_output=True, text=True,
                               env=env | {"DATABASE_URL": database}, timeout=60)
        assert ended.returncode == 0 and "funded" in ended.stdout, ended.stdout + ended.stderr
        output.until(r"worker: campaign \d+: successful \d+ collected", timeout=90)
        assert "Subject:" in (tmp_path / "instance" / "mail.log").read_text()

        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        rest = output.rest()
        assert "SIGTERM received" in rest and "Traceback" not in rest, rest
        assert _port_is_free(port) and _port_is_free(stripe_port)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
