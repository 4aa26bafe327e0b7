"""The one source of "now": naive UTC datetimes, movable by tests and the demo."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

_offset = timedelta(0)
_frozen: datetime | None = None


def utcnow() -> datetime:
    """The current time in UTC (naive, as stored in the database), after any offset or freeze."""
    if _frozen is not None:
        return _frozen
    return datetime.now(UTC).replace(tzinfo=None) + _offset


def set_offset(delta: timedelta) -> None:
    """Move the clock by `delta` from real time (the demo and browser tests use this)."""
    global _offset
    _offset = delta


def freeze(at: datetime | None) -> None:
    """Stop the clock at `at` (tests); `None` lets it run again."""
    global _frozen
    _frozen = at


def advance(delta: timedelta) -> None:
    """Move a frozen clock forward, or the running clock's offset."""
    global _frozen
    if _frozen is not None:
        _frozen = _frozen + delta
    else:
        set_offset(_offset + delta)


def reset() -> None:
    """Back to real time."""
    set_offset(timedelta(0))
    freeze(None)
