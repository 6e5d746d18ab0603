"""Monitoring at scale keeps its results: batches streamed and merged give the numbers of
one pass, the vectorised drift intervals equal the per-draw ones, and evaluating one
more daily window reads the same rows whatever the length of the history."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import event, select

from assay import registry as reg
from assay.store import Store

DAY0 = date(2026, 1, 5)
NOW = datetime(2026, 6, 1, tzinfo=UTC)
POLICY = """\
name: scale-test
version: "1"
settings: {min_group_size: 20, bootstrap: {replicates: 200, seed: 0}}
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
        consecutive: 2
      - id: drift.feature
        name: drift-js-previous
        params: {metric: js, against: previous_window}
        threshold: {max: 0.5}
      - id: drift.prediction
        params: {metric: psi, against: first_window}
        threshold: {max: 0.1}
        judge: interval
      - id: performance.estimated
        params: {metric: roc_auc}
        threshold: {min: 0.5}
      - id: performance.drop
        params: {metric: roc_auc, baseline: 0.7}
        threshold: {max: 0.05}
        judge: interval
      - id: fairness.gap
        params: {metric: selection_rate}
        threshold: {max: 0.2}
      - id: quality.out_of_range
        threshold: {max: 0.05}
"""


def _frame(i: int, rows: int, *, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(i + 100)
    x = rng.normal(shift, 1.0, (rows, 3))
    x[rng.random(rows) < 0.02, 1] = np.nan
    cat = rng.choice(["a", "b", "c"], size=rows, p=[0.5, 0.3, 0.2])
    logit = -0.5 + x[:, 0] - 0.5 * np.nan_to_num(x[:, 1]) + (cat == "a") * 0.4
    score = 1 / (1 + np.exp(-logit))
    day = DAY0 + timedelta(days=i)
    return pd.DataFrame({
        "x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2] * 100, "cat": cat,
        "group": rng.choice(["f", "m"], size=rows),
        "score": score, "label": (rng.random(rows) < score).astype(int),
        "ts": pd.Timestamp(day) + pd.to_timedelta(rng.integers(0, 86_400, rows), unit="s"),
        "row": [f"d{i}-{k}" for k in range(rows)],
    })


def _version(db: Store, tmp_path: Path, name: str) -> Path:
    from assay.evidence import digest_file

    train = tmp_path / f"{name}-train.parquet"
    _frame(-1, 2000).drop(columns=["ts", "row", "group"]).to_parquet(train, index=False)
    with db.transaction() as s:
        dana = reg.get_user(s, "dana")
        reg.register_model(s, dana, name, owner="bo", decision_type="automated",
                           criticality="high", purpose="scale test")
        reg.add_version(s, dana, name, "1", training_data_source=str(train),
                        training_data_digest=digest_file(train))
    policy = tmp_path / "scale-test.yaml"
    policy.write_text(POLICY)
    return policy


def _ingest(db: Store, model: str, data: object, **kw: object) -> object:
    from assay.monitor import ingest

    args = dict(time_column="ts", score="score", target="label", sensitive=["group"],
                now=NOW)
    args.update(kw)
    with db.transaction() as s:
        return ingest(s, reg.get_user(s, "dana"), model, "1", data, **args)


def _run(db: Store, model: str, policy: Path, now: datetime = NOW) -> object:
    from assay.monitor import run

    with db.transaction() as s:
        return run(s, reg.get_user(s, "victor"), model, "1", policy=str(policy), tier="high",
                   now=now)


def _evaluations(db: Store, model: str) -> list[tuple]:
    from assay.monitor.tables import MonitorEvaluation
    from assay.registry.tables import Model, ModelVersion

    with db.transaction() as s:
        rows = s.execute(
            select(MonitorEvaluation.window_start, MonitorEvaluation.rule,
                   MonitorEvaluation.label, MonitorEvaluation.value, MonitorEvaluation.ci_low,
                   MonitorEvaluation.ci_high, MonitorEvaluation.state, MonitorEvaluation.n)
            .join(ModelVersion, ModelVersion.id == MonitorEvaluation.model_version_id)
            .join(Model, Model.id == ModelVersion.model_id).where(Model.name == model)
            .order_by(MonitorEvaluation.window_start, MonitorEvaluation.rule,
                      MonitorEvaluation.label)).all()
    return [tuple(r) for r in rows]


def _windows(db: Store, model: str) -> dict[str, dict]:
    import json
    import zlib

    from assay.monitor.tables import MonitorWindow
    from assay.registry.tables import Model, ModelVersion

    with db.transaction() as s:
        rows = s.execute(select(MonitorWindow.start, MonitorWindow.state)
                         .join(ModelVersion, ModelVersion.id == MonitorWindow.model_version_id)
                         .join(Model, Model.id == ModelVersion.model_id)
                         .where(Model.name == model)).all()
    return {str(start)[:10]: json.loads(zlib.decompress(blob)) for start, blob in rows}


def _close(a: object, b: object, path: str = "") -> None:
    """Equal structures; floats equal to 1e-9 (merging sums in another order)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), path
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for k, (u, v) in enumerate(zip(a, b, strict=True)):
            _close(u, v, f"{path}[{k}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert b == pytest.approx(a, rel=1e-9, abs=1e-9), path
    else:
        assert a == b, path


def test_drift_intervals_of_all_draws_at_once_equal_those_draw_by_draw() -> None:
    from assay.metrics.drift import js_distance, js_rows, psi, psi_rows

    rng = np.random.default_rng(3)
    for k in (2, 11, 101):
        ref = rng.integers(0, 500, k)
        cur = rng.integers(0, 500, k)
        cur[0] = 0  # an empty bin: the epsilon of PSI
        draws = rng.multinomial(4000, cur / cur.sum(), size=300)
        assert np.array_equal(psi_rows(ref, draws), [psi(ref, d) for d in draws])
        assert np.array_equal(js_rows(ref, draws), [js_distance(ref, d) for d in draws])


def test_a_batch_streamed_in_parts_stores_and_judges_what_one_pass_does(
        db: Store, people: dict, tmp_path: Path) -> None:
    """Three days shuffled in one Parquet file, read in several record batches (of 65,536
    rows) that each hold every day, against the same rows sent as one in-memory table per
    day: the same statistics and the same evaluations."""
    from assay.metrics.profile import profile
    from assay.monitor.batches import reference_of
    from assay.monitor.state import WindowState
    from assay.registry import get_version

    policy = _version(db, tmp_path, "parts")
    _version(db, tmp_path, "whole")
    days = [_frame(i, 25_000, shift=0.4 * (i == 2)) for i in range(3)]
    both = pd.concat(days, ignore_index=True).sample(frac=1.0, random_state=1)
    path = tmp_path / "three-days.parquet"
    pq.write_table(pa.Table.from_pandas(both, preserve_index=False), path, row_group_size=10_000)
    _ingest(db, "parts", path, id_column="row")
    for frame in days:
        _ingest(db, "whole", frame, id_column="row")
    parts, whole = _windows(db, "parts"), _windows(db, "whole")
    assert sorted(parts) == [(DAY0 + timedelta(days=i)).isoformat() for i in range(3)]
    # the novelty counts come from a seeded sample whose rate follows the size of the batch
    # (one 75,000-row file against three of 25,000): the same share, not the same count
    for day in parts:
        share = {k: w[day].pop("novel") / w[day].pop("novelty_rows")
                 for k, w in (("parts", parts), ("whole", whole))}
        assert share["parts"] == pytest.approx(share["whole"], abs=0.01), day
    _close(whole, parts)
    # and what one pass of the profiler gives on the day's rows
    with db.transaction() as s:
        mv = get_version(s, "parts", "1")
        _, ref = reference_of(s, mv)
        from assay.monitor.tables import MonitorWindow

        blob = s.scalars(select(MonitorWindow.state).where(
            MonitorWindow.model_version_id == mv.id).order_by(MonitorWindow.start)).first()
    bins = {k: v.bins for k, v in ref.items()}
    stored = WindowState.from_blob(blob, bins)
    direct = profile(days[0], bins)
    for name, st in direct.features.items():
        got = stored.profile.features[name]
        assert (got.count, got.nulls) == (st.count, st.nulls), name
        if st.kind == "numeric":
            assert got.fine.tolist() == st.fine.tolist(), name
            assert got.mean == pytest.approx(st.mean, rel=1e-12), name
        else:
            assert got.categories == st.categories, name
    _run(db, "parts", policy)
    _run(db, "whole", policy)
    a, b = _evaluations(db, "parts"), _evaluations(db, "whole")
    assert len(a) == len(b) > 0
    for x, y in zip(a, b, strict=True):
        if x[1] == "quality.out_of_distribution":  # sampled, as above
            assert (x[:3], x[6]) == (y[:3], y[6]) and x[3] == pytest.approx(y[3], abs=0.01)
            continue
        _close(list(x[1:]), list(y[1:]))
    assert any(r[1] == "drift.feature" and r[2] == "x0" and r[6] == "fail" for r in a)


class _Reads:
    """Statements and rows a session reads (through the ORM, as the domain layer does)."""

    def __init__(self, session: object) -> None:
        self.statements = 0
        self.rows = 0
        self.blobs = 0
        event.listen(session, "do_orm_execute", self._count)

    def _count(self, state: object) -> object:
        if not state.is_select:  # type: ignore[attr-defined]
            return None
        self.statements += 1
        frozen = state.invoke_statement().freeze()  # type: ignore[attr-defined]
        self.rows += len(frozen.data)
        text = str(state.statement)  # type: ignore[attr-defined]
        if "monitor_windows.state" in text:
            self.blobs += len(frozen.data)
        return frozen()


def _midnight(i: int) -> datetime:
    return datetime.combine(DAY0 + timedelta(days=i), datetime.min.time(), UTC)


def _one_more(db: Store, model: str, policy: Path, history: int) -> _Reads:
    from assay.monitor import run

    for i in range(history):
        _ingest(db, model, _frame(i, 400), name=f"{model}-{i}")
    _run(db, model, policy, now=_midnight(history))
    _ingest(db, model, _frame(history, 400), name=f"{model}-{history}")
    with db.transaction() as s:
        reads = _Reads(s)
        out = run(s, reg.get_user(s, "victor"), model, "1", policy=str(policy), tier="high",
                  now=_midnight(history + 1))
    assert out.versions[0].windows_evaluated == [(DAY0 + timedelta(days=history)).isoformat()]
    return reads


def test_evaluating_one_more_window_reads_the_same_whatever_the_history(
        db: Store, people: dict, tmp_path: Path) -> None:
    policy = _version(db, tmp_path, "short")
    _version(db, tmp_path, "long")
    short = _one_more(db, "short", policy, 3)
    long = _one_more(db, "long", policy, 14)
    # the window, its predecessor and the first window; a few small rows besides
    assert long.blobs == short.blobs == 3
    assert long.statements == short.statements
    assert long.rows == short.rows


@pytest.mark.parametrize("metric", ["psi", "js"])
def test_feature_drift_is_the_value_the_drift_summary_gives(metric: str) -> None:
    """The rule measures PSI and JS on their own; the value is compare_feature's."""
    from assay.checks.base import CheckSpec, Threshold
    from assay.metrics.drift import compare_feature
    from assay.metrics.profile import profile
    from assay.monitor.rules import RuleContext, measure
    from assay.monitor.state import WindowState
    from assay.policy.monitoring import MonitorRule

    ref = profile(_frame(-1, 4000).drop(columns=["ts", "row", "group"]))
    cur = WindowState.empty(ref.bins)
    cur.profile = profile(_frame(3, 2500, shift=0.3), ref.bins)
    rule = MonitorRule(spec=CheckSpec(id="drift.feature", threshold=Threshold(max=0.1),
                                      params={"metric": metric}))
    ctx = RuleContext(reference=ref, current=cur, previous=None, first=None,
                      min_group_size=20, n_boot=100, confidence=0.95, seed=0, baseline={})
    got = {m.label: m for m in measure(rule, ctx)}
    assert set(got) == set(ref.features)
    for name, st in ref.features.items():
        want = compare_feature(st, cur.profile.features[name])[metric]
        assert got[name].value == want, name
        lo, hi = got[name].ci
        assert lo <= want <= hi
