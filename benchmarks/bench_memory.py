"""Peak memory of a real ``assay certify`` run on a 10M-row Parquet file.

    python benchmarks/bench_memory.py [--rows 10000000] [--reference-rows 1000000]

Builds, in a temporary directory and in a separate process:

* ``eval.parquet`` with ``--rows`` rows: a predictions file (no model) with a
  target ``y``, a score, a decision ``pred``, three protected attributes
  (``sex``, ``race``, ``age_band``, dictionary-encoded as a Parquet writer
  keeps categories), four features (``age``, ``income_k``, ``tenure``,
  ``debt_ratio``, the last with some missing values) and one wide free-text
  column ``notes`` that the certification does not use;
* ``reference.parquet`` with ``--reference-rows`` rows of the same layout,
  slightly shifted, as the reference (training) data for drift;
* ``policy.yaml`` with one tier exercising every family the certification
  runs on a predictions file: integrity (missing values, duplicates, group
  representation, train/evaluation overlap, label balance), performance
  (AUC, accuracy, ECE, with bootstrap intervals), fairness (equalized odds
  difference and demographic parity ratio by race and by sex x race, judged
  on 1,000-replicate bootstrap intervals) and drift (PSI, Wasserstein
  distance, prediction drift).

It then runs the real command line, ``assay certify ... --out DIR``, in a
child process, under ``/usr/bin/time -v`` when it exists (its "Maximum
resident set size"), else (or with ``--no-time``) reading the child's
``ru_maxrss`` from ``os.wait4``. Two other runs give the fixed cost: ``assay --help`` (Python
and the command line's imports) and the same certification of a 10,000-row
file against the same reference (every import, the reference's profile and
the report, almost no evaluation data).

Printed: peak RSS; the in-memory (Arrow) size of the columns the
certification uses, of the evaluation file alone and of both files; and the
ratio of the peak to them, with and without the fixed cost (target <= 1.5x).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SENSITIVE = ["sex", "race", "age_band"]
FEATURES = ["age", "income_k", "tenure", "debt_ratio"]
USED_EVAL = ["y", "score", "pred", *SENSITIVE, *FEATURES]
USED_REF = ["score", *FEATURES]   # drift reads the features and the score

POLICY = """\
name: memory-benchmark
version: "1"
description: Every family of checks a predictions file allows.
settings:
  min_group_size: 30
  bootstrap: {replicates: 1000, confidence: 0.95, seed: 0}
  decision_threshold: 0.5
tiers:
  high:
    checks:
      - id: integrity.missing_values
        params: {columns: [%(used)s]}
        threshold: {max: 0.10}
        rationale: Benchmark.
      - id: integrity.duplicates
        params: {columns: [%(used)s]}
        threshold: {max: 0.01}
        rationale: Benchmark.
      - id: integrity.group_representation
        threshold: {min: 0.01}
        severity: warn
        rationale: Benchmark.
      - id: integrity.train_eval_overlap
        threshold: {max: 0.05}
        severity: warn
        rationale: Benchmark.
      - id: integrity.label_balance
        threshold: {min: 0.05}
        rationale: Benchmark.
      - id: performance.roc_auc
        params: {by: [sex, race]}
        threshold: {min: 0.6}
        judge: interval
        rationale: Benchmark.
      - id: performance.accuracy
        threshold: {min: 0.6}
        judge: interval
        rationale: Benchmark.
      - id: performance.ece
        threshold: {max: 0.05}
        judge: interval
        rationale: Benchmark.
      - id: fairness.equalized_odds_difference
        name: Equalized odds by race
        params: {by: [race]}
        threshold: {max: 0.1}
        judge: interval
        rationale: Benchmark.
      - id: fairness.equalized_odds_difference
        name: Equalized odds by sex x race
        params: {by: [sex, race]}
        threshold: {max: 0.1}
        judge: interval
        rationale: Benchmark.
      - id: fairness.demographic_parity_ratio
        name: Demographic parity by race
        params: {by: [race]}
        threshold: {min: 0.8}
        judge: interval
        rationale: Benchmark.
      - id: fairness.demographic_parity_ratio
        name: Demographic parity by sex x race
        params: {by: [sex, race]}
        threshold: {min: 0.8}
        judge: interval
        rationale: Benchmark.
      - id: drift.psi
        threshold: {max: 0.25}
        rationale: Benchmark.
      - id: drift.wasserstein
        threshold: {max: 0.2}
        severity: warn
        rationale: Benchmark.
      - id: drift.prediction
        threshold: {max: 0.25}
        severity: warn
        rationale: Benchmark.
"""


def build(path: Path, rows: int, *, seed: int, shift: float = 0.0,
          used: list[str], chunk: int = 1_000_000) -> int:
    """Write one file; returns the Arrow in-memory bytes of the ``used`` columns."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    dict_type = pa.dictionary(pa.int32(), pa.string())
    schema = pa.schema([
        ("y", pa.int8()), ("score", pa.float64()), ("pred", pa.int8()),
        ("sex", dict_type), ("race", dict_type), ("age_band", dict_type),
        ("age", pa.int64()), ("income_k", pa.float64()), ("tenure", pa.int32()),
        ("debt_ratio", pa.float64()), ("notes", pa.string()),
    ])
    bands = np.array(["18-29", "30-44", "45-64", "65+"])
    used_bytes = 0
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            age = rng.integers(18, 90, n)
            income = rng.lognormal(3.5 + shift, 0.6, n)
            debt = rng.beta(2, 5, n) + shift
            debt_arr = pa.array(debt, mask=rng.random(n) < 0.02)
            logit = -1.0 + 0.8 * (debt - 0.3) * 4 - 0.01 * (age - 50) + rng.normal(0, 1, n)
            score = 1.0 / (1.0 + np.exp(-logit))
            y = (rng.random(n) < score).astype(np.int8)
            band = bands[np.searchsorted([30, 45, 65], age, side="right")]
            t = pa.table({
                "y": pa.array(y),
                "score": pa.array(score),
                "pred": pa.array((score >= 0.5).astype(np.int8)),
                "sex": pa.array(rng.choice(["F", "M"], n)).dictionary_encode(),
                "race": pa.array(rng.choice(["a", "b", "c", "d"], n,
                                            p=[.6, .2, .15, .05])).dictionary_encode(),
                "age_band": pa.array(band).dictionary_encode(),
                "age": pa.array(age),
                "income_k": pa.array(income),
                "tenure": pa.array(rng.integers(0, 480, n).astype(np.int32)),
                "debt_ratio": debt_arr,
                "notes": pa.array(np.char.add("free text note number ",
                                              rng.integers(0, 10**9, n).astype(str))),
            }, schema=schema)
            used_bytes += sum(t.column(c).nbytes for c in used)
            writer.write_table(t, row_group_size=256_000)
    return used_bytes


_MAXRSS = re.compile(r"Maximum resident set size \(kbytes\):\s*(\d+)")


def measure(argv: list[str], use_time: bool = True) -> tuple[int, float, int, str]:
    """Run ``argv``; return (peak RSS in bytes, seconds, exit code, stderr tail)."""
    t0 = time.perf_counter()
    timer = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    if timer and use_time:
        proc = subprocess.run([timer, "-v", *argv], capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        found = _MAXRSS.search(proc.stderr)
        if not found:
            raise SystemExit(f"no peak RSS in the output of {timer} -v:\n{proc.stderr[-2000:]}")
        return int(found.group(1)) * 1024, seconds, proc.returncode, proc.stderr[-2000:]
    with tempfile.TemporaryFile("w+") as errors:  # a file, not a pipe: no deadlock
        proc_ = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(proc_.pid, 0)
        proc_.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - t0
        errors.seek(0)
        err = errors.read()
    return usage.ru_maxrss * 1024, seconds, proc_.returncode, err[-2000:]


def certify_argv(data: Path, reference: Path, policy: Path, out: Path) -> list[str]:
    """The command line of the measured certification."""
    return [sys.executable, "-c", "from assay.cli import main; main()", "certify",
            "--policy", str(policy), "--tier", "high", "--data", str(data),
            "--reference", str(reference), "--target", "y", "--score", "score",
            "--prediction", "pred", "--sensitive", ",".join(SENSITIVE),
            "--features", ",".join(FEATURES), "--out", str(out), "--no-progress",
            "--format", "json"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--reference-rows", type=int, default=1_000_000)
    ap.add_argument("--no-time", action="store_true",
                    help="read the child's ru_maxrss instead of running /usr/bin/time -v")
    ap.add_argument("--build", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.build:  # runs in its own process: the measured ones must not inherit its memory
        tmp = Path(args.build)
        sizes = {
            "eval": build(tmp / "eval.parquet", args.rows, seed=0, used=USED_EVAL),
            "reference": build(tmp / "reference.parquet", args.reference_rows, seed=1,
                               shift=0.02, used=USED_REF),
            "small": build(tmp / "small.parquet", 10_000, seed=2, used=USED_EVAL),
        }
        print(json.dumps(sizes))
        return
    # Linux keeps a process's peak RSS across fork and exec, so this parent
    # imports nothing heavy and builds the files in a separate process.
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        t0 = time.perf_counter()
        made = subprocess.run([sys.executable, __file__, "--rows", str(args.rows),
                               "--reference-rows", str(args.reference_rows),
                               "--build", str(tmp)], capture_output=True, text=True,
                              check=True)
        sizes = json.loads(made.stdout.strip().splitlines()[-1])
        policy = tmp / "policy.yaml"
        policy.write_text(POLICY % {"used": ", ".join(USED_EVAL)}, encoding="utf-8")
        print(f"built {args.rows:,} + {args.reference_rows:,} rows in "
              f"{time.perf_counter() - t0:.0f} s: eval.parquet "
              f"{(tmp / 'eval.parquet').stat().st_size / 2**20:,.0f} MiB on disk, "
              f"reference.parquet {(tmp / 'reference.parquet').stat().st_size / 2**20:,.0f} MiB")

        use_time = not args.no_time
        help_peak, _, code, err = measure([sys.executable, "-c",
                                           "from assay.cli import main; main()", "--help"],
                                          use_time)
        if code != 0:
            raise SystemExit(f"assay --help failed:\n{err}")
        small_peak, small_s, code, err = measure(
            certify_argv(tmp / "small.parquet", tmp / "reference.parquet", policy,
                         tmp / "out-small"), use_time)
        if code not in (0, 1):
            raise SystemExit(f"assay certify (10,000 rows) failed with exit code {code}:\n{err}")
        peak, seconds, code, err = measure(
            certify_argv(tmp / "eval.parquet", tmp / "reference.parquet", policy, tmp / "out"),
            use_time)
        if code not in (0, 1):
            raise SystemExit(f"assay certify failed with exit code {code}:\n{err}")
        results = json.loads((tmp / "out" / "results.json").read_text(encoding="utf-8"))
        checks = results.get("checks", [])
        statuses: dict[str, int] = {}
        for c in checks:
            statuses[c.get("status", "?")] = statuses.get(c.get("status", "?"), 0) + 1
        errored = [c.get("title") or c.get("id") for c in checks
                   if c.get("status") in ("error", "skip")]
        if errored:
            raise SystemExit(f"checks that did not run: {errored}: the measurement would "
                             "not be of a full certification")

        used_eval, used_both = sizes["eval"], sizes["eval"] + sizes["reference"]
        mib = 2**20
        tally = ", ".join(f"{v} {k}" for k, v in sorted(statuses.items()))
        print(f"certification: {len(checks)} checks ({tally}), "
              f"verdict {results.get('status', '?')}, {seconds:.0f} s "
              f"(10,000-row run: {small_s:.0f} s)")
        print(f"columns used, evaluation ({', '.join(USED_EVAL)}): "
              f"{used_eval / mib:,.0f} MiB in memory (Arrow)")
        print(f"columns used, evaluation + reference ({', '.join(USED_REF)}): "
              f"{used_both / mib:,.0f} MiB")
        print(f"baseline: assay --help peak RSS                     {help_peak / mib:,.0f} MiB")
        print(f"baseline: assay certify, 10,000 rows (same reference file), peak RSS "
              f"{small_peak / mib:,.0f} MiB")
        print(f"assay certify on {args.rows:,} rows, peak RSS     {peak / mib:,.0f} MiB")
        print(f"ratio peak / used columns (eval + reference):       {peak / used_both:.2f}x "
              f"(target <= 1.5x)")
        print(f"ratio peak / used columns (eval only):              {peak / used_eval:.2f}x")
        print(f"ratio (peak - 10,000-row baseline) / used columns (eval only): "
              f"{(peak - small_peak) / used_eval:.2f}x")


if __name__ == "__main__":
    main()
