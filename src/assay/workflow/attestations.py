"""Signed statements of the workflow's decisions (see ``docs/attestations.md``).

Each stage sign-off or rejection is signed by assay's service key as a
``stage-decision/v1`` statement about the version's model artefact, stored in the
evidence store and linked to the sign-off (``ref`` ``signoff:<id>``); the
sign-off's audit event names the envelope's digest. A recorded gate decision
(``assay gate``, the API's gate route) is signed as ``gate-decision/v1``; the
same decision asked again within :data:`GATE_REUSE_SECONDS` of the last one
signed for the version returns that attestation instead of signing another, so
a deployment pipeline polling the gate does not fill the store. A
version registered without an artefact digest has no subject to sign: its
decisions are recorded, unsigned, as before.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from assay.evidence import attest
from assay.evidence.artifacts import open_artifact
from assay.evidence.keys import attestation_to_dict, sign_and_store
from assay.evidence.tables import Attestation
from assay.registry.policies import settings_of
from assay.workflow._common import _iso, _subject

__all__ = ["GATE_REUSE_SECONDS", "attest_signoff", "record_gate", "rests_on"]

#: a gate decision equal to the last one signed for the version (everything but the time
#: it was taken) and taken less than this many seconds after it is not signed again
GATE_REUSE_SECONDS = 300


def attest_signoff(session: Session, so: Any, sub: Any, mv: Any, actor: Any, model_name: str,
                   version: str, *, conditions: list[str] | None = None,
                   stage_complete: bool | None = None, settings: Any | None = None
                   ) -> Attestation | None:
    """Sign and store the statement of sign-off ``so`` (an approval or a rejection)."""
    if not getattr(mv, "artifact_digest", None):
        return None
    evidence = dict(so.evidence or {})
    predicate = {
        "model": model_name, "version": version, "submission": sub.id, "stage": so.stage,
        "decision": so.decision, "by": actor.username, "role": so.role,
        "at": _iso(so.created_at), "reason": so.reason, "conditions": list(conditions or []),
        "expiresAt": _iso(so.expires_at), "stageComplete": stage_complete,
        "policy": {"name": sub.policy_name, "tier": sub.tier,
                   "sha256": attest.subject_digest(sub.policy_digest)
                   if sub.policy_digest else None},
        "documents": {k.removeprefix("document:"): v for k, v in evidence.items()
                      if k.startswith("document:")},
        "evidence": evidence,
    }
    stmt = attest.statement([(_subject(model_name, version), mv.artifact_digest)],
                            attest.STAGE_DECISION, predicate)
    return sign_and_store(session, settings_of(session, settings), stmt, kind="stage_decision",
                          subject_type="model_version",
                          subject_id=_subject(model_name, version), ref=f"signoff:{so.id}")


def rests_on(session: Session, model_name: str, version: str, *,
             certification_id: int | None, signoff_ids: list[int]) -> list[dict[str, Any]]:
    """The stored attestations a gate decision rests on: the certification it used and
    the sign-offs of the submission, as ``{kind, digest, keyid, predicate_type, ref}``."""
    refs = {f"signoff:{i}" for i in signoff_ids}
    if certification_id is not None:
        refs.add(f"certification:{certification_id}")
    if not refs:
        return []
    rows = session.scalars(select(Attestation).where(
        Attestation.subject_id == _subject(model_name, version), Attestation.ref.in_(refs))
        .order_by(Attestation.id))
    return [{"kind": a.kind, "digest": a.envelope_digest, "keyid": a.keyid,
             "predicate_type": a.predicate_type, "ref": a.ref} for a in rows]


def record_gate(session: Session, decision: Any, *, artifact_digest: str | None,
                decided_at: str | None, settings: Any | None = None
                ) -> dict[str, Any] | None:
    """Sign and store a gate decision; the attestation as :func:`rests_on` lists them."""
    if not artifact_digest:
        return None
    d = decision.to_dict()
    predicate = {
        "model": d["model"], "version": d["version"], "allowed": d["allowed"],
        "reasons": d["reasons"], "evidence": d["evidence"], "submission": d["submission_id"],
        "state": d["state"], "approvedUntil": d["approved_until"],
        "waivedUntil": d["waived_until"], "conditions": d["conditions"],
        "decidedAt": decided_at,
        "attestations": [{"kind": a["kind"], "digest": a["digest"]}
                         for a in d.get("attestations", [])],
    }
    subject = _subject(d["model"], d["version"])
    stmt = attest.statement([(subject, artifact_digest)], attest.GATE_DECISION, predicate)
    settings = settings_of(session, settings)
    row = _same_as_last(session, settings, subject, stmt)
    if row is None:
        row = sign_and_store(session, settings, stmt, kind="gate_decision",
                             subject_type="model_version", subject_id=subject,
                             ref=f"gate:{'allowed' if d['allowed'] else 'blocked'}")
    out = attestation_to_dict(row)
    return {"kind": out["kind"], "digest": out["envelope_digest"], "keyid": out["keyid"],
            "predicate_type": out["predicate_type"], "ref": out["ref"]}


def _same_as_last(session: Session, settings: Any, subject: str,
                  stmt: dict[str, Any]) -> Attestation | None:
    """The last gate attestation of ``subject`` when ``stmt`` says the same thing (the
    same artefact, the same predicate apart from ``decidedAt``) and was decided less
    than :data:`GATE_REUSE_SECONDS` after it; None otherwise (sign anew)."""
    last = session.scalars(
        select(Attestation).where(Attestation.subject_id == subject,
                                  Attestation.kind == "gate_decision")
        .order_by(Attestation.id.desc()).limit(1)).first()
    if last is None:
        return None
    try:
        envelope = attest.parse_envelope(open_artifact(settings, last.envelope_digest))
        before = json.loads(envelope.payload)
    except Exception:  # an unreadable envelope is never reused: a new one is signed
        return None
    now = json.loads(attest.canonical_json(stmt))  # the shape the stored one has
    was, new = before.get("predicate") or {}, now["predicate"]
    if before.get("subject") != now["subject"] or \
            {k: v for k, v in was.items() if k != "decidedAt"} != \
            {k: v for k, v in new.items() if k != "decidedAt"}:
        return None
    try:
        age = (datetime.fromisoformat(new["decidedAt"]) -
               datetime.fromisoformat(was["decidedAt"])).total_seconds()
    except (KeyError, TypeError, ValueError):
        return None
    return last if 0 <= age < GATE_REUSE_SECONDS else None
