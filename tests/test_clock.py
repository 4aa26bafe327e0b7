"""app.clock: the one source of now."""
from datetime import UTC, datetime, timedelta

from app import clock


def test_utcnow_is_naive_utc_close_to_real_time():
    now = clock.utcnow()
    assert now.tzinfo is None
    assert abs(now - datetime.now(UTC).replace(tzinfo=None)) < timedelta(seconds=2)


def test_freeze_advance_and_reset():
    at = datetime(2030, 1, 1, 12, 0)
    clock.freeze(at)
    assert clock.utcnow() == at
    clock.advance(timedelta(days=3))
    assert clock.utcnow() == at + timedelta(days=3)
    clock.reset()
    assert clock.utcnow().year != 2030 or clock.utcnow() != at


def test_offset_moves_a_running_clock():
    clock.set_offset(timedelta(days=10))
    try:
        assert clock.utcnow() - datetime.now(UTC).replace(tzinfo=None) > timedelta(days=9, hours=23)
        clock.advance(timedelta(days=1))
        assert clock.utcnow() - datetime.now(UTC).replace(tzinfo=None) > timedelta(days=10, hours=23)
    finally:
        clock.reset()
