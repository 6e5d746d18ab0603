"""Content-addressed evidence: results, reports, policy files, model cards.

Every artifact a decision rests on is stored once, by the SHA-256 of its
bytes, under ``ASSAY_HOME/evidence/sha256/ab/cdef...`` (the first two hex
digits name a directory, the other 62 the file). Records refer to artifacts
by digest, written ``"sha256:<64 hex digits>"``. Storing the same bytes twice
is a no-op; reading checks the bytes still hash to their name, so a damaged
or edited artifact is reported instead of being served as evidence.
"""

from assay.evidence.artifacts import (
    DIGEST_PREFIX,
    EvidenceError,
    artifact_path,
    digest_bytes,
    digest_file,
    has_artifact,
    normalise_digest,
    open_artifact,
    open_stream,
    store_artifact,
    store_bytes,
    store_file,
    verify_artifact,
)

__all__ = [
    "DIGEST_PREFIX",
    "EvidenceError",
    "artifact_path",
    "digest_bytes",
    "digest_file",
    "has_artifact",
    "normalise_digest",
    "open_artifact",
    "open_stream",
    "store_artifact",
    "store_bytes",
    "store_file",
    "verify_artifact",
]
