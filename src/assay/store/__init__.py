"""The store: one database (SQLite under ``ASSAY_HOME`` or PostgreSQL) plus evidence files.

>>> store = open_store()                  # ./.assay/assay.db, created on first use
>>> with store.transaction() as session:  # commit on success, roll back on error
...     ...

Schema changes are Alembic migrations shipped inside the package
(``assay/store/migrations``); :func:`upgrade` applies them to ``heads``
without any ``alembic.ini``. :func:`open_store` upgrades an empty SQLite file
by itself; any other database that is behind must be upgraded explicitly
with ``assay db upgrade`` (so a shared server is never migrated by surprise).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, inspect
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from assay.config import Settings, load_settings
from assay.errors import AssayError
from assay.store.db import make_engine, session_factory, transaction

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

__all__ = ["MIGRATIONS_DIR", "Store", "StoreError", "current_revisions", "head_revisions",
           "open_store", "upgrade"]


class StoreError(AssayError):
    """The store cannot be opened or is not at the schema this assay expects."""

    code = "store_error"


def _alembic_config(connection=None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revisions() -> set[str]:
    """The revisions a fully upgraded database is at (one per migration branch)."""
    from alembic.script import ScriptDirectory

    return set(ScriptDirectory.from_config(_alembic_config()).get_heads())


def current_revisions(engine: Engine) -> set[str]:
    """The revisions the database is at (empty for a new database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def upgrade(engine: Engine, target: str = "heads") -> set[str]:
    """Apply migrations up to ``target`` in one transaction; return the new revisions."""
    from alembic import command

    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), target)
    return current_revisions(engine)


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


@dataclass
class Store:
    """An open store: engine, session factory and the settings it came from."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session] = field(repr=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any exception."""
        with transaction(self.sessions) as session:
            yield session

    @property
    def url(self) -> str:
        """The database URL without its password, for messages."""
        return _redact(self.settings.database_url)

    def dispose(self) -> None:
        self.engine.dispose()


def open_store(settings: Settings | None = None, *, auto_upgrade: bool | None = None,
               check: bool = True) -> Store:
    """Open the store described by ``settings`` (default: from the environment).

    A new or empty SQLite database is created and upgraded automatically
    (``auto_upgrade=None`` means: only for SQLite). With ``check``, a database
    that is not at the current schema raises :class:`StoreError` naming the
    command that fixes it.
    """
    settings = settings or load_settings()
    url = settings.database_url
    is_sqlite = url.startswith("sqlite")
    if is_sqlite:
        settings.home.mkdir(parents=True, exist_ok=True)
        db_path = url.split("///", 1)[-1] if "///" in url else ""
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    try:
        current = current_revisions(engine)
        wants_upgrade = auto_upgrade or (auto_upgrade is None and is_sqlite)
        if not current and wants_upgrade and not inspect(engine).get_table_names():
            current = upgrade(engine)
        if check:
            heads = head_revisions()
            if current != heads:
                missing = ", ".join(sorted(heads - current)) or "none"
                raise StoreError(
                    f"database {_redact(url)} is at schema {sorted(current) or 'empty'}, "
                    f"expected {sorted(heads)} (missing {missing}): run `assay db upgrade`")
    except OperationalError as exc:
        engine.dispose()
        first = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise StoreError(f"cannot open database {_redact(url)}: {first}") from None
    except BaseException:
        engine.dispose()
        raise
    sessions = session_factory(engine)
    sessions.kw["info"] = {"settings": settings}  # evidence goes under this store's home
    return Store(settings=settings, engine=engine, sessions=sessions)
