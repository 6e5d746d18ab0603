"""Monitoring on real data: daily windows of the Taiwan credit data set.

The first 10,000 rows (shuffled) are the training data registered with the
version; later rows arrive in daily batches of 2,500 with the scores of a
logistic regression fitted on the training data. Runs on SQLite and
PostgreSQL (the ``db`` fixture).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from _datasets import DATASETS
from assay import registry as reg
from assay.errors import ConflictError, InputError, PermissionDenied
from assay.store import Store
from assay.store.audit import AuditEvent, verify_chain

TARGET = "default-payment-next-month"
FEATURES = ["LIMIT_BAL", "AGE", "PAY_0", "PAY_2", "BILL_AMT1", "PAY_AMT1", "EDUCATION"]
DAY0 = date(2026, 3, 2)  # a Monday
NOW = datetime(2026, 4, 1, tzinfo=UTC)
POLICY = """\
name: monitor-test
version: "1"
settings: {min_group_size: 50, bootstrap: {replicates: 300, seed: 0}}
tiers:
  high:
    checks:
    - id: performance.roc_auc
      threshold: {min: 0.5}
    monitoring:
      window: daily
      retention_days: 400
      rules:
      - id: drift.feature
        params: {metric: psi, against: training}
        threshold: {max: 0.1}
        judge: interval
      - id: fairness.gap
        params: {metric: selection_rate, sensitive: [sex]}
        threshold: {max: 0.1}
        judge: interval
      - id: performance.drop
        params: {metric: roc_auc, baseline: %(auc).6f}
        threshold: {max: 0.05}
        judge: interval
        action: recertify
      - id: volume.rows
        threshold: {min: 100}
"""


@pytest.fixture(scope="module")
def credit(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Training file, production frame with calibrated-ish scores, and the training AUC."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    raw = pd.read_csv(DATASETS / "taiwan_credit" / "credit_default.csv")
    raw = raw.sample(frac=1.0, random_state=7).reset_index(drop=True)
    edu = raw[[f"EDUCATION_{i}" for i in range(7)]].to_numpy().argmax(axis=1)
    df = raw[["ID", *FEATURES[:-1], TARGET]].copy()
    df["EDUCATION"] = np.array(["e" + str(v) for v in edu], dtype=object)
    df["sex"] = np.where(raw["SEX"] == 1, "male", "female")
    train = df.iloc[:10_000]
    X = train[FEATURES[:-1]].to_numpy(dtype=float)
    mu, sd = X.mean(axis=0), X.std(axis=0)
    lr = LogisticRegression(max_iter=500).fit((X - mu) / sd, train[TARGET])
    prod = df.iloc[10_000:20_000].reset_index(drop=True).copy()
    prod["p"] = lr.predict_proba((prod[FEATURES[:-1]].to_numpy(float) - mu) / sd)[:, 1]
    auc = roc_auc_score(prod[TARGET], prod["p"])
    folder = tmp_path_factory.mktemp("credit")
    train_path = folder / "train.parquet"
    train.drop(columns=["ID"]).to_parquet(train_path, index=False)
    return {"train": train_path, "prod": prod, "auc": auc, "folder": folder}


def _day(credit: dict, i: int) -> pd.DataFrame:
    """Day ``i``'s batch: 2,500 rows, with an ISO time stamp and a row id."""
    part = credit["prod"].iloc[i * 2500:(i + 1) * 2500].copy()
    part["ts"] = (pd.Timestamp(DAY0 + timedelta(days=i)) + pd.to_timedelta(
        np.arange(len(part)) * 30, unit="s")).strftime("%Y-%m-%dT%H:%M:%S")
    part["row"] = "r" + part["ID"].astype(str)
    return part.drop(columns=["ID"])


def _setup(db: Store, credit: dict, tmp_path: Path) -> Path:
    from assay.evidence import digest_file

    with db.transaction() as s:
        dana = reg.get_user(s, "dana")
        reg.register_model(s, dana, "pd", owner="bo", decision_type="automated",
                           criticality="high", purpose="probability of default")
        reg.add_version(s, dana, "pd", "1", training_data_source=str(credit["train"]),
                        training_data_digest=digest_file(credit["train"]))
    policy = tmp_path / "monitor-test.yaml"
    policy.write_text(POLICY % {"auc": credit["auc"]})
    return policy


def _ingest(db: Store, frame: pd.DataFrame, tmp_path: Path, name: str, **kw) -> object:
    from assay.monitor import ingest

    path = tmp_path / f"{name}.parquet"
    frame.to_parquet(path, index=False)
    args = dict(time_column="ts", id_column="row", score="p", sensitive=["sex"], now=NOW)
    args.update(kw)
    with db.transaction() as s:
        return ingest(s, reg.get_user(s, "dana"), "pd", "1", path, **args)


def _run(db: Store, policy: Path, user: str = "victor"):
    from assay.monitor import run

    with db.transaction() as s:
        return run(s, reg.get_user(s, user), "pd", "1", policy=str(policy), tier="high",
                   now=NOW)


def test_drift_fairness_and_late_labels_raise_exactly_the_alerts_they_should(
        db: Store, people: dict, credit: dict, tmp_path: Path) -> None:
    from assay.monitor import add_labels, list_alerts, status

    policy = _setup(db, credit, tmp_path)
    days = [_day(credit, i) for i in range(4)]
    days[1]["LIMIT_BAL"] = days[1]["LIMIT_BAL"] * 3  # drift in one feature on day 1
    women = days[2]["sex"] == "female"  # day 2: women are scored lower
    days[2].loc[women, "p"] = days[2].loc[women, "p"] * 0.25 + 0.0
    days[2].loc[~women, "p"] = np.minimum(days[2].loc[~women, "p"] * 2.5, 1.0)
    for i, frame in enumerate(days):
        res = _ingest(db, frame.drop(columns=[TARGET]), tmp_path, f"day{i}")
        assert res.rows == 2500 and res.windows == {(DAY0 + timedelta(days=i)).isoformat(): 2500}

    first = _run(db, policy)
    assert first.versions[0].windows_evaluated == [
        (DAY0 + timedelta(days=i)).isoformat() for i in range(4)]
    alerts = first.alerts
    drift = [a for a in alerts if a["rule"] == "drift.feature"]
    assert [(a["label"], a["window"]["start"][:10]) for a in drift] == [
        ("LIMIT_BAL", (DAY0 + timedelta(days=1)).isoformat())]
    assert drift[0]["value"] > 0.1 and drift[0]["ci"][0] > 0.1
    fair = [a for a in alerts if a["rule"] == "fairness.gap"]
    assert [(a["label"], a["window"]["start"][:10]) for a in fair] == [
        ("sex=female vs male", (DAY0 + timedelta(days=2)).isoformat())] or [
        (a["label"], a["window"]["start"][:10]) for a in fair] == [
        ("sex=male vs female", (DAY0 + timedelta(days=2)).isoformat())]
    assert len(alerts) == 2  # no label yet: the performance rule waits

    with db.transaction() as s:
        st = status(s, "pd", "1")
    perf = [e for e in st["evaluations"] if e["rule"] == "performance.drop"]
    assert {e["state"] for e in perf} == {"skip"}
    assert "no labels" in perf[0]["note"]

    # re-running finds nothing new
    again = _run(db, policy)
    assert again.alerts == [] and again.versions[0].windows_evaluated == []

    # labels arrive later: day 0 as they are, day 3 shuffled (the model lost its edge)
    rng = np.random.default_rng(0)
    lab0 = days[0][["row", TARGET]]
    lab3 = days[3][["row", TARGET]].copy()
    lab3[TARGET] = rng.permutation(lab3[TARGET].to_numpy())
    labels = pd.concat([lab0, lab3, pd.DataFrame({"row": ["nope-1", "nope-2"], TARGET: [0, 1]})])
    path = tmp_path / "labels.csv"
    labels.to_csv(path, index=False)
    with db.transaction() as s:
        got = add_labels(s, reg.get_user(s, "dana"), "pd", "1", path, id_column="row",
                         target=TARGET)
    assert (got.joined, got.unknown, got.already_labeled) == (5000, 2, 0)
    assert sorted(got.unknown_examples) == ["nope-1", "nope-2"]

    later = _run(db, policy)
    perf_alerts = [a for a in later.alerts if a["rule"] == "performance.drop"]
    assert [a["window"]["start"][:10] for a in perf_alerts] == [
        (DAY0 + timedelta(days=3)).isoformat()]
    assert perf_alerts[0]["action"] == "recertify" and perf_alerts[0]["value"] > 0.1
    assert len(later.alerts) == 1
    with db.transaction() as s:
        st = status(s, "pd", "1")
    day0 = [e for e in st["evaluations"] if e["rule"] == "performance.drop"
            and e["window"]["start"].startswith(DAY0.isoformat())]
    assert day0[0]["state"] == "pass" and day0[0]["labeled_rows"] == 2500
    assert abs(day0[0]["value"]) < 0.05 and day0[0]["ci"][0] <= day0[0]["value"]

    # the same label batch again is refused; a new one with the same ids is not counted twice
    with db.transaction() as s, pytest.raises(ConflictError, match="already joined"):
        add_labels(s, reg.get_user(s, "dana"), "pd", "1", path, id_column="row", target=TARGET)
    with db.transaction() as s:
        again_labels = add_labels(s, reg.get_user(s, "dana"), "pd", "1",
                                  pd.concat([lab0.head(10), lab0.head(3)]),
                                  id_column="row", target=TARGET)
    assert (again_labels.joined, again_labels.already_labeled, again_labels.duplicates) == (
        0, 10, 3)
    assert _run(db, policy).alerts == []

    with db.transaction() as s:
        assert len(list_alerts(s, model="pd", state="open")) == 3
        assert verify_chain(s).ok
        actions = dict(s.execute(select(AuditEvent.action, func.count())
                                 .group_by(AuditEvent.action)).all())
    assert actions["monitor.ingest"] == 4 and actions["monitor.labels"] == 2
    assert actions["monitor.alert"] == 3 and actions["monitor.evaluate"] >= 5


def test_alerts_are_acknowledged_and_resolved_by_the_right_people(
        db: Store, people: dict, credit: dict, tmp_path: Path) -> None:
    from assay.monitor import acknowledge, list_alerts, open_recertify_alerts, resolve

    policy = _setup(db, credit, tmp_path)
    day = _day(credit, 0)
    day["LIMIT_BAL"] *= 3
    _ingest(db, day, tmp_path, "d0", target=TARGET)
    assert len(_run(db, policy).alerts) == 1
    with db.transaction() as s:
        alert_id = list_alerts(s)[0]["id"]
        mv = reg.get_version(s, "pd", "1")
        assert open_recertify_alerts(s, mv.id) == []  # drift is not a recertify rule
    with db.transaction() as s, pytest.raises(PermissionDenied, match="may not acknowledge"):
        acknowledge(s, reg.get_user(s, "audrey"), alert_id)
    with db.transaction() as s:
        assert acknowledge(s, reg.get_user(s, "cora"), alert_id)["state"] == "acknowledged"
    with db.transaction() as s, pytest.raises(ConflictError, match="only an open alert"):
        acknowledge(s, reg.get_user(s, "cora"), alert_id)
    with db.transaction() as s, pytest.raises(PermissionDenied, match="may not resolve"):
        resolve(s, reg.get_user(s, "bo"), alert_id)
    with db.transaction() as s:  # dana registered the version: not her call
        reg.grant_role(s, reg.get_user(s, "ada"), "dana", "validator")
    with db.transaction() as s, pytest.raises(PermissionDenied, match="separation of duties"):
        resolve(s, reg.get_user(s, "dana"), alert_id)
    with db.transaction() as s:
        assert resolve(s, reg.get_user(s, "victor"), alert_id, note="limits raised on purpose"
                       )["state"] == "resolved"
    with db.transaction() as s:
        actions = [e.action for e in s.scalars(select(AuditEvent).order_by(AuditEvent.seq))]
    assert actions[-1] == "alert.resolve" and "alert.ack" in actions
    with db.transaction() as s, pytest.raises(PermissionDenied, match="may not run"):
        from assay.monitor import run

        run(s, reg.get_user(s, "audrey"), policy=str(policy), tier="high", now=NOW)


def test_bad_batches_are_refused_with_the_file_and_column_and_nothing_is_stored(
        db: Store, people: dict, credit: dict, tmp_path: Path) -> None:
    from assay.monitor.tables import MonitorBatch, MonitorRow, MonitorWindow

    _setup(db, credit, tmp_path)
    good = _day(credit, 0)
    _ingest(db, good.head(100), tmp_path, "first")

    def counts() -> tuple[int, int, int, int]:
        with db.transaction() as s:
            return (s.scalar(select(func.count()).select_from(MonitorBatch)),
                    s.scalar(select(func.count()).select_from(MonitorRow)),
                    s.scalar(select(func.sum(MonitorWindow.rows))),
                    s.scalar(select(func.count()).select_from(AuditEvent)))

    before = counts()
    cases = [
        (good.drop(columns=["AGE"]), r"day\.parquet: monitored feature column\(s\) AGE are "
                                     r"missing"),
        (good.assign(AGE=good["AGE"].astype(str)),
         r"day\.parquet: column 'AGE': expected numeric values as in the training data, got "
         r"(large_)?string"),
        (good.assign(p=good["p"] * 3), r"day\.parquet: column 'p': expected probabilities in "
                                       r"\[0, 1\]"),
        (good.assign(ts="2027-01-01T00:00:00"),
         r"day\.parquet: column 'ts': 2500 row\(s\) lie after today"),
        (good.assign(ts=None), r"day\.parquet: column 'ts': expected dates or times"),
        (good.assign(row="same"), r"day\.parquet: column 'row': 1 duplicate row id\(s\) in the "
                                  r"batch \(e\.g\. 'same'\)"),
        (good.iloc[50:150], r"day\.parquet: column 'row': 50 row id\(s\) were already "
                            r"ingested"),
    ]
    for frame, message in cases:
        with pytest.raises(InputError, match=message):
            _ingest(db, frame, tmp_path, "day")
        assert counts() == before, message
    with pytest.raises(InputError, match=r"column 'ts': 10 row\(s\) lie before the window start"):
        _ingest(db, good.head(10), tmp_path, "day", window_start=DAY0 + timedelta(days=1))
    with pytest.raises(ConflictError, match="already ingested as batch"):
        _ingest(db, good.head(100), tmp_path, "first")
    with pytest.raises(InputError, match="prediction column, a score column or both"):
        _ingest(db, good, tmp_path, "day", score=None)
    assert counts() == before

    # an extra column is accepted, counted and named
    res = _ingest(db, good.iloc[200:300].assign(channel="web"), tmp_path, "extra")
    assert res.extra_columns == ["channel"]


def test_a_training_file_that_is_not_reachable_is_a_clear_error(
        db: Store, people: dict, credit: dict, tmp_path: Path) -> None:
    with db.transaction() as s:
        dana = reg.get_user(s, "dana")
        reg.register_model(s, dana, "pd", owner="bo", decision_type="automated",
                           criticality="high")
        reg.add_version(s, dana, "pd", "1", training_data_source=str(tmp_path / "gone.csv"))
    with pytest.raises(InputError, match=r"pd@1: the training data '.*gone\.csv' is not "
                                         r"reachable"):
        _ingest(db, _day(credit, 0), tmp_path, "d")


def test_without_a_time_column_rows_go_to_the_window_start_and_weeks_merge_days(
        db: Store, people: dict, credit: dict, tmp_path: Path) -> None:
    from assay.monitor import run, status

    policy = _setup(db, credit, tmp_path)
    text = policy.read_text().replace("window: daily", "window: weekly")
    policy.write_text(text)
    for i in range(3):
        frame = _day(credit, i).drop(columns=["ts"])
        res = _ingest(db, frame, tmp_path, f"d{i}", time_column=None,
                      window_start=(DAY0 + timedelta(days=i)).isoformat())
        assert list(res.windows) == [(DAY0 + timedelta(days=i)).isoformat()]
    with db.transaction() as s:
        out = run(s, reg.get_user(s, "victor"), "pd", "1", policy=str(policy), tier="high",
                  now=datetime(2026, 3, 8, tzinfo=UTC))  # the week is still open
    assert out.versions[0].windows_evaluated == []
    out = _run(db, policy)
    assert out.versions[0].windows_evaluated == [DAY0.isoformat()]
    with db.transaction() as s:
        st = status(s, "pd", "1")
    rows = [e for e in st["evaluations"] if e["rule"] == "volume.rows"]
    assert rows[0]["value"] == 7500 and rows[0]["window"]["period"] == "weekly"


def test_monitoring_tables_match_the_migration(db: Store) -> None:
    import assay.monitor.tables  # noqa: F401
    from _schema import schema_diffs
    from assay.store.db import Base

    ours = {t for t in Base.metadata.tables if t.startswith("monitor_")}
    assert len(ours) == 6
    assert schema_diffs(db.engine, ours) == []


KILLED = """
import sys, time
import assay.monitor.batches as ing
from assay import registry as reg
from assay.store import open_store

original = ing._merge_windows

def merge_then_stall(*args, **kwargs):
    out = original(*args, **kwargs)
    args[0].flush()
    print("merged", flush=True)
    time.sleep(120)
    return out

ing._merge_windows = merge_then_stall
store = open_store()
with store.transaction() as s:
    ing.ingest(s, reg.get_user(s, "dana"), "pd", "1", sys.argv[1], time_column="ts",
               id_column="row", score="p", sensitive=["sex"])
"""


def test_a_kill_during_ingest_leaves_the_store_as_it_was(
        db: Store, people: dict, credit: dict, tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    from assay.monitor.tables import MonitorBatch, MonitorRow, MonitorWindow

    _setup(db, credit, tmp_path)
    _ingest(db, _day(credit, 0), tmp_path, "d0")

    def counts() -> tuple[int, int, int, int]:
        with db.transaction() as s:
            return (s.scalar(select(func.count()).select_from(MonitorBatch)),
                    s.scalar(select(func.count()).select_from(MonitorRow)),
                    s.scalar(select(func.sum(MonitorWindow.rows))),
                    s.scalar(select(func.count()).select_from(AuditEvent)))

    before = counts()
    path = tmp_path / "d1.parquet"
    _day(credit, 1).to_parquet(path, index=False)
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(path)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "merged"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert counts() == before
    res = _ingest(db, _day(credit, 1), tmp_path, "d1")  # the same batch goes in afterwards
    assert res.rows == 2500 and counts()[1] == before[1] + 2500
    with db.transaction() as s:
        assert verify_chain(s).ok


def _certify(db: Store, auc: float, policy: Path) -> None:
    """Record a certification under ``policy`` (registered first) that measured ``auc``."""
    import json

    from _results import consistent_results

    results = consistent_results(policy, "high", values={"performance.roc_auc": auc})
    assert results["status"] == "passed"
    with db.transaction() as s:
        reg.register_policy(s, reg.get_user(s, "victor"), policy.read_bytes(),
                            source=policy.name)
        reg.record_certification(s, reg.get_user(s, "victor"), "pd", "1", None,
                                 json.dumps(results).encode())


def test_a_recertify_alert_lasts_until_the_next_certification_and_uses_the_certified_value(
        db: Store, people: dict, credit: dict, tmp_path: Path) -> None:
    from assay.monitor import open_recertify_alerts, run

    policy = _setup(db, credit, tmp_path)
    policy.write_text(policy.read_text().replace(f", baseline: {credit['auc']:.6f}", ""))
    assert "baseline" not in policy.read_text()
    _certify(db, credit["auc"] + 0.2, policy)  # production falls 0.2 below the certified AUC
    _ingest(db, _day(credit, 0), tmp_path, "d0", target=TARGET)
    with db.transaction() as s:
        out = run(s, reg.get_user(s, "victor"), "pd", "1", policy=str(policy), now=NOW)
    assert out.versions[0].tier == "high"  # from the certification
    [alert] = [a for a in out.alerts if a["rule"] == "performance.drop"]
    assert alert["value"] == pytest.approx(0.2, abs=0.03)
    with db.transaction() as s:
        mv = reg.get_version(s, "pd", "1")
        assert [a.id for a in open_recertify_alerts(s, mv.id)] == [alert["id"]]
    _certify(db, credit["auc"], policy)
    with db.transaction() as s:
        assert open_recertify_alerts(s, mv.id) == []
