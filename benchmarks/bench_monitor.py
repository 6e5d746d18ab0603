"""A year of daily monitoring windows: assay vs Evidently and NannyML, side by side.

    python benchmarks/bench_monitor.py [--windows 365] [--rows 100000]
        [--peer-windows 10] [--no-evidently] [--no-nannyml]

Data (synthetic, seeded): 20 numeric and 3 categorical features; the score
comes from a known logistic model of them, so it is calibrated, and each
label is drawn from its score. Some windows are drifted (``num_00`` moves by
one standard deviation and ``cat_0``'s mix changes): window 3 and every 60th
window from window 30. The training data (``--rows`` rows, undrifted) is the
reference of all three tools.

* assay: a real SQLite store, a registered model version with its training
  data; every window goes through ``assay.monitor.ingest`` (with its labels),
  then ``assay.monitor.run`` evaluates all windows with a plan of feature
  drift against training (PSI, all 23 features), prediction drift against
  the previous window, the CBPE estimate of ROC AUC and accuracy, and
  performance drop on the labels (all with the policy's default 1,000
  bootstrap replicates for the intervals).
* Evidently: ``Report([DataDriftPreset()])`` per window against the reference.
* NannyML: ``CBPE`` (ROC AUC and accuracy; fitted on the reference, one chunk
  per window) and ``UnivariateDriftCalculator`` (Jensen-Shannon) over the
  same windows.

All three get the same pandas DataFrames; generating the data is not timed.
The peers take long at full scale, so they run on the first
``--peer-windows`` windows, timed at two sizes (half and all of them): when
their cost per window is the same at both sizes (it is printed), the full
figure is extrapolated linearly, and the output says so. ``--peer-windows 0``
runs them on every window.

The script also times evaluating one new window after 30 and after
``--windows`` windows of history, and prints the bytes stored per window.

NannyML sends usage analytics to an outside service unless
``NML_DISABLE_USAGE_LOGGING=1`` is set: this script sets it before importing
NannyML. Evidently 0.7 imports ``infer_dtype_from_object`` from pandas'
internals, which pandas 3 removed; ``bench_drift.py``'s stand-in is used.
"""

from __future__ import annotations

import os
import warnings

os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"  # before anything can import NannyML

import argparse
import json
import statistics
import sys
import tempfile
import time
import zlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

N_NUM, CATS = 20, {"cat_0": 5, "cat_1": 3, "cat_2": 10}
NUMERIC = [f"num_{i:02d}" for i in range(N_NUM)]
FEATURES = NUMERIC + list(CATS)
DAY0 = date(2025, 1, 1)
DRIFT_FEATURE = "num_00"


def drifted(i: int) -> bool:
    return i == 3 or (i >= 30 and (i - 30) % 60 == 0)


class Generator:
    """Seeded synthetic production data with a calibrated score."""

    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.seed = seed
        self.loc = rng.normal(0, 3, N_NUM)
        self.scale = rng.uniform(0.5, 4, N_NUM)
        self.lognormal = rng.random(N_NUM) < 0.3  # skewed amounts
        self.beta = rng.normal(0, 0.35, N_NUM)
        self.cat_p = {c: rng.dirichlet(np.ones(k) * 3) for c, k in CATS.items()}
        self.cat_beta = {c: rng.normal(0, 0.4, k) for c, k in CATS.items()}
        self.intercept = -1.0

    def frame(self, i: int, rows: int, *, drift: bool = False, ids: bool = False
              ) -> pd.DataFrame:
        rng = np.random.default_rng([self.seed, i + 1])
        z = rng.standard_normal((rows, N_NUM))
        if drift:
            z[:, 0] += 1.0
        logit = self.intercept + z @ self.beta
        x = self.loc + self.scale * z
        x[:, self.lognormal] = np.exp(z[:, self.lognormal] * 0.5 + 3)
        cols: dict[str, Any] = {n: x[:, j] for j, n in enumerate(NUMERIC)}
        for c, k in CATS.items():
            p = self.cat_p[c]
            if drift and c == "cat_0":
                p = p[::-1]
            code = rng.choice(k, size=rows, p=p)
            logit = logit + self.cat_beta[c][code]
            cols[c] = pd.Categorical.from_codes(code, [f"{c}_v{j}" for j in range(k)]
                                                ).astype(str)
        score = 1 / (1 + np.exp(-logit))
        cols["score"] = score
        cols["pred"] = (score >= 0.5).astype(np.int64)
        cols["label"] = (rng.random(rows) < score).astype(np.int64)
        day = DAY0 + timedelta(days=i)
        cols["ts"] = np.full(rows, np.datetime64(day.isoformat(), "us"))
        df = pd.DataFrame(cols)
        if ids:
            df["row_id"] = [f"w{i}-{j}" for j in range(rows)]
        return df


def policy_text() -> str:
    return """\
name: bench-monitor
version: "1"
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
      - id: drift.prediction
        params: {metric: psi, against: previous_window}
        threshold: {max: 0.1}
        judge: interval
      - id: performance.estimated
        name: estimated-auc
        params: {metric: roc_auc}
        threshold: {min: 0.6}
        judge: interval
      - id: performance.estimated
        name: estimated-accuracy
        params: {metric: accuracy}
        threshold: {min: 0.6}
        judge: interval
      - id: performance.drop
        params: {metric: roc_auc, baseline: 0.75}
        threshold: {max: 0.05}
        judge: interval
"""


# --------------------------------------------------------------------------- assay


class AssayStore:
    """A real SQLite store with one monitored model version."""

    def __init__(self, folder: Path, train: pd.DataFrame) -> None:
        from assay import registry as reg
        from assay.config import Settings
        from assay.evidence import digest_file
        from assay.store import open_store

        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.store = open_store(Settings(home=folder,
                                         database_url=f"sqlite:///{folder / 'assay.db'}"))
        train_path = folder / "train.parquet"
        train[[*FEATURES, "score", "pred", "label"]].to_parquet(train_path, index=False)
        self.policy = folder / "policy.yaml"
        self.policy.write_text(policy_text())
        with self.store.transaction() as s:
            reg.add_user(s, None, "ada", display_name="Ada", roles=["admin"])
        with self.store.transaction() as s:
            ada = reg.get_user(s, "ada")
            reg.add_user(s, ada, "dana", display_name="Dana", roles=["data_scientist"])
            reg.add_user(s, ada, "victor", display_name="Victor", roles=["validator"])
            reg.add_user(s, ada, "bo", display_name="Bo", roles=["business_owner"])
        with self.store.transaction() as s:
            dana = reg.get_user(s, "dana")
            reg.register_model(s, dana, "bench", owner="bo", decision_type="automated",
                               criticality="high", purpose="benchmark")
            reg.add_version(s, dana, "bench", "1", training_data_source=str(train_path),
                            training_data_digest=digest_file(train_path))

    def ingest(self, frame: pd.DataFrame, i: int, *, id_column: str | None = None) -> None:
        from assay import registry as reg
        from assay.monitor import ingest

        with self.store.transaction() as s:
            ingest(s, reg.get_user(s, "dana"), "bench", "1", frame, time_column="ts",
                   score="score", prediction="pred", target="label", id_column=id_column,
                   now=_after(i), name=f"window {i}")

    def run(self, i: int) -> Any:
        from assay import registry as reg
        from assay.monitor import run

        with self.store.transaction() as s:
            return run(s, reg.get_user(s, "victor"), "bench", "1", policy=str(self.policy),
                       tier="high", now=_after(i))

    def evaluations(self) -> list[Any]:
        from sqlalchemy import select

        from assay.monitor.tables import MonitorEvaluation

        with self.store.transaction() as s:
            return list(s.execute(select(MonitorEvaluation.window_start, MonitorEvaluation.rule,
                                         MonitorEvaluation.label, MonitorEvaluation.value,
                                         MonitorEvaluation.state)))

    def blobs(self) -> list[bytes]:
        from sqlalchemy import select

        from assay.monitor.tables import MonitorWindow

        with self.store.transaction() as s:
            return list(s.scalars(select(MonitorWindow.state)))


def _after(i: int) -> datetime:
    """Just after window ``i`` closed."""
    d = DAY0 + timedelta(days=i + 1)
    return datetime(d.year, d.month, d.day, 0, 1, tzinfo=UTC)


def run_assay(gen: Generator, train: pd.DataFrame, windows: int, rows: int, folder: Path
              ) -> tuple[float, float, AssayStore]:
    store = AssayStore(folder, train)
    t_ingest = 0.0
    for i in range(windows):
        frame = gen.frame(i, rows, drift=drifted(i))
        t0 = time.perf_counter()
        store.ingest(frame, i)
        t_ingest += time.perf_counter() - t0
        if (i + 1) % 50 == 0:
            print(f"  assay: {i + 1} windows ingested ({t_ingest:.1f} s)", flush=True)
    t0 = time.perf_counter()
    store.run(windows - 1)
    t_run = time.perf_counter() - t0
    return t_ingest, t_run, store


def one_more_window(store: AssayStore, gen: Generator, history: int, rows: int,
                    repeats: int = 3) -> float:
    """Median time to ingest and evaluate one new window after ``history`` windows."""
    times = []
    for k in range(repeats):
        i = history + k
        frame = gen.frame(i, rows, drift=drifted(i))
        t0 = time.perf_counter()
        store.ingest(frame, i)
        store.run(i)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def stored_bytes(store: AssayStore) -> dict[str, float]:
    blobs = store.blobs()
    sizes = [len(b) for b in blobs]
    body = json.loads(zlib.decompress(blobs[len(blobs) // 2]))
    per_feature = {k: len(zlib.compress(json.dumps(v, separators=(",", ":")).encode(), 6))
                   for k, v in body["features"].items()}
    num = [per_feature[f] for f in NUMERIC]
    cat = [per_feature[f] for f in CATS]
    return {"mean": statistics.mean(sizes), "max": max(sizes),
            "numeric": statistics.mean(num), "categorical": statistics.mean(cat),
            "features": sum(per_feature.values())}


# --------------------------------------------------------------------------- peers


def run_evidently(gen: Generator, train: pd.DataFrame, windows: list[int], rows: int
                  ) -> tuple[list[float], dict[int, set[str]], str]:
    from bench_drift import _evidently_imports

    Report, DataDriftPreset, version = _evidently_imports()
    ref = train[FEATURES]
    times: list[float] = []
    flagged: dict[int, set[str]] = {}
    for i in windows:
        cur = gen.frame(i, rows, drift=drifted(i))[FEATURES]
        t0 = time.perf_counter()
        out = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
        times.append(time.perf_counter() - t0)
        flagged[i] = _evidently_drifted(out)
    return times, flagged, version


def _evidently_drifted(out: Any) -> set[str]:
    found: set[str] = set()
    try:
        for m in out.dict()["metrics"]:
            cfg = m.get("config", {})
            col, thr = cfg.get("column"), cfg.get("threshold")
            if col in FEATURES and thr is not None and isinstance(m.get("value"), int | float):
                method = str(cfg.get("method", ""))
                value = float(m["value"])
                # p-value tests drift when below the threshold, distances when above it
                if ("p_value" in method or "test" in method.lower()) and "distance" not in \
                        method.lower():
                    if value < thr:
                        found.add(col)
                elif value >= thr:
                    found.add(col)
    except Exception:  # the layout differs between releases; timing is what counts
        pass
    return found


def run_nannyml(gen: Generator, train: pd.DataFrame, windows: list[int], rows: int
                ) -> tuple[float, float, dict[int, dict[str, float]], dict[int, set[str]], str]:
    import nannyml as nml

    analysis = pd.concat([gen.frame(i, rows, drift=drifted(i)) for i in windows],
                         ignore_index=True)
    t0 = time.perf_counter()
    cbpe = nml.CBPE(y_pred_proba="score", y_pred="pred", y_true="label",
                    metrics=["roc_auc", "accuracy"], problem_type="classification_binary",
                    chunk_size=rows)
    cbpe.fit(train)
    est = cbpe.estimate(analysis.drop(columns=["label"]))
    t_cbpe = time.perf_counter() - t0
    t0 = time.perf_counter()
    # one reference chunk gives no spread for NannyML's default (standard deviation)
    # thresholds; a constant 0.1, as Evidently's default, flags drift meaningfully
    from nannyml.thresholds import ConstantThreshold

    uni = nml.UnivariateDriftCalculator(column_names=FEATURES, chunk_size=rows,
                                        continuous_methods=["jensen_shannon"],
                                        categorical_methods=["jensen_shannon"],
                                        thresholds={"jensen_shannon":
                                                    ConstantThreshold(lower=None, upper=0.1)})
    uni.fit(train[FEATURES])
    drift = uni.calculate(analysis[FEATURES])
    t_uni = time.perf_counter() - t0
    estimates: dict[int, dict[str, float]] = {}
    flagged: dict[int, set[str]] = {}
    try:
        ef = est.filter(period="analysis").to_df()
        for k, i in enumerate(windows):
            estimates[i] = {m: float(ef[(m, "value")].iloc[k]) for m in ("roc_auc", "accuracy")}
        df = drift.filter(period="analysis").to_df()
        for k, i in enumerate(windows):
            flagged[i] = {c for c in FEATURES if bool(df[(c, "jensen_shannon", "alert")].iloc[k])}
    except Exception as exc:  # the layout differs between releases; timing is what counts
        print(f"  nannyml: could not read the results ({exc})")
    return t_cbpe, t_uni, estimates, flagged, nml.__version__


def run_nannyml_daily(gen: Generator, train: pd.DataFrame, windows: list[int], rows: int
                      ) -> tuple[float, list[float]]:
    """NannyML as a daily job runs it: fitted once on the reference, then each new
    window estimated (CBPE) and checked for drift (univariate) on its own, as it
    arrives. Returns the fitting time and the time of each window."""
    import nannyml as nml
    from nannyml.thresholds import ConstantThreshold

    # one chunk per call is the point of a daily job; NannyML warns that it is few
    warnings.filterwarnings("ignore", message="The resulting number of chunks is too low")
    t0 = time.perf_counter()
    cbpe = nml.CBPE(y_pred_proba="score", y_pred="pred", y_true="label",
                    metrics=["roc_auc", "accuracy"], problem_type="classification_binary",
                    chunk_size=rows)
    cbpe.fit(train)
    uni = nml.UnivariateDriftCalculator(column_names=FEATURES, chunk_size=rows,
                                        continuous_methods=["jensen_shannon"],
                                        categorical_methods=["jensen_shannon"],
                                        thresholds={"jensen_shannon":
                                                    ConstantThreshold(lower=None, upper=0.1)})
    uni.fit(train[FEATURES])
    t_fit = time.perf_counter() - t0
    per: list[float] = []
    for i in windows:
        frame = gen.frame(i, rows, drift=drifted(i))
        t0 = time.perf_counter()
        cbpe.estimate(frame.drop(columns=["label"]))
        uni.calculate(frame[FEATURES])
        per.append(time.perf_counter() - t0)
    return t_fit, per


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--windows", type=int, default=30)
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--peer-windows", type=int, default=10,
                    help="windows Evidently runs on (0: all), timed at half and at all of them")
    ap.add_argument("--nannyml-windows", type=int, default=None,
                    help="windows NannyML runs on (default: --peer-windows; 0: all)")
    ap.add_argument("--history", type=int, default=30,
                    help="the short history for the one-more-window timing")
    ap.add_argument("--no-evidently", action="store_true")
    ap.add_argument("--no-nannyml", action="store_true")
    ap.add_argument("--daily-windows", type=int, default=5,
                    help="windows NannyML is also run on one at a time, as a daily job "
                         "would (0: skip); compared with assay's one-more-window cost")
    args = ap.parse_args()
    W, R = args.windows, args.rows
    gen = Generator(0)
    train = gen.frame(-1, R)
    print(f"data: {W} daily windows of {R:,} rows, {N_NUM} numeric + {len(CATS)} categorical "
          f"features, calibrated score and labels; drifted windows: "
          f"{', '.join(str(i) for i in range(W) if drifted(i))}; reference {R:,} rows")
    tmp = Path(tempfile.mkdtemp(prefix="bench-monitor-"))

    t_ing, t_run, store = run_assay(gen, train, W, R, tmp / "full")
    ours = t_ing + t_run
    print(f"assay:     {ours:8.2f} s  (ingest {t_ing:.2f} s, run {t_run:.2f} s; "
          f"{ours / W * 1000:.0f} ms per window)")
    evals = store.evaluations()

    # ---------------------------------------------------------- one more window
    short = AssayStore(tmp / "short", train)
    for i in range(args.history):
        short.ingest(gen.frame(i, R, drift=drifted(i)), i)
    short.run(args.history - 1)
    t_short = one_more_window(short, gen, args.history, R)
    t_long = one_more_window(store, gen, W, R)
    print(f"one more window (ingest + run), median of 3: after {args.history} windows "
          f"{t_short * 1000:.0f} ms, after {W} windows {t_long * 1000:.0f} ms "
          f"(ratio {t_long / t_short:.2f})")

    size = stored_bytes(store)
    print(f"stored statistics per window: {size['mean'] / 1024:.1f} KiB on average "
          f"(largest {size['max'] / 1024:.1f} KiB); per feature, compressed alone: numeric "
          f"{size['numeric']:.0f} B, categorical {size['categorical']:.0f} B")

    def subset(k: int) -> tuple[list[int], list[int], str]:
        peer = list(range(W)) if k <= 0 else list(range(min(k, W)))
        half = peer[:max(1, len(peer) // 2)]
        note = "" if len(peer) == W else (
            f"; measured on {len(half)} and {len(peer)} windows, extrapolated to {W}")
        return peer, half, note

    notes: dict[str, str] = {}
    theirs: dict[str, float] = {}
    peer, half, notes["Evidently"] = subset(args.peer_windows)

    if not args.no_evidently:
        try:
            times, ev_flags, version = run_evidently(gen, train, peer, R)
        except RuntimeError as exc:
            print(f"evidently: not run: {exc}")
        else:
            a, b = sum(times[:len(half)]), sum(times)
            theirs["Evidently"] = _extrapolate(len(half), a, len(peer), b, W)
            print(f"evidently {version}, DataDriftPreset per window: {len(half)} windows "
                  f"{a:.2f} s ({a / len(half):.3f} s each), {len(peer)} windows {b:.2f} s "
                  f"({b / len(peer):.3f} s each)")
            for i in (i for i in peer if drifted(i)):
                print(f"  drifted window {i}: Evidently flags "
                      f"{sorted(ev_flags.get(i, set())) or 'nothing readable'}")
            quiet = [i for i in peer if not drifted(i) and ev_flags.get(i)]
            print(f"  windows without drift where Evidently flags a feature: {len(quiet)}")
    peer, half, notes["NannyML"] = subset(args.peer_windows if args.nannyml_windows is None
                                          else args.nannyml_windows)
    if not args.no_nannyml:
        t_cbpe_h, t_uni_h, _, _, _ = run_nannyml(gen, train, half, R)
        t_cbpe, t_uni, nml_est, nml_flags, version = run_nannyml(gen, train, peer, R)
        a, b = t_cbpe_h + t_uni_h, t_cbpe + t_uni
        theirs["NannyML"] = _extrapolate(len(half), a, len(peer), b, W)
        print(f"nannyml {version}: CBPE {len(half)} windows {t_cbpe_h:.2f} s, {len(peer)} "
              f"windows {t_cbpe:.2f} s; univariate drift {len(half)} windows {t_uni_h:.2f} s, "
              f"{len(peer)} windows {t_uni:.2f} s; together {a / len(half):.3f} s and "
              f"{b / len(peer):.3f} s per window")
        ours_est = {(_day_index(ws), rule): v for ws, rule, _l, v, _s in evals
                    if rule.startswith("estimated-")}
        diffs: dict[str, list[float]] = {"roc_auc": [], "accuracy": []}
        for i, e in nml_est.items():
            for m, key in (("roc_auc", "estimated-auc"), ("accuracy", "estimated-accuracy")):
                if ours_est.get((i, key)) is not None:
                    diffs[m].append(abs(ours_est[(i, key)] - e[m]))
        for m, d in diffs.items():
            if d:
                print(f"  CBPE estimated {m}, assay vs NannyML over {len(d)} windows: largest "
                      f"difference {max(d):.4f} (tolerance 0.01: "
                      f"{'ok' if max(d) <= 0.01 else 'EXCEEDED'})")
        for i in (i for i in peer if drifted(i)):
            print(f"  drifted window {i}: NannyML flags "
                  f"{sorted(nml_flags.get(i, set())) or 'nothing readable'}")
        quiet = [i for i in peer if not drifted(i) and nml_flags.get(i)]
        print(f"  windows without drift where NannyML flags a feature: {len(quiet)}")

    if not args.no_nannyml and args.daily_windows > 0:
        t_fit, per = run_nannyml_daily(gen, train, list(range(min(args.daily_windows, W))), R)
        med = float(np.median(per))
        print(f"nannyml as a daily job (fitted once in {t_fit:.2f} s, then one window at a "
              f"time): median {med * 1000:.0f} ms per window over {len(per)} windows")
        print(f"ratio vs NannyML, one new window a day (ingest + run against estimate + "
              f"drift): {med * 1000:.0f} ms / {t_long * 1000:.0f} ms = {med / t_long:6.1f}x "
              f"faster")

    flagged = {(_day_index(ws), lab) for ws, rule, lab, _v, st in evals
               if rule == "drift.feature" and st == "fail"}
    d_windows = [i for i in range(W) if drifted(i)]
    caught = [i for i in d_windows if (i, DRIFT_FEATURE) in flagged]
    false = sorted({i for i, _ in flagged if not drifted(i)})
    print(f"assay drift.feature: {DRIFT_FEATURE} failed in {len(caught)} of {len(d_windows)} "
          f"drifted windows; windows without drift with a failed feature: {len(false)}")
    for who, t in theirs.items():
        print(f"ratio vs {who}: {t:8.2f} s / {ours:.2f} s = {t / ours:6.1f}x faster "
              f"(target >= 20x){notes[who]}")
    if any(notes[who] for who in theirs):
        print("  (extrapolated: the peers' time on the line through the two measured sizes, "
              "a fixed cost plus a constant cost per window; compare the two per-window "
              "figures above)")


def _extrapolate(k1: int, t1: float, k2: int, t2: float, windows: int) -> float:
    """The time for ``windows`` windows on the line through two measured sizes (a fixed
    cost plus a cost per window), or the measured time when nothing is extrapolated."""
    if k2 >= windows or k1 == k2:
        return t2
    per = (t2 - t1) / (k2 - k1)
    if per <= 0:  # the machine's noise exceeds the cost of the extra windows
        print(f"  warning: {k2} windows took no longer than {k1}; the extrapolation uses the "
              f"average cost per window at {k2} windows instead: measure more windows")
        return t2 / k2 * windows
    return t2 + per * (windows - k2)


def _day_index(ws: datetime) -> int:
    return ((ws.date() if isinstance(ws, datetime) else ws) - DAY0).days


if __name__ == "__main__":
    main()
