"""``assay demo``: train a model on the shipped Adult data and certify it end to end.

The demo writes everything it uses into one directory, so the certification
can be re-run and audited by hand:

- ``adult-train.parquet`` and ``adult-test.parquet``: the published split;
- ``model.joblib``: a scikit-learn pipeline (one-hot encoding + gradient
  boosting) trained on the training part to predict ``income == ">50K"``;
- ``results.json`` and ``report.html``: the certification of that model on
  the test part against the shipped ``default`` policy, tier ``high``, with
  ``sex`` and ``race`` as protected attributes and the training part as the
  reference for drift.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay.datasets import ADULT_POSITIVE_LABEL, ADULT_TARGET, load_adult
from assay.errors import InputError

DEMO_POLICY = "default"
DEMO_TIER = "high"
DEMO_SENSITIVE = ("sex", "race")
#: Columns the demo model does not use: ``fnlwgt`` is a census sampling weight and
#: ``education`` repeats ``education_num``.
DEMO_UNUSED = ("fnlwgt", "education")


@dataclass
class DemoResult:
    """What the demo produced: the certification and the files it wrote."""

    certification: Any
    results: dict[str, Any]
    out_dir: Path
    model: Path
    train: Path
    test: Path
    written: dict[str, Path] = field(default_factory=dict)

    @property
    def report(self) -> Path:
        return self.written.get("report.html", self.out_dir / "report.html")

    @property
    def command(self) -> str:
        """The ``assay certify`` command that reproduces the demo's certification."""
        return shlex.join([
            "assay", "certify", "--policy", DEMO_POLICY, "--tier", DEMO_TIER,
            "--model", str(self.model), "--train", str(self.train), "--data", str(self.test),
            "--target", ADULT_TARGET, "--sensitive", ",".join(DEMO_SENSITIVE),
            "--positive-label", ADULT_POSITIVE_LABEL, "--out", str(self.out_dir),
        ])


def build_model(train: Any, *, seed: int = 0, max_iter: int = 150) -> Any:
    """A scikit-learn pipeline for Adult: one-hot categories, gradient boosting.

    ``max_iter`` is the number of boosting rounds (fewer: faster, a little less accurate).
    The pipeline is trained on one native thread: on 32,561 rows a second
    thread gains little (on a 2-core machine one thread was faster), and on a
    busy machine OpenMP's threads wait for each other: training took from 2 s
    to over a minute.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    features = [c for c in train.columns if c not in (ADULT_TARGET, *DEMO_UNUSED)]
    categorical = [c for c in features if not _is_numeric(train[c])]
    numeric = [c for c in features if c not in categorical]
    prep = ColumnTransformer(
        [("categories", OneHotEncoder(handle_unknown="ignore", min_frequency=20,
                                      sparse_output=False), categorical),
         ("numbers", "passthrough", numeric)],
        remainder="drop",
    )
    model = Pipeline([
        ("prepare", prep),
        ("classify", HistGradientBoostingClassifier(max_iter=max_iter, learning_rate=0.1,
                                                    random_state=seed)),
    ])
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        model.fit(train[features], train[ADULT_TARGET])
    return model


def _is_numeric(series: Any) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(series))


def run_demo(out_dir: str | Path = "assay-demo", *, progress: Any = None,
             log: Callable[[str], None] | None = None) -> DemoResult:
    """Write the data, train the model, certify it; return what was produced.

    ``progress`` is passed to the certification (see ``assay.cli.certify``);
    ``log`` receives one line per step.
    """
    import joblib

    from assay.certification import certify

    say = log or (lambda _msg: None)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: expected an output directory, got a file")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{out}: cannot create the output folder ({exc.strerror or exc})") \
            from None
    # '?' marks a missing value in the published files: keep it missing, so the integrity
    # checks see it and the model handles it as such.
    train, test = load_adult(missing_as_nan=True)
    train_path, test_path = out / "adult-train.parquet", out / "adult-test.parquet"
    train.to_parquet(train_path, index=False)
    test.to_parquet(test_path, index=False)
    say(f"wrote the UCI Adult data: {len(train):,} training rows, {len(test):,} test rows")

    say("training a gradient-boosting pipeline on the training part")
    t0 = time.perf_counter()
    step = progress.start("Training the model", None) if hasattr(progress, "start") else None
    try:
        model = build_model(train)
    finally:
        if step is not None:
            step.finish()
    model_path = out / "model.joblib"
    joblib.dump(model, model_path)
    say(f"trained in {time.perf_counter() - t0:.1f} s, saved to {model_path}")

    say(f"certifying it against the '{DEMO_POLICY}' policy, tier '{DEMO_TIER}'")
    cert = certify(
        data=test_path, reference=train_path, model=model_path, policy=DEMO_POLICY,
        tier=DEMO_TIER, target=ADULT_TARGET, sensitive=list(DEMO_SENSITIVE),
        positive_label=ADULT_POSITIVE_LABEL, progress=progress,
    )
    written = cert.write(out)
    paths: dict[str, Path] = {}
    if isinstance(written, dict):
        paths = {str(k): Path(v) for k, v in written.items()}
    elif isinstance(written, list | tuple):
        paths = {Path(p).name: Path(p) for p in written}
    for name in ("results.json", "report.html"):
        if name not in paths and (out / name).exists():
            paths[name] = out / name
    return DemoResult(certification=cert, results=cert.to_dict(), out_dir=out,
                      model=model_path, train=train_path, test=test_path, written=paths)
