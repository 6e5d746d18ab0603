"""Peak memory of a certification-like pass over a 10M-row Parquet file.

    python benchmarks/bench_memory.py [--rows 10000000]

Builds a Parquet file in a temporary directory (a target, a score, two
protected attributes, three features and one wide text column that the pass
does not use), then runs, in a fresh subprocess: ``open_dataset`` with
validation (one streaming pass), a drift profile of the features (bins fitted
on a sample, then one streaming pass) and a contingency table of
(sex, race, label, decision) counts (one streaming pass). The peak resident
memory of that subprocess (its own ``getrusage(RUSAGE_SELF).ru_maxrss`` at
the end) is
compared with the in-memory size of the columns the pass uses (target
<= 1.5x). The subprocess also reports its memory right after its imports,
i.e. what Python, NumPy, pandas and pyarrow cost before any data is read.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
USED = ["y", "score", "sex", "race", "age", "income_k", "tenure"]

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[2])
import numpy as np
from assay.data import ColumnRoles, open_dataset
from assay.metrics.profile import profile
after_imports = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
roles = ColumnRoles(target="y", score="score", sensitive=["sex", "race"],
                    features=["age", "income_k", "tenure"])
ds = open_dataset(sys.argv[1], roles)
prof = profile(ds, columns=["age", "income_k", "tenure"])
counts = np.zeros((2, 4, 2, 2), dtype=np.int64)
def codes(arr, mapping):
    if not hasattr(arr, "indices"):
        arr = arr.dictionary_encode()
    lut = np.array([mapping[v] for v in arr.dictionary.to_pylist()])
    return lut[arr.indices.to_numpy()]
for batch in ds.batches(["sex", "race", "y", "score"]):
    s = codes(batch.column("sex"), {"F": 0, "M": 1})
    r = codes(batch.column("race"), {"a": 0, "b": 1, "c": 2, "d": 3})
    y = batch.column("y").to_numpy()
    d = (batch.column("score").to_numpy() >= 0.5).astype(np.int64)
    cell = ((s * 4 + r) * 2 + y) * 2 + d
    counts += np.bincount(cell, minlength=counts.size).reshape(counts.shape)
elapsed = time.perf_counter() - t0
print(json.dumps({"after_imports_kb": after_imports, "rows": int(counts.sum()),
                  "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "seconds": elapsed,
                  "age_mean": prof.features["age"].mean}))
"""


def build(path: Path, rows: int, chunk: int = 1_000_000, seed: int = 0) -> int:
    """Write the file; returns the in-memory bytes of the columns the pass uses."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    schema = pa.schema([
        ("y", pa.int8()), ("score", pa.float64()),
        ("sex", pa.dictionary(pa.int32(), pa.string())),
        ("race", pa.dictionary(pa.int32(), pa.string())),
        ("age", pa.int64()), ("income_k", pa.float64()), ("tenure", pa.int32()),
        ("notes", pa.string()),
    ])
    used_bytes = 0
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            score = rng.beta(2, 5, n)
            t = pa.table({
                "y": pa.array((rng.random(n) < score).astype(np.int8)),
                "score": pa.array(score),
                "sex": pa.array(rng.choice(["F", "M"], n)).dictionary_encode(),
                "race": pa.array(rng.choice(["a", "b", "c", "d"], n, p=[.6, .2, .15, .05]))
                .dictionary_encode(),
                "age": pa.array(rng.integers(18, 90, n)),
                "income_k": pa.array(rng.lognormal(3.5, 0.6, n)),
                "tenure": pa.array(rng.integers(0, 480, n).astype(np.int32)),
                "notes": pa.array(np.char.add("free text note number ",
                                              rng.integers(0, 10**9, n).astype(str))),
            }, schema=schema)
            used_bytes += sum(t.column(c).nbytes for c in USED)
            writer.write_table(t, row_group_size=256_000)
    return used_bytes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--build", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.build:  # runs in its own process: the measured one must not inherit its memory
        print(build(Path(args.build), args.rows))
        return
    # Linux keeps a process's peak RSS across fork and exec, so this parent
    # imports nothing heavy and builds the file in a separate process.
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.parquet"
        t0 = time.perf_counter()
        made = subprocess.run([sys.executable, __file__, "--rows", str(args.rows),
                               "--build", str(path)], capture_output=True, text=True,
                              check=True)
        used = int(made.stdout.strip().splitlines()[-1])
        print(f"built {args.rows:,} rows in {time.perf_counter() - t0:.1f} s: "
              f"{path.stat().st_size / 2**20:,.0f} MiB on disk")
        proc = subprocess.run([sys.executable, "-c", CHILD, str(path), str(ROOT / "src")],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(proc.stderr)
            raise SystemExit(proc.returncode)
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        peak = out["peak_kb"] * 1024
        assert out["rows"] == args.rows
        print(f"columns used ({', '.join(USED)}): {used / 2**20:,.0f} MiB in memory")
        print(f"subprocess after imports:          "
              f"{out['after_imports_kb'] * 1024 / 2**20:,.0f} MiB")
        print(f"subprocess peak RSS:               {peak / 2**20:,.0f} MiB "
              f"({out['seconds']:.1f} s for validation, profile and counts)")
        print(f"ratio peak / used columns:         {peak / used:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
