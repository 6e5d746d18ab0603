"""The content-addressed artifact store (see :mod:`assay.evidence`)."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO

from assay.config import Settings
from assay.errors import AssayError, InputError, NotFoundError

log = logging.getLogger("assay.evidence")

DIGEST_PREFIX = "sha256:"
_HEX = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


class EvidenceError(AssayError):
    """Evidence that cannot be stored, or whose bytes no longer match its digest.

    Messages name the artifact by digest, never by its place on the server's disk
    (they reach API answers and web pages); ``path`` keeps the file for the server
    log and for operators."""

    code = "evidence_error"

    def __init__(self, message: str, *, path: Path | None = None,
                 details: dict | None = None) -> None:
        super().__init__(message, details=details)
        self.path = path
        if path is not None:
            log.warning("%s [%s]", message, path)


def digest_bytes(data: bytes) -> str:
    """``"sha256:<hex>"`` of ``data``."""
    return DIGEST_PREFIX + hashlib.sha256(data).hexdigest()


def digest_file(path: str | os.PathLike[str]) -> str:
    """``"sha256:<hex>"`` of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return DIGEST_PREFIX + h.hexdigest()


def normalise_digest(digest: str) -> str:
    """``digest`` as ``"sha256:<hex>"``; a bare 64-digit hex string is accepted."""
    if not isinstance(digest, str):
        raise InputError(f"evidence digest: expected 'sha256:<64 hex digits>', got {digest!r}")
    value = digest.strip().lower()
    if value.startswith(DIGEST_PREFIX):
        value = value[len(DIGEST_PREFIX):]
    if not _HEX.match(value):
        raise InputError(f"evidence digest: expected 'sha256:<64 hex digits>', got {digest!r}")
    return DIGEST_PREFIX + value


def artifact_path(settings: Settings, digest: str) -> Path:
    """Where the artifact with ``digest`` lives (whether or not it exists)."""
    hexdigest = normalise_digest(digest)[len(DIGEST_PREFIX):]
    return settings.evidence_dir / "sha256" / hexdigest[:2] / hexdigest[2:]


def has_artifact(settings: Settings, digest: str) -> bool:
    return artifact_path(settings, digest).is_file()


def _write_stream(settings: Settings, chunks, expected: str | None = None) -> str:
    """Write chunks to a temporary file in the evidence directory, then move it in place."""
    root = settings.evidence_dir
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=root, prefix=".incoming-")
    except OSError as exc:
        raise EvidenceError("cannot write to the evidence store: "
                            f"{exc.strerror or type(exc).__name__}", path=root) from None
    h = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                h.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        digest = DIGEST_PREFIX + h.hexdigest()
        if expected is not None and digest != expected:
            raise EvidenceError(f"evidence changed while it was being stored: expected "
                                f"{expected}, read {digest}")
        dest = artifact_path(settings, digest)
        if dest.is_file():
            os.unlink(tmp)
            return digest
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o444)
        os.replace(tmp, dest)
        return digest
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def store_bytes(settings: Settings, data: bytes) -> str:
    """Store ``data``; return its digest. Idempotent."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InputError(f"evidence: expected bytes, got {type(data).__name__}")
    digest = digest_bytes(bytes(data))
    if has_artifact(settings, digest):
        return digest
    return _write_stream(settings, [bytes(data)], expected=digest)


def store_file(settings: Settings, path: str | os.PathLike[str]) -> str:
    """Store a copy of the file at ``path`` (streamed); return its digest."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: evidence file not found (expected a readable file)")
    with open(p, "rb") as fh:
        return _write_stream(settings, iter(lambda: fh.read(_CHUNK), b""))


def store_artifact(settings: Settings, source: bytes | str | os.PathLike[str]) -> str:
    """Store bytes or a file, whichever ``source`` is; return the digest."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return store_bytes(settings, bytes(source))
    return store_file(settings, source)


def open_stream(settings: Settings, digest: str) -> BinaryIO:
    """An open binary file of the artifact (not checked; see :func:`verify_artifact`)."""
    path = artifact_path(settings, digest)
    if not path.is_file():
        log.warning("evidence %s missing: %s", normalise_digest(digest), path)
        raise NotFoundError(f"evidence {normalise_digest(digest)} is not in the store")
    return open(path, "rb")


def open_artifact(settings: Settings, digest: str) -> bytes:
    """The bytes of the artifact, checked against the digest."""
    want = normalise_digest(digest)
    with open_stream(settings, want) as fh:
        data = fh.read()
    if digest_bytes(data) != want:
        raise EvidenceError(f"evidence {want} is corrupted: its bytes hash to "
                            f"{digest_bytes(data)}", path=artifact_path(settings, want))
    return data


def verify_artifact(settings: Settings, digest: str) -> bool:
    """True if the artifact exists and its bytes match its digest."""
    want = normalise_digest(digest)
    path = artifact_path(settings, want)
    return path.is_file() and digest_file(path) == want
