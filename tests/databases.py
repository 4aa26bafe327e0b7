"""Fresh PostgreSQL databases for the test suite, the browser tests and the benchmarks.

Each run gets a database of its own on the server DATABASE_URL names (created through the server's
`postgres` database, dropped at the end), so runs never see each other's rows.
"""
from __future__ import annotations

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def psycopg_url(url: str) -> str:
    """`postgres://` and `postgresql://` as SQLAlchemy's psycopg 3 driver spells them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _admin(url: str, statements: list[str]) -> None:
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        admin.dispose()


def create_fresh(base: str, name: str) -> str:
    """Create (or re-create) the empty database `name` on `base`'s server; return its URL."""
    base = psycopg_url(base)
    _admin(base, [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'])
    return make_url(base).set(database=name).render_as_string(hide_password=False)


def drop(url: str) -> None:
    """Drop the database `url` names (its open connections closed first)."""
    _admin(url, [f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'])
