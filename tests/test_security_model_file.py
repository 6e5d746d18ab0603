"""Model files are scanned before they are loaded: a file that would run code outside the
allow-list is refused (and its code never runs) unless the user trusts it; legitimate
scikit-learn files in every joblib/pickle form and skops files load; the certification's
``security.model_file`` check reports the scan."""

from __future__ import annotations

import copy
import fractions
import os
import pathlib
import pickle
import textwrap
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from assay.certification import certify
from assay.cli import main
from assay.data import load_model
from assay.data.modelfile import UnsafeModelError, scan_model_file
from assay.errors import ModelLoadError


class TouchViaSystem:
    """Unpickling this runs ``touch MARKER`` through os.system."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class TouchViaPathlib:
    """Unpickling this creates MARKER through pathlib.Path.touch."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def _frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n),
                       "c": rng.choice(["a", "b", "c"], size=n)})
    df["y"] = (df["x1"] + 0.5 * (df["c"] == "a") + rng.normal(0, 0.5, n) > 0).astype(int)
    return df


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return _frame()


@pytest.fixture(scope="module")
def pipe(data: pd.DataFrame) -> Pipeline:
    pre = ColumnTransformer([("num", StandardScaler(), ["x1", "x2"]),
                             ("cat", OneHotEncoder(handle_unknown="ignore"), ["c"])])
    return Pipeline([("pre", pre), ("clf", HistGradientBoostingClassifier(max_iter=20))]).fit(
        data[["x1", "x2", "c"]], data["y"])


def test_a_malicious_joblib_file_is_refused_and_its_code_never_runs(
        tmp_path: Path, pipe: Pipeline) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "model.joblib"
    joblib.dump({"model": pipe, "x": TouchViaSystem(marker)}, path, compress=3)
    with pytest.raises(UnsafeModelError) as err:
        load_model(path)
    msg = str(err.value)
    assert str(path) in msg and "system" in msg and "trust=True" in msg
    assert err.value.exit_code == 2
    assert any(f.endswith(".system") for f in err.value.details["findings"])
    assert not marker.exists()
    # the payload is real: trusting the file runs it (then the dict is not a model)
    with pytest.raises(ModelLoadError, match="no predict"):
        load_model(path, trust=True)
    assert marker.exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_a_malicious_pickle_is_refused_by_certify(tmp_path: Path, data: pd.DataFrame,
                                                   protocol: int) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps([TouchViaPathlib(marker)], protocol=protocol))
    with pytest.raises(UnsafeModelError) as err:
        certify(data=data, policy="default", tier="low", target="y", model=path)
    # protocol 2 names getattr(pathlib.Path, "touch"); later ones pathlib.Path.touch
    wanted = "builtins.getattr, pathlib.Path" if protocol == 2 else "pathlib.Path.touch"
    assert wanted in str(err.value)
    assert "trust_model_file=True" in str(err.value)
    assert not marker.exists()


def test_a_payload_hidden_in_an_object_array_of_a_joblib_file_is_found(
        tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "model.joblib"
    joblib.dump(np.array([TouchViaSystem(marker), 1.5], dtype=object), path)
    scan = scan_model_file(path)
    assert scan.format == "joblib"
    assert any(f.endswith(".system") for f in scan.findings)
    assert not marker.exists()


def test_the_command_line_refuses_with_one_line_naming_the_import(
        tmp_path: Path, data: pd.DataFrame, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "pwned"
    model = tmp_path / "model.joblib"
    joblib.dump([TouchViaSystem(marker)], model)
    csv = tmp_path / "eval.csv"
    data.to_csv(csv, index=False)
    with pytest.raises(SystemExit) as exc:
        main(["certify", "--policy", "default", "--tier", "low", "--data", str(csv),
              "--target", "y", "--model", str(model), "--out", str(tmp_path / "out")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert "Traceback" not in err
    joined = " ".join(lines)
    assert "system" in joined and "--trust-model-file" in joined and "model.joblib" in joined
    assert not marker.exists()
    assert not (tmp_path / "out" / "results.json").exists()


@pytest.mark.parametrize("how", ["joblib", "joblib-zlib", "joblib-lzma", "pickle2", "pickle5"])
def test_legitimate_sklearn_files_pass_and_load(tmp_path: Path, pipe: Pipeline,
                                                data: pd.DataFrame, how: str) -> None:
    path = tmp_path / f"model.{how}"
    if how == "joblib":
        joblib.dump(pipe, path)
    elif how == "joblib-zlib":
        joblib.dump(pipe, path, compress=3)
    elif how == "joblib-lzma":
        joblib.dump(pipe, path, compress=("lzma", 3))
    else:
        path.write_bytes(pickle.dumps(pipe, protocol=int(how[-1])))
    scan = scan_model_file(path)
    assert scan.safe, (scan.findings, scan.error)
    assert "sklearn.pipeline.Pipeline" in scan.imports
    assert scan.format.startswith("joblib" if how.startswith("joblib") else "pickle")
    adapter = load_model(path)
    X = data[["x1", "x2", "c"]]
    np.testing.assert_array_equal(adapter.predict(X), pipe.predict(X))
    assert adapter.scan.sha256 == adapter.digest


def test_skops_round_trip_and_untrusted_types(tmp_path: Path, pipe: Pipeline,
                                              data: pd.DataFrame) -> None:
    import skops.io as sio

    path = tmp_path / "model.skops"
    sio.dump(pipe, path)
    adapter = load_model(path)
    X = data[["x1", "x2", "c"]]
    np.testing.assert_array_equal(adapter.predict(X), pipe.predict(X))
    assert adapter.scan.format == "skops" and adapter.scan.safe

    # a function from outside the allow-list is an untrusted type: refused
    odd = Pipeline([("f", FunctionTransformer(copy.deepcopy)),
                    ("clf", LogisticRegression())])
    odd.fit(np.arange(20.0).reshape(-1, 1), np.arange(20) % 2)
    bad = tmp_path / "odd.skops"
    sio.dump(odd, bad)
    with pytest.raises(UnsafeModelError, match=r"copy\.deepcopy"):
        load_model(bad)


def test_not_a_model_file_is_a_plain_load_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.joblib"
    junk.write_bytes(b"this is not a pickle")
    with pytest.raises(ModelLoadError, match=r"junk\.joblib: not a joblib or pickle model file"):
        load_model(junk)


POLICY = textwrap.dedent("""\
    name: mf
    version: "1"
    tiers:
      low:
        checks:
          - id: security.model_file
            threshold: {max: 0}
            rationale: scanned before loading
    """)


def test_the_check_reports_the_scan_in_the_certification(tmp_path: Path, pipe: Pipeline,
                                                          data: pd.DataFrame) -> None:
    path = tmp_path / "model.joblib"
    joblib.dump(pipe, path, compress=3)
    policy = tmp_path / "mf.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    cert = certify(data=data, policy=policy, tier="low", target="y", model=path)
    (c,) = cert.checks
    assert c.status == "pass"
    assert c.details["format"] == "joblib (zlib)"
    assert c.details["sha256"] == scan_model_file(path).sha256
    assert c.details["findings"] == [] and "sklearn.pipeline.Pipeline" in c.details["imports"]

    # a harmless but unlisted import: refused without trust, failed (and reported) with it
    pipe.odd_note_ = fractions.Fraction(1, 3)
    try:
        joblib.dump(pipe, path)
    finally:
        del pipe.odd_note_
    with pytest.raises(UnsafeModelError, match=r"fractions\.Fraction"):
        certify(data=data, policy=policy, tier="low", target="y", model=path)
    cert = certify(data=data, policy=policy, tier="low", target="y", model=path,
                   trust_model_file=True)
    (c,) = cert.checks
    assert c.status == "fail" and cert.status == "blocked"
    assert c.details["findings"] == ["fractions.Fraction"] and c.details["trusted"] is True
    assert "fractions.Fraction" in c.message and "trusted" in c.message

    # the policy may allow more modules
    policy.write_text(POLICY.replace("threshold: {max: 0}",
                                     "threshold: {max: 0}\n        params: {allow: [fractions]}"),
                      encoding="utf-8")
    cert = certify(data=data, policy=policy, tier="low", target="y", model=path,
                   trust_model_file=True)
    assert cert.checks[0].status == "pass"


def test_a_model_in_memory_is_skipped_with_the_reason(tmp_path: Path, pipe: Pipeline,
                                                      data: pd.DataFrame) -> None:
    policy = tmp_path / "mf.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    cert = certify(data=data, policy=policy, tier="low", target="y", model=pipe)
    assert cert.checks[0].status == "skip"
    assert "in memory" in cert.checks[0].message
