"""Connections that survive a database restart, at one ping per request instead of one per checkout.

A pooled connection may be dead (the database restarted, a proxy dropped it). SQLAlchemy's
`pool_pre_ping` finds out by pinging at every checkout: a round trip before every transaction,
and on a member's page before the login-session check itself. Here a connection is pinged at its
first checkout in a request (a dead one is replaced and the pool renewed, as the pre-ping does),
not again in that request; and `read_one`, used by the login-session check, skips the
ping altogether: its query is the ping. On a disconnect it renews the pool and runs once more on a
fresh connection. A member's request that only checks the session is one round trip: no ping, no
BEGIN, no ROLLBACK (autocommit), and no ORM session is made (`extensions.RequestSession`: the member joins one when the request makes one).
On PostgreSQL `read_one` prepares its statement once on each connection and runs it through libpq
itself (`_exec_prepared`): psycopg's cursor around that one call was most of its app CPU.
Outside a request (CLI, settlement worker) every checkout is pinged, as before.

On PostgreSQL a transaction that only read ends with COMMIT instead of ROLLBACK (`keep_prepared`).
psycopg prepares a statement on the server once a connection has run it a few times, so PostgreSQL
plans it once, not at every request (planning was most of the server's time for a page's small
indexed lookups: 0.4 ms a statement against 0.15 prepared); but psycopg forgets every prepared
statement at each ROLLBACK, and every request ended with one, so nothing was ever prepared. A
transaction that wrote, or failed, is rolled back as before.
"""
from __future__ import annotations

import re
import weakref
from collections import namedtuple
from collections.abc import Callable
from contextvars import ContextVar
from typing import NamedTuple

from flask import has_request_context, request
from psycopg.adapt import PyFormat, Transformer
from psycopg.errors import error_from_result
from psycopg.pq import DiagnosticField, ExecStatus, TransactionStatus
from sqlalchemy import event, exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import Select

_skip_ping: ContextVar[bool] = ContextVar("skip_ping", default=False)
_VERIFIED = "verified_in_request"  # connection_record.info key: a weak reference to the request
_CURSOR = "read_cursor"  # connection_record.info key: read_one's cursor on that connection
_PREPARED = "read_prepared"  # connection_record.info key: (driver, its Transformer, the names prepared on it)


def _mark_verified(info: dict) -> None:
    if has_request_context():
        info[_VERIFIED] = weakref.ref(request._get_current_object())


def _verified(info: dict) -> bool:
    ref = info.get(_VERIFIED)
    return ref is not None and has_request_context() and ref() is request._get_current_object()


def engine_options(config: dict) -> None:
    """PostgreSQL's pool hands out the connection returned last (LIFO): a request's own transaction then
    gets the connection its login-session check just used and verified, not another to ping, and
    idle connections stay few, each with the statements it has prepared."""
    if config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_use_lifo": True, **config.get("SQLALCHEMY_ENGINE_OPTIONS", {})}


def init_engine(engine: Engine) -> None:
    """Ping a pooled connection at its first checkout in a request (replace it if dead).
    Replaces `pool_pre_ping`, which must be off."""
    dialect = engine.dialect

    def on_connect(_dbapi_connection, connection_record) -> None:
        connection_record.info["fresh"] = True  # just made: alive

    def on_checkout(dbapi_connection, connection_record, _proxy) -> None:
        fresh = connection_record.info.pop("fresh", False)
        if _skip_ping.get() or _verified(connection_record.info):
            return  # its own query will tell (read_one), or it answered in this request
        if fresh:
            _mark_verified(connection_record.info)
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                raise exc.InvalidatePoolError() from error  # the pool replaces it and renews the others
            raise
        _mark_verified(connection_record.info)

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "checkout", on_checkout)
    if dialect.name == "postgresql":
        keep_prepared(engine)


_WROTE = "wrote"  # connection_record.info key: this transaction ran something other than a SELECT


def keep_prepared(engine: Engine) -> None:
    """End a transaction that only read with COMMIT, which keeps psycopg's prepared statements, where
    ROLLBACK would drop them all (see the module's docstring). Anything but a plain SELECT (a write,
    a data-changing WITH, DDL) marks the transaction, which is then rolled back as before."""

    def note(conn: Connection, _cursor, statement: str, *_args) -> None:
        if _WROTE not in conn.info and statement.lstrip()[:6].upper() != "SELECT":
            conn.info[_WROTE] = True

    def before_rollback(conn: Connection) -> None:
        if conn.invalidated:  # a lost connection: nothing to keep
            return
        wrote = conn.info.pop(_WROTE, False)
        driver = conn.connection.driver_connection
        if not wrote and driver is not None and driver.info.transaction_status == TransactionStatus.INTRANS:
            driver.commit()  # read only: the same outcome; SQLAlchemy's ROLLBACK then finds nothing to end

    def after_commit(conn: Connection) -> None:
        conn.info.pop(_WROTE, None)

    event.listen(engine, "before_cursor_execute", note)
    event.listen(engine, "rollback", before_rollback)
    event.listen(engine, "commit", after_commit)


def read_all(engine: Engine, statement: Select, params: dict) -> list:
    """Every row of `statement`, as read_one reads one (named tuples: `row.state`)."""
    return _read(engine, statement, params, one=False)


def read_one(engine: Engine, statement: Select, params: dict) -> tuple | None:
    """The first row of `statement` (a SELECT of columns, built once, with bound parameters named by
    `bindparam` and given in `params`; constants, IN lists of constants included, are its own) in one
    round trip: on a pooled connection, in autocommit (no BEGIN, no ROLLBACK), without a ping — its
    query is the ping: on a disconnect the pool is renewed and it runs once more on a fresh
    connection. Straight through the driver, with the columns' own result types: it is every member's
    request (the login-session check), and SQLAlchemy's Connection around one prepared SELECT cost
    several times the query itself (0.4 ms of app CPU in a request, against 0.1). A page served from
    the cache reads all it needs this way (the campaigns' version, the viewer's row): no transaction.
    It reads what is committed, outside the request's own transaction: for reads that need nothing
    the request itself wrote."""
    return _read(engine, statement, params, one=True)


class _Statement(NamedTuple):
    """A read statement compiled for one dialect (see `_read`)."""
    sql: str  # in the driver's paramstyle
    positions: tuple | None  # the parameters' order, for a positional driver
    fixed: dict  # the statement's own constants, as parameters
    processors: tuple | None  # the columns' result processors (None when none converts)
    make_row: Callable
    name: bytes | None  # PostgreSQL: the name it is prepared under on a connection
    numbered: bytes | None  # PostgreSQL: its SQL with $1, $2… (libpq's placeholders)
    order: tuple  # PostgreSQL: the parameters' names in $-number order


def _compile(statement: Select, dialect) -> _Statement:
    compiled = statement.compile(dialect=dialect)
    given = {name for name, bind in compiled.binds.items() if bind.required}  # the caller's; the others are fixed
    # An IN list of constants is expanded once, into its own parameters, with the statement's other constants.
    expanded = compiled.construct_expanded_state(dict.fromkeys(given))
    fixed = {name: value for name, value in expanded.parameters.items() if name not in given}
    processors = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None)
                       for column in statement.selected_columns)
    if not any(processors):  # the driver's own values are the columns' (psycopg's mostly): nothing to convert
        processors = None
    row_type = namedtuple("Row", [column.key for column in statement.selected_columns], rename=True)
    name = numbered = None
    order: list[str] = []
    if dialect.driver == "psycopg":  # pyformat, %(name)s, with a literal % written %%
        def number(match: re.Match) -> str:
            if match.group(1) is None:
                return "%"
            if match.group(1) not in order:
                order.append(match.group(1))
            return f"${order.index(match.group(1)) + 1}"

        numbered = re.sub(r"%%|%\((\w+)\)s", number, expanded.statement).encode()
        name = f"threshold_read_{len(_compiled)}".encode()
    return _Statement(expanded.statement, expanded.positiontup, fixed, processors, row_type._make, name, numbered, tuple(order))


def _read(engine: Engine, statement: Select, params: dict, one: bool):
    dialect = engine.dialect
    key = (id(statement), dialect.name)
    if key not in _compiled:
        _compiled[key] = _compile(statement, dialect)
    compiled = _compiled[key]
    for listener in read_listeners:
        listener(compiled.sql)
    values = {**compiled.fixed, **params} if compiled.fixed else params
    token = _skip_ping.set(True)
    try:
        for attempt in (1, 2):
            pooled = engine.raw_connection()
            driver = pooled.driver_connection
            try:
                if compiled.name is not None and driver.pgconn.transaction_status == TransactionStatus.IDLE:
                    rows = _exec_prepared(pooled.info, driver, compiled, values, one)
                else:
                    rows = _execute(pooled.info, driver, compiled, values, one)
                _mark_verified(pooled.info)
                if one and not rows:
                    return None
                if compiled.processors is not None:
                    rows = [tuple(value if process is None else process(value)
                                  for process, value in zip(compiled.processors, row, strict=True)) for row in rows]
                rows = [compiled.make_row(row) for row in rows]
                return rows[0] if one else rows
            except dialect.loaded_dbapi.Error as error:
                if attempt == 2 or not dialect.is_disconnect(error, driver, None):
                    raise
                pooled.invalidate(error)
                engine.dispose()  # the others died with it (a restart): fresh connections from here on
            finally:
                pooled.close()
        raise AssertionError("unreachable")
    finally:
        _skip_ping.reset(token)


def _exec_prepared(info: dict, driver, compiled: _Statement, values: dict, one: bool) -> list:
    """psycopg: the statement prepared once on this connection (under its own name) and run through
    libpq itself, outside a transaction (an idle connection runs a lone statement in its own). Through
    psycopg's cursor (an autocommit switch either side, its statement cache, a generator waited on for
    each) the login-session check cost 72 µs of app CPU a read in a loop; this way 42, of which libpq's
    call is ~15 and the pool's checkout and return most of the rest. Every member's request pays it."""
    prepared = info.get(_PREPARED)
    if prepared is None or prepared[0] is not driver:  # a connection's own: made again if the driver was replaced
        prepared = info[_PREPARED] = (driver, Transformer.from_context(driver), set())
    _driver, transformer, names = prepared
    pgconn = driver.pgconn
    params = [values[name] for name in compiled.order]
    params = transformer.dump_sequence(params, [PyFormat.TEXT] * len(params))
    for attempt in (1, 2):
        if compiled.name not in names:
            _check(pgconn.prepare(compiled.name, compiled.numbered), ExecStatus.COMMAND_OK, driver)
            names.add(compiled.name)
        result = pgconn.exec_prepared(compiled.name, params)
        if attempt == 1 and result.error_field(DiagnosticField.SQLSTATE) == _NO_SUCH_STATEMENT:
            # Deallocated: psycopg sends DEALLOCATE ALL when it rolls back a transaction in which it
            # prepared statements of its own (a page that wrote, or failed). Prepared again.
            names.clear()
            continue
        break
    _check(result, ExecStatus.TUPLES_OK, driver)
    transformer.set_pgresult(result)
    return transformer.load_rows(0, min(result.ntuples, 1) if one else result.ntuples, tuple)


_NO_SUCH_STATEMENT = b"26000"  # invalid_sql_statement_name


def _check(result, status, driver) -> None:
    if result.status != status:
        raise error_from_result(result, driver.info.encoding)


def _execute(info: dict, driver, compiled: _Statement, values: dict, one: bool) -> list:
    """Through the driver's cursor, in autocommit: SQLite's, or a PostgreSQL connection that is not idle
    (a transaction left open on a pooled connection: not seen, but then not the place to prepare)."""
    if compiled.positions:
        values = [values[name] for name in compiled.positions]
    autocommit = getattr(driver, "autocommit", None)  # psycopg's; sqlite3 sends no BEGIN before a SELECT
    if autocommit is False:
        driver.autocommit = True
    try:
        cursor = info.get(_CURSOR)
        if cursor is None or cursor.connection is not driver:  # one per connection, kept: making it cost a fifth of a read
            cursor = info[_CURSOR] = driver.cursor()
        cursor.execute(compiled.sql, values)
        if one:
            row = cursor.fetchone()
            return [] if row is None else [row]
        return cursor.fetchall()
    finally:
        if autocommit is False and not driver.closed:
            driver.autocommit = False


#: Called with each statement read_one and read_all send (the tests' statement counts: it goes around the engine's events).
read_listeners: list = []
#: (statement, dialect) -> the statement compiled for it.
_compiled: dict[tuple, _Statement] = {}
