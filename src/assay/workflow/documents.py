"""Documents attached to the stages of a submission: finding one to hand it out.

Reading a document follows reading the model: whoever may see the model (every
signed-in user) may download the documents its sign-offs rest on. The bytes come
from the evidence store, checked against the digest recorded with the document.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from assay.errors import NotFoundError
from assay.workflow import _registry as reg
from assay.workflow.tables import Document, Submission

__all__ = ["document_bytes", "get_document", "safe_file_name"]

#: Characters that change the direction of the text around them (explicit embeddings,
#: overrides and isolates); shown as-is they make "txt.exe" read as "exe.txt".
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def get_document(session: Session, model_name: str, version: str, document_id: int) -> Document:
    """The document ``document_id`` attached to a submission of this model version."""
    mv = reg.get_version(session, model_name, version)
    doc = session.scalar(select(Document).join(Submission, Submission.id == Document.submission_id)
                         .where(Document.id == document_id,
                                Submission.model_version_id == mv.id))
    if doc is None:
        raise NotFoundError(f"model '{model_name}' version '{version}' has no document "
                            f"{document_id}")
    return doc


def document_bytes(session: Session, model_name: str, version: str, document_id: int, *,
                   settings: Any | None = None) -> tuple[str, bytes]:
    """``(file name to offer, bytes)`` of a document, checked against its digest."""
    from assay.evidence import open_artifact

    doc = get_document(session, model_name, version, document_id)
    data = open_artifact(reg.settings_of(session, settings), doc.digest)
    return safe_file_name(doc.name), data


def safe_file_name(name: str, default: str = "document") -> str:
    """A file name that is safe to offer for download: no directories, no control or
    direction-changing characters, no quotes or backslashes, at most 150 characters."""
    name = str(name or "").replace("\\", "/").rsplit("/", 1)[-1]
    kept = "".join(ch for ch in name if ch not in BIDI_CONTROLS and ch not in "\"'`;"
                   and unicodedata.category(ch)[0] != "C")
    kept = kept.strip(" .")[:150]
    return kept or default
