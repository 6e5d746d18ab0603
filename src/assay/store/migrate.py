"""Schema migrations: the Alembic scripts shipped in ``assay/store/migrations``.

:func:`upgrade` applies them without any ``alembic.ini``.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


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
