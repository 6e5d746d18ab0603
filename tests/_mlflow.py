"""A real MLflow store for the MLflow tests: a SQLite tracking/registry database with the
artefacts beside it, holding the registered model ``credit`` logged the way a data
scientist logs one (scikit-learn flavour, a training data set as a run input, the git
commit tag).

Logging a model takes seconds, so the store is built once per test session
(:func:`build_store`) and each test works on its own copy (:func:`copy_store`): tags,
aliases and new versions a test writes stay in its copy. The artefact folder is shared
(MLflow records it by absolute path); it is only added to.

* version 1: a logistic regression that passes the ``default`` policy's ``low`` tier;
* version 2: the same features with the label shuffled, blocked by that tier.
"""

from __future__ import annotations

import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

MODEL = "credit"
GIT_COMMIT = "0123456789abcdef0123456789abcdef01234567"
TRAIN_SOURCE = "s3://bank-data/credit/train-2026-10.parquet"


@dataclass
class MlflowStore:
    root: Path
    uri: str
    data: Path  # evaluation data (Parquet) with target "default" and group "sex"


def frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"income": rng.normal(50, 10, n), "debt": rng.normal(10, 3, n),
                       "sex": rng.choice(["f", "m"], n)})
    logit = 0.25 * (df["debt"] - 10) - 0.12 * (df["income"] - 50)
    df["default"] = (rng.random(n) < 1 / (1 + np.exp(-2 * logit))).astype(int)
    return df


def _quiet() -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    warnings.filterwarnings("ignore", module="mlflow")


def build_store(root: Path) -> MlflowStore:
    """Create the store under ``root`` with the two versions of ``credit``."""
    _quiet()
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient
    from sklearn.linear_model import LogisticRegression

    root.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    train = frame(2000, 1)
    evaluation = frame(1500, 2)
    data = root / "eval.parquet"
    evaluation.to_parquet(data, index=False)
    features = ["income", "debt"]
    client = MlflowClient(uri, uri)
    exp = client.create_experiment("credit", artifact_location=(root / "artifacts").as_uri())
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        for label in ("good", "shuffled"):
            y = train["default"].to_numpy()
            if label == "shuffled":
                y = np.random.default_rng(3).permutation(y)
            model = LogisticRegression().fit(train[features], y)
            with mlflow.start_run(experiment_id=exp, run_name=label):
                mlflow.set_tag("mlflow.source.git.commit", GIT_COMMIT)
                ds = mlflow.data.from_pandas(train, source=TRAIN_SOURCE, name="train",
                                             targets="default")
                mlflow.log_input(ds, context="training")
                mlflow.sklearn.log_model(model, name="model", registered_model_name=MODEL,
                                         pip_requirements=["scikit-learn"])
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])
    return MlflowStore(root=root, uri=uri, data=data)


def copy_store(store: MlflowStore, dest: Path) -> MlflowStore:
    """A copy of the store's database in ``dest`` (sharing its artefact folder)."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(store.root / "mlflow.db", dest / "mlflow.db")
    return MlflowStore(root=dest, uri=f"sqlite:///{dest / 'mlflow.db'}", data=store.data)
