"""Monitoring rules: the performance estimate against realised performance, the shipped
policies on undrifted data, consecutive windows and cool-down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from assay import registry as reg
from assay.metrics import ClassificationStats
from assay.monitor.estimate import estimate
from assay.monitor.state import SCORE_BINS
from assay.store import Store
from test_monitor import DAY0, NOW, TARGET, _day, _ingest, _run, _setup, credit  # noqa: F401


def _calibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores from a Beta law and labels drawn with exactly that probability."""
    rng = np.random.default_rng(seed)
    s = rng.beta(2, 5, n)
    y = (rng.random(n) < s).astype(int)
    return s, y, (s >= 0.35).astype(int)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("metric", ["accuracy", "roc_auc", "precision", "recall"])
def test_estimated_performance_matches_realised_on_calibrated_scores(seed: int,
                                                                     metric: str) -> None:
    s, y, pred = _calibrated(20_000, seed)
    outputs = ClassificationStats.from_arrays(pred, pred, score=s, n_bins=SCORE_BINS)
    value, ci = estimate(outputs, metric, n_boot=400, seed=seed)
    realised = ClassificationStats.from_arrays(y, pred, score=s).compute(metric)
    if metric == "roc_auc":
        assert realised == pytest.approx(roc_auc_score(y, s), abs=1e-3)
    assert value == pytest.approx(realised, abs=0.015)
    assert ci is not None and ci[0] - 0.002 <= realised <= ci[1] + 0.002


def test_the_estimate_is_wrong_when_scores_are_not_calibrated() -> None:
    """The assumption matters: squared scores understate the positives."""
    s, y, pred = _calibrated(20_000, 4)
    outputs = ClassificationStats.from_arrays(pred, pred, score=s ** 2, n_bins=SCORE_BINS)
    _, ci = estimate(outputs, "precision", n_boot=200)
    realised = ClassificationStats.from_arrays(y, pred).compute("precision")
    assert ci is not None and ci[1] < realised - 0.1


@pytest.mark.parametrize("name", ["credit-lending", "default"])
def test_shipped_policies_raise_nothing_on_undrifted_windows(
        db: Store, people: dict, credit: dict, tmp_path: Path, name: str) -> None:  # noqa: F811
    from assay.monitor import add_labels, run, status

    _setup(db, credit, tmp_path)
    for i in range(3):
        _ingest(db, _day(credit, i), tmp_path, f"d{i}")
    with db.transaction() as s:
        add_labels(s, reg.get_user(s, "dana"), "pd", "1", _day(credit, 0)[["row", TARGET]],
                   id_column="row", target=TARGET)
    with db.transaction() as s:
        out = run(s, reg.get_user(s, "victor"), "pd", "1", policy=name, tier="high", now=NOW)
        st = status(s, "pd", "1")
    assert out.alerts == []
    assert len(out.versions[0].windows_evaluated) == 3
    evaluated = {e["rule"] for e in st["evaluations"]}
    assert evaluated == {"drift.feature", "drift.prediction", "quality.missing_share",
                         "quality.unseen_categories", "quality.out_of_range", "quality.schema",
                         "quality.out_of_distribution", "volume.rows", "performance.drop",
                         "performance.estimated", "fairness.gap"}
    states = {(e["rule"], e["state"]) for e in st["evaluations"]}
    assert ("drift.feature", "pass") in states and ("performance.estimated", "pass") in states
    assert ("fairness.gap", "pass") in states and ("quality.schema", "pass") in states
    assert ("quality.out_of_distribution", "pass") in states
    # no certified value and no baseline: the performance rule says why it waits
    perf = [e for e in st["evaluations"] if e["rule"] == "performance.drop"]
    assert {e["state"] for e in perf} == {"skip"}
    assert any("no certified value of roc_auc" in e["note"] for e in perf)


def test_consecutive_windows_and_cool_down(db: Store, people: dict, credit: dict,  # noqa: F811
                                           tmp_path: Path) -> None:
    from assay.monitor import list_alerts, resolve, run

    policy = _setup(db, credit, tmp_path)
    text = policy.read_text().replace("        judge: interval\n      - id: fairness.gap",
                                      "        judge: interval\n        consecutive: 2\n"
                                      "        cooldown: 3\n      - id: fairness.gap")
    policy.write_text(text)
    drifted = {1, 3, 4, 6, 7, 8}  # alone on day 1; two in a row on days 3-4, and 6-8
    for i in range(9):
        frame = _day(credit, i % 4)
        frame["ts"] = frame["ts"].str.replace(
            (DAY0 + timedelta(days=i % 4)).isoformat(), (DAY0 + timedelta(days=i)).isoformat())
        frame["row"] = frame["row"] + f"-{i}"
        if i in drifted:
            frame["LIMIT_BAL"] = frame["LIMIT_BAL"] * 3
        _ingest(db, frame, tmp_path, f"d{i}")

    def alerted() -> list[str]:
        with db.transaction() as s:
            return [a["window"]["start"][:10] for a in list_alerts(s)
                    if a["rule"] == "drift.feature"]

    with db.transaction() as s:  # up to day 5: one alert (day 4, the second in a row)
        run(s, reg.get_user(s, "victor"), "pd", "1", policy=str(policy), tier="high",
            now=datetime(2026, 3, 8, tzinfo=UTC))
    day = [(DAY0 + timedelta(days=i)).isoformat() for i in range(9)]
    assert alerted() == [day[4]]
    with db.transaction() as s:
        resolve(s, reg.get_user(s, "victor"), list_alerts(s)[0]["id"])
    # day 7 is two in a row again, but only 3 windows after day 4's alert (cool-down 3);
    # day 8 is the first after the cool-down
    _run(db, policy)
    assert alerted() == [day[4], day[8]]


@pytest.mark.parametrize(("metric", "threshold"), [
    ("psi", "{max: 0.1}"), ("js", "{max: 0.1}"), ("wasserstein", "{max: 0.2}"),
    ("chi2", "{min: 0.000001}")])
def test_drift_against_the_previous_window_with_every_measure(
        db: Store, people: dict, credit: dict, tmp_path: Path,  # noqa: F811
        metric: str, threshold: str) -> None:
    from assay.monitor import status

    policy = _setup(db, credit, tmp_path)
    text = policy.read_text().replace(
        "params: {metric: psi, against: training}\n        threshold: {max: 0.1}\n"
        "        judge: interval",
        f"params: {{metric: {metric}, against: previous_window, features: [LIMIT_BAL, AGE]}}\n"
        f"        threshold: {threshold}")
    assert text != policy.read_text()
    policy.write_text(text)
    for i in range(3):
        frame = _day(credit, i)
        if i == 1:
            frame["LIMIT_BAL"] = frame["LIMIT_BAL"] * 3
        _ingest(db, frame, tmp_path, f"d{i}")
    out = _run(db, policy)
    drift = [(a["label"], a["window"]["start"][:10]) for a in out.alerts
             if a["rule"] == "drift.feature"]
    # day 1 differs from day 0, and day 2 from day 1: one alert (the second is covered
    # by the open one); day 0 has no previous window
    assert drift == [("LIMIT_BAL", (DAY0 + timedelta(days=1)).isoformat())]
    with db.transaction() as s:
        st = status(s, "pd", "1")
    evs = {(e["window"]["start"][:10], e["label"]): e["state"] for e in st["evaluations"]
           if e["rule"] == "drift.feature"}
    day = [(DAY0 + timedelta(days=i)).isoformat() for i in range(3)]
    assert evs[(day[0], "")] == "skip"
    assert evs[(day[1], "LIMIT_BAL")] == "fail" and evs[(day[2], "LIMIT_BAL")] == "fail"
    assert evs[(day[1], "AGE")] == "pass" and evs[(day[2], "AGE")] == "pass"


def test_small_groups_are_never_judged_and_old_rows_are_purged(
        db: Store, people: dict, credit: dict, tmp_path: Path) -> None:  # noqa: F811
    from sqlalchemy import func, select

    from assay.monitor import run, status
    from assay.monitor.tables import MonitorRow
    from assay.store.audit import AuditEvent

    policy = _setup(db, credit, tmp_path)
    text = policy.read_text().replace("min_group_size: 50", "min_group_size: 2000")
    policy.write_text(text.replace("retention_days: 400", "retention_days: 10"))
    frame = _day(credit, 0)
    women = frame["sex"] == "female"
    frame.loc[women, "p"] = frame.loc[women, "p"] * 0.1  # a gap, but the women are < 2000
    assert 50 < (~women).sum() < 2000 or 50 < women.sum() < 2000
    _ingest(db, frame, tmp_path, "d0")
    with db.transaction() as s:
        out = run(s, reg.get_user(s, "victor"), "pd", "1", policy=str(policy), tier="high",
                  now=NOW)
        st = status(s, "pd", "1")
        kept = s.scalar(select(func.count()).select_from(MonitorRow))
        purged = s.scalars(select(AuditEvent.payload)
                           .where(AuditEvent.action == "monitor.purge")).all()
    assert [a for a in out.alerts if a["rule"] == "fairness.gap"] == []
    fair = [e for e in st["evaluations"] if e["rule"] == "fairness.gap"]
    assert fair and all(e["state"] == "skip" for e in fair)
    assert any("minimum size 2000" in e["note"] or "at least 2000" in e["note"] for e in fair)
    # NOW is 30 days after the window: with a retention of 10 days its rows are gone
    assert kept == 0 and out.versions[0].purged_rows == 2500
    assert purged[0]["rows"] == 2500 and purged[0]["retention_days"] == 10
