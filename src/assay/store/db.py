"""Database engine, sessions and the declarative base shared by every table.

Domain packages define their tables on :class:`Base` in their own
``tables.py``; Alembic migrations under ``assay/store/migrations`` create
them. Domain functions receive a ``Session`` and never commit: the caller
(CLI command, REST route) owns the transaction through :func:`transaction`,
so an operation is written whole or not at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _nul_at(params: object) -> str | int | None:
    """The key (or position) of the first text parameter holding a NUL character."""
    if isinstance(params, dict):
        for key, value in params.items():
            if isinstance(value, str) and "\x00" in value:
                return str(key)
        return None
    if isinstance(params, (list, tuple)):
        for i, value in enumerate(params):
            if isinstance(value, str) and "\x00" in value:
                return i
            if isinstance(value, (dict, list, tuple)):
                found = _nul_at(value)
                if found is not None:
                    return found
    return None


def _refuse_nul_text(conn, cursor, statement, parameters, context, executemany) -> None:
    """No text holding a NUL character reaches the database, on either backend.

    PostgreSQL cannot store one (psycopg fails mid-transaction); SQLite would keep
    it and hand C strings a truncated value. Whatever face the text came through
    (a YAML file of the CLI, a results.json, a request the service's own check did
    not see), it is refused here as bad input, naming the column, and the caller's
    transaction rolls back whole."""
    bad = _nul_at(parameters)
    if bad is None:
        return
    from assay.errors import InputError

    if isinstance(bad, int):
        names = getattr(getattr(context, "compiled", None), "positiontup", None) or ()
        bad = names[bad] if bad < len(names) else "a value"
    stem, _, tail = bad.rpartition("_")
    column = stem if stem and tail.isdigit() else bad
    raise InputError(f"{column}: text may not contain the NUL character (\\x00)")


def make_engine(url: str) -> Engine:
    engine = _make_engine(url)
    event.listen(engine, "before_cursor_execute", _refuse_nul_text)
    return engine


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (what every timestamp column stores)."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime.

    SQLite hands timestamps back without a timezone; assay only ever writes
    UTC, so a naive value read from the store is UTC.
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
