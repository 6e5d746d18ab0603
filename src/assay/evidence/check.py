"""Check that the evidence the records point at is present and unchanged."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from assay.config import Settings
from assay.errors import InputError
from assay.evidence import artifact_path, digest_file, normalise_digest


@dataclass
class EvidenceCheck:
    """Outcome of :func:`check_evidence`.

    ``missing`` and ``corrupted`` list stored artifacts that records require
    (certification results and reports, registered policy files) and that
    are absent or whose bytes no longer hash to their name. ``external``
    counts digests named as evidence that assay does not keep (model files,
    data sets): they identify the artifact, to be compared with the original
    where it lives.
    """

    checked: int = 0
    missing: list[str] = field(default_factory=list)
    corrupted: list[str] = field(default_factory=list)
    external: int = 0

    @property
    def ok(self) -> bool:
        return not self.missing and not self.corrupted

    def to_dict(self) -> dict:
        return {"ok": self.ok, "checked": self.checked, "missing": self.missing,
                "corrupted": self.corrupted, "external": self.external}


def check_evidence(session: Session, settings: Settings) -> EvidenceCheck:
    """Re-hash every stored artifact that a certification, a registered policy or an audit
    event refers to."""
    from assay.registry.tables import Certification, RegisteredPolicy
    from assay.store.audit import AuditEvent

    required: dict[str, str] = {}
    for cid, results, report in session.execute(
            select(Certification.id, Certification.results_digest, Certification.report_digest)):
        required.setdefault(results, f"results of certification #{cid}")
        if report:
            required.setdefault(report, f"report of certification #{cid}")
    for name, version, digest in session.execute(
            select(RegisteredPolicy.name, RegisteredPolicy.version, RegisteredPolicy.digest)):
        required.setdefault(digest, f"registered policy {name} version {version}")
    optional: dict[str, str] = {}
    for seq, evidence in session.execute(select(AuditEvent.seq, AuditEvent.evidence)):
        for name, digest in (evidence or {}).items():
            optional.setdefault(digest, f"'{name}' of audit event {seq}")
    out = EvidenceCheck()
    for digest, what in {**optional, **required}.items():
        try:
            d = normalise_digest(digest)
        except InputError:
            out.external += 1
            continue
        path = artifact_path(settings, d)
        if not path.is_file():
            if digest in required:
                out.missing.append(f"{d} ({what})")
            else:
                out.external += 1
            continue
        out.checked += 1
        if digest_file(path) != d:
            out.corrupted.append(f"{d} ({what})")
    return out
