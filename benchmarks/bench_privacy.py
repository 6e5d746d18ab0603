"""Cost of the privacy checks in the shipped ``default`` policy's high tier on 1M rows.

    python benchmarks/bench_privacy.py [--rows 1000000] [--reference-rows 200000]

Builds a synthetic evaluation file (``--rows``) and training file with people's
quasi-identifiers (age, sex, postcode), four numeric features, a target and a
scikit-learn model (scaler + one-hot + logistic regression) fitted on the
training rows, then certifies the evaluation file against the shipped
``default`` policy, tier ``high``, twice: as shipped, and with the
``privacy.*`` entries removed. Prints both wall-clock times, the time spent
in each privacy check and their share of the shipped tier's certification.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import tempfile
import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd


def frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "age": rng.integers(18, 90, n),
        "sex": rng.choice(["F", "M"], n),
        "postcode": rng.integers(10000, 10400, n).astype(str),
        "income_k": rng.gamma(4, 12, n).round(1),
        "tenure": rng.integers(0, 40, n),
        "debt_ratio": rng.beta(2, 5, n),
        "region": rng.choice(["north", "south", "east", "west"], n),
    })
    logit = 0.03 * (df.income_k - 48) - 2 * (df.debt_ratio - 0.3) + 0.02 * df.tenure
    df["y"] = (logit + rng.logistic(size=n) > 0).astype(int)
    return df


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--reference-rows", type=int, default=200_000)
    args = ap.parse_args()
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from assay.certification import certify
    from assay.checks.base import REGISTRY
    from assay.policy import load_check_modules
    from assay.policy.loader import resolve_policy_path

    tmp = Path(tempfile.mkdtemp(prefix="bench-privacy-"))
    ev, ref = frame(args.rows, 1), frame(args.reference_rows, 2)
    ev.to_parquet(tmp / "eval.parquet")
    ref.to_parquet(tmp / "train.parquet")
    num, cat = ["age", "income_k", "tenure", "debt_ratio"], ["sex", "region"]
    model = Pipeline([("prep", ColumnTransformer([("n", StandardScaler(), num),
                                                  ("c", OneHotEncoder(), cat)])),
                      ("clf", LogisticRegression())]).fit(ref[num + cat], ref["y"])
    joblib.dump(model, tmp / "model.joblib")
    text = resolve_policy_path("default").read_text()
    stripped = re.sub(r"      - id: privacy\.[a-z_]+\n(        .*\n|                  .*\n)*", "",
                      text)
    (tmp / "without.yaml").write_text(stripped)
    load_check_modules()
    spent: dict[str, float] = {}

    def timed(fn, key):
        def run(ctx, spec):
            t = time.perf_counter()
            try:
                return fn(ctx, spec)
            finally:
                spent[key] = spent.get(key, 0.0) + time.perf_counter() - t
        return run

    for key, defn in list(REGISTRY.items()):
        if key.startswith("privacy."):
            REGISTRY[key] = dataclasses.replace(defn, fn=timed(defn.fn, key))
    times = {}
    for name, policy in (("without privacy", tmp / "without.yaml"),
                         ("as shipped", "default")):
        t0 = time.perf_counter()
        cert = certify(data=tmp / "eval.parquet", reference=tmp / "train.parquet",
                       model=tmp / "model.joblib", target="y", sensitive=["sex"],
                       policy=policy, tier="high")
        times[name] = time.perf_counter() - t0
        ids = [c.id for c in cert.checks if c.id.startswith("privacy.")]
        print(f"{name}: {times[name]:.1f} s, {len(cert.checks)} checks, privacy: {ids}")
    for key, t in spent.items():
        print(f"  {key}: {t:.2f} s")
    total = sum(spent.values())
    print(f"privacy checks: {total:.2f} s = {total / times['as shipped']:.1%} of the shipped "
          f"tier's certification (difference of the two runs: "
          f"{times['as shipped'] - times['without privacy']:+.1f} s, noisy on a busy machine)")


if __name__ == "__main__":
    main()
