"""The shipped Adult data and ``assay demo`` end to end."""

from __future__ import annotations

import gzip
import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from types import SimpleNamespace

import joblib
import pandas as pd
import pytest

from _datasets import DATASETS
from assay.datasets import ADULT_COLUMNS, load_adult

SHARED = DATASETS / "adult"


def test_load_adult_split_and_columns():
    train, test = load_adult()
    assert len(train) == 32561 and len(test) == 16281
    assert tuple(train.columns) == ADULT_COLUMNS and tuple(test.columns) == ADULT_COLUMNS
    assert set(train["income"]) == {"<=50K", ">50K"}
    assert set(test["income"]) == {"<=50K", ">50K"}  # the test file's trailing '.' is gone
    assert (train["income"] == ">50K").sum() == 7841
    assert (test["income"] == ">50K").sum() == 3846
    assert pd.api.types.is_integer_dtype(train["age"])
    # no surrounding spaces survive the cleaning
    for col in ("workclass", "sex", "race", "native_country"):
        assert not train[col].str.startswith(" ").any()
    assert set(train["sex"]) == {"Female", "Male"}


def test_missing_values_kept_or_nan():
    train, _ = load_adult()
    assert (train["workclass"] == "?").sum() == 1836
    train_nan, _ = load_adult(missing_as_nan=True)
    assert train_nan["workclass"].isna().sum() == 1836
    assert not (train_nan == "?").any().any()


def test_shipped_file_matches_the_published_data(tmp_path):
    from assay.datasets._build_adult import build

    out = tmp_path / "adult.csv.gz"
    n = build(SHARED, out)
    assert n == 32561 + 16281
    shipped = Path(__file__).resolve().parents[1] / "src" / "assay" / "datasets" / "adult.csv.gz"
    # compare contents: compressed bytes may differ between zlib builds
    assert gzip.decompress(out.read_bytes()) == gzip.decompress(shipped.read_bytes())
    assert shipped.stat().st_size < 3_000_000


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """``assay demo`` run through the real command line."""
    from assay.cli import main

    out = tmp_path_factory.mktemp("demo")
    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):
        try:
            main(["demo", "--out", str(out), "--no-progress"])
            code = 0
        except SystemExit as exc:
            code = exc.code
    text = stdout.getvalue()
    assert "Re-run it yourself:" in text, stderr.getvalue()
    return SimpleNamespace(
        code=code, stdout=text, log=stderr.getvalue(), out_dir=out,
        model=out / "model.joblib", test=out / "adult-test.parquet",
        report=out / "report.html", command=text.split("Re-run it yourself:")[1].strip(),
        results=json.loads((out / "results.json").read_text()),
    )


@pytest.mark.slow
def test_demo_writes_everything_it_used(demo):
    out = demo.out_dir
    for name in ("adult-train.parquet", "adult-test.parquet", "model.joblib", "results.json",
                 "report.html"):
        assert (out / name).is_file(), name
    assert demo.code == 0  # a blocked verdict is the demo's outcome, not an error
    assert "training" in demo.log and "certifying" in demo.log
    assert f"Open the report: {demo.report.resolve()}" in demo.stdout
    assert demo.results["checks"][0]["id"] in demo.stdout
    model = joblib.load(out / "model.joblib")
    test = pd.read_parquet(out / "adult-test.parquet")
    assert set(model.predict(test.head(50))) <= {"<=50K", ">50K"}


@pytest.mark.slow
def test_demo_model_is_reasonable_and_its_auc_is_reported_exactly(demo):
    from sklearn.metrics import roc_auc_score

    model = joblib.load(demo.model)
    test = pd.read_parquet(demo.test)
    proba = model.predict_proba(test)[:, list(model.classes_).index(">50K")]
    auc = roc_auc_score(test["income"] == ">50K", proba)
    assert auc > 0.9
    reported = demo.results["metrics"]["overall"]["roc_auc"]["value"]
    assert reported == pytest.approx(auc, abs=1e-3)


@pytest.mark.slow
def test_demo_certification_is_complete(demo):
    results = json.loads((demo.out_dir / "results.json").read_text())
    assert results["status"] in ("passed", "passed_with_warnings", "blocked")
    assert results["policy"]["name"] == "default" and results["policy"]["tier"] == "high"
    assert results["roles"]["sensitive"] == ["sex", "race"]
    assert results["roles"]["positive_label"] == ">50K"
    assert results["data"]["evaluation"]["rows"] == 16281
    assert results["data"]["reference"]["rows"] == 32561
    assert results["model"]["sha256"]
    assert results["checks"], "the default policy runs checks"
    # the model is given, the scores come from it: no check is skipped for want of a model
    skipped = [c["id"] for c in results["checks"] if c["status"] == "skip"
               and "model" in (c.get("message") or "")]
    assert skipped == []
    html = (demo.out_dir / "report.html").read_text()
    assert "validation report" in html and "adult-test.parquet" in html


@pytest.mark.slow
def test_demo_command_reproduces_the_certification(demo, tmp_path):
    """The printed command, run through the real CLI, gives the same verdict."""
    import shlex

    from assay.cli import main

    args = shlex.split(demo.command)[1:]
    out = tmp_path / "again"
    args[args.index("--out") + 1] = str(out)
    try:
        main([*args, "--no-progress", "--format", "json"])
        code = 0
    except SystemExit as exc:
        code = exc.code
    again = json.loads((out / "results.json").read_text())
    assert again["status"] == demo.results["status"]
    assert code == (1 if again["status"] == "blocked" else 0)
    assert [c["status"] for c in again["checks"]] == [c["status"] for c in demo.results["checks"]]
    assert again["data"]["evaluation"]["sha256"] == demo.results["data"]["evaluation"]["sha256"]


def test_demo_output_that_is_a_file(tmp_path, capsys):
    from assay.cli import main

    target = tmp_path / "taken"
    target.write_text("x")
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--out", str(target), "--no-progress"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "taken: expected an output directory" in err


def test_the_demo_model_trains_on_one_native_thread(monkeypatch):
    """Training on a busy machine must not wait for OpenMP threads (seconds become minutes)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_info, threadpool_limits

    from assay.demo import build_model

    seen: list[int] = []
    fit = HistGradientBoostingClassifier.fit

    def recording_fit(self, X, y, *args, **kwargs):
        seen.append(max(p["num_threads"] for p in threadpool_info()
                        if p["user_api"] in ("openmp", "blas")))
        return fit(self, X, y, *args, **kwargs)

    monkeypatch.setattr(HistGradientBoostingClassifier, "fit", recording_fit)
    train, _ = load_adult(missing_as_nan=True)
    with threadpool_limits(limits=2):
        build_model(train.head(2000), max_iter=5)
        after = max(p["num_threads"] for p in threadpool_info()
                    if p["user_api"] in ("openmp", "blas"))
    assert seen == [1]
    assert after == 2  # the limit ends with the training
