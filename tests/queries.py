"""Counting the SQL a piece of code sends: the tests that hold a page or a pass to a constant number of
statements, whatever the number of rows, use this one helper."""
from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import event

from app import database
from app.extensions import db


@contextmanager
def counting():
    """Collect the text of every statement sent to the database inside the block (a list, filled as it runs)."""
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    database.read_listeners.append(statements.append)  # the statements sent around the engine
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
        database.read_listeners.remove(statements.append)
