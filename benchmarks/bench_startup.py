"""Small jobs must feel instant: start-up, a 10,000-row certification, the report.

    python benchmarks/bench_startup.py [--rounds 7] [--rows 10000] [--before GIT_REV]

Three measurements, each against a named peer timed side by side in the same
run (peer and assay alternate within every round; medians are printed):

1. ``assay --help`` and ``assay certify --help`` against ``python -c pass``
   (target: at most 10x);
2. ``assay certify`` of ``--rows`` rows (default 10,000) of the shipped UCI
   Adult test data with the shipped ``default`` policy, tier ``high``,
   protected attributes ``sex`` and ``race``, the training part (32,561 rows)
   as the reference for drift, a scikit-learn gradient-boosting pipeline as
   the model, ``results.json`` and ``report.html`` written, against
   ``python -c "import sklearn, pandas"`` (target: at most 2x);
3. rendering ``report.html`` from that certification's ``results.json`` in a
   fresh process: importing ``assay.report``, then the first
   ``render_report`` call (target: import and first render at most 0.5 s).

Every command runs in a child process with the wall clock measured by
``time.perf_counter`` around ``subprocess.run``; the command line is run as
``python -c "from assay.cli import main; main()" ...`` with ``PYTHONPATH``
set to the source tree measured, so the installed copy does not matter.

``--before REV`` (repeatable) also measures the source tree of a git revision
(extracted with ``git archive`` into a temporary directory) in the same
rounds, so a before/after comparison is of runs side by side on the same
machine load. The ``results.json`` each tree wrote in the last round must be
the same, byte for byte, apart from ``created_at`` and ``duration_seconds``
(and the tree's own location in the shipped policy's path): the script says
so, and exits with status 1 when they differ.

Bytecode: a ``pip install`` compiles every module to bytecode, so a user's
``assay`` never compiles its sources at start-up. The measured children run
with ``PYTHONDONTWRITEBYTECODE`` removed from their environment, after one
warm-up run of every command of every source tree measured (which writes the
``__pycache__`` files, also into the ``--before`` tree's temporary copy):
every figure is of a run that finds its bytecode cached, the peers' and
assay's alike. Without this, an environment that sets
``PYTHONDONTWRITEBYTECODE=1`` would recompile assay's sources on every run
and measure the compiler, not assay.

The data set and the model are built once, in a separate process, before any
measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI = "from assay.cli import main; main()"
RENDER = """\
import json, sys, time
t0 = time.perf_counter()
from assay.report import render_report
t1 = time.perf_counter()
results = json.loads(open(sys.argv[1], encoding="utf-8").read())
t2 = time.perf_counter()
html = render_report(results)
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "render": t3 - t2, "bytes": len(html.encode()),
                  "charts": html.count("<svg")}))
"""
BUILD = """\
import sys
from pathlib import Path
import joblib
from assay.datasets import load_adult
from assay.demo import build_model
out, rows = Path(sys.argv[1]), int(sys.argv[2])
train, test = load_adult(missing_as_nan=True)
train.to_parquet(out / "train.parquet", index=False)
test.head(rows).to_parquet(out / "data.parquet", index=False)
joblib.dump(build_model(train), out / "model.joblib")
print(len(train), len(test.head(rows)))
"""


def run(argv: Sequence[str], src: Path | None = None, *,
        ok: Sequence[int] = (0,)) -> tuple[float, float]:
    """Wall-clock seconds and CPU seconds (user + system) of one child process."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: bytecode cached (see above)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(list(argv), env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in ok:
        raise SystemExit(f"{' '.join(argv[:4])} ... exited with {proc.returncode}:\n"
                         f"{proc.stderr[-3000:]}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return seconds, cpu


def certify_argv(tmp: Path, out: Path) -> list[str]:
    return [sys.executable, "-c", CLI, "certify", "--policy", "default", "--tier", "high",
            "--model", str(tmp / "model.joblib"), "--train", str(tmp / "train.parquet"),
            "--data", str(tmp / "data.parquet"), "--target", "income",
            "--positive-label", ">50K", "--sensitive", "sex,race", "--out", str(out),
            "--no-progress"]


def render_once(src: Path, results: Path) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(src))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    proc = subprocess.run([sys.executable, "-c", RENDER, str(results)], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def extract(rev: str, into: Path) -> Path:
    """The ``src`` tree of git revision ``rev``, written under ``into``."""
    archive = into / "src.tar"
    with open(archive, "wb") as fh:
        subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev, "src"],
                       stdout=fh, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def comparable(results: Path, src: Path) -> str:
    """The text of a ``results.json`` without the lines that differ between any two runs
    (``created_at``, ``duration_seconds``), the source tree's location written as ``SRC``
    (the shipped policy's path)."""
    lines = results.read_text(encoding="utf-8").replace(str(src), "SRC").splitlines(True)
    return "".join(line for line in lines
                   if not line.startswith(('  "created_at": ', '  "duration_seconds": ')))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7, help="rounds of every measurement")
    ap.add_argument("--rows", type=int, default=10_000, help="rows of evaluation data")
    ap.add_argument("--before", metavar="GIT_REV", action="append", default=[],
                    help="also measure this git revision's source tree, side by side "
                         "(repeatable)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        trees = {"assay": ROOT / "src"}
        for i, rev in enumerate(args.before):
            (tmp / f"before-{i}").mkdir()
            trees[f"assay @ {rev}"] = extract(rev, tmp / f"before-{i}")
        t0 = time.perf_counter()
        built = subprocess.run([sys.executable, "-c", BUILD, str(tmp), str(args.rows)],
                               env=dict(os.environ, PYTHONPATH=str(ROOT / "src")),
                               capture_output=True, text=True, check=True)
        n_train, n_data = built.stdout.split()
        print(f"built the data ({n_data} evaluation rows, {n_train} reference rows) and the "
              f"model in {time.perf_counter() - t0:.1f} s; {args.rounds} rounds, medians\n")

        peers = {
            "help": [sys.executable, "-c", "pass"],
            "certify": [sys.executable, "-c", "import sklearn, pandas"],
        }
        times: dict[str, list[float]] = {}
        cpus: dict[str, list[float]] = {}

        def add(key: str, value: tuple[float, float]) -> None:
            times.setdefault(key, []).append(value[0])
            cpus.setdefault(key, []).append(value[1])

        # one warm-up run of everything, so every measured run finds its bytecode cached
        run(peers["help"])
        run(peers["certify"])
        for src in trees.values():
            run([sys.executable, "-c", CLI, "--help"], src)
            run([sys.executable, "-c", CLI, "certify", "--help"], src)
            run(certify_argv(tmp, tmp / "warm-up"), src, ok=(0, 1))
            render_once(src, tmp / "warm-up" / "results.json")
        renders: dict[str, list[dict[str, float]]] = {label: [] for label in trees}
        last: dict[str, Path] = {}  # each tree's results.json of the last round
        for r in range(args.rounds):
            add("python -c pass", run(peers["help"]))
            for label, src in trees.items():
                add(f"{label}: assay --help", run([sys.executable, "-c", CLI, "--help"], src))
                add(f"{label}: assay certify --help",
                    run([sys.executable, "-c", CLI, "certify", "--help"], src))
            add("python -c pass", run(peers["help"]))
            add("import sklearn, pandas", run(peers["certify"]))
            for i, (label, src) in enumerate(trees.items()):
                out = tmp / f"out-{r}-{i}"  # one folder per round and tree
                add(f"{label}: assay certify", run(certify_argv(tmp, out), src, ok=(0, 1)))
                renders[label].append(render_once(src, out / "results.json"))
                last[label] = out / "results.json"
            add("import sklearn, pandas", run(peers["certify"]))

        width = max(len(k) for k in times) + 2
        print(f"{'wall clock':{width}} {'median':>9}  {'min':>7}  {'max':>7}   CPU median")
        for key, xs in times.items():
            print(f"{key:{width}} {med(xs):8.3f}s  {min(xs):6.3f}s  {max(xs):6.3f}s  "
                  f"{med(cpus[key]):8.3f}s")
        print(f"\nratios of medians, wall clock (CPU time in brackets); load average "
              f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}\n")
        bare, peer = "python -c pass", "import sklearn, pandas"

        def ratio(key: str, base: str) -> tuple[float, float]:
            return (med(times[key]) / med(times[base]), med(cpus[key]) / med(cpus[base]))

        for label in trees:
            print(f"{label}")
            for cmd in ("assay --help", "assay certify --help"):
                w, c = ratio(f"{label}: {cmd}", bare)
                print(f"  {cmd:<38} {w:6.1f}x ({c:4.1f}x) python -c pass          "
                      "(target <= 10x)")
            w, c = ratio(f"{label}: assay certify", peer)
            print(f"  {'assay certify, ' + format(int(n_data), ',') + ' rows':<38} "
                  f"{w:6.2f}x ({c:4.2f}x) import sklearn, pandas  (target <= 2x)")
            rs = renders[label]
            imp, first = med([x["import"] for x in rs]), med([x["render"] for x in rs])
            print(f"  {'report: import assay.report':<38} {imp:6.3f}s")
            print(f"  {'report: render_report':<38} {first:6.3f}s  import + render "
                  f"{med([x['import'] + x['render'] for x in rs]):.3f}s (target <= 0.5 s); "
                  f"{int(rs[-1]['charts'])} charts, {rs[-1]['bytes'] / 1024:,.0f} KiB")
        # a faster certification must certify the same: results.json byte for byte, apart
        # from when it ran and how long it took
        ours = comparable(last["assay"], trees["assay"])
        differ = [label for label, src in trees.items()
                  if label != "assay" and comparable(last[label], src) != ours]
        for label in trees:
            if label != "assay":
                print(f"\nresults.json of assay and {label}: "
                      + ("DIFFERENT (beyond created_at and duration_seconds)" if label in differ
                         else "identical apart from created_at and duration_seconds"))
        if differ:
            import difflib

            for label in differ:
                theirs = comparable(last[label], trees[label])
                print("".join(list(difflib.unified_diff(
                    theirs.splitlines(True), ours.splitlines(True), label, "assay", n=1))[:40]))
            raise SystemExit(1)


if __name__ == "__main__":
    main()
