"""Killing the server (SIGKILL) in the middle of a sign-off leaves no half-written
record, and the audit chain still verifies.

On PostgreSQL the test holds the audit chain's advisory lock, so the server's
sign-off is caught after it wrote the sign-off rows and while it waits to append
the audit event: the kill lands mid-transaction for certain. On SQLite the
server is killed while a burst of sign-offs is in flight. Either way every
sign-off row must have its audit event (and the other way round), stages must
be consistent, and the chain must verify.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import pytest
from argon2 import PasswordHasher, profiles
from sqlalchemy import create_engine, func, select, text

from assay.api.process import start_server
from assay.api.sample import populate
from assay.auth import service as auth
from assay.evidence import store_bytes
from assay.registry import get_user
from assay.store.audit import AuditEvent, verify_chain
from assay.workflow.tables import SignOff, StageState

DOC: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _fast_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    import assay.auth.secrets as sec

    monkeypatch.setattr(sec, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))


def _prepare(db, submissions: int) -> tuple[list[str], str]:
    sample = populate(db, password="unused password 1", models=1, submissions=submissions,
                      reports=False)
    with db.transaction() as s:
        token = auth.create_token(s, get_user(s, "admin"), "bob", "kill test")[1]
    DOC["scope.txt"] = store_bytes(db.settings, b"Scope of the model, agreed.\n")
    waiting = [m for m, _v in sample.submitted if m != "credit-scoring"]
    return waiting, token


def _consistent(db) -> None:
    with db.transaction() as s:
        signoffs = s.scalar(select(func.count()).select_from(SignOff))
        events = s.scalar(select(func.count()).select_from(AuditEvent)
                          .where(AuditEvent.action == "workflow.approve"))
        assert signoffs == events, (signoffs, events)
        for st in s.scalars(select(StageState).where(StageState.stage == "scope")):
            signed = s.scalar(select(func.count()).select_from(SignOff).where(
                SignOff.submission_id == st.submission_id, SignOff.stage == "scope"))
            assert (st.status == "approved") == (signed == 1), (st.submission_id, st.status)
        result = verify_chain(s)
        assert result.ok, result.reason


def _approve(base: str, token: str, model: str) -> int:
    try:
        return httpx.post(f"{base}/api/models/{model}/versions/1.0/stages/scope/approve",
                          json={"documents": DOC},
                          headers={"Authorization": f"Bearer {token}"}, timeout=30).status_code
    except httpx.HTTPError:
        return -1


def _env(db) -> dict[str, str]:
    return {"ASSAY_HOME": str(db.settings.home), "ASSAY_DATABASE_URL": db.settings.database_url}


def test_kill_during_sign_off_bursts_leaves_consistent_records(db) -> None:
    waiting, token = _prepare(db, submissions=8)
    done: list[int] = []
    for round_ in range(2):
        proc, base = start_server(_env(db))
        batch = waiting[round_ * 4:(round_ + 1) * 4]
        threads = [threading.Thread(target=lambda m=m, b=base: done.append(_approve(b, token, m)))
                   for m in batch]
        for t in threads:
            t.start()
        time.sleep(0.05 * (round_ + 1))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        for t in threads:
            t.join(30)
        proc.stdout.close()
        _consistent(db)
    # Each request either finished (201) or lost its connection to the kill (-1).
    assert done and set(done) <= {201, -1}, done
    _consistent(db)


@pytest.mark.postgres
def test_kill_while_the_sign_off_transaction_is_open(db, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("the advisory lock that holds the transaction open is PostgreSQL's")
    from assay.store.audit import _PG_LOCK_KEY

    waiting, token = _prepare(db, submissions=1)
    model = waiting[0]
    proc, base = start_server(_env(db))
    # Warm the server up (imports, policy loading) so that only the lock delays it.
    warm = httpx.get(f"{base}/api/models/{model}/versions/1.0/review",
                     headers={"Authorization": f"Bearer {token}"}, timeout=60)
    assert warm.status_code == 200, warm.text
    blocker = create_engine(db.settings.database_url)
    conn = blocker.connect()
    before = conn.execute(text("SELECT count(*) FROM wf_signoffs")).scalar()
    conn.commit()
    tx = conn.begin()
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    result: list[int] = []
    t = threading.Thread(target=lambda: result.append(_approve(base, token, model)))
    t.start()
    # Wait until the server's transaction has written the sign-off and waits for the lock.
    deadline = time.monotonic() + 60
    waiting_pid = None
    while time.monotonic() < deadline and waiting_pid is None:
        conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        waiting_pid = conn.execute(text(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND state = 'active' AND pid <> pg_backend_pid()")).scalar()
        time.sleep(0.05)
    assert waiting_pid is not None, f"the sign-off never reached the audit append: {result}"
    uncommitted = conn.execute(text("SELECT count(*) FROM wf_signoffs")).scalar()
    assert uncommitted == before  # its writes are not visible: the transaction is open
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    proc.stdout.close()
    t.join(30)
    assert result == [-1]  # the client saw the connection drop, not an answer
    tx.rollback()
    conn.close()
    blocker.dispose()
    _consistent(db)
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(SignOff)) == before
    # Retrying the sign-off after the restart succeeds once.
    proc, base = start_server(_env(db))
    try:
        assert _approve(base, token, model) == 201
        assert _approve(base, token, model) == 409
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        proc.stdout.close()
    _consistent(db)
