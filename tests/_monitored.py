"""A monitored version in a store: synthetic training data, daily batches with one drifted
day, evaluated with a small monitoring policy. For the web UI's tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

DAY0 = date(2026, 3, 2)  # a Monday
#: A feature with a long name, to see that pages wrap it.
LONG = "months_at_current_address_since_the_applicant_last_moved_house"
POLICY = """\
name: monitor-web
version: "1"
settings: {min_group_size: 30, bootstrap: {replicates: 200, seed: 0}}
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
      - id: volume.rows
        threshold: {min: 100}
      - id: drift.prediction
        params: {metric: psi, against: previous_window}
        threshold: {max: 0.25}
"""


def _frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame({
        "income": rng.lognormal(10.0, 0.5, n),
        "age": rng.normal(40.0, 10.0, n).round(),
        "region": rng.choice(["north", "south", "east", "west"], n),
        LONG: rng.integers(0, 240, n).astype(float),
        "sex": rng.choice(["female", "male"], n),
    })


def monitored_version(store: Any, folder: Path, *, model: str = "credit-scoring",
                      version: str = "2.0", days: int = 6, drift_day: int | None = 3,
                      rows: int = 600, developer: str = "dana", runner: str = "vic",
                      seed: int = 0, artifact_digest: str | None = None) -> dict[str, Any]:
    """Register ``model`` ``version`` (by ``developer``) with training data, send ``days``
    daily batches (``income`` tripled on ``drift_day``) and evaluate them (as ``runner``).
    Returns the policy path, the days and the run's alerts."""
    from assay import registry as reg
    from assay.evidence import digest_file
    from assay.monitor import ingest, run

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    train = _frame(rng, 4000)
    train_path = folder / f"train-{model}-{version}.parquet"
    train.to_parquet(train_path, index=False)
    policy = folder / "monitor-web-policy.yaml"
    policy.write_text(POLICY)
    now = datetime.combine(DAY0 + timedelta(days=days), datetime.min.time(), tzinfo=UTC)
    with store.transaction() as s:
        reg.add_version(s, reg.get_user(s, developer), model, version,
                        training_data_source=str(train_path),
                        training_data_digest=digest_file(train_path),
                        artifact_digest=artifact_digest)
    for i in range(days):
        day = _frame(rng, rows)
        if i == drift_day:
            day["income"] = day["income"] * 3
        day["score"] = rng.uniform(0, 1, rows)
        day["ts"] = [f"{DAY0 + timedelta(days=i)}T{h:02d}:00:00" for h in
                     (np.arange(rows) % 24)]
        day["row"] = [f"{version}-{i}-{k}" for k in range(rows)]
        path = folder / f"{model}-{version}-day{i}.parquet"
        day.to_parquet(path, index=False)
        with store.transaction() as s:
            ingest(s, reg.get_user(s, developer), model, version, path, time_column="ts",
                   id_column="row", score="score", sensitive=["sex"], now=now)
    with store.transaction() as s:
        result = run(s, reg.get_user(s, runner), model, version, policy=str(policy),
                     tier="high", now=now)
    return {"policy": policy, "now": now,
            "days": [DAY0 + timedelta(days=i) for i in range(days)],
            "alerts": result.alerts}


def year_of_evaluations(store: Any, model: str, version: str, *, days: int = 365,
                        features: int = 12, developer: str = "dana") -> None:
    """``days`` daily evaluations of a drift rule over ``features`` features and of a
    volume rule, written straight into the store (as ``run`` records them), for a
    version registered by ``developer``: the size of a year of monitoring."""
    from assay import registry as reg
    from assay.monitor.tables import MonitorEvaluation, MonitorWindow
    from assay.store.db import utcnow

    rng = np.random.default_rng(1)
    start = datetime.combine(DAY0, datetime.min.time(), tzinfo=UTC)
    with store.transaction() as s:
        mv = reg.add_version(s, reg.get_user(s, developer), model, version)
        s.flush()
        rows = []
        for d in range(days):
            ws, we = start + timedelta(days=d), start + timedelta(days=d + 1)
            s.add(MonitorWindow(model_version_id=mv.id, start=ws, end=we, rows=1000,
                                labeled=0, state=b"", updated_at=utcnow()))
            common = dict(model_version_id=mv.id, policy_name="monitor-web", tier="high",
                          period="daily", window_start=ws, window_end=we, basis=0,
                          created_at=utcnow(), note="")
            for f in range(features):
                v = float(rng.gamma(2.0, 0.02)) * (1 + f / features)
                rows.append(MonitorEvaluation(
                    rule="drift.feature", rule_id="drift.feature", metric="psi",
                    label=f"feature_{f:02d}", value=v, ci_low=v * 0.7, ci_high=v * 1.3,
                    threshold={"max": 0.1}, state="fail" if v * 0.7 > 0.1 else "pass",
                    n=1000, **common))
            rows.append(MonitorEvaluation(
                rule="volume.rows", rule_id="volume.rows", metric="rows", label="rows",
                value=1000.0, threshold={"min": 100.0}, state="pass", n=1000, **common))
        s.add_all(rows)
