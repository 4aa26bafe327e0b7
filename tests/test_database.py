"""Pooled connections (app/database.py): a member's login-session check is one round trip to the
database, and a database restart (every pooled connection dead) costs nobody a 500."""
from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, event, exc, text
from sqlalchemy.pool import NullPool

from app.extensions import db
from tests.factories import login, make_campaign, make_user


class Wire:
    """What the app's connections send the database, one entry per round trip (PostgreSQL: libpq's
    own trace, so BEGIN, ROLLBACK and pings count, and a prepared statement's run is "prepared " and its Parse;
    SQLite: every statement it runs)."""

    def __init__(self) -> None:
        self._sqlite: list[str] = []
        self._traces: list = []

    def on_connect(self, dbapi_connection, _record) -> None:
        if db.engine.dialect.name == "postgresql":
            from psycopg import pq

            trace = tempfile.TemporaryFile("w+")
            dbapi_connection.pgconn.trace(trace.fileno())
            dbapi_connection.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
            self._traces.append((dbapi_connection, trace))
        else:
            dbapi_connection.set_trace_callback(self._sqlite.append)

    def trips(self) -> list[str]:
        trips = list(self._sqlite)
        for _connection, trace in self._traces:  # each round trip ends with the server's ReadyForQuery
            trace.seek(0)
            sent = ""
            prepared: dict[str, str] = {}  # a named statement's Parse, by its name
            for line in trace:
                fields = line.rstrip("\n").split("\t")
                if fields[0] == "F" and fields[2] in ("Query", "Parse"):
                    sent = fields[3]
                    if fields[2] == "Parse":
                        prepared[sent.split()[0]] = sent
                elif fields[0] == "F" and fields[2] == "Bind":
                    statement = " ".join(fields[3:]).split()[1]  # after the portal's name
                    if statement != '""':  # a statement prepared before: no Parse
                        sent = f"prepared {prepared.get(statement, statement)}"
                elif fields[0] == "B" and fields[2] == "ReadyForQuery":
                    trips.append(sent)
        return trips

    def close(self) -> None:
        for connection, trace in self._traces:
            if not connection.closed:
                connection.pgconn.untrace()
            trace.close()


@contextmanager
def round_trips(app) -> Iterator[Wire]:
    """Trace every connection the app makes inside the block (the pool starts empty)."""
    wire = Wire()
    with app.app_context():
        engine = db.engine
        engine.dispose()
        event.listen(engine, "connect", wire.on_connect)
    try:
        yield wire
    finally:
        with app.app_context():
            event.remove(engine, "connect", wire.on_connect)
            engine.dispose()
        wire.close()


@pytest.fixture
def bench_app(make_app):
    return make_app(BENCH_CEILING=True)


def _trips_of_one_request(app, client, path: str) -> list[str]:
    with round_trips(app) as wire:
        assert client.get(path).status_code == 200  # makes the pooled connection
        before = len(wire.trips())
        assert client.get(path).status_code == 200
        return wire.trips()[before:]


def test_a_members_session_check_is_one_round_trip(app, bench_app):
    """A page that asks nothing else of the database costs a member one round trip: the session
    check, with no pool ping, no BEGIN and no ROLLBACK around it."""
    make_user("ada@example.com", name="Ada")
    member = bench_app.test_client()
    login(member, "ada@example.com")
    trips = _trips_of_one_request(bench_app, member, "/_bench/ceiling")
    assert len(trips) == 1, trips
    assert "SELECT users.id, users.email" in trips[0], trips  # (the trace cuts long statements)
    if db.engine.dialect.name == "postgresql":  # prepared at the connection's first request, run by name since
        assert trips[0].startswith("prepared "), trips
    # A visitor's bare page asks the database nothing at all.
    assert _trips_of_one_request(bench_app, bench_app.test_client(), "/_bench/ceiling") == []


def test_a_revoked_session_is_refused_at_the_next_request(app, bench_app):
    """No cache between the cookie and the database: revoking a session (logout elsewhere, a
    password change) ends it at the very next request of every browser."""
    from app.accounts import services
    from app.accounts.models import User

    make_user("ada@example.com", name="Ada")
    member, elsewhere = bench_app.test_client(), bench_app.test_client()
    login(member, "ada@example.com")
    login(elsewhere, "ada@example.com")
    assert "Ada" in member.get("/").get_data(as_text=True) and "Ada" in elsewhere.get("/").get_data(as_text=True)
    services._revoke_all(db.session.scalar(db.select(User).filter_by(email="ada@example.com")))
    db.session.commit()
    assert "Ada" not in member.get("/").get_data(as_text=True)
    assert "Ada" not in elsewhere.get("/").get_data(as_text=True)


def _restart_database() -> None:
    """What a restart does to our pool: every connection to the database is closed by the server."""
    other = create_engine(db.engine.url, poolclass=NullPool)
    with other.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
        conn.commit()
    other.dispose()


def test_no_500_after_a_database_restart(app, make_app):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("a database server restart needs a database server (run with DATABASE_URL=postgresql…)")
    own = make_app(BENCH_CEILING=True)
    creator = make_user("creator@example.com")
    slug = make_campaign(creator, "live", title="Restart Lantern").slug
    make_user("ada@example.com", name="Ada")
    member, visitor = own.test_client(), own.test_client()
    login(member, "ada@example.com")
    assert member.get("/").status_code == 200 and visitor.get("/").status_code == 200
    db.session.remove()

    _restart_database()  # a member's bare page: the session check alone finds the dead connection
    assert member.get("/_bench/ceiling").status_code == 200
    _restart_database()  # a member's page: the same, then the page's own queries
    page = member.get(f"/campaigns/{slug}")
    assert page.status_code == 200 and "Ada" in page.get_data(as_text=True)

    _restart_database()  # a visitor's request: the first checkout's ping finds it
    assert visitor.get(f"/campaigns/{slug}").status_code == 200
    assert visitor.get("/").status_code == 200


def _postgres_only() -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("psycopg's prepared statements (run with DATABASE_URL=postgresql…)")


def test_a_page_that_only_reads_ends_with_commit_and_keeps_prepared_statements(app, make_app):
    """psycopg forgets its prepared statements at every ROLLBACK: a request that only read ends with
    COMMIT, so the page's statements are prepared once and PostgreSQL stops planning them each time."""
    _postgres_only()
    own = make_app(PUBLIC_PAGE_CACHE_SECONDS=0)
    slug = make_campaign(make_user("creator@example.com"), "live", title="Prepared Lantern").slug
    make_user("ada@example.com", name="Ada")
    member = own.test_client()
    login(member, "ada@example.com")
    db.session.remove()
    with round_trips(own) as wire:
        for _ in range(8):  # psycopg prepares a statement at its fifth run on a connection
            assert member.get(f"/campaigns/{slug}").status_code == 200
        trips = wire.trips()
        with own.app_context():
            prepared = db.session.scalars(text("SELECT statement FROM pg_prepared_statements")).all()
            db.session.rollback()
    assert '"COMMIT"' in map(str.strip, trips) and not any("ROLLBACK" in trip for trip in trips), trips
    assert any("FROM campaigns" in statement for statement in prepared), (prepared, trips)
    ends = [n for n, trip in enumerate(trips) if trip.strip() == '"COMMIT"']
    last_page = trips[ends[-2] + 1:ends[-1] + 1]
    # The session check, then the page's transaction on the same connection (no ping), its statements prepared.
    assert "BEGIN" in last_page[1] and not any(trip.strip() == '";"' for trip in last_page), last_page
    assert sum(trip.startswith("prepared ") for trip in last_page) >= 3, last_page


def test_a_transaction_that_wrote_or_failed_is_still_rolled_back(app):
    """Only a plain SELECT counts as reading: a write, a data-changing WITH and a failed statement end
    in ROLLBACK as before, and nothing of them stays."""
    _postgres_only()
    make_user("ada@example.com", name="Ada")

    def names() -> list[str]:
        found = db.session.scalars(text("SELECT display_name FROM users ORDER BY id")).all()
        db.session.rollback()
        return found

    db.session.execute(text("SELECT count(*) FROM users"))
    db.session.execute(text("UPDATE users SET display_name = 'Written' WHERE email = 'ada@example.com'"))
    db.session.execute(text("SELECT count(*) FROM users"))
    db.session.rollback()
    before = names()
    assert before == ["Ada"]
    db.session.execute(text("WITH changed AS (UPDATE users SET display_name = 'By WITH' RETURNING id) SELECT count(*) FROM changed"))
    db.session.rollback()
    assert names() == before
    with pytest.raises(exc.ProgrammingError):  # PostgreSQL: the column does not exist
        db.session.execute(text("SELECT no_such_column FROM users"))
    db.session.rollback()
    assert names() == before  # and the connection still serves


def test_the_session_check_is_prepared_again_after_psycopg_deallocates_every_statement(app, bench_app):
    """psycopg sends DEALLOCATE ALL when it rolls back a transaction in which it prepared statements of
    its own (a page that wrote, or failed): the login-session check, prepared on the same connection,
    is then prepared again, and the member's next request does not fail."""
    _postgres_only()
    make_user("ada@example.com", name="Ada")
    member = bench_app.test_client()
    login(member, "ada@example.com")
    db.session.remove()
    with round_trips(bench_app) as wire:
        assert member.get("/_bench/ceiling").status_code == 200  # the check prepared on the pool's one connection
        with bench_app.app_context():
            for _ in range(6):  # psycopg prepares a statement at its fifth run on a connection
                db.session.execute(text("SELECT count(*) FROM users"))
            db.session.execute(text("UPDATE users SET display_name = 'Written'"))
            db.session.rollback()  # ROLLBACK, then psycopg's DEALLOCATE ALL
            prepared = db.session.scalars(text("SELECT name FROM pg_prepared_statements")).all()
            db.session.rollback()
            assert db.engine.pool.checkedin() == 1
        assert prepared == [], prepared
        before = len(wire.trips())
        assert "Ada" in member.get("/").get_data(as_text=True)
        trips = wire.trips()[before:]
    session_check = ["run" if trip.startswith("prepared ") else "prepare" for trip in trips if "SELECT users.id" in trip]
    assert session_check == ["run", "prepare", "run"], trips  # refused (deallocated), prepared again, run
