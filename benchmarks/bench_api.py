"""Load benchmark of the assay service on loopback.

Seeds a store with the sample governance history plus N submissions waiting
for sign-off, serves it with uvicorn in a child process, and drives it with
concurrent clients doing a mix of

- read the inventory       GET  /api/models
- read a model page        GET  /models/credit-scoring   (the HTML page)
- sign off a stage         POST /api/models/{m}/versions/1.0/stages/scope/approve

Prints requests per second and p50/p99 latency per operation, for SQLite and
(when ASSAY_TEST_POSTGRES_URL is set) PostgreSQL. Any failed request is
reported and makes the exit status non-zero.

    python benchmarks/bench_api.py                       # both back ends, 32 clients
    python benchmarks/bench_api.py --backend sqlite --clients 32 --seconds 15
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

import httpx

OPS = ("inventory", "model page", "sign-off")
#: The document attached to each scope sign-off (stored as evidence when seeding).
DOCUMENT: dict[str, str] = {}


def seed(url: str, home: Path, signoffs: int) -> tuple[list[str], str]:
    """A store with the sample history and ``signoffs`` versions waiting at the scope stage."""
    from argon2 import PasswordHasher, profiles

    import assay.auth.secrets as sec
    from assay.api.sample import populate
    from assay.auth import service as auth
    from assay.config import Settings
    from assay.evidence import store_bytes
    from assay.registry import get_user
    from assay.store import open_store

    store = open_store(Settings(home=home, database_url=url), auto_upgrade=True)
    sec._hasher = PasswordHasher.from_parameters(profiles.CHEAPEST)  # seeding only
    sample = populate(store, password="bench password 1", models=3, submissions=signoffs,
                      reports=False)
    with store.transaction() as s:
        token = auth.create_token(s, get_user(s, "admin"), "bob", "bench")[1]
    DOCUMENT["scope.txt"] = store_bytes(store.settings, b"Scope agreed.\n")
    store.dispose()
    return [m for m, _v in sample.submitted if m not in sample.models], token


async def client(http: httpx.AsyncClient, token: str, queue: list[str], stop: float,
                 lat: dict[str, list[float]], failures: list[str], rng: random.Random) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    while time.perf_counter() < stop:
        r = rng.random()
        if r < 0.1 and queue:
            op, model = "sign-off", queue.pop()
            req = http.build_request(
                "POST", f"/api/models/{model}/versions/1.0/stages/scope/approve",
                json={"documents": DOCUMENT}, headers=headers)
        elif r < 0.55:
            op, req = "inventory", http.build_request("GET", "/api/models", headers=headers)
        else:
            op, req = "model page", http.build_request("GET", "/models/credit-scoring",
                                                       headers=headers)
        t0 = time.perf_counter()
        try:
            resp = await http.send(req)
            ok = resp.status_code in (200, 201)
            detail = f"{op}: HTTP {resp.status_code} {resp.text[:200]}"
        except httpx.HTTPError as exc:
            ok, detail = False, f"{op}: {type(exc).__name__} {exc}"
        lat[op].append(time.perf_counter() - t0)
        if not ok:
            failures.append(detail)


async def drive(base: str, token: str, queue: list[str], clients: int, seconds: float
                ) -> tuple[dict[str, list[float]], list[str], float]:
    lat: dict[str, list[float]] = defaultdict(list)
    failures: list[str] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        # Warm up every worker: first requests import modules and fill caches.
        warm = [http.get(path, headers={"Authorization": f"Bearer {token}"})
                for path in ("/api/models", "/models/credit-scoring") * clients]
        await asyncio.gather(*warm)
        start = time.perf_counter()
        stop = start + seconds
        await asyncio.gather(*(client(http, token, queue, stop, lat, failures,
                                      random.Random(i)) for i in range(clients)))
        elapsed = time.perf_counter() - start
    return lat, failures, elapsed


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def machine_load() -> str:
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:  # not available on this platform
        return "unknown"


def run_backend(name: str, url: str, home: Path, args: argparse.Namespace) -> bool:
    from assay.api.process import start_server, stop_server

    print(f"\n== {name}: seeding {args.signoffs} submissions ...", flush=True)
    queue, token = seed(url, home, args.signoffs)
    env = {"ASSAY_HOME": str(home), "ASSAY_DATABASE_URL": url}
    workers = args.workers if name == "postgresql" else 1
    proc, base = start_server(env, workers=workers)
    try:
        lat, failures, elapsed = asyncio.run(drive(base, token, queue, args.clients,
                                                   args.seconds))
    finally:
        stop_server(proc)
    total = sum(len(v) for v in lat.values())
    print(f"{name}: {args.clients} clients, {elapsed:.1f} s, {workers} worker(s), "
          f"{total} requests, {total / elapsed:.0f} req/s, {len(failures)} failed")
    print(f"  machine: {os.cpu_count()} CPU(s), load average {machine_load()} after the run "
          "(server, clients and everything else on the machine)")
    print(f"  {'operation':<12} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for op in OPS:
        v = lat.get(op, [])
        print(f"  {op:<12} {len(v):>9} {len(v) / elapsed:>8.1f} {pct(v, 50) * 1e3:>8.1f} "
              f"{pct(v, 99) * 1e3:>8.1f}")
    for f in failures[:10]:
        print("  FAILED", f)
    return not failures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--signoffs", type=int, default=150,
                    help="submissions waiting for sign-off (each is signed at most once)")
    ap.add_argument("--workers", type=int, default=2, help="uvicorn workers for PostgreSQL")
    args = ap.parse_args(argv)
    ok = True
    with tempfile.TemporaryDirectory(prefix="assay-bench-") as tmp:
        if args.backend in ("sqlite", "both"):
            home = Path(tmp) / "sqlite"
            ok &= run_backend("sqlite", f"sqlite:///{home / 'assay.db'}", home, args)
        if args.backend in ("postgresql", "both"):
            pg = os.environ.get("ASSAY_TEST_POSTGRES_URL")
            if not pg:
                print("\n== postgresql: skipped (set ASSAY_TEST_POSTGRES_URL)")
            else:
                from sqlalchemy import create_engine, text
                from sqlalchemy.engine import make_url

                dbname = f"assay_bench_{uuid.uuid4().hex[:8]}"
                admin = create_engine(make_url(pg).set(database="postgres"),
                                      isolation_level="AUTOCOMMIT")
                with admin.connect() as conn:
                    conn.execute(text(f'CREATE DATABASE "{dbname}"'))
                try:
                    url = make_url(pg).set(database=dbname).render_as_string(
                        hide_password=False)
                    ok &= run_backend("postgresql", url, Path(tmp) / "pg", args)
                finally:
                    with admin.connect() as conn:
                        conn.execute(text(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
                    admin.dispose()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
