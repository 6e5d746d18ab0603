"""Run the service in a child process on loopback (tests, benchmarks, smoke checks).

    with served(env={"ASSAY_HOME": home}) as base_url:
        httpx.get(base_url + "/api/health")
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(env: dict[str, str] | None = None, *, port: int | None = None,
                 workers: int = 1, timeout: float = 60.0) -> tuple[subprocess.Popen, str]:
    """Start ``uvicorn`` serving assay; return the process and its base URL once healthy."""
    port = port or free_port()
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "assay.api.app:app_from_env",
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
           "--workers", str(workers)]
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise RuntimeError(f"the server exited with {proc.returncode}:\n{out}")
        try:
            if httpx.get(base + "/api/health", timeout=1.0).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"the server did not answer on {base} within {timeout:.0f} s")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    if proc.stdout:
        proc.stdout.close()


@contextmanager
def served(env: dict[str, str] | None = None, **kw) -> Iterator[str]:
    proc, base = start_server(env, **kw)
    try:
        yield base
    finally:
        stop_server(proc)
