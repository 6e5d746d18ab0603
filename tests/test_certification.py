"""Certification orchestration: verdicts, errors, skips, results.json, progress.

The checks here are registered by the tests themselves (and removed after),
so the orchestration is exercised through the real check framework
(``run_check`` and ``judge``) independently of the shipped check families.
End-to-end runs with the shipped checks and policies are in
``test_certification_e2e.py``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score

import assay
from assay.certification import Certification, certify
from assay.checks.base import REGISTRY, Measurement, SkipCheck, Status, check
from assay.errors import InputError, ModelLoadError, PolicyError
from assay.metrics.context import classification_stats
from assay.policy import load_check_modules, parse_policy

RESULT_KEYS = {"schema_version", "assay_version", "created_at", "status", "policy", "model",
               "data", "roles", "settings", "environment", "summary", "checks", "metrics"}
CHECK_KEYS = {"id", "family", "title", "status", "severity", "judge_on", "threshold", "value",
              "ci", "worst", "measurements", "message", "rationale", "regulations", "details",
              "source"}

CALLS: dict[str, int] = {}


@pytest.fixture(autouse=True)
def test_checks() -> Iterator[None]:
    load_check_modules()
    ids = []

    def reg(cid: str, **kw: Any):
        ids.append(cid)
        return check(cid, **kw)

    @reg("tc.fixed", family="performance", title="Fixed value", params=("value", "lo", "hi"))
    def fixed(ctx, spec):
        p = spec.params
        ci = (p["lo"], p["hi"]) if "lo" in p else None
        return [Measurement("overall", p["value"], ci=ci, n=100)]

    @reg("tc.accuracy", family="performance", title="Accuracy", requires=("prediction",))
    def accuracy(ctx, spec):
        stats = classification_stats(ctx)
        CALLS["accuracy"] = CALLS.get("accuracy", 0) + 1
        return [Measurement("overall", float(stats.compute("accuracy")), n=stats.n)]

    @reg("tc.shared", family="performance", title="Shared computation")
    def shared(ctx, spec):
        def compute():
            CALLS["shared"] = CALLS.get("shared", 0) + 1
            return 0.9
        return [Measurement("overall", ctx.cached("tc.shared", compute))]

    @reg("tc.failing_step", family="performance", title="Failing shared step")
    def failing_step(ctx, spec):
        def compute():
            CALLS["failing"] = CALLS.get("failing", 0) + 1
            raise RuntimeError("the shared step broke")
        return [Measurement("overall", ctx.cached("tc.failing", compute))]

    @reg("tc.boom", family="robustness", title="Crashes")
    def boom(ctx, spec):
        return [Measurement("overall", 1 / 0)]

    @reg("tc.bad_input", family="integrity", title="Raises an input error")
    def bad_input(ctx, spec):
        raise InputError("column 'x': expected numbers, got text")

    @reg("tc.drift", family="drift", title="Needs reference", requires=("reference",))
    def drift(ctx, spec):
        return [Measurement("overall", 0.0)]

    @reg("tc.robust", family="robustness", title="Needs model", requires=("model",))
    def robust(ctx, spec):
        return [Measurement("overall", 0.0)]

    @reg("tc.fair", family="fairness", title="Needs groups", requires=("sensitive",))
    def fair(ctx, spec):
        return [Measurement("overall", 1.0)]

    @reg("tc.skips", family="integrity", title="Skips itself")
    def skips(ctx, spec):
        raise SkipCheck("no date column to check freshness on")

    @reg("tc.small", family="fairness", title="Only small groups")
    def small(ctx, spec):
        return [Measurement("group a", 0.5, n=3, judged=False, note="below 30 rows")]

    CALLS.clear()
    yield
    for cid in ids:
        REGISTRY.pop(cid, None)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 600
    x = rng.normal(size=(n, 3))
    y = (x[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(int)
    df = pd.DataFrame(x, columns=["a", "b", "c"])
    df["group"] = np.where(rng.random(n) < 0.5, "f", "m")
    df["y"] = y
    return df


@pytest.fixture(scope="module")
def model(frame: pd.DataFrame) -> LogisticRegression:
    return LogisticRegression().fit(frame[["a", "b", "c"]], frame["y"])


def policy(*entries: str, settings: str = "") -> Any:
    body = "\n".join(f"      - {e}" for e in entries)
    text = f"name: test\nversion: 1\n{settings}tiers:\n  high:\n    checks:\n{body}\n"
    return parse_policy(text, source="test.yaml")


def run(frame: pd.DataFrame, pol: Any, **kw: Any) -> Certification:
    kw.setdefault("prediction", None)
    if kw.get("model") is None and kw["prediction"] is None and kw.get("score") is None:
        kw["prediction"] = "y"
    return certify(data=frame, policy=pol, tier="high", target="y", **kw)


# --------------------------------------------------------------------------- judging


def fixed(value: float, lo: float | None = None, hi: float | None = None, *,
          judge: str = "point", severity: str = "block", tmin: float = 0.8) -> str:
    ci = f", lo: {lo}, hi: {hi}" if lo is not None else ""
    return (f"{{id: tc.fixed, params: {{value: {value}{ci}}}, threshold: {{min: {tmin}}}, "
            f"judge: {judge}, severity: {severity}}}")


@pytest.mark.parametrize(
    ("entry", "check_status", "verdict"),
    [
        # point: only the estimate counts
        (fixed(0.85, 0.70, 0.95), "pass", "passed"),
        (fixed(0.79, 0.70, 0.95), "fail", "blocked"),
        # interval: inside passes, straddling warns, wholly outside fails
        (fixed(0.85, 0.81, 0.95, judge="interval"), "pass", "passed"),
        (fixed(0.85, 0.70, 0.95, judge="interval"), "warn", "passed_with_warnings"),
        (fixed(0.75, 0.70, 0.79, judge="interval"), "fail", "blocked"),
        # interval judging with no interval falls back to the point estimate
        (fixed(0.75, judge="interval"), "fail", "blocked"),
        # a failure of a warn-severity check warns, never blocks
        (fixed(0.50, severity="warn"), "warn", "passed_with_warnings"),
    ],
)
def test_point_and_interval_judging(frame: pd.DataFrame, entry: str, check_status: str,
                                    verdict: str) -> None:
    cert = run(frame, policy(entry))
    assert str(cert.checks[0].status) == check_status
    assert cert.status == verdict
    assert cert.passed is (verdict != "blocked")


def test_point_passes_where_interval_warns_same_numbers(frame: pd.DataFrame) -> None:
    point = run(frame, policy(fixed(0.82, 0.76, 0.88)))
    interval = run(frame, policy(fixed(0.82, 0.76, 0.88, judge="interval")))
    assert point.status == "passed"
    assert interval.status == "passed_with_warnings"
    d = interval.to_dict()["checks"][0]
    assert d["ci"] == [0.76, 0.88] and d["value"] == 0.82 and d["judge_on"] == "interval"


# --------------------------------------------------------------------------- errors and skips


def test_errored_block_check_blocks_and_says_why(frame: pd.DataFrame) -> None:
    cert = run(frame, policy(fixed(0.9), "{id: tc.boom, threshold: {max: 1}}"))
    boom = cert.checks[1]
    assert boom.status is Status.ERROR
    assert "ZeroDivisionError" in boom.message and "division by zero" in boom.message
    assert cert.status == "blocked" and not cert.passed
    assert cert.blocking == [boom]
    assert cert.to_dict()["summary"] == {"pass": 1, "warn": 0, "fail": 0, "skip": 0, "error": 1}


def test_errored_warn_check_warns(frame: pd.DataFrame) -> None:
    cert = run(frame, policy(fixed(0.9), "{id: tc.boom, threshold: {max: 1}, severity: warn}"))
    assert cert.checks[1].status is Status.ERROR
    assert cert.status == "passed_with_warnings"


def test_user_error_inside_a_check_is_an_error_with_its_message(frame: pd.DataFrame) -> None:
    cert = run(frame, policy("{id: tc.bad_input, threshold: {max: 0}}"))
    assert cert.checks[0].status is Status.ERROR
    assert "column 'x': expected numbers, got text" in cert.checks[0].message
    assert cert.status == "blocked"


def test_failing_shared_step_is_computed_once_and_errors_every_user(frame: pd.DataFrame) -> None:
    cert = run(frame, policy("{id: tc.failing_step, threshold: {max: 1}}",
                             "{id: tc.failing_step, name: again, threshold: {max: 1}}"))
    assert [c.status for c in cert.checks] == [Status.ERROR, Status.ERROR]
    assert all("the shared step broke" in c.message for c in cert.checks)
    assert CALLS["failing"] == 1


def test_cached_computation_is_shared_between_checks(frame: pd.DataFrame) -> None:
    run(frame, policy("{id: tc.shared, threshold: {min: 0.5}}",
                      "{id: tc.shared, name: second, threshold: {min: 0.1}}"))
    assert CALLS["shared"] == 1


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("{id: tc.drift, threshold: {max: 0.1}}", "reference data"),
        ("{id: tc.robust, threshold: {max: 0.1}}", "a model"),
        ("{id: tc.fair, threshold: {min: 0.8}}", "protected attribute"),
        ("{id: tc.skips, threshold: {max: 0}}", "no date column to check freshness on"),
        ("{id: tc.small, threshold: {min: 0.8}}", "nothing could be judged"),
    ],
)
def test_skipped_check_says_why_and_is_not_a_pass(frame: pd.DataFrame, entry: str,
                                                   reason: str) -> None:
    cert = run(frame, policy(fixed(0.9), entry))
    skipped = cert.checks[1]
    assert skipped.status is Status.SKIP
    assert reason in skipped.message
    assert cert.status == "passed_with_warnings"
    assert cert.to_dict()["checks"][1]["message"] == skipped.message


def test_policy_can_make_skipped_block_checks_block(frame: pd.DataFrame) -> None:
    pol = policy(fixed(0.9), "{id: tc.drift, threshold: {max: 0.1}}",
                 settings="settings:\n  on_skip: block\n")
    assert run(frame, pol).status == "blocked"
    pol = policy(fixed(0.9), "{id: tc.drift, threshold: {max: 0.1}, severity: warn}",
                 settings="settings:\n  on_skip: block\n")
    assert run(frame, pol).status == "passed_with_warnings"


def test_requirements_met_runs_the_check(frame: pd.DataFrame, model: Any) -> None:
    cert = run(frame, policy("{id: tc.drift, threshold: {max: 0.1}}",
                             "{id: tc.robust, threshold: {max: 0.1}}",
                             "{id: tc.fair, threshold: {min: 0.8}}"),
               model=model, reference=frame, sensitive=["group"])
    assert [c.status for c in cert.checks] == [Status.PASS] * 3
    assert cert.status == "passed"


# --------------------------------------------------------------------------- numbers


def test_model_predictions_and_metrics_match_sklearn(frame: pd.DataFrame, model: Any) -> None:
    cert = run(frame, policy("{id: tc.accuracy, threshold: {min: 0.5}}"), model=model,
               sensitive="group")
    X = frame[["a", "b", "c"]]
    acc = accuracy_score(frame["y"], model.predict(X))
    auc = roc_auc_score(frame["y"], model.predict_proba(X)[:, 1])
    assert cert.checks[0].measurements[0].value == pytest.approx(acc, abs=1e-12)
    m = cert.to_dict()["metrics"]
    assert m["overall"]["accuracy"]["value"] == pytest.approx(acc, abs=1e-12)
    assert m["overall"]["roc_auc"]["value"] == pytest.approx(auc, abs=2e-3)
    lo, hi = m["overall"]["accuracy"]["ci"]
    assert lo < acc < hi
    assert "group" in (m.get("groups") or m.get("by_group"))


def test_score_column_only_uses_policy_decision_threshold(frame: pd.DataFrame,
                                                           model: Any) -> None:
    df = frame.copy()
    df["p"] = model.predict_proba(frame[["a", "b", "c"]])[:, 1]
    pol = policy("{id: tc.accuracy, threshold: {min: 0.0}}",
                 settings="settings:\n  decision_threshold: 0.7\n")
    cert = certify(data=df, policy=pol, tier="high", target="y", score="p")
    expected = accuracy_score(df["y"], (df["p"] >= 0.7).astype(int))
    assert cert.checks[0].measurements[0].value == pytest.approx(expected, abs=1e-12)
    assert cert.to_dict()["roles"]["threshold"] == 0.7


def test_positive_label_from_the_command_line_matches_numbers(frame: pd.DataFrame) -> None:
    cert = certify(data=frame, policy=policy(fixed(0.9)), tier="high", target="y",
                   prediction="y", positive_label="1")
    assert cert.roles.positive_label == 1
    with pytest.raises(InputError, match=r"column 'y': expected the positive label 'yes'"):
        certify(data=frame, policy=policy(fixed(0.9)), tier="high", target="y",
                prediction="y", positive_label="yes")


# --------------------------------------------------------------------------- results.json


def test_results_dict_follows_the_schema(frame: pd.DataFrame, model: Any, tmp_path: Path) -> None:
    src = tmp_path / "eval.csv"
    frame.to_csv(src, index=False)
    ref = tmp_path / "ref.parquet"
    frame.to_parquet(ref)
    cert = certify(data=src, reference=ref, policy=policy(fixed(0.9, 0.85, 0.95)), tier="high",
                   target="y", model=model, sensitive=["group"])
    d = cert.to_dict()
    assert set(d) >= RESULT_KEYS
    assert d["schema_version"] == "1.0" and d["assay_version"] == assay.__version__
    assert d["created_at"].endswith("Z") and "T" in d["created_at"]
    assert d["status"] in ("passed", "passed_with_warnings", "blocked")
    assert {"name", "version", "tier", "path", "sha256"} <= set(d["policy"])
    assert d["policy"]["tier"] == "high" and len(d["policy"]["sha256"]) == 64
    assert {"path", "sha256", "kind"} <= set(d["model"])
    assert d["model"]["kind"] == "sklearn LogisticRegression"
    ev = d["data"]["evaluation"]
    import hashlib

    assert ev["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert ev["rows"] == len(frame) and ev["name"] == str(src)
    assert d["data"]["reference"]["sha256"] == hashlib.sha256(ref.read_bytes()).hexdigest()
    assert set(d["roles"]) >= {"target", "prediction", "score", "sensitive", "features",
                               "weight", "positive_label", "task"}
    assert d["roles"]["sensitive"] == ["group"]
    assert d["settings"]["min_group_size"] == 30
    assert d["settings"]["bootstrap"] == {"replicates": 1000, "confidence": 0.95, "seed": 0}
    assert {"python", "platform", "packages"} <= set(d["environment"])
    assert d["environment"]["packages"]["numpy"] == np.__version__
    assert set(d["summary"]) == {"pass", "warn", "fail", "skip", "error"}
    assert sum(d["summary"].values()) == len(d["checks"])
    for c in d["checks"]:
        assert set(c) >= CHECK_KEYS
        assert c["source"].startswith("test.yaml:")
    assert d["drift"] is not None and d["drift"]["drifted_share"] == 0.0
    assert set(d["drift"]["features"]) == {"a", "b", "c", "group"}
    # plain JSON: no NaN, no numpy types
    text = json.dumps(d, allow_nan=False)
    assert json.loads(text) == d
    validate_results(d)


def validate_results(d: dict[str, Any]) -> None:
    import jsonschema

    from assay.certification import results_schema

    jsonschema.Draft202012Validator(results_schema()).validate(d)


def test_schema_refuses_what_consumers_cannot_read(frame: pd.DataFrame) -> None:
    import jsonschema

    d = run(frame, policy(fixed(0.9))).to_dict()
    validate_results(d)
    for mutate in (lambda r: r.update(status="ok"),
                   lambda r: r["policy"].update(sha256="abc"),
                   lambda r: r["checks"][0].update(status="passed"),
                   lambda r: r.pop("summary")):
        bad = json.loads(json.dumps(d))
        mutate(bad)
        with pytest.raises(jsonschema.ValidationError):
            validate_results(bad)


def test_write_creates_results_and_report_atomically(frame: pd.DataFrame,
                                                     tmp_path: Path) -> None:
    cert = run(frame, policy(fixed(0.9), "{id: tc.boom, threshold: {max: 1}}"))
    out = tmp_path / "out" / "nested"
    written = cert.write(out)
    assert set(written) == {"results.json", "report.html"}
    loaded = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert loaded == cert.to_dict() | {"created_at": loaded["created_at"]}
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html")
    assert "ZeroDivisionError" in html
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "results.json"]  # no temp


def test_out_dir_argument_writes(frame: pd.DataFrame, tmp_path: Path) -> None:
    run(frame, policy(fixed(0.9)), out_dir=tmp_path)
    assert json.loads((tmp_path / "results.json").read_text())["status"] == "passed"


def test_nan_values_become_null(frame: pd.DataFrame) -> None:
    cert = run(frame, policy(fixed(0.9)))
    cert.checks[0].measurements[0].value = math.nan
    text = cert.to_json()
    assert "NaN" not in text


# --------------------------------------------------------------------------- bad input


def test_bad_input_is_one_clear_error(frame: pd.DataFrame, tmp_path: Path) -> None:
    pol = policy(fixed(0.9))
    with pytest.raises(PolicyError, match=r"unknown tier 'hgh'.*did you mean 'high'"):
        certify(data=frame, policy=pol, tier="hgh", target="y", prediction="y")
    with pytest.raises(InputError, match=r"target column 'label' not found"):
        certify(data=frame, policy=pol, tier="high", target="label", prediction="y")
    with pytest.raises(InputError, match="nothing to certify"):
        certify(data=frame, policy=pol, tier="high", target="y")
    with pytest.raises(InputError, match="sensitive column 'sex' not found"):
        certify(data=frame, policy=pol, tier="high", target="y", prediction="y",
                sensitive=["sex"])
    with pytest.raises(ModelLoadError, match="model file not found"):
        certify(data=frame, policy=pol, tier="high", target="y", model=tmp_path / "m.joblib")
    with pytest.raises(PolicyError, match="no such file"):
        certify(data=frame, policy=tmp_path / "p.yaml", tier="high", target="y", prediction="y")


def test_model_missing_a_column(frame: pd.DataFrame, model: Any) -> None:
    with pytest.raises(ModelLoadError, match=r"expects column\(s\) c"):
        certify(data=frame.drop(columns=["c"]), policy=policy(fixed(0.9)), tier="high",
                target="y", model=model)


# --------------------------------------------------------------------------- progress


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def start(self, description: str, total: Any = None) -> Recorder.Task:
        self.events.append(("start", description, total))
        return Recorder.Task(self, description)

    class Task:
        def __init__(self, rec: Recorder, name: str) -> None:
            self.rec, self.name = rec, name

        def advance(self, n: float = 1) -> None:
            self.rec.events.append(("advance", self.name, n))

        def finish(self) -> None:
            self.rec.events.append(("finish", self.name))


def test_progress_reporter_sees_every_step(frame: pd.DataFrame, model: Any) -> None:
    rec = Recorder()
    run(frame, policy(fixed(0.9), "{id: tc.accuracy, threshold: {min: 0.5}}"), model=model,
        progress=rec)
    starts = [e[1] for e in rec.events if e[0] == "start"]
    assert "Running 2 checks" in starts
    assert any("metrics" in s for s in starts)
    advanced = sum(e[2] for e in rec.events if e[0] == "advance" and e[1] == "Running 2 checks")
    assert advanced == 2
    assert len([e for e in rec.events if e[0] == "finish"]) == len(starts)


def test_callable_progress_like_the_cli_adapter(frame: pd.DataFrame) -> None:
    seen: list[str] = []

    class Handle:
        def advance(self, n: float = 1) -> None:
            seen.append("advance")

        def close(self) -> None:
            seen.append("close")

    def progress(description: str, total: Any = None) -> Handle:
        seen.append(description)
        return Handle()

    run(frame, policy(fixed(0.9)), progress=progress)
    assert "Running 1 checks" in seen and "close" in seen and "advance" in seen


# --------------------------------------------------------------------------- package surface


def test_public_exports() -> None:
    assert assay.certify is certify
    assert assay.Certification is Certification
    from assay.policy import load_policy

    assert assay.load_policy is load_policy
    from assay.data import ColumnRoles, open_dataset

    assert assay.ColumnRoles is ColumnRoles and assay.open_dataset is open_dataset
    from assay.metrics import ClassificationStats, MetricFrame

    assert assay.ClassificationStats is ClassificationStats and assay.MetricFrame is MetricFrame
    with pytest.raises(AttributeError):
        assay.no_such_name  # noqa: B018


# --------------------------------------------------------------------------- other tasks and shapes


def test_regression_certification(frame: pd.DataFrame) -> None:
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import mean_absolute_error

    df = frame.copy()
    df["amount"] = 3 * df["a"] - df["b"] + np.random.default_rng(1).normal(size=len(df))
    model = LinearRegression().fit(df[["a", "b", "c"]], df["amount"])
    pol = parse_policy(
        "name: reg\nversion: 1\ntiers:\n  high:\n    checks:\n"
        "      - {id: performance.mae, threshold: {max: 2.0}}\n"
        "      - {id: performance.roc_auc, threshold: {min: 0.7}}\n", source="reg.yaml")
    cert = certify(data=df, policy=pol, tier="high", target="amount", model=model,
                   features="a,b,c", sensitive=["group"], task="regression")
    mae = mean_absolute_error(df["amount"], model.predict(df[["a", "b", "c"]]))
    mae_check, auc_check = cert.checks
    assert mae_check.status is Status.PASS
    assert mae_check.measurements[0].value == pytest.approx(mae, rel=1e-9)
    assert auc_check.status is Status.SKIP and auc_check.message.startswith("not run")
    d = cert.to_dict()
    assert d["roles"]["task"] == "regression" and d["roles"]["features"] == ["a", "b", "c"]
    assert d["metrics"]["overall"]["mae"]["value"] == pytest.approx(mae, rel=1e-9)
    assert cert.status == "passed_with_warnings"


def test_tier_without_checks_is_not_a_clean_pass(frame: pd.DataFrame) -> None:
    pol = parse_policy("name: e\nversion: 1\ntiers:\n  low: {}\n", source="e.yaml")
    cert = certify(data=frame, policy=pol, tier="low", target="y", prediction="y")
    assert cert.checks == [] and cert.status == "passed_with_warnings"
    assert any("has no checks" in n for n in cert.notes)


def test_write_into_a_file_path_is_a_clear_error(frame: pd.DataFrame, tmp_path: Path) -> None:
    cert = run(frame, policy(fixed(0.9)))
    blocker = tmp_path / "taken"
    blocker.write_text("not a folder")
    with pytest.raises(InputError, match="cannot create the output folder"):
        cert.write(blocker)


def test_written_files_follow_the_umask(frame: pd.DataFrame, tmp_path: Path) -> None:
    import os

    old = os.umask(0o022)
    try:
        written = run(frame, policy(fixed(0.9))).write(tmp_path)
    finally:
        os.umask(old)
    for path in written.values():
        assert path.stat().st_mode & 0o777 == 0o644


def test_progress_through_the_cli_rich_adapter(frame: pd.DataFrame, model: Any) -> None:
    import io

    from rich.console import Console

    from assay.cli.certify import rich_progress

    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    with rich_progress(console) as progress:
        cert = run(frame, policy(fixed(0.9), "{id: tc.accuracy, threshold: {min: 0.5}}"),
                   model=model, sensitive=["group"], progress=progress)
        tasks = {t.description: t for t in progress._progress.tasks}
    assert cert.status == "passed"
    assert tasks["Running 2 checks"].completed == 2 and tasks["Running 2 checks"].finished
    assert all(t.finished for t in tasks.values())
