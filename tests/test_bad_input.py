"""Bad input through the real command line: one line naming what is wrong, exit code 2.

Each case runs ``assay.cli.main`` in-process on real files and asserts the
message names the file, the column or the policy line and what was expected,
with no traceback.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from assay.cli import main


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str, *needles: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert "Traceback" not in err
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("error:"), line
    for needle in needles:
        assert needle.lower() in line.lower(), (needle, line)
    return line


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """2,000 rows of Adult test data with a score and a decision column."""
    from assay.datasets import load_adult

    _, test = load_adult()
    df = test.iloc[:2000].reset_index(drop=True).copy()
    rng = np.random.default_rng(7)
    y = (df["income"] == ">50K").to_numpy()
    score = np.clip(0.35 * y + 0.65 * rng.random(len(df)), 0, 1)
    df["score"] = score
    df["decision"] = (score >= 0.5).astype(int)
    df["label"] = y.astype(int)
    return df


@pytest.fixture(scope="module")
def files(frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad-input")
    out: dict[str, Path] = {}

    def save(name: str, df: pd.DataFrame) -> None:
        out[name] = d / f"{name}.csv"
        df.to_csv(out[name], index=False)

    save("good", frame)
    nan = frame.copy()
    nan.loc[17, "score"] = np.nan
    save("nan_score", nan)
    high = frame.copy()
    high.loc[5, "score"] = 1.7
    save("high_score", high)
    one_class = frame.copy()
    one_class["label"] = 0
    save("one_class", one_class)
    no_sex = frame.copy()
    no_sex["sex"] = ""
    save("empty_group", no_sex)
    one_class_group = frame.copy()
    eskimo = one_class_group["race"] == "Amer-Indian-Eskimo"
    one_class_group.loc[eskimo, "label"] = 0
    save("one_class_group", one_class_group)
    out["garbage_parquet"] = d / "garbage.parquet"
    out["garbage_parquet"].write_bytes(b"PAR1 this is not parquet at all \x00\x01\x02")
    out["empty_csv"] = d / "empty.csv"
    out["empty_csv"].write_text("")
    out["bad_model"] = d / "model.joblib"
    out["bad_model"].write_bytes(b"not a pickle")
    out["bad_yaml"] = d / "bad.yaml"
    out["bad_yaml"].write_text("name: p\nversion: 1\ntiers:\n  high:\n    checks: [\n")
    out["unknown_check"] = d / "unknown-check.yaml"
    out["unknown_check"].write_text(textwrap.dedent("""\
        name: p
        version: 1
        tiers:
          high:
            checks:
              - id: fairness.no_such_check
                threshold: {max: 0.1}
        """))
    out["dir"] = d
    out["out"] = d / "out"
    return out


def certify_args(files: dict[str, Path], data: str = "good", **over: str) -> list[str]:
    args = {
        "--policy": "default", "--tier": "high", "--data": str(files[data]),
        "--target": "label", "--score": "score", "--prediction": "decision",
        "--sensitive": "sex,race", "--out": str(files["out"]),
    }
    args.update(over)
    flat = ["certify", "--no-progress"]
    for k, v in args.items():
        if v is not None:
            flat += [k, v]
    return flat


def test_unknown_target_column(files, capsys):
    code, _, err = run(certify_args(files, **{"--target": "incomee"}), capsys)
    assert code == 2
    one_line_error(err, "incomee", "good.csv")


def test_missing_sensitive_column(files, capsys):
    code, _, err = run(certify_args(files, **{"--sensitive": "sex,gender"}), capsys)
    assert code == 2
    one_line_error(err, "gender", "good.csv")


def test_missing_score_column(files, capsys):
    code, _, err = run(certify_args(files, **{"--score": "proba"}), capsys)
    assert code == 2
    one_line_error(err, "proba")


def test_non_binary_target(files, capsys):
    code, _, err = run(certify_args(files, **{"--target": "education",
                                              "--positive-label": "Bachelors"}), capsys)
    assert code == 2
    one_line_error(err, "education")


def test_positive_label_not_in_target(files, capsys):
    code, _, err = run(certify_args(files, **{"--positive-label": "yes"}), capsys)
    assert code == 2
    one_line_error(err, "label", "yes")


def test_nan_scores(files, capsys):
    code, _, err = run(certify_args(files, "nan_score"), capsys)
    assert code == 2
    one_line_error(err, "score", "nan_score.csv")


def test_out_of_range_scores(files, capsys):
    code, _, err = run(certify_args(files, "high_score"), capsys)
    assert code == 2
    one_line_error(err, "score", "high_score.csv")


def test_one_class_target(files, capsys):
    code, _, err = run(certify_args(files, "one_class"), capsys)
    assert code == 2
    one_line_error(err, "label")


def test_empty_sensitive_column(files, capsys):
    code, _, err = run(certify_args(files, "empty_group"), capsys)
    assert code == 2
    one_line_error(err, "sex")


def test_one_class_group_is_reported_not_crashed(files, capsys):
    """A group without positives has no TPR: reported as undefined, never a traceback."""
    import json

    code, _, err = run(certify_args(files, "one_class_group"), capsys)
    assert "Traceback" not in err
    results = json.loads((files["out"] / "results.json").read_text())
    assert code == (1 if results["status"] == "blocked" else 0)
    group = results["metrics"]["groups"]["race"]["Amer-Indian-Eskimo"]
    assert group["metrics"]["tpr"]["value"] is None
    assert not [c for c in results["checks"] if c["status"] == "error"]


def test_reference_without_the_columns(files, capsys, tmp_path):
    ref = tmp_path / "reference.csv"
    pd.DataFrame({"a": [1, 2, 3]}).to_csv(ref, index=False)
    code, _, err = run(certify_args(files, **{"--train": str(ref)}), capsys)
    assert code == 2
    one_line_error(err, "reference.csv")


def test_model_with_wrong_number_of_predictions(files, capsys, tmp_path, monkeypatch):
    """A model whose predictions do not line up with the data rows."""
    import joblib

    (tmp_path / "short_model.py").write_text(textwrap.dedent("""\
        import numpy as np

        class ShortModel:
            classes_ = np.array([0, 1])

            def predict(self, X):
                return np.zeros(len(X) - 1, dtype=int)

            def predict_proba(self, X):
                p = np.full(len(X) - 1, 0.3)
                return np.column_stack([1 - p, p])
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    from short_model import ShortModel  # type: ignore[import-not-found]

    model = tmp_path / "short.joblib"
    joblib.dump(ShortModel(), model)
    code, _, err = run(certify_args(files, **{"--model": str(model), "--score": None,
                                              "--prediction": None}), capsys)
    assert code == 2
    one_line_error(err, "short.joblib")


def test_unreadable_data_file(files, capsys):
    code, _, err = run(certify_args(files, "garbage_parquet"), capsys)
    assert code == 2
    one_line_error(err, "garbage.parquet")


def test_empty_data_file(files, capsys):
    code, _, err = run(certify_args(files, "empty_csv"), capsys)
    assert code == 2
    one_line_error(err, "empty.csv")


def test_data_is_a_directory(files, capsys):
    code, _, err = run(certify_args(files, "dir"), capsys)
    assert code == 2
    one_line_error(err, "directory")


def test_missing_data_file(files, capsys):
    code, _, err = run(certify_args(files, **{"--data": str(files["dir"] / "nope.csv")}),
                       capsys)
    assert code == 2
    one_line_error(err, "nope.csv", "not found")


def test_unloadable_model(files, capsys):
    code, _, err = run(certify_args(files, **{"--model": str(files["bad_model"]),
                                              "--score": None, "--prediction": None}), capsys)
    assert code == 2
    one_line_error(err, "model.joblib")


def test_missing_model_file(files, capsys):
    code, _, err = run(certify_args(files, **{"--model": str(files["dir"] / "m.joblib")}),
                       capsys)
    assert code == 2
    one_line_error(err, "m.joblib")


def test_invalid_yaml_policy(files, capsys):
    code, _, err = run(["policy", "check", files["bad_yaml"]], capsys)
    assert code == 2
    line = one_line_error(err, "bad.yaml")
    assert "line" in line.lower() or "bad.yaml:" in line
    code, _, err = run(certify_args(files, **{"--policy": str(files["bad_yaml"])}), capsys)
    assert code == 2
    one_line_error(err, "bad.yaml")


def test_unknown_check_in_policy(files, capsys):
    code, _, err = run(["policy", "check", files["unknown_check"]], capsys)
    assert code == 2
    one_line_error(err, "unknown-check.yaml:6", "fairness.no_such_check")


def test_unknown_policy_name(files, capsys):
    code, _, err = run(certify_args(files, **{"--policy": "defualt"}), capsys)
    assert code == 2
    one_line_error(err, "defualt", "default")


def test_unknown_tier(files, capsys):
    code, _, err = run(certify_args(files, **{"--tier": "extreme"}), capsys)
    assert code == 2
    one_line_error(err, "extreme", "high")


def test_bad_format_option(files, capsys):
    code, _, err = run(certify_args(files, **{"--format": "xml"}), capsys)
    assert code == 2
    assert "Traceback" not in err and "xml" in err


def test_nothing_to_certify(files, capsys):
    code, _, err = run(certify_args(files, **{"--score": None, "--prediction": None}), capsys)
    assert code == 2
    one_line_error(err, "model", "prediction", "score")


def test_unknown_feature_and_weight_columns(files, capsys):
    code, _, err = run(certify_args(files, **{"--features": "age,hours"}), capsys)
    assert code == 2
    one_line_error(err, "hours", "good.csv")
    code, _, err = run(certify_args(files, **{"--weight": "fnlwgtt"}), capsys)
    assert code == 2
    one_line_error(err, "fnlwgtt", "good.csv")


def test_text_score_column(files, capsys):
    code, _, err = run(certify_args(files, **{"--score": "workclass"}), capsys)
    assert code == 2
    one_line_error(err, "workclass", "numbers")


def test_output_directory_is_a_file(files, capsys):
    code, _, err = run(certify_args(files, **{"--out": str(files["good"])}), capsys)
    assert code == 2
    one_line_error(err, "good.csv", "directory")
    code, _, err = run(certify_args(files, **{"--out": str(files["good"] / "sub")}), capsys)
    assert code == 2
    one_line_error(err, "good.csv/sub")
