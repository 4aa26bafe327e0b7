"""Time arithmetic in SQL that SQLite and PostgreSQL spell differently: the one dialect switch.
Figures cut into weeks (app/operations/figures.py) and charts summed per hour (app/pledges/chart.py)
both count whole seconds from a fixed start with `seconds_between`, then divide."""
from __future__ import annotations

from sqlalchemy import BigInteger
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement


class seconds_between(FunctionElement):  # noqa: N801  (a SQL function, named like one)
    """Whole seconds from the second timestamp to the first, as an integer, on SQLite and PostgreSQL."""

    type = BigInteger()
    inherit_cache = True
    name = "seconds_between"


@compiles(seconds_between)
def _seconds_sqlite(element, compiler, **kw) -> str:
    # SQLAlchemy stores 'YYYY-MM-DD HH:MM:SS.ffffff'; strftime would round the fraction to milliseconds
    # (23:59:59.9999 becoming the next day's midnight), so the fraction is cut off first: whole seconds, floored.
    end, start = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"(CAST(strftime('%s', substr({end}, 1, 19)) AS INTEGER) - CAST(strftime('%s', substr({start}, 1, 19)) AS INTEGER))"


@compiles(seconds_between, "postgresql")
def _seconds_postgresql(element, compiler, **kw) -> str:
    end, start = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"CAST(FLOOR(EXTRACT(EPOCH FROM ({end} - {start}))) AS BIGINT)"
