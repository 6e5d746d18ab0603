"""Model adapter: loading joblib / pickle files and scoring data batch by batch."""

from __future__ import annotations

import pickle
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from assay.data import MODEL_PREDICTION, MODEL_SCORE, ColumnRoles, load_model, open_dataset
from assay.datasets import load_adult
from assay.errors import InputError, ModelLoadError

NUM = ["age", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
CAT = ["workclass", "marital_status", "occupation", "relationship", "race", "sex"]
ROLES = ColumnRoles(target="income", positive_label=">50K", sensitive=["sex", "race"])


@pytest.fixture(scope="module")
def adult():
    return load_adult()


@pytest.fixture(scope="module")
def pipeline(adult) -> Pipeline:
    train = adult[0]
    pipe = Pipeline([
        ("prep", ColumnTransformer([("num", StandardScaler(), NUM),
                                    ("cat", OneHotEncoder(handle_unknown="ignore"), CAT)])),
        ("clf", LogisticRegression(max_iter=300)),
    ])
    return pipe.fit(train[NUM + CAT], train["income"])


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, pipeline) -> Path:
    path = tmp_path_factory.mktemp("m") / "model.joblib"
    joblib.dump(pipeline, path)
    return path


def test_load_joblib_and_pickle(model_file: Path, pipeline, adult, tmp_path: Path) -> None:
    m = load_model(model_file)
    assert m.kind == "sklearn Pipeline"
    assert m.has_proba and m.classes == ["<=50K", ">50K"]
    assert len(m.digest) == 64
    test = adult[1].head(2000)
    np.testing.assert_array_equal(m.predict(test), pipeline.predict(test[NUM + CAT]))
    np.testing.assert_allclose(m.predict_proba(test, positive_label=">50K"),
                               pipeline.predict_proba(test[NUM + CAT])[:, 1], rtol=0, atol=0)
    np.testing.assert_allclose(m.predict_proba(test, positive_label="<=50K"),
                               pipeline.predict_proba(test[NUM + CAT])[:, 0])
    pkl = tmp_path / "model.pkl"
    pkl.write_bytes(pickle.dumps(pipeline))
    assert load_model(pkl).kind == "sklearn Pipeline"
    with pytest.raises(ModelLoadError, match="positive label 'yes'"):
        m.predict_proba(test, positive_label="yes")


def test_bad_model_files(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="model file not found"):
        load_model(tmp_path / "none.joblib")
    junk = tmp_path / "junk.joblib"
    junk.write_text("this is not a model")
    with pytest.raises(ModelLoadError, match=r"junk\.joblib: not a joblib or pickle model file"):
        load_model(junk)
    notmodel = tmp_path / "dict.joblib"
    joblib.dump({"weights": [1, 2]}, notmodel)
    with pytest.raises(ModelLoadError, match="a dict has no predict"):
        load_model(notmodel)
    unfitted = tmp_path / "unfitted.joblib"
    joblib.dump(LogisticRegression(), unfitted)
    with pytest.raises(ModelLoadError, match="not fitted"):
        load_model(unfitted)


def test_with_model_streams_predictions(model_file: Path, pipeline, adult, tmp_path) -> None:
    test = adult[1]
    path = tmp_path / "test.parquet"
    pq.write_table(pa.Table.from_pandas(test, preserve_index=False), path, row_group_size=3000)
    ds = open_dataset(path, ROLES)
    m = load_model(model_file)
    batches = list(ds.with_model(m, ROLES, batch_size=3000))
    assert len(batches) > 1 and all(b.num_rows <= 3000 for b in batches)
    out = pa.Table.from_batches(batches).to_pandas()
    assert len(out) == len(test)
    np.testing.assert_array_equal(out[MODEL_PREDICTION], pipeline.predict(test[NUM + CAT]))
    np.testing.assert_allclose(out[MODEL_SCORE], pipeline.predict_proba(test[NUM + CAT])[:, 1])
    assert out["income"].tolist() == test["income"].tolist()
    named = ColumnRoles(target="income", positive_label=">50K", prediction="p", score="s")
    cols = pa.Table.from_batches(list(ds.with_model(m, named, columns=["income"]))).column_names
    assert cols == ["income", "p", "s"]


def test_predictions_file_without_model(adult, pipeline) -> None:
    test = adult[1].copy()
    test["pred"] = pipeline.predict(test[NUM + CAT])
    test["score"] = pipeline.predict_proba(test[NUM + CAT])[:, 1]
    roles = ColumnRoles(target="income", prediction="pred", score="score",
                        positive_label=">50K")
    ds = open_dataset(test, roles)
    assert ds.num_rows == len(test)
    test.loc[3, "pred"] = "maybe"
    with pytest.raises(InputError, match="'pred'"):
        open_dataset(test, roles)


def test_model_failure_and_missing_inputs_are_clear(model_file: Path, adult) -> None:
    m = load_model(model_file)
    ds = open_dataset(adult[1].drop(columns=["occupation"]), ROLES)
    with pytest.raises(ModelLoadError, match="expects column"):
        next(ds.with_model(m, ROLES))
    broken = adult[1].head(50).copy()
    broken["age"] = "old"
    with pytest.raises(ModelLoadError, match=r"predict\(\) failed"):
        m.predict(broken)
    assert isinstance(m.predict(pd.DataFrame(adult[1].head(3))), np.ndarray)
