"""Operational checks: prediction latency, throughput and memory of the model file.

The figures are measured in a fresh Python process (:mod:`assay.checks._opworker`)
that loads the model file through the same path as certification
(:func:`assay.data.load_model`) and a seeded sample of the evaluation rows
(``sample_rows``), so that neither the certification's memory nor its threads
disturb them. One run serves every operational check of a tier that gives the
same parameters. The machine (CPU model, cores, Python, OS, library versions)
is recorded with the figures: they mean little on another machine.

* ``operational.latency_p99_ms``: 99th percentile of the time of one prediction
  of a single row (ms), with a distribution-free order-statistic interval; the
  median is reported beside it;
* ``operational.batch_latency_p99_ms``: the same for a batch of ``batch_size`` rows;
* ``operational.throughput``: rows per second over the timed batches, with a
  bootstrap interval over the batches;
* ``operational.memory_mb``: peak resident memory (RSS) added while the model
  predicts the whole sample at once, in MB; the memory the loaded model takes
  is reported beside it.

Suggested SLOs (generous, for a scikit-learn model on one core): single-row p99
max 100 ms, batch p99 max 2,000 ms, throughput min 1,000 rows/s, memory max 1,024 MB.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import quantile_test

from assay.checks.base import (
    CheckContext,
    CheckOutput,
    CheckSpec,
    Measurement,
    SkipCheck,
    check,
    int_param,
    seed_param,
    where,
)
from assay.errors import ModelLoadError, PolicyError

SAMPLE_ROWS = 2_000
BATCH_SIZE = 1_000
REPEATS = 400  # single-row calls: 368 are the fewest with a 95% upper bound on the p99
BATCH_REPEATS = 20
WARMUP = 5
BUDGET_S = 1.0  # seconds of timed calls per series, at most (after 10 calls, 2 batches)
TIMEOUT_S = 600
PARAMS = ("sample_rows", "batch_size", "repeats", "batch_repeats", "warmup", "budget_s",
          "seed", "timeout_s")


def _settings(ctx: CheckContext, spec: CheckSpec) -> dict[str, Any]:
    return {"sample_rows": int_param(spec, "sample_rows", SAMPLE_ROWS),
            "batch_size": int_param(spec, "batch_size", BATCH_SIZE),
            "repeats": int_param(spec, "repeats", REPEATS, low=10),
            "batch_repeats": int_param(spec, "batch_repeats", BATCH_REPEATS, low=2),
            "warmup": int_param(spec, "warmup", WARMUP, low=0),
            "budget_s": _budget(spec),
            "seed": seed_param(ctx, spec),
            "timeout_s": int_param(spec, "timeout_s", TIMEOUT_S)}


def _budget(spec: CheckSpec) -> float:
    v = spec.params.get("budget_s")
    if v is None:
        return BUDGET_S
    if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
        raise PolicyError(f"{where(spec)}: parameter 'budget_s': expected a number of seconds "
                          f"> 0, got {v!r}")
    return float(v)


def _model_file(ctx: CheckContext) -> Path:
    model = ctx.model
    if model is None:
        raise SkipCheck("no model was given (predictions-only certification): operational "
                        "figures need the model file")
    path = getattr(model, "path", None)
    if path is None:
        raise SkipCheck("the model was given as an object in memory, not as a file: "
                        "operational figures are measured in a fresh process that loads "
                        "the model file")
    # absolute: the timing process runs in a folder of its own
    return Path(path).resolve()


def _env() -> dict[str, str]:
    """The environment of the timing process: this one's, with assay importable."""
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2])
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([src, *[p for p in parts if p != src]])
    return env


def measure(ctx: CheckContext, spec: CheckSpec) -> dict[str, Any]:
    """Run the timing process once per certification and parameter set."""
    path = _model_file(ctx)
    s = _settings(ctx, spec)
    key = "operational:" + json.dumps(s, sort_keys=True)
    return ctx.cached(key, lambda: _run(ctx, spec, path, s))


#: ctx.cached key of the timing processes prepare() started, by model file
WORKERS = "timing-workers"


def _trusted(ctx: CheckContext) -> bool:
    """Whether the certification loaded the model file on the user's explicit trust (its
    scan found code outside the allow-list): the timing process may then load it too."""
    scan = getattr(ctx.model, "scan", None)
    return bool(getattr(scan, "trusted", False))


def _start_worker(path: Path, trust: bool) -> tuple[subprocess.Popen[str], str]:
    """The timing process, started: it imports the model's libraries and loads the model,
    then waits for its job on stdin; it times nothing before it has the job."""
    tmp = tempfile.mkdtemp(prefix="assay-operational-")
    proc = subprocess.Popen([sys.executable, "-m", "assay.checks._opworker", str(path),
                             *(["--trust"] if trust else [])],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(), cwd=tmp)
    return proc, tmp


def _stop_worker(proc: subprocess.Popen[str], tmp: str) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.communicate()
    shutil.rmtree(tmp, ignore_errors=True)


def prepare(ctx: CheckContext, spec: CheckSpec) -> None:
    """Start the timing process before the certification's other checks run, so that its
    start (a fresh Python importing the model's libraries, about a second or two) overlaps
    their work; it waits, timing nothing, until the operational check sends its job."""
    on_close = getattr(ctx, "on_close", None)
    if on_close is None:
        return
    path = _model_file(ctx)
    workers = ctx.cached(WORKERS, dict)
    if str(path) in workers:
        return
    proc, tmp = _start_worker(path, _trusted(ctx))
    workers[str(path)] = (proc, tmp)
    on_close(lambda: _stop_worker(proc, tmp))


def _run(ctx: CheckContext, spec: CheckSpec, path: Path, s: dict[str, Any]) -> dict[str, Any]:
    model = ctx.model
    cols = model.input_columns(ctx.roles.feature_columns(ctx.evaluation.column_names))
    import pyarrow.parquet as pq

    # a process started by prepare() serves one job; otherwise one is started now, and
    # imports and loads while the sample is drawn and written
    pre = ctx.cached(WORKERS, dict).pop(str(path), None)
    if pre is not None and pre[0].poll() is None:
        proc, tmp = pre
    else:
        proc, tmp = _start_worker(path, _trusted(ctx))
    try:
        sample = ctx.evaluation.sample_arrow(s["sample_rows"], seed=s["seed"], columns=cols)
        data = Path(tmp) / "sample.parquet"
        pq.write_table(sample, data)
        job = {"data": str(data), "repeats": s["repeats"], "batch_size": s["batch_size"],
               "batch_repeats": s["batch_repeats"], "warmup": s["warmup"],
               "budget_s": s["budget_s"]}
        try:
            stdout, stderr = proc.communicate(json.dumps(job), timeout=s["timeout_s"])
        except subprocess.TimeoutExpired:
            return {"timeout": s["timeout_s"], "rows": sample.num_rows, **s}
    finally:
        _stop_worker(proc, tmp)
    if proc.returncode != 0 or not stdout.strip():
        tail = (stderr.strip().splitlines() or ["no output"])[-1]
        raise ModelLoadError(f"{path}: the timing process for {where(spec)} failed "
                             f"(exit code {proc.returncode}): {tail}")
    out = json.loads(stdout)
    if "error" in out:
        raise ModelLoadError(out["error"])
    return {**out, **s}


def _order_ci(x: np.ndarray, p: float, confidence: float) -> tuple[float, float] | None:
    """Distribution-free interval of the ``p`` quantile from order statistics (None when
    there are too few values for one of its bounds)."""
    ci = quantile_test(x, q=float(np.median(x)), p=p).confidence_interval(confidence)
    lo, hi = float(ci.low), float(ci.high)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return None
    return lo, hi


def _confidence(ctx: CheckContext) -> float:
    return float(getattr(getattr(ctx.settings, "bootstrap", None), "confidence", 0.95))


def _details(r: dict[str, Any]) -> dict[str, Any]:
    keys = ("machine", "method", "rows", "batch_size", "repeats", "batch_repeats", "warmup",
            "budget_s", "memory")
    return {k: r[k] for k in keys if k in r}


def _timed_out(r: dict[str, Any], label: str, value: float) -> CheckOutput:
    return CheckOutput(
        measurements=[Measurement(label=label, value=value,
                                  note=f"did not finish within timeout_s={r['timeout']} s")],
        message=f"the timing process did not finish within {r['timeout']} s",
        details={"timeout_s": r["timeout"]})


def _latency(ctx: CheckContext, spec: CheckSpec, which: str) -> CheckOutput:
    r = measure(ctx, spec)
    label = "single row" if which == "single_ms" else f"batch of {r.get('batch_size')} rows"
    if "timeout" in r:
        return _timed_out(r, f"{label} p99 (ms)", float(r["timeout"]) * 1000.0)
    x = np.asarray(r[which], dtype=np.float64)
    conf = _confidence(ctx)
    p50, p99 = float(np.quantile(x, 0.5)), float(np.quantile(x, 0.99))
    ci99 = _order_ci(x, 0.99, conf)
    cpu = r["machine"]["cpu"]
    ms = [Measurement(label=f"{label} p99 (ms)", value=p99, ci=ci99, n=int(x.size),
                      note=(f"{x.size} timed calls of {r['method']} after {r['warmup']} warm-up "
                            f"calls, on {r['rows']:,} sampled evaluation rows; {cpu}")
                      + (f"; stopped at the budget of {r['budget_s']:g} s"
                         if x.size < (r["repeats"] if which == "single_ms" else r["batch_repeats"])
                         else "")
                      + ("" if ci99 else "; too few calls for an interval of the p99")),
          Measurement(label=f"{label} p50 (ms)", value=p50, ci=_order_ci(x, 0.5, conf),
                      n=int(x.size), judged=False, note="the median, for information")]
    details = _details(r)
    details["latency_ms"] = {"p50": p50, "p90": float(np.quantile(x, 0.9)), "p99": p99,
                             "max": float(x.max()), "mean": float(x.mean())}
    return CheckOutput(measurements=ms, details=details,
                       message=f"{label}: p99 {p99:.3g} ms, p50 {p50:.3g} ms ({x.size} calls, "
                               f"{cpu}, {r['machine']['cores']} cores)")


@check("operational.latency_p99_ms", family="operational",
       title="Single-row latency, p99 (ms)", requires=("model",),
       params=PARAMS, prepare=prepare)
def latency_p99_ms(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """99th percentile of the time to predict one row, measured in a fresh process (ms)."""
    return _latency(ctx, spec, "single_ms")


@check("operational.batch_latency_p99_ms", family="operational",
       title="Batch latency, p99 (ms)", requires=("model",),
       params=PARAMS, prepare=prepare)
def batch_latency_p99_ms(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """99th percentile of the time to predict a batch of batch_size rows (ms)."""
    return _latency(ctx, spec, "batch_ms")


@check("operational.throughput", family="operational", title="Prediction throughput (rows/s)",
       requires=("model",), params=PARAMS, prepare=prepare)
def throughput(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Rows predicted per second in batches of batch_size rows, in a fresh process."""
    r = measure(ctx, spec)
    if "timeout" in r:
        return _timed_out(r, "rows per second", 0.0)
    x = np.asarray(r["batch_ms"], dtype=np.float64) / 1000.0
    b = int(r["batch_size"])
    value = b * x.size / float(x.sum())
    rng = np.random.default_rng(int(r["seed"]))
    reps = b * x.size / x[rng.integers(0, x.size, size=(1000, x.size))].sum(axis=1)
    alpha = (1 - _confidence(ctx)) / 2
    lo, hi = np.quantile(reps, [alpha, 1 - alpha])
    m = Measurement(label="rows per second", value=value, ci=(float(lo), float(hi)),
                    n=int(x.size), note=f"{x.size} batches of {b} rows; bootstrap over batches; "
                                        f"{r['machine']['cpu']}")
    return CheckOutput(measurements=[m], details=_details(r),
                       message=f"{value:,.0f} rows/s in batches of {b} rows")


@check("operational.memory_mb", family="operational",
       title="Peak memory of a prediction (MB)", requires=("model",), params=PARAMS,
       prepare=prepare)
def memory_mb(ctx: CheckContext, spec: CheckSpec) -> CheckOutput:
    """Peak resident memory (RSS) added while predicting the whole sample at once (MB)."""
    r = measure(ctx, spec)
    if "timeout" in r:
        raise SkipCheck(f"the timing process did not finish within {r['timeout']} s, so the "
                        "memory was not measured (see the latency checks)")
    mem = r["memory"]
    ms = [Measurement(label="peak RSS added by predict (MB)", value=float(mem["predict_delta_mb"]),
                      n=int(r["rows"]), note=f"one call on all {r['rows']:,} sampled rows; RSS "
                                             "sampled every millisecond"),
          Measurement(label="RSS of the loaded model (MB)", value=float(mem["model_mb"]),
                      judged=False, note="memory the process gained by loading the model file")]
    return CheckOutput(measurements=ms, details=_details(r),
                       message=f"predicting {r['rows']:,} rows added {mem['predict_delta_mb']:.1f} "
                               f"MB at peak; the loaded model takes {mem['model_mb']:.1f} MB")

