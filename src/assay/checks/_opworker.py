"""The fresh process that times a model for the operational checks.

Run as ``python -m assay.checks._opworker MODEL_FILE``: it imports its libraries and
loads the model while the certification writes the sample, then reads a JSON job on
stdin (Parquet sample, repeats) and prints one JSON object on stdout. The model is loaded
through :func:`assay.data.load_model`, so every model-file check of that path
applies here too. Nothing else of assay is imported before the timings, so the
memory figures are the model's and its libraries', not the certification's.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import resource
import sys
import threading
import time
from typing import Any


def _rss() -> int:
    """Resident set size of this process in bytes (Linux /proc; else the peak so far)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)


class _Peak:
    """Samples the RSS every millisecond in a thread; ``peak`` is the highest seen."""

    def __init__(self) -> None:
        self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss())
            time.sleep(0.001)

    def __enter__(self) -> _Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        mod = sys.modules.get(module)
        return getattr(mod, "__version__", None)


def machine(model: Any) -> dict[str, Any]:
    """The machine and software the figures were measured on."""
    libs = {"numpy": "numpy", "pandas": "pandas", "scikit-learn": "scikit-learn",
            "scipy": "scipy", "joblib": "joblib"}
    root = type(model).__module__.split(".")[0]
    dist = {"sklearn": "scikit-learn"}.get(root, root)
    libs.setdefault(dist, dist)
    return {"cpu": _cpu_model(), "cores": os.cpu_count(),
            "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else None,
            "python": platform.python_version(), "implementation": platform.python_implementation(),
            "os": platform.platform(), "libraries": {k: _version(v) for k, v in libs.items()}}


def main() -> int:
    import pandas as pd

    from assay.data import load_model
    from assay.errors import AssayError

    gc.collect()
    rss_start = _rss()  # after assay's own imports: the difference is the model's
    try:
        # --trust: the certification loaded this file on its user's explicit trust
        adapter = load_model(sys.argv[1], trust=sys.argv[2:3] == ["--trust"])
    except AssayError as exc:
        json.dump({"error": str(exc)}, sys.stdout)
        return 0
    rss_loaded = _rss()
    job = json.load(sys.stdin)  # sent once the sample is written
    df = pd.read_parquet(job["data"])
    n = len(df)
    use_proba = adapter.has_proba
    est = adapter.estimator

    def call(x: Any) -> Any:
        # through the adapter, as certification predicts: its column selection and its
        # thread limits (one native thread below SINGLE_THREAD_ROWS rows) apply
        return adapter.predict_proba(x) if use_proba else adapter.predict(x)

    rows = [df.iloc[[i % n]] for i in range(job["warmup"] + job["repeats"])]
    b = min(int(job["batch_size"]), n)
    starts = [(i * b) % max(n - b + 1, 1) for i in range(job["warmup"] + job["batch_repeats"])]
    batches = [df.iloc[s:s + b] for s in starts]
    budget = float(job["budget_s"])

    def series(inputs: list[Any], least: int) -> list[float]:
        """Time ``call`` on each input until all are done or ``budget`` seconds were spent
        on timed calls (after at least ``least`` of them)."""
        out: list[float] = []
        spent = 0.0
        for x in inputs:
            t0 = time.perf_counter()
            call(x)
            dt = time.perf_counter() - t0
            out.append(dt * 1000.0)
            spent += dt
            if spent >= budget and len(out) >= least:
                break
        return out

    try:
        for x in rows[:job["warmup"]]:
            call(x)
        single = series(rows[job["warmup"]:], 10)
        for x in batches[:job["warmup"]]:
            call(x)
        batch = series(batches[job["warmup"]:], 2)
        del rows, batches
        gc.collect()
        rss_before = _rss()
        with _Peak() as peak:
            call(df)
    except Exception as exc:
        json.dump({"error": f"{adapter.name}: prediction failed in the timing process: "
                            f"{type(exc).__name__}: {exc}"}, sys.stdout)
        return 0
    json.dump({"single_ms": single, "batch_ms": batch, "batch_size": b, "rows": n,
               "budget_s": budget,
               "method": "predict_proba" if use_proba else "predict",
               "memory": {"start_mb": rss_start / 2**20, "model_loaded_mb": rss_loaded / 2**20,
                          "before_predict_mb": rss_before / 2**20,
                          "peak_predict_mb": peak.peak / 2**20,
                          "model_mb": (rss_loaded - rss_start) / 2**20,
                          "predict_delta_mb": max(0, peak.peak - rss_before) / 2**20},
               "machine": machine(est)}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
