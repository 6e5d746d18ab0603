"""Shared fixtures: a fresh, fully migrated store per test on SQLite and PostgreSQL.

``db`` is parametrised over both backends. PostgreSQL runs when
``ASSAY_TEST_POSTGRES_URL`` points at a server (CI always sets it; see
``scripts/pg-start``) and is skipped otherwise. Each test gets its own
database: the migrations run once per test process into a template (a SQLite
file, a PostgreSQL template database) that is then copied, so tests are
isolated from each other and from other test processes on the same server.

The fixture also points ``ASSAY_HOME`` and ``ASSAY_DATABASE_URL`` at that
store, so CLI commands run in-process (``assay.cli.main([...])``) see it.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from _people import PEOPLE
from assay.config import Settings
from assay.store import Store, open_store, upgrade
from assay.store.db import make_engine

PG_ENV = "ASSAY_TEST_POSTGRES_URL"

# The tests read what the command line prints: one wide console whatever runs them (a
# terminal, a pipe, a pytest-xdist worker), set before any module builds its console.
os.environ["COLUMNS"] = "200"
_RUN = uuid.uuid4().hex[:10]


def _pg_admin_engine():
    url = make_url(os.environ[PG_ENV])
    return create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT",
                         pool_size=1, max_overflow=0)


class _Templates:
    """Migrated template databases, built once per test process."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.sqlite: Path | None = None
        self.pg: str | None = None
        self.pg_admin = None
        self.pg_strategy = ""

    def sqlite_copy(self, dest: Path) -> str:
        if self.sqlite is None:
            path = self.tmp / "template.db"
            engine = make_engine(f"sqlite:///{path}")
            upgrade(engine)
            with engine.connect() as conn:  # fold the WAL into the main file
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            engine.dispose()
            self.sqlite = path
        shutil.copyfile(self.sqlite, dest)
        return f"sqlite:///{dest}"

    def pg_copy(self) -> str:
        base = make_url(os.environ[PG_ENV])
        if self.pg_admin is None:
            self.pg_admin = _pg_admin_engine()
            with self.pg_admin.connect() as conn:
                version = int(conn.execute(text("SHOW server_version_num")).scalar_one())
            # copying files is about twice as fast as WAL-logging for a small template
            self.pg_strategy = " STRATEGY FILE_COPY" if version >= 150000 else ""
        if self.pg is None:
            name = f"assay_tmpl_{_RUN}"
            with self.pg_admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            engine = create_engine(base.set(database=name))
            upgrade(engine)
            engine.dispose()
            self.pg = name
        name = f"assay_t_{_RUN}_{uuid.uuid4().hex[:8]}"
        with self.pg_admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self.pg}"{self.pg_strategy}'))
        return base.set(database=name).render_as_string(hide_password=False)

    def pg_drop(self, url: str) -> None:
        name = make_url(url).database
        with self.pg_admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self) -> None:
        if self.pg_admin is not None:
            if self.pg is not None:
                with self.pg_admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{self.pg}" WITH (FORCE)'))
            self.pg_admin.dispose()


@pytest.fixture(scope="session")
def _db_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Templates]:
    templates = _Templates(tmp_path_factory.mktemp("db-templates"))
    yield templates
    templates.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
       _db_templates: _Templates) -> Iterator[Store]:
    """A fresh store at the current schema (``heads``), on SQLite and on PostgreSQL."""
    home = tmp_path / "assay-home"
    home.mkdir()
    if request.param == "postgresql":
        if not os.environ.get(PG_ENV):
            if os.environ.get("CI"):
                pytest.fail(f"{PG_ENV} is not set: CI must test against PostgreSQL")
            pytest.skip(f"{PG_ENV} is not set")
        url = _db_templates.pg_copy()
    else:
        url = _db_templates.sqlite_copy(home / "assay.db")
    monkeypatch.setenv("ASSAY_HOME", str(home))
    monkeypatch.setenv("ASSAY_DATABASE_URL", url)
    store = open_store(Settings(home=home, database_url=url))
    try:
        yield store
    finally:
        store.dispose()
        if request.param == "postgresql":
            _db_templates.pg_drop(url)


@pytest.fixture
def backend(db: Store) -> str:
    """``"sqlite"`` or ``"postgresql"``: the dialect of the ``db`` fixture."""
    return db.engine.dialect.name




@pytest.fixture
def people(db: Store) -> dict[str, str]:
    """Users holding one role each (``ada`` is the admin); returns role -> user name."""
    from assay.registry import add_user, get_user

    with db.transaction() as s:
        add_user(s, None, PEOPLE["admin"], display_name="Ada Admin", roles=["admin"])
    with db.transaction() as s:
        admin = get_user(s, PEOPLE["admin"])
        for role, name in PEOPLE.items():
            if role != "admin":
                add_user(s, admin, name, display_name=name.title(), roles=[role])
    return dict(PEOPLE)
