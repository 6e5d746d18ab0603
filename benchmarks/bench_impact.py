"""Value curve, bootstrap intervals and the value-fairness frontier: assay vs row-level peers.

    python benchmarks/bench_impact.py [--rows 10000000] [--replicates 1000]
                                      [--peer-rows 200000,400000] [--peer-replicates 1]
                                      [--fairlearn-rows 1000000,2000000]

Synthetic data: two groups (40/60), a label with prevalence 30% / 40%, and a
continuous score (almost every row a distinct score: the hardest case for an
exact curve), German-credit-style costs ``tp=0,fp=-5,tn=0,fn=-1``.

assay, on ``--rows`` rows, timed as one job: the statistic (per group and
label, the count at every distinct score), the value curve exact at every
distinct score with the best threshold, 1,000 bootstrap replicates of the value
overall and per group on a 200-threshold grid, and the frontier (deterministic
group thresholds at six parity-ratio levels, and randomised ones at exact
demographic parity and exact equal opportunity).

Peers, the same numbers computed row by row:

(a) scikit-learn: ``confusion_matrix`` overall and per group at each of the 200
    grid thresholds, on the data and on each row-level bootstrap replicate
    (rows drawn with replacement), plus a NumPy sweep over the distinct scores
    for the exact best threshold. Far too slow at 10M rows x 1,000 replicates:
    measured on two smaller sizes (one replicate and the data each), the time
    per pass printed for both, and extrapolated along the line through them to
    the full size and number of passes, labelled as an extrapolation.
(b) Fairlearn ``ThresholdOptimizer`` (prefit, accuracy objective) fitted once
    for demographic parity and once for equal opportunity
    (``true_positive_rate_parity``), measured on two sizes and extrapolated the
    same way (its cost is linear in rows).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from assay.impact import (  # noqa: E402
    parse_value_model,
    score_stats,
    value_curve,
    value_fairness_frontier,
)

COSTS = "tp=0,fp=-5,tn=0,fn=-1"
GRID = 200


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    g = (rng.random(n) < 0.4).astype(np.int64)  # 1 = group b (40%)
    y = (rng.random(n) < np.where(g == 1, 0.3, 0.4)).astype(np.int64)
    z = rng.normal(0, 1, n) + 1.2 * y - 0.3 * g
    s = 1 / (1 + np.exp(-z))
    return y, s, np.where(g == 1, "b", "a")


def run_assay(y: np.ndarray, s: np.ndarray, g: np.ndarray, replicates: int
              ) -> tuple[float, dict[str, Any]]:
    model = parse_value_model(COSTS)
    accuracy = parse_value_model("tp=1,fp=0,tn=1,fn=0")
    t0 = time.perf_counter()
    stats = score_stats(y, s, g, grouping="group")
    t1 = time.perf_counter()
    curve = value_curve(stats, model, points=GRID, n_boot=replicates, seed=0)
    t2 = time.perf_counter()
    det = value_fairness_frontier(stats, model, constraint="demographic_parity_ratio")
    dp = value_fairness_frontier(stats, accuracy, constraint="demographic_parity_ratio",
                                 levels=[1.0], randomized=True)
    eo = value_fairness_frontier(stats, accuracy, constraint="equal_opportunity_difference",
                                 levels=[0.0], randomized=True)
    t3 = time.perf_counter()
    return t3 - t0, {"stats": t1 - t0, "curve+bootstrap": t2 - t1, "frontier": t3 - t2,
                     "best": curve.best, "distinct": len(stats.scores),
                     "dp_accuracy": dp.levels[0]["value_per_decision"],
                     "eo_accuracy": eo.levels[0]["value_per_decision"],
                     "det": det.levels}


def _row_curve(y: np.ndarray, s: np.ndarray, g: np.ndarray, grid: np.ndarray) -> None:
    from sklearn.metrics import confusion_matrix

    for t in grid:
        d = s >= t
        confusion_matrix(y, d, labels=[0, 1])
        for name in ("a", "b"):
            m = g == name
            confusion_matrix(y[m], d[m], labels=[0, 1])


def _row_best(y: np.ndarray, s: np.ndarray) -> float:
    order = np.argsort(-s, kind="stable")
    ys, ss = y[order], s[order]
    tp = np.cumsum(ys)
    fp = np.cumsum(1 - ys)
    last = np.r_[ss[1:] != ss[:-1], True]  # end of each run of equal scores
    value = -5 * fp[last] - (ys.sum() - tp[last])
    return float(max(value.max(), -ys.sum()))


def run_sklearn(y: np.ndarray, s: np.ndarray, g: np.ndarray, replicates: int) -> float:
    grid = np.quantile(s, np.linspace(0, 1, GRID))
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    _row_best(y, s)
    _row_curve(y, s, g, grid)
    for _ in range(replicates):
        i = rng.integers(0, len(y), len(y))
        _row_curve(y[i], s[i], g[i], grid)
    return time.perf_counter() - t0




def run_fairlearn(y: np.ndarray, s: np.ndarray, g: np.ndarray) -> tuple[float, float, float]:
    from fairlearn.postprocessing import ThresholdOptimizer
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Scores(ClassifierMixin, BaseEstimator):
        def fit(self, X: Any, yy: Any) -> Scores:
            self.classes_ = np.array([0, 1])
            return self

        def predict_proba(self, X: Any) -> np.ndarray:
            p = np.asarray(X)[:, 0]
            return np.column_stack([1 - p, p])

        def predict(self, X: Any) -> np.ndarray:
            return (np.asarray(X)[:, 0] >= 0.5).astype(int)

    X = s.reshape(-1, 1)
    est = Scores().fit(X, y)
    t0 = time.perf_counter()
    acc = []
    for constraint in ("demographic_parity", "true_positive_rate_parity"):
        to = ThresholdOptimizer(estimator=est, constraints=constraint,
                                objective="accuracy_score", prefit=True,
                                predict_method="predict_proba")
        to.fit(X, y, sensitive_features=g)
        p = to._pmf_predict(X, sensitive_features=g)[:, 1]
        acc.append(float(np.mean(p * y + (1 - p) * (1 - y))))
    return time.perf_counter() - t0, acc[0], acc[1]


def _extrapolate(sizes: list[int], times: list[float], n: int) -> float:
    """The line through two measured (size, time) points, at size ``n``; with one size or
    a line that does not rise (too noisy), proportional to the largest size, said so."""
    if len(sizes) >= 2 and times[-1] > times[0] and sizes[-1] > sizes[0]:
        slope = (times[-1] - times[0]) / (sizes[-1] - sizes[0])
        return times[0] + slope * (n - sizes[0])
    print("  (the measured sizes do not show a rising cost: extrapolating in proportion "
          "to the largest size)")
    return times[-1] * n / sizes[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--replicates", type=int, default=1000)
    ap.add_argument("--peer-rows", default="200000,400000")
    ap.add_argument("--peer-replicates", type=int, default=1)
    ap.add_argument("--fairlearn-rows", default="1000000,2000000")
    a = ap.parse_args()

    y, s, g = make_data(a.rows)
    t_assay, info = run_assay(y, s, g, a.replicates)
    print(f"assay, {a.rows:,} rows ({info['distinct']:,} distinct scores), "
          f"{a.replicates:,} replicates: {t_assay:.2f} s (statistic {info['stats']:.2f} s, "
          f"curve + bootstrap {info['curve+bootstrap']:.2f} s, frontier "
          f"{info['frontier']:.2f} s)")
    print(f"  best threshold {info['best']['threshold']:.6f}, value per decision "
          f"{info['best']['value_per_decision']:.5f} {info['best']['value_per_decision_ci']}")
    print(f"  randomised frontier, accuracy at exact parity: DP {info['dp_accuracy']:.5f}, "
          f"EO {info['eo_accuracy']:.5f}")
    best_row = _row_best(y, s)
    print(f"  row-level best total value {best_row:.1f} vs assay "
          f"{info['best']['total_value']:.1f}")
    assert abs(best_row - info["best"]["total_value"]) < 1e-6, "best value differs"

    sk_sizes, sk_pass = [], []
    for n in [int(x) for x in a.peer_rows.split(",")]:
        yy, ss, gg = make_data(n, seed=1)
        t = run_sklearn(yy, ss, gg, a.peer_replicates)
        per_pass = t / (a.peer_replicates + 1)
        sk_sizes.append(n)
        sk_pass.append(per_pass)
        print(f"scikit-learn row level, {n:,} rows, {a.peer_replicates} replicates + the "
              f"data: {t:.2f} s measured ({per_pass:.2f} s per pass)")
    per_pass_full = _extrapolate(sk_sizes, sk_pass, a.rows)
    sk = per_pass_full * (a.replicates + 1)
    print(f"scikit-learn extrapolated to {a.rows:,} rows x {a.replicates + 1:,} passes: "
          f"{sk:,.0f} s (EXTRAPOLATION: {per_pass_full:.1f} s per pass from the line "
          "through the two measured sizes, times the passes)")

    fl_sizes, fl_times = [], []
    for n in [int(x) for x in a.fairlearn_rows.split(",")]:
        yy, ss, gg = make_data(n, seed=2)
        t, dp_acc, eo_acc = run_fairlearn(yy, ss, gg)
        fl_sizes.append(n)
        fl_times.append(t)
        _, mine = run_assay(yy, ss, gg, 0)
        print(f"Fairlearn ThresholdOptimizer (DP + EO), {n:,} rows: {t:.2f} s measured; "
              f"accuracy at exact parity DP {dp_acc:.5f}, EO {eo_acc:.5f}; assay on the "
              f"same rows DP {mine['dp_accuracy']:.5f}, EO {mine['eo_accuracy']:.5f}")
        assert mine["dp_accuracy"] >= dp_acc - 1e-9 and mine["eo_accuracy"] >= eo_acc - 1e-9
    fl = _extrapolate(fl_sizes, fl_times, a.rows)
    print(f"Fairlearn extrapolated to {a.rows:,} rows: {fl:,.1f} s (EXTRAPOLATION, the "
          "line through the two measured sizes)")
    print()
    print(f"| | time on {a.rows:,} rows |")
    print("| --- | --- |")
    print(f"| assay: curve + {a.replicates:,} replicates + frontier | {t_assay:.2f} s |")
    print(f"| scikit-learn row level, curve + {a.replicates:,} replicates (extrapolated) "
          f"| {sk:,.0f} s |")
    print(f"| Fairlearn ThresholdOptimizer, DP + EO, no intervals (extrapolated) | "
          f"{fl:,.1f} s |")
    print(f"| **ratio vs scikit-learn** | **{sk / t_assay:,.0f}x** |")
    print(f"| **ratio vs Fairlearn (frontier only: assay {info['frontier']:.2f} s)** | "
          f"**{fl / info['frontier']:,.1f}x** |")


if __name__ == "__main__":
    main()
