"""Drift on 23 columns, 1M reference rows vs 1M current rows: assay vs Evidently.

    python benchmarks/bench_drift.py [--rows 1000000] [--no-evidently]

The rows are drawn (with replacement, seeded) from the Taiwan credit-card
data: the reference from the first 15,000 clients, the current data from the
other 15,000, with EDUCATION and MARRIAGE decoded from their one-hot columns
(23 features). Both tools get the same pandas DataFrames; the time of each
includes everything from the frames to the per-feature results. The
normalised Wasserstein distances of both are printed side by side as a
sanity check (Evidently normalises by the reference standard deviation too).

Evidently is in the ``bench`` extra (``pip install -e '.[bench]'``). Its
releases differ in API (``evidently.Report`` + ``evidently.presets`` from
0.7, ``evidently.report`` + ``evidently.metric_preset`` before); both are
handled. Evidently 0.7 imports ``infer_dtype_from_object`` from pandas'
internals, which pandas 3 removed; a small stand-in is installed first.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from assay.metrics.drift import drift_summary  # noqa: E402
from assay.metrics.profile import profile  # noqa: E402

# The real data sets live in shared/datasets beside the repository (ASSAY_DATASETS overrides).
DATASETS = Path(os.environ.get("ASSAY_DATASETS") or ROOT.parent / "shared" / "datasets")
TAIWAN = DATASETS / "taiwan_credit" / "credit_default.csv"


def load_frames(rows: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    df = pd.read_csv(TAIWAN)
    edu = [c for c in df.columns if c.startswith("EDUCATION_")]
    mar = [c for c in df.columns if c.startswith("MARRIAGE_")]
    df["EDUCATION"] = df[edu].to_numpy().argmax(axis=1).astype(str)
    df["MARRIAGE"] = df[mar].to_numpy().argmax(axis=1).astype(str)
    cols = (["LIMIT_BAL", "SEX", "AGE", "PAY_0", "PAY_2", "PAY_3", "PAY_4", "PAY_5", "PAY_6"]
            + [f"BILL_AMT{i}" for i in range(1, 7)] + [f"PAY_AMT{i}" for i in range(1, 7)]
            + ["EDUCATION", "MARRIAGE"])
    assert len(cols) == 23
    rng = np.random.default_rng(seed)
    first, second = df[df["ID"] <= 15_000][cols], df[df["ID"] > 15_000][cols]
    ref = first.iloc[rng.integers(0, len(first), rows)].reset_index(drop=True)
    cur = second.iloc[rng.integers(0, len(second), rows)].reset_index(drop=True)
    return ref, cur


def run_assay(ref: pd.DataFrame, cur: pd.DataFrame) -> tuple[float, dict[str, Any]]:
    t0 = time.perf_counter()
    rp = profile(ref)
    cp = profile(cur, rp.bins)
    summary = drift_summary(rp, cp)
    return time.perf_counter() - t0, summary


def _evidently_imports() -> tuple[Any, Any, str]:
    try:
        import pandas.core.dtypes.common as common

        if not hasattr(common, "infer_dtype_from_object"):
            def infer_dtype_from_object(dtype: Any) -> type:
                try:
                    return pd.api.types.pandas_dtype(dtype).type
                except TypeError:
                    return np.object_

            common.infer_dtype_from_object = infer_dtype_from_object  # type: ignore[attr-defined]
        import evidently
    except ImportError as exc:
        raise RuntimeError(f"evidently is not importable ({exc}); "
                           "pip install -e '.[bench]'") from None
    version = getattr(evidently, "__version__", "?")
    try:
        from evidently import Report
        from evidently.presets import DataDriftPreset
        return Report, DataDriftPreset, version
    except ImportError:
        from evidently.metric_preset import DataDriftPreset  # type: ignore[no-redef]
        from evidently.report import Report  # type: ignore[no-redef]
        return Report, DataDriftPreset, version


def run_evidently(ref: pd.DataFrame, cur: pd.DataFrame) -> tuple[float, dict[str, float], str]:
    Report, DataDriftPreset, version = _evidently_imports()
    t0 = time.perf_counter()
    report = Report([DataDriftPreset()])
    out = report.run(current_data=cur, reference_data=ref)
    if out is None:  # before 0.7, run() fills the report in place
        out = report
    elapsed = time.perf_counter() - t0
    values: dict[str, float] = {}
    try:
        for m in out.dict()["metrics"]:
            cfg = m.get("config", {})
            if "Wasserstein" in str(cfg.get("method", "")):
                values[cfg["column"]] = float(m["value"])
    except Exception:  # the result layout differs between releases; timing is what counts
        pass
    return elapsed, values, version


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--no-evidently", action="store_true")
    args = ap.parse_args()
    ref, cur = load_frames(args.rows)
    print(f"data: {len(ref):,} reference rows and {len(cur):,} current rows, "
          f"{ref.shape[1]} columns")
    ours, summary = run_assay(ref, cur)
    print(f"assay:     {ours:8.2f} s  (drifted share {summary['drifted_share']:.3f}: "
          f"{', '.join(summary['drifted']) or 'none'})")
    if args.no_evidently:
        return
    try:
        theirs, w, version = run_evidently(ref, cur)
    except RuntimeError as exc:
        print(f"evidently: not run: {exc}")
        return
    print(f"evidently: {theirs:8.2f} s  (version {version}, DataDriftPreset)")
    print(f"ratio:     {theirs / ours:8.1f}x faster (target >= 20x)")
    if w:
        diffs = [abs(summary["features"][c]["wasserstein_norm"] - v) for c, v in w.items()
                 if summary["features"][c]["wasserstein_norm"] is not None]
        if diffs:
            print(f"normalised Wasserstein, assay vs Evidently on {len(diffs)} columns: "
                  f"largest difference {max(diffs):.2e}")


if __name__ == "__main__":
    main()
