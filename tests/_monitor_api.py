"""A small monitored model for the monitoring API, scheduler and /metrics tests.

``pd`` version ``1`` (registered by dana, owned by bo) with 2,000 training rows
of two features (``x`` numeric, ``c`` categorical), a registered policy
``monapi-test`` whose tier ``high`` drifts on PSI > 0.1 and wants at least 10
rows per window, and daily production batches from 2026-03-02 on.
"""

from __future__ import annotations

import io
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from assay import registry as reg
from assay.store import Store

DAY0 = date(2026, 3, 2)
POLICY = """\
name: monapi-test
version: "1"
settings: {min_group_size: 20, bootstrap: {replicates: 100, seed: 0}}
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
      - id: volume.rows
        threshold: {min: 10}
"""


def frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n) + shift
    c = rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2])
    p = 1 / (1 + np.exp(-(x - 0.2 * (c == "a"))))
    y = (rng.random(n) < p).astype(int)
    return pd.DataFrame({"x": x, "c": c, "p": p, "y": y})


def day(i: int, n: int = 300, shift: float = 0.0) -> pd.DataFrame:
    """Day ``i``'s batch: an ISO time, a row id, the features and the score (no label)."""
    df = frame(n, 100 + i, shift)
    start = pd.Timestamp(DAY0 + timedelta(days=i))
    df["ts"] = (start + pd.to_timedelta(np.arange(n) * 60, unit="s")).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    df["row"] = [f"d{i}-{k}" for k in range(n)]
    return df


def parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def setup_version(db: Store, folder: Path) -> None:
    """Register the model, its version with training data, and the policy."""
    from assay.evidence import digest_file

    train = folder / "train.parquet"
    frame(2000, 1)[["x", "c", "y"]].to_parquet(train, index=False)
    with db.transaction() as s:
        dana = reg.get_user(s, "dana")
        reg.register_model(s, dana, "pd", owner="bo", decision_type="automated",
                           criticality="high", purpose="probability of default")
        reg.add_version(s, dana, "pd", "1", training_data_source=str(train),
                        training_data_digest=digest_file(train))
        reg.register_policy(s, reg.get_user(s, "victor"), POLICY.encode(),
                            source="monapi-test.yaml", settings=db.settings)


def certify_version(db: Store, folder: Path) -> None:
    """Certify ``pd@1`` under the registered policy, tier high (the plan the scheduler reads)."""
    from assay.certification import certify

    policy = folder / "monapi-test.yaml"
    policy.write_text(POLICY)
    data = folder / "eval.parquet"
    frame(1000, 2).to_parquet(data, index=False)
    written = certify(data=data, policy=policy, tier="high", target="y",
                      score="p").write(folder / "cert")
    with db.transaction() as s:
        reg.record_certification(s, reg.get_user(s, "dana"), "pd", "1", None,
                                 written["results.json"].read_bytes(), None,
                                 settings=db.settings)


def ingest_days(db: Store, days: dict[int, pd.DataFrame], user: str = "dana") -> None:
    """Ingest batches in-process (for the scheduler and /metrics tests)."""
    from assay.monitor import ingest

    for i, df in days.items():
        with db.transaction() as s:
            ingest(s, reg.get_user(s, user), "pd", "1", df.drop(columns="y"), name=f"day{i}",
                   time_column="ts", id_column="row", score="p")
