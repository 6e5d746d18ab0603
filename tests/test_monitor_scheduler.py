"""The service's scheduled monitoring: one runner at a time across processes, the
scheduler's own actor in the audit trail, and a real server that evaluates a closed
window by itself. SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from _monitor_api import certify_version, day, ingest_days, setup_version
from assay import registry as reg
from assay.api.process import start_server, stop_server
from assay.api.scheduler import JobRecord, PeriodicJob, run_job, service_jobs
from assay.config import Settings, load_settings
from assay.errors import AssayError, InputError
from assay.monitor.schedule import run_due
from assay.store import Store, open_store
from assay.store.audit import AuditEvent, verify_chain
from assay.store.lease import exclusive


def _events(db: Store, action: str) -> list[tuple[str, str]]:
    with db.transaction() as s:
        return [(e.actor, e.payload.get("window_start", "")) for e in s.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq))]


def _monitored(db: Store, folder: Path) -> None:
    """pd@1 certified, three days ingested (day 1 drifted); pd2@1 monitored without a plan."""
    setup_version(db, folder)
    certify_version(db, folder)
    ingest_days(db, {0: day(0), 1: day(1, shift=2.5), 2: day(2)})
    with db.transaction() as s:
        dana = reg.get_user(s, "dana")
        mv = reg.get_version(s, "pd", "1")
        reg.register_model(s, dana, "pd2", owner="bo", decision_type="automated",
                           criticality="low")
        reg.add_version(s, dana, "pd2", "1", training_data_source=mv.training_data_source,
                        training_data_digest=mv.training_data_digest)
    from assay.monitor import ingest

    with db.transaction() as s:
        ingest(s, reg.get_user(s, "dana"), "pd2", "1", day(0).drop(columns="y"),
               time_column="ts", score="p")


def test_the_lease_has_one_holder_at_a_time(db: Store) -> None:
    other = open_store(db.settings)
    try:
        with exclusive(db, "job:test") as first:
            assert first
            with exclusive(other, "job:test") as second:
                assert not second
            with exclusive(other, "job:another") as third:
                assert third
        with exclusive(other, "job:test") as again:
            assert again
        with pytest.raises(RuntimeError), exclusive(db, "job:test"):
            raise RuntimeError("a failing job")
        with exclusive(other, "job:test") as after_failure:  # released all the same
            assert after_failure
    finally:
        other.dispose()


def test_a_killed_holder_leaves_the_lease_free(db: Store, tmp_path: Path) -> None:
    """The holder's process is killed mid-run: the lease is free again, with no expiry to
    wait for (PostgreSQL drops the dead connection's lock, the kernel the dead process's
    flock)."""
    import os
    import signal
    import subprocess
    import sys

    ready = tmp_path / "held"
    code = ("import sys, time\n"
            "from pathlib import Path\n"
            "from assay.config import Settings\n"
            "from assay.store import open_store\n"
            "from assay.store.lease import exclusive\n"
            "store = open_store(Settings(home=Path(sys.argv[1]), database_url=sys.argv[2]))\n"
            "with exclusive(store, 'job:monitor.run') as held:\n"
            "    assert held\n"
            "    Path(sys.argv[3]).write_text('yes')\n"
            "    time.sleep(120)\n")
    child = subprocess.Popen([sys.executable, "-c", code, str(db.settings.home),
                              db.settings.database_url, str(ready)])
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and time.monotonic() < deadline:
            assert child.poll() is None, "the holder exited early"
            time.sleep(0.05)
        with exclusive(db, "job:monitor.run") as held:
            assert not held
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
        deadline = time.monotonic() + 30
        while True:  # the server notices the closed connection within moments
            with exclusive(db, "job:monitor.run") as held:
                if held or time.monotonic() > deadline:
                    break
            time.sleep(0.1)
        assert held
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)


def test_two_runners_at_once_one_evaluates_the_other_skips(db: Store, people: dict,
                                                           tmp_path: Path) -> None:
    _monitored(db, tmp_path)
    stores = [open_store(db.settings), open_store(db.settings)]
    release = threading.Event()

    def evaluate_then_hold(store):
        result = run_due(store)
        release.wait(30)  # hold the lease until the other runner has had its turn
        return result

    job = PeriodicJob("monitor.run", 60, evaluate_then_hold)
    records = [JobRecord(), JobRecord()]
    start = threading.Barrier(2)

    def turn(i: int) -> None:
        start.wait()
        run_job(stores[i], job, records[i])

    threads = [threading.Thread(target=turn, args=(i,)) for i in range(2)]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while not any(r.outcome == "skipped" for r in records) and time.monotonic() < deadline:
            time.sleep(0.05)
        release.set()
        for t in threads:
            t.join(60)
    finally:
        release.set()
        for s in stores:
            s.dispose()
    assert sorted(r.outcome for r in records) == ["ran", "skipped"], records
    ran = next(r for r in records if r.outcome == "ran").result
    assert [v.windows_evaluated for v in ran.versions] == [
        ["2026-03-02", "2026-03-03", "2026-03-04"]]
    assert [(a["rule"], a["label"]) for a in ran.alerts] == [("drift.feature", "x")]
    # the version without a plan is reported, and did not stop the other one
    assert [(e["model"], e["version"]) for e in ran.errors] == [("pd2", "1")]
    assert "has no certification" in ran.errors[0]["error"]
    evaluated = _events(db, "monitor.evaluate")
    assert evaluated == [("assay-scheduler", "2026-03-02"), ("assay-scheduler", "2026-03-03"),
                         ("assay-scheduler", "2026-03-04")]
    assert [a for a, _ in _events(db, "monitor.alert")] == ["assay-scheduler"]
    # the next turn finds nothing new to evaluate
    again = run_job(db, PeriodicJob("monitor.run", 60, run_due))
    assert again.outcome == "ran" and again.result.alerts == []
    assert all(v.windows_evaluated == [] for v in again.result.versions)
    with db.transaction() as s:
        assert verify_chain(s).ok


def test_a_failing_job_is_recorded_and_the_next_turn_runs(db: Store) -> None:
    calls = []

    def flaky(store):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the feed is down")
        return "fine"

    job = PeriodicJob("flaky", 60, flaky)
    record = run_job(db, job)
    assert record.outcome == "failed" and "the feed is down" in record.error
    assert run_job(db, job, record).outcome == "ran" and record.result == "fine"
    assert record.turns == 2


def test_the_scheduler_is_no_user(db: Store, people: dict) -> None:
    from assay.auth import service as auth

    for name in ("assay-scheduler", "assay-dispatcher"):
        with db.transaction() as s, pytest.raises(InputError, match="reserved"):
            reg.add_user(s, reg.get_user(s, "ada"), name, roles=["validator"])
    with db.transaction() as s:
        assert auth.authenticate_password(s, "assay-scheduler", "any password at all",
                                          client="t") is None
    with db.transaction() as s, pytest.raises(AssayError):
        auth.create_token(s, reg.get_user(s, "ada"), "assay-scheduler", "cron")


def test_settings_turn_the_schedule_on_and_guard_their_values(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("ASSAY_MONITOR_INTERVAL", raising=False)
    monkeypatch.delenv("ASSAY_METRICS_TOKEN", raising=False)
    monkeypatch.delenv("ASSAY_NOTIFY_INTERVAL", raising=False)
    monkeypatch.setenv("ASSAY_ESCALATION_INTERVAL", "0")  # tests/test_incidents.py tests it
    assert load_settings(tmp_path).monitor_interval == 300
    assert load_settings(tmp_path).notify_interval == 30
    assert [j.name for j in service_jobs(load_settings(tmp_path))] == ["monitor.run",
                                                                       "notify.dispatch"]
    assert service_jobs(Settings(home=tmp_path, database_url="sqlite://")) == []
    monkeypatch.setenv("ASSAY_MONITOR_INTERVAL", "0")
    assert [j.name for j in service_jobs(load_settings(tmp_path))] == ["notify.dispatch"]
    monkeypatch.setenv("ASSAY_NOTIFY_INTERVAL", "0")
    assert service_jobs(load_settings(tmp_path)) == []
    monkeypatch.setenv("ASSAY_NOTIFY_INTERVAL", "soon")
    with pytest.raises(InputError, match="ASSAY_NOTIFY_INTERVAL: expected a number"):
        load_settings(tmp_path)
    monkeypatch.setenv("ASSAY_NOTIFY_INTERVAL", "30")
    for bad in ("soon", "-5", "nan"):
        monkeypatch.setenv("ASSAY_MONITOR_INTERVAL", bad)
        with pytest.raises(InputError, match="ASSAY_MONITOR_INTERVAL: expected a number"):
            load_settings(tmp_path)
    monkeypatch.setenv("ASSAY_MONITOR_INTERVAL", "2.5")
    monkeypatch.setenv("ASSAY_METRICS_TOKEN", "short")
    with pytest.raises(InputError, match="at least 16 characters"):
        load_settings(tmp_path)
    monkeypatch.setenv("ASSAY_METRICS_TOKEN", "a-long-enough-random-secret")
    settings = load_settings(tmp_path)
    assert settings.monitor_interval == 2.5 and "random-secret" not in repr(settings)


def test_a_served_app_with_two_workers_evaluates_closed_windows_by_itself(
        db: Store, people: dict, tmp_path: Path) -> None:
    _monitored(db, tmp_path)
    env = {"ASSAY_HOME": str(db.settings.home), "ASSAY_DATABASE_URL": db.settings.database_url,
           "ASSAY_MONITOR_INTERVAL": "0.5"}
    proc, _base = start_server(env, workers=2)
    try:
        deadline = time.monotonic() + 60
        while len(_events(db, "monitor.evaluate")) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)  # several more turns of both workers: nothing is evaluated twice
    finally:
        stop_server(proc)
    assert _events(db, "monitor.evaluate") == [
        ("assay-scheduler", "2026-03-02"), ("assay-scheduler", "2026-03-03"),
        ("assay-scheduler", "2026-03-04")]
    assert [a for a, _ in _events(db, "monitor.alert")] == ["assay-scheduler"]
