"""What the deeper checks cost: the ``default`` policy's high tier on 1M rows, with and without.

    python benchmarks/bench_deep_checks.py [--rows 1000000] [--train-rows 100000] [--rounds 1]

The peer is the same tier without the checks of the privacy, security,
explain and operational families and ``integrity.out_of_distribution`` (the
tier as it stood before they were added), measured side by side in the same
run: each certification runs in its own fresh process, the two alternate
within every round, and the medians are compared. The target is at most 2x.

Data (synthetic, seeded, built once before any measurement): ``--rows``
evaluation rows and ``--train-rows`` training rows of 12 numeric and 3
categorical features, two protected attributes (``sex``, ``age_group``), a
label drawn from a known logistic model; the model is a scikit-learn
pipeline (one-hot encoding and logistic regression) saved with joblib, the
training data is the reference. Both runs write ``results.json`` and
``report.html``.

The script also prints the time of each check of the full tier, measured
around the framework's ``run_one`` in the child process. A check that is
the first to ask for a statistic the certification shares between checks
(``ctx.cached``) is charged for building it, so the shared one-pass metric
statistics show up under the first performance check.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NEW_FAMILIES = ("privacy", "security", "explain", "operational")
NEW_IDS = ("integrity.out_of_distribution",)
NUMERIC = [f"x{i:02d}" for i in range(12)]
CATS = {"region": ["north", "south", "east", "west"], "channel": ["web", "branch", "phone"],
        "product": ["a", "b", "c", "d", "e"]}


def is_new(check_id: str) -> bool:
    return check_id.split(".", 1)[0] in NEW_FAMILIES or check_id in NEW_IDS


def build(tmp: Path, rows: int, train_rows: int) -> None:
    import joblib
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(7)
    coef = rng.normal(0, 0.6, len(NUMERIC))
    coef[-2:] = 0.0  # two features without effect

    def frame(n: int) -> pd.DataFrame:
        X = rng.normal(size=(n, len(NUMERIC)))
        df = pd.DataFrame(X, columns=NUMERIC)
        for c, levels in CATS.items():
            df[c] = rng.choice(levels, n)
        df["sex"] = rng.choice(["female", "male"], n)
        df["age_group"] = rng.choice(["<25", "25-60", ">60"], n, p=[0.2, 0.6, 0.2])
        logit = X @ coef + 0.4 * (df["region"] == "north") - 0.3 * (df["channel"] == "phone")
        df["label"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
        return df

    train, evaluation = frame(train_rows), frame(rows)
    features = NUMERIC + list(CATS)
    pipe = make_pipeline(
        ColumnTransformer([("num", StandardScaler(), NUMERIC),
                           ("cat", OneHotEncoder(handle_unknown="ignore"), list(CATS))]),
        LogisticRegression(max_iter=500))
    pipe.fit(train[features], train["label"])
    joblib.dump(pipe, tmp / "model.joblib")
    train.to_parquet(tmp / "train.parquet", index=False)
    evaluation.to_parquet(tmp / "eval.parquet", index=False)

    # the policy: the shipped default, plus a tier that is the high tier without the new checks
    import yaml

    from assay.policy import load_policy
    from assay.policy.loader import resolve_policy_path

    path = resolve_policy_path("default")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    high = load_policy("default").tier("high")
    dropped = sorted({s.id for s in high.checks if is_new(s.id)})
    data["tiers"]["high_before"] = {"description": "the high tier without the deeper checks",
                                    "extends": "high", "drop": dropped}
    (tmp / "policy.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    (tmp / "dropped.json").write_text(json.dumps(dropped), encoding="utf-8")


def child(tmp: Path, tier: str, out: Path) -> None:
    """One certification, in this (fresh) process; prints a JSON line of timings."""
    import assay.certification as certification

    times: dict[str, float] = {}
    real = certification.run_one

    def timed(defn, ctx, spec):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        try:
            return real(defn, ctx, spec)
        finally:
            key = f"{spec.id} ({spec.name})" if spec.name else spec.id
            times[key] = times.get(key, 0.0) + time.perf_counter() - t0

    certification.run_one = timed  # type: ignore[assignment]
    t0 = time.perf_counter()
    cert = certification.certify(
        data=tmp / "eval.parquet", reference=tmp / "train.parquet", model=tmp / "model.joblib",
        target="label", sensitive=["sex", "age_group"], features=NUMERIC + list(CATS),
        policy=tmp / "policy.yaml", tier=tier, out_dir=out)
    total = time.perf_counter() - t0
    statuses = {c.id: str(c.status) for c in cert.checks}
    print(json.dumps({"total": total, "checks": times, "status": statuses}))


def run_child(tmp: Path, tier: str, out: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1] / "src")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", str(tmp), tier, str(out)],
                          env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"the {tier} certification failed:\n{proc.stderr[-3000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["wall"] = wall
    return res


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4]))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--train-rows", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-deep-"))
    t0 = time.perf_counter()
    build(tmp, args.rows, args.train_rows)
    dropped = json.loads((tmp / "dropped.json").read_text())
    print(f"data: {args.rows:,} evaluation rows, {args.train_rows:,} training rows, "
          f"{len(NUMERIC)} numeric + {len(CATS)} categorical features (built in "
          f"{time.perf_counter() - t0:.1f} s)")
    print(f"checks left out of the 'before' tier ({len(dropped)}): {', '.join(dropped)}")
    before: list[float] = []
    after: list[float] = []
    last: dict = {}
    for r in range(args.rounds):
        b = run_child(tmp, "high_before", tmp / f"before-{r}")
        a = run_child(tmp, "high", tmp / f"after-{r}")
        before.append(b["wall"])
        after.append(a["wall"])
        last = a
        print(f"round {r + 1}: before {b['wall']:.1f} s, with the deeper checks {a['wall']:.1f} s")
    mb, ma = statistics.median(before), statistics.median(after)
    print(f"\nhigh tier, {args.rows:,} rows: before {mb:.1f} s, with the deeper checks "
          f"{ma:.1f} s: ratio {ma / mb:.2f}x (target <= 2x)")
    print("\ntime per check (last run with the deeper checks), largest first:")
    for name, sec in sorted(last["checks"].items(), key=lambda kv: -kv[1]):
        print(f"  {sec:8.2f} s  {name}  [{last['status'].get(name.split()[0], '?')}]")
    new = sum(s for n, s in last["checks"].items() if is_new(n.split()[0]))
    print(f"\ndeeper checks together: {new:.1f} s of {last['total']:.1f} s in certify")


if __name__ == "__main__":
    main()
