"""The store: opening, migrations, transactions, both backends."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text

from assay.config import Settings
from assay.store import Store, StoreError, current_revisions, head_revisions, open_store


def test_db_fixture_is_at_heads(db: Store) -> None:
    assert current_revisions(db.engine) == head_revisions()
    assert "0001_core" in {r for r in _all_revisions()}
    tables = set(inspect(db.engine).get_table_names())
    assert {"users", "user_roles", "models", "model_versions", "certifications",
            "audit_events"} <= tables


def _all_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    from assay.store.migrate import _alembic_config

    return {s.revision for s in ScriptDirectory.from_config(_alembic_config()).walk_revisions()}


def test_every_branch_starts_at_core() -> None:
    from alembic.script import ScriptDirectory

    from assay.store.migrate import _alembic_config

    script = ScriptDirectory.from_config(_alembic_config())
    assert script.get_bases() == ["0001_core"]


def test_open_store_creates_an_empty_sqlite_file(tmp_path) -> None:
    home = tmp_path / "home"
    store = open_store(Settings(home=home, database_url=f"sqlite:///{home / 'assay.db'}"))
    try:
        assert (home / "assay.db").exists()
        assert current_revisions(store.engine) == head_revisions()
    finally:
        store.dispose()


def test_open_store_refuses_a_database_behind_the_schema(tmp_path) -> None:
    from assay.store import upgrade
    from assay.store.db import make_engine

    path = tmp_path / "old.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine, "0001_core")
    engine.dispose()
    with pytest.raises(StoreError, match="assay db upgrade"):
        open_store(Settings(home=tmp_path, database_url=f"sqlite:///{path}"))


def test_open_store_reports_an_unreachable_server(tmp_path) -> None:
    url = "postgresql+psycopg://nobody:secret@127.0.0.1:1/none"
    with pytest.raises(StoreError, match="cannot open database") as info:
        open_store(Settings(home=tmp_path, database_url=url))
    assert "secret" not in str(info.value)


def test_transaction_rolls_back_on_error(db: Store) -> None:
    with pytest.raises(RuntimeError), db.transaction() as s:
        s.execute(text("INSERT INTO users (username, display_name, active, created_at) "
                       "VALUES ('ghost', '', true, CURRENT_TIMESTAMP)"))
        raise RuntimeError("crash in the middle")
    with db.transaction() as s:
        assert s.execute(text("SELECT count(*) FROM users")).scalar_one() == 0


def test_core_migration_downgrades_cleanly(tmp_path) -> None:
    from alembic import command

    from assay.store import upgrade
    from assay.store.db import make_engine
    from assay.store.migrate import _alembic_config

    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        assert upgrade(engine, "0001_core") == {"0001_core"}
        with engine.begin() as conn:
            command.downgrade(_alembic_config(conn), "base")
        assert current_revisions(engine) == set()
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()


def test_simultaneous_registrations_of_one_model_conflict_cleanly(db: Store, people) -> None:
    import threading

    from assay.errors import ConflictError
    from assay.registry import get_user, register_model
    from assay.store.audit import verify_chain

    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def attempt(who: str) -> None:
        try:
            with db.transaction() as s:
                actor = get_user(s, who)
                barrier.wait()
                register_model(s, actor, "twin", owner="bo", decision_type="automated",
                               criticality="low", purpose=f"by {who}")
            outcomes.append("ok")
        except ConflictError:
            outcomes.append("conflict")
        except BaseException as exc:  # pragma: no cover - shown by the assertion
            outcomes.append(repr(exc))

    threads = [threading.Thread(target=attempt, args=(w,)) for w in ("dana", "bo")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict", "ok"]
    with db.transaction() as s:
        assert s.execute(text("SELECT count(*) FROM models")).scalar_one() == 1
        assert s.execute(text("SELECT count(*) FROM audit_events "
                              "WHERE action = 'model.register'")).scalar_one() == 1
        assert verify_chain(s).ok


CORE_TABLES = {"users", "user_roles", "models", "model_versions", "certifications",
               "registered_policies", "audit_events"}


def test_core_tables_match_the_migration(db: Store) -> None:
    from _schema import schema_diffs
    from assay.registry.tables import User
    from assay.store.audit import AuditEvent
    from assay.store.db import Base

    assert {User.__table__, AuditEvent.__table__} <= set(Base.metadata.tables.values())
    assert schema_diffs(db.engine, CORE_TABLES) == []
