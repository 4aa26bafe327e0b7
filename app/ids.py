"""Database ids as they arrive from outside (URLs, cookies, forms): one bound for both databases.

Ids are PostgreSQL ``integer``/SQLite ``INTEGER`` primary keys; a number past 2^31 - 1 makes
PostgreSQL raise NumericValueOutOfRange and past 2^63 - 1 makes SQLite's driver raise
OverflowError. No row can have such an id, so such a number is simply "not found".
"""
from __future__ import annotations

from werkzeug.routing import BaseConverter, ValidationError

#: The largest id either database can hold in an ``integer`` column.
MAX_ID = 2**31 - 1


def parse_id(text: object) -> int | None:
    """The id that `text` names ("42"), or None for anything else: signs, spaces, "²", 0, > MAX_ID."""
    if not isinstance(text, str) or not (text.isascii() and text.isdigit()) or len(text) > 10:
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None


class IdConverter(BaseConverter):
    """``<id:pledge_id>``: a database id in a URL; any other number does not match (so 404)."""

    regex = r"[1-9][0-9]{0,9}"

    def to_python(self, value: str) -> int:
        parsed = parse_id(value)
        if parsed is None:
            raise ValidationError()
        return parsed

    def to_url(self, value: object) -> str:
        return str(int(value))  # type: ignore[call-overload]
