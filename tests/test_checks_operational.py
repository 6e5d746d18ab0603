"""operational.*: latency, throughput and memory measured in a fresh process."""

from __future__ import annotations

import os
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom
from sklearn.linear_model import LogisticRegression

import assay.checks.operational  # noqa: F401 - registers the checks
from _slow_model import SlowModel
from assay.checks.base import REGISTRY, CheckSpec, JudgeOn, Status, Threshold, run_check
from assay.checks.operational import _order_ci
from assay.data import ColumnRoles, ModelAdapter, load_model, open_dataset
from assay.errors import ModelLoadError, PolicyError
from test_checks_integrity import Ctx

ROLES = ColumnRoles(target="y")
TESTS = str(Path(__file__).resolve().parent)
FAST = dict(repeats=400, batch_repeats=10, warmup=5, batch_size=200, sample_rows=1_000,
            budget_s=60)


@pytest.fixture(autouse=True)
def _tests_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    # the timing process imports the pickled SlowModel from tests/
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [TESTS, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]))


def data(n: int = 3_000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 4))
    return pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "d": X[:, 3],
                         "y": (X[:, 0] + X[:, 1] > 0).astype(int)})


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    df = data()
    lr = LogisticRegression().fit(df[["a", "b", "c", "d"]], df["y"])
    d = tmp_path_factory.mktemp("models")
    joblib.dump(lr, d / "fast.joblib")
    joblib.dump(SlowModel(lr, 0.15), d / "slow.joblib")
    (d / "broken.joblib").write_bytes(b"not a model")
    return {"fast": d / "fast.joblib", "slow": d / "slow.joblib", "broken": d / "broken.joblib"}


def ctx_for(model: ModelAdapter | None) -> Ctx:
    return Ctx(open_dataset(data(), ROLES), None, model, ROLES)


def run(ctx: Ctx, check_id: str, threshold: Threshold, **params):
    spec = CheckSpec(id=check_id, threshold=threshold, judge_on=JudgeOn.INTERVAL,
                     params={**FAST, **params}, source="policy.yaml:40")
    return run_check(REGISTRY[check_id], ctx, spec)


def test_slow_model_fails_the_latency_slo_a_fast_one_meets(files) -> None:
    slo = Threshold(max=100.0)  # ms: generous, the machine may be busy
    fast = run(ctx_for(load_model(files["fast"])), "operational.latency_p99_ms", slo)
    slow = run(ctx_for(load_model(files["slow"], trust=True)), "operational.latency_p99_ms", slo,
               repeats=30, batch_repeats=3, warmup=1)
    assert fast.status is Status.PASS, fast.message
    p99 = fast.measurements[0]
    assert p99.n == 400 and p99.ci[0] <= p99.value <= p99.ci[1]
    assert slow.status is Status.FAIL, slow.message
    assert slow.measurements[0].value >= 150.0 and slow.measurements[0].n == 30
    assert "too few calls for an interval" in slow.measurements[0].note
    assert slow.measurements[1].judged is False and "p50" in slow.measurements[1].label
    m = fast.details["machine"]
    assert m["cores"] == os.cpu_count() and m["python"] and m["os"]
    assert m["libraries"]["scikit-learn"] and m["cpu"]
    assert fast.details["method"] == "predict_proba"


def test_a_series_stops_at_its_time_budget(files) -> None:
    r = run(ctx_for(load_model(files["slow"], trust=True)), "operational.latency_p99_ms",
            Threshold(max=1_000.0), repeats=400, batch_repeats=3, warmup=0, budget_s=0.5)
    m = r.measurements[0]
    assert m.n == 10  # 0.15 s a call: the budget is spent before the 10 calls always timed
    assert "stopped at the budget of 0.5 s" in m.note
    assert r.details["budget_s"] == 0.5


def test_a_process_that_does_not_finish_in_time_fails_the_latency_slo(files) -> None:
    ctx = ctx_for(load_model(files["slow"], trust=True))
    lat = run(ctx, "operational.latency_p99_ms", Threshold(max=100.0), timeout_s=1)
    assert lat.status is Status.FAIL
    assert lat.measurements[0].value == 1_000.0
    assert "did not finish within timeout_s=1 s" in lat.measurements[0].note
    mem = run(ctx, "operational.memory_mb", Threshold(max=1_024.0), timeout_s=1)
    assert mem.status is Status.SKIP and "did not finish within 1 s" in mem.message


def test_one_run_serves_every_operational_check(files) -> None:
    ctx = ctx_for(load_model(files["slow"], trust=True))
    few = dict(repeats=10, batch_repeats=5, warmup=1)
    batch = run(ctx, "operational.batch_latency_p99_ms", Threshold(max=5_000.0), **few)
    tput = run(ctx, "operational.throughput", Threshold(min=100_000.0), **few)
    mem = run(ctx, "operational.memory_mb", Threshold(max=1_024.0), **few)
    assert len([k for k in ctx.calls if k.startswith("operational:")]) == 1
    assert batch.status is Status.PASS and "batch of 200 rows" in batch.measurements[0].label
    # 200 rows per call of at least 150 ms: at most 1,334 rows/s
    assert tput.status is Status.FAIL
    assert tput.measurements[0].value < 1_334
    lo, hi = tput.measurements[0].ci
    assert lo <= tput.measurements[0].value <= hi
    assert mem.status is Status.PASS and mem.measurements[0].value >= 0
    assert mem.details["memory"]["model_mb"] >= 0


def test_skipped_without_a_model_file(files) -> None:
    r = run(ctx_for(None), "operational.latency_p99_ms", Threshold(max=10.0))
    assert r.status is Status.SKIP and "predictions-only" in r.message
    est = joblib.load(files["fast"])
    r = run(ctx_for(ModelAdapter.from_estimator(est)), "operational.throughput",
            Threshold(min=1.0))
    assert r.status is Status.SKIP and "not as a file" in r.message


def test_model_file_failing_in_the_timing_process_is_a_clear_error(files, tmp_path) -> None:
    model = load_model(files["fast"])
    gone = tmp_path / "gone.joblib"
    gone.write_bytes(files["fast"].read_bytes())
    model.path = gone
    gone.write_bytes(b"garbage")  # replaced after it was loaded
    with pytest.raises(ModelLoadError, match="not a joblib or pickle model file"):
        run(ctx_for(model), "operational.latency_p99_ms", Threshold(max=10.0))


@pytest.mark.parametrize(("param", "value"), [("repeats", 5), ("batch_size", 0),
                                              ("warmup", -1), ("timeout_s", "soon"),
                                              ("budget_s", 0), ("budget_s", "1s")])
def test_bad_params_are_policy_errors(files, param: str, value) -> None:
    with pytest.raises(PolicyError, match=rf"policy.yaml:40.*'{param}'"):
        run(ctx_for(load_model(files["fast"])), "operational.latency_p99_ms",
            Threshold(max=10.0), **{param: value})


def test_order_statistic_interval() -> None:
    # the interval's bounds are order statistics whose ranks cover the p99 with at least
    # the stated probability (the binomial count of values below the quantile)
    x = np.arange(1, 1001, dtype=float)
    lo, hi = _order_ci(x, 0.99, 0.95)
    cover = binom.cdf(hi - 1, 1000, 0.99) - binom.cdf(lo - 1, 1000, 0.99)
    assert cover >= 0.95
    assert lo < 990 < hi
    assert _order_ci(x[:100], 0.99, 0.95) is None  # too few values for an upper bound


def test_report_shows_the_machine(files) -> None:
    from assay.report import render_report

    r = run(ctx_for(load_model(files["fast"])), "operational.throughput", Threshold(min=1.0),
            repeats=10, batch_repeats=3, warmup=1)
    html = render_report({"status": "passed", "checks": [r.to_dict()]})
    m = r.details["machine"]
    assert "Measured on:" in html and f"Python {m['python']}" in html
    assert f"scikit-learn {m['libraries']['scikit-learn']}" in html
    assert "Operational" in html


POLICY = """\
name: slo
version: "1"
tiers:
  high:
    checks:
      - id: integrity.out_of_distribution
        params: {sample_rows: 2000, reference_rows: 1000}
        threshold: {max: 0.05}
        judge: interval
        rationale: rows like the training data
      - id: operational.latency_p99_ms
        params: {repeats: REPEATS, batch_repeats: 3, warmup: 2, batch_size: 100}
        threshold: THRESHOLD
        judge: interval
        rationale: the service level
"""


def _policy(tmp_path: Path, repeats: str = "400", threshold: str = "{max: 100}") -> Path:
    p = tmp_path / "slo.yaml"
    p.write_text(POLICY.replace("REPEATS", repeats).replace("THRESHOLD", threshold))
    return p


def test_certify_runs_the_checks_from_a_policy_file(files, tmp_path: Path) -> None:
    from assay import certify

    df = data()
    cert = certify(data=df.iloc[1500:], reference=df.iloc[:1500], policy=_policy(tmp_path),
                   tier="high", target="y", model=files["fast"])
    res = {c["id"]: c for c in cert.to_dict()["checks"]}
    ood, lat = res["integrity.out_of_distribution"], res["operational.latency_p99_ms"]
    assert ood["status"] == "pass", ood["message"]
    assert lat["status"] == "pass", lat["message"]
    assert lat["family"] == "operational" and lat["details"]["machine"]["cores"]
    # predictions only: no model file, the operational check says why it did not run
    df["pred"] = df["y"]
    cert = certify(data=df, policy=_policy(tmp_path), tier="high", target="y",
                   prediction="pred")
    lat = {c["id"]: c for c in cert.to_dict()["checks"]}["operational.latency_p99_ms"]
    assert lat["status"] == "skip" and "model" in lat["message"]


@pytest.mark.parametrize(("threshold", "match"), [
    ("{min: 10, max: 1}", r"slo.yaml:13:9: .*threshold: expected min <= max, got min 10 > max 1"),
    ("{max: fast}", r"slo.yaml:13:21: .*threshold.max: expected a valid number"),
])
def test_bad_slos_are_policy_errors_with_the_line(files, tmp_path: Path, threshold: str,
                                                  match: str) -> None:
    from assay import certify

    with pytest.raises(PolicyError, match=match):
        certify(data=data(), policy=_policy(tmp_path, threshold=threshold), tier="high",
                target="y", model=files["fast"])


def test_a_bad_timing_param_names_the_policy_line(files, tmp_path: Path) -> None:
    from assay import certify

    cert = certify(data=data(), policy=_policy(tmp_path, repeats="3"), tier="high",
                   target="y", model=files["fast"])
    lat = {c["id"]: c for c in cert.to_dict()["checks"]}["operational.latency_p99_ms"]
    assert lat["status"] == "error"
    assert "(slo.yaml:11)" in lat["message"]  # the entry's line
    assert "'repeats': expected an integer >= 10, got 3" in lat["message"]


def test_the_timing_process_starts_before_the_first_check_and_is_cleaned_up(
        files, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """prepare() starts the one timing process before any check runs (its start overlaps
    the other checks' work); it serves the operational checks and leaves nothing behind."""
    import assay.certification as certification
    from assay import certify
    from assay.checks import operational

    log: list[str] = []
    started: list[tuple[object, str]] = []
    real_start, real_run_one = operational._start_worker, certification.run_one

    def start(path: Path, trust: bool):
        proc, tmp = real_start(path, trust)
        log.append(f"start trust={trust}")
        started.append((proc, tmp))
        return proc, tmp

    def run_one(defn, ctx, spec):
        log.append(spec.id)
        return real_run_one(defn, ctx, spec)

    monkeypatch.setattr(operational, "_start_worker", start)
    monkeypatch.setattr(certification, "run_one", run_one)
    df = data()
    cert = certify(data=df.iloc[1500:], reference=df.iloc[:1500], policy=_policy(tmp_path),
                   tier="high", target="y", model=files["slow"], trust_model_file=True)
    res = {c["id"]: c for c in cert.to_dict()["checks"]}
    assert log[0] == "start trust=True" and log.count("start trust=True") == 1, log
    assert res["operational.latency_p99_ms"]["measurements"][0]["value"] >= 150.0
    ((proc, tmp),) = started
    assert proc.poll() is not None and not Path(tmp).exists()


def test_a_model_file_named_relative_to_the_working_directory_is_found(
        files, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The timing process runs in a folder of its own: a relative model path (as `assay
    demo` and most command lines give it) must still reach it."""
    import shutil

    from assay import certify

    shutil.copy(files["fast"], tmp_path / "model.joblib")
    monkeypatch.chdir(tmp_path)
    df = data()
    cert = certify(data=df.iloc[1500:], reference=df.iloc[:1500], policy=_policy(tmp_path),
                   tier="high", target="y", model="model.joblib")
    lat = {c["id"]: c for c in cert.to_dict()["checks"]}["operational.latency_p99_ms"]
    assert lat["status"] == "pass", lat["message"]
