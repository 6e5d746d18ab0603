"""Subgroup metrics and their bootstrap: assay's sufficient statistics vs Fairlearn.

    python benchmarks/bench_metrics.py [--rows 1000000] [--boot-rows N] [--fairlearn-boot-rows N]

Synthetic data: 20 numeric features and three sensitive features (sex with
2 categories, race with 5, age band with 4, unevenly sized); the label comes
from a logistic model of the features, and the score from a scikit-learn
LogisticRegression fitted on 50,000 rows.

(a) Subgroup metrics on ``--rows`` rows (default 1,000,000): accuracy,
    precision, recall, false positive rate and selection rate by sex x race
    and by race, plus equalized odds difference and demographic parity ratio
    by race and by sex x race. assay: build the statistic from the arrays and
    derive everything; Fairlearn: two ``MetricFrame`` and four fairness
    functions on the same arrays. Both produce the same numbers (checked).
    Both get NumPy arrays, the sensitive features as string arrays; assay's
    time with pandas categorical sensitive features (what a ``category``
    dtype or a Parquet dictionary column gives, no string encoding needed)
    is printed too. Fairlearn is not given categoricals: it is slower with
    them.
(b) Bootstrap. assay: 1,000 replicates on a statistic of ``--boot-rows`` rows
    (default 10 x ``--rows``; built in 1M-row batches, time reported apart),
    (b1) every count-based metric for every group of every grouping (each
    feature, each pair, all three) and (b2) the full results.json block
    (``classification_summary``: every metric including AUC, log loss,
    Brier, ECE, every group, every fairness gap with intervals and p-values).
    Fairlearn: ``MetricFrame(n_boot=20)`` with the five metrics by sex x race
    on ``--fairlearn-boot-rows`` rows (default 100,000). Fairlearn's cost
    grows with rows x replicates; the script prints the measured time and a
    linear extrapolation to 1,000 replicates on the same rows, clearly
    labelled as an extrapolation, never as a measurement.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from sklearn.linear_model import LogisticRegression  # noqa: E402

from assay.metrics import Bootstrap, ClassificationStats, classification_summary  # noqa: E402
from assay.metrics._formulas import COUNT_METRICS  # noqa: E402
from assay.metrics.fairness import fairness_report  # noqa: E402
from assay.metrics.summary import groupings  # noqa: E402

FIVE = ["accuracy", "precision", "recall", "fpr", "selection_rate"]


def make_model(seed: int = 0) -> tuple[np.ndarray, LogisticRegression]:
    rng = np.random.default_rng(seed)
    beta = rng.normal(0, 0.4, 20)
    X, y, _ = _rows(rng, 50_000, beta)
    return beta, LogisticRegression(max_iter=300).fit(X, y)


def _rows(rng: np.random.Generator, n: int, beta: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    X = rng.normal(size=(n, 20)).astype(np.float64)
    sex = rng.choice(np.array(["female", "male"]), n, p=[0.45, 0.55])
    race = rng.choice(np.array(["white", "black", "asian", "native", "other"]), n,
                      p=[0.6, 0.18, 0.12, 0.04, 0.06])
    age = rng.choice(np.array(["18-25", "26-40", "41-60", "60+"]), n, p=[0.2, 0.4, 0.3, 0.1])
    logit = X @ beta - 0.3 + 0.25 * (sex == "male") - 0.2 * (race == "black")
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return X, y, {"sex": sex, "race": race, "age": age}


def batch(rng: np.random.Generator, n: int, beta: np.ndarray, model: LogisticRegression
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    X, y, sens = _rows(rng, n, beta)
    score = model.predict_proba(X)[:, 1]
    return y, (score >= 0.5).astype(np.int64), score, sens


def _ours(y: np.ndarray, yp: np.ndarray, sens: dict) -> tuple[float, float, dict]:
    t0 = time.perf_counter()
    stats = ClassificationStats.from_arrays(y, yp, sensitive=sens)
    t_build = time.perf_counter() - t0
    out = {"sex x race": stats.frame(FIVE, by=["sex", "race"]),
           "race": stats.frame(FIVE, by=["race"])}
    for by in (["race"], ["sex", "race"]):
        rep = fairness_report(stats, by, metrics=["equalized_odds_difference",
                                                  "demographic_parity_ratio"])
        out["fair " + " x ".join(by)] = {k: rep[k]["value"] for k in (
            "equalized_odds_difference", "demographic_parity_ratio")}
    return time.perf_counter() - t0, t_build, out


def part_a(rows: int, beta: np.ndarray, model: LogisticRegression) -> None:
    from fairlearn import metrics as flm

    rng = np.random.default_rng(1)
    y, yp, _, raw = batch(rng, rows, beta, model)
    print(f"(a) subgroup metrics on {rows:,} rows: 5 metrics by sex x race and by race, "
          "equalized odds difference and demographic parity ratio by race and by sex x race")
    t_ours, t_build, ours = _ours(y, yp, raw)

    fl_metrics = {"accuracy": _acc, "precision": _prec,
                  "recall": flm.true_positive_rate, "fpr": flm.false_positive_rate,
                  "selection_rate": flm.selection_rate}
    t0 = time.perf_counter()
    sf = pd.DataFrame({"sex": raw["sex"], "race": raw["race"]})
    mf_sr = flm.MetricFrame(metrics=fl_metrics, y_true=y, y_pred=yp, sensitive_features=sf)
    mf_r = flm.MetricFrame(metrics=fl_metrics, y_true=y, y_pred=yp,
                           sensitive_features=raw["race"])
    theirs = {}
    for key, feats in (("fair race", raw["race"]), ("fair sex x race", sf)):
        theirs[key] = {
            "equalized_odds_difference": flm.equalized_odds_difference(
                y, yp, sensitive_features=feats),
            "demographic_parity_ratio": flm.demographic_parity_ratio(
                y, yp, sensitive_features=feats)}
    t_fl = time.perf_counter() - t0

    worst = 0.0
    for (a, b), row in mf_sr.by_group.iterrows():
        for m in FIVE:
            worst = max(worst, abs(ours["sex x race"].by_group[f"{a} x {b}"][m] - row[m]))
    for g, row in mf_r.by_group.iterrows():
        for m in FIVE:
            worst = max(worst, abs(ours["race"].by_group[g][m] - row[m]))
    for key in theirs:
        for m in theirs[key]:
            worst = max(worst, abs(ours[key][m] - theirs[key][m]))
    cats = {k: pd.Categorical(v) for k, v in raw.items()}
    t_cat, _, _ = _ours(y, yp, cats)
    print("    same inputs for both: NumPy arrays, sensitive features as string arrays")
    print(f"    assay    {t_ours:8.3f} s  (of which building the statistic {t_build:.3f} s)")
    print(f"    fairlearn{t_fl:8.3f} s")
    print(f"    ratio    {t_fl / t_ours:8.1f} x   largest difference in any number: {worst:.1e}")
    print(f"    assay with pandas categorical sensitive features (no string encoding): "
          f"{t_cat:.3f} s (ratio to the Fairlearn time above {t_fl / t_cat:.1f} x)")


def _acc(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def _prec(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    sel = y_pred == 1
    return float(y_true[sel].mean()) if sel.any() else float("nan")


def part_b(boot_rows: int, fl_rows: int, beta: np.ndarray, model: LogisticRegression) -> None:
    from fairlearn import metrics as flm

    print(f"(b) bootstrap: assay 1,000 replicates on {boot_rows:,} rows; "
          f"Fairlearn MetricFrame n_boot=20 on {fl_rows:,} rows")
    rng = np.random.default_rng(2)
    stats = None
    left = boot_rows
    t_build = 0.0
    while left > 0:
        n = min(left, 1_000_000)
        y, yp, s, sens = batch(rng, n, beta, model)
        t0 = time.perf_counter()
        part = ClassificationStats.from_arrays(y, yp, score=s, sensitive=sens)
        stats = part if stats is None else stats.merge(part)
        t_build += time.perf_counter() - t0
        left -= n
    print(f"    building the statistic (with scores) from {boot_rows:,} rows in 1M-row "
          f"batches, merged: {t_build:.2f} s (data generation excluded)")

    feats = ["sex", "race", "age"]
    t0 = time.perf_counter()
    boot = Bootstrap(stats, n_boot=1000, seed=0)
    n_values = 0
    for by in [None, *groupings(feats)]:
        reps = boot.replicates(list(COUNT_METRICS), by)
        ivs = {m: boot.interval(r) for m, r in reps.items()}
        n_values += sum(v.shape[0] for v in ivs.values())
    t_b1 = time.perf_counter() - t0
    print(f"    (b1) assay: 1,000 replicates of {len(COUNT_METRICS)} count metrics for every "
          f"group of {len(groupings(feats)) + 1} groupings ({n_values} intervals): {t_b1:.3f} s")
    t0 = time.perf_counter()
    out = classification_summary(stats, sensitive=feats, n_boot=1000, seed=0)
    t_b2 = time.perf_counter() - t0
    n_fair = sum(len(v) for v in out["fairness"].values())
    print(f"    (b2) assay: full results.json metrics block (every metric incl. AUC/log loss/"
          f"Brier/ECE, every group, {n_fair} fairness gaps with CIs and p-values), "
          f"1,000 replicates: {t_b2:.3f} s")

    y, yp, _, sens = batch(np.random.default_rng(3), fl_rows, beta, model)
    sf = pd.DataFrame({"sex": sens["sex"], "race": sens["race"]})
    fl_metrics = {"accuracy": _acc, "precision": _prec, "recall": flm.true_positive_rate,
                  "fpr": flm.false_positive_rate, "selection_rate": flm.selection_rate}
    t0 = time.perf_counter()
    flm.MetricFrame(metrics=fl_metrics, y_true=y, y_pred=yp, sensitive_features=sf,
                    n_boot=20, ci_quantiles=[0.025, 0.975], random_state=0)
    t_fl = time.perf_counter() - t0
    per_rep = t_fl / 20
    print(f"    fairlearn: 5 metrics by sex x race, 20 replicates on {fl_rows:,} rows: "
          f"{t_fl:.2f} s measured ({per_rep:.3f} s per replicate)")
    print(f"    extrapolated (not measured): 1,000 replicates on {fl_rows:,} rows ~ "
          f"{per_rep * 1000:.0f} s; on {boot_rows:,} rows ~ "
          f"{per_rep * 1000 * boot_rows / fl_rows:.0f} s (linear in rows)")
    print(f"    ratio, same work (5 metrics by sex x race, 1,000 replicates) at "
          f"{fl_rows:,} rows for Fairlearn vs {boot_rows:,} rows for assay (b1, which does "
          f"more): {per_rep * 1000 / t_b1:.0f} x")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows for part (a)")
    ap.add_argument("--boot-rows", type=int, default=None,
                    help="rows of the bootstrapped statistic (default 10 x --rows)")
    ap.add_argument("--fairlearn-boot-rows", type=int, default=None,
                    help="rows for Fairlearn's bootstrap (default --rows / 10)")
    args = ap.parse_args(argv)
    boot_rows = args.boot_rows or 10 * args.rows
    fl_rows = args.fairlearn_boot_rows or max(args.rows // 10, 1000)
    beta, model = make_model()
    part_a(args.rows, beta, model)
    part_b(boot_rows, fl_rows, beta, model)


if __name__ == "__main__":
    main()
