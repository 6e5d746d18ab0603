"""One holder at a time across processes and machines: :func:`exclusive`.

    with exclusive(store, "monitor.run") as held:
        if held:
            ...  # nobody else runs this now

Used by the service's periodic jobs so that several workers or replicas of
``assay serve`` never run the same job at once: the others skip their turn.

- PostgreSQL: ``pg_try_advisory_lock`` on a connection of its own, held for
  the block and released after it. If the holder dies, its connection closes
  and the server releases the lock: a crash never leaves it taken.
- SQLite: an exclusive ``flock`` on a lock file beside the database file
  (``assay.db.<name>.lock``); the kernel releases it when the holder exits, so
  it needs no expiry either. SQLite is shared only by processes that see the
  same file, so they see the lock file too. An in-memory database has one
  process: a lock inside it.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import text

_LOCAL: dict[str, threading.Lock] = {}
_LOCAL_GUARD = threading.Lock()


def lock_key(name: str) -> int:
    """The signed 64-bit advisory-lock key of a lease name (stable across processes)."""
    raw = int.from_bytes(hashlib.sha256(b"assay.lease:" + name.encode()).digest()[:8], "big")
    return raw - (1 << 64) if raw >= 1 << 63 else raw


@contextmanager
def exclusive(store: Any, name: str) -> Iterator[bool]:
    """Hold the lease ``name`` for the block; yields ``False`` at once if someone holds it."""
    engine = store.engine
    if engine.dialect.name == "postgresql":
        with _pg(engine, name) as held:
            yield held
        return
    database = engine.url.database or ""
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        with _local(f"{id(engine)}:{name}") as held:
            yield held
        return
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    with _file(Path(f"{database}.{safe}.lock")) as held:
        yield held


@contextmanager
def _pg(engine: Any, name: str) -> Iterator[bool]:
    key = lock_key(name)
    conn = engine.connect()
    released = False
    try:
        held = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
        conn.commit()
        if not held:
            released = True
            yield False
            return
        try:
            yield True
        finally:
            released = bool(conn.execute(text("SELECT pg_advisory_unlock(:k)"),
                                         {"k": key}).scalar())
            conn.commit()
    finally:
        if not released:  # never hand a connection that still holds the lock back to the pool
            conn.invalidate()
        conn.close()


@contextmanager
def _file(path: Path) -> Iterator[bool]:
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def _local(key: str) -> Iterator[bool]:
    with _LOCAL_GUARD:
        lock = _LOCAL.setdefault(key, threading.Lock())
    if not lock.acquire(blocking=False):
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


__all__ = ["exclusive", "lock_key"]
