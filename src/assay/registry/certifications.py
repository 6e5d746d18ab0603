"""Certifications: a certification run of a model version, recorded as evidence.

Every function takes the session and the acting :class:`User`, checks the
actor's rights, writes, and appends an audit event in the same transaction.
None of them commits: the caller owns the transaction (``store.transaction()``),
so an operation is recorded whole, with its audit event, or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from assay.config import Settings
from assay.errors import ConflictError, InputError
from assay.registry import roles as R
from assay.registry.models import _digest, get_version
from assay.registry.policies import known_policy, settings_of
from assay.registry.results import verify_results
from assay.registry.tables import CERTIFICATION_STATUSES, Certification, User
from assay.registry.users import require_role
from assay.store.audit import append_event
from assay.store.db import utcnow

__all__ = ["latest_certification", "list_certifications", "record_certification"]


def record_certification(session: Session, actor: User, model_name: str, version: str,
                         results: Mapping[str, Any] | None, results_bytes: bytes,
                         report_bytes: bytes | None = None, *,
                         settings: Settings | None = None,
                         attestation: bytes | None = None) -> Certification:
    """Record a certification run of a model version as evidence.

    ``results_bytes`` is the ``results.json`` file exactly as written (its
    digest is the evidence); ``results`` is its parsed content (parsed from
    the bytes when ``None``). The results and the report are stored in the
    evidence store; an audit event points at them and at the policy, model
    and data digests the run names. A run made on a different model artifact
    than the version's is refused.

    The results are verified, not believed: the policy they name must be one
    the store knows (shipped, or registered with :func:`register_policy`:
    name, version and SHA-256 match), and the checks, their statuses, the
    summary and the verdict must be what that policy gives for the
    measurements they hold (:func:`assay.registry.results.verify_results`).
    The first inconsistency is refused, and nothing is stored.

    ``attestation`` is a signed certification envelope (DSSE, in-toto): it must
    verify against a trusted, non-revoked key, be about this version's model
    artefact, name the digest of ``results_bytes`` and the verdict recomputed
    here; it is then stored with the certification.
    """
    from assay.evidence import normalise_digest, store_bytes

    require_role(actor, *R.CERTIFIERS, action="record certifications")
    mv = get_version(session, model_name, version)
    try:
        parsed = json.loads(results_bytes)
    except (TypeError, ValueError) as exc:
        raise InputError(f"results.json: not valid JSON ({exc})") from None
    if results is None:
        results = parsed
    else:
        try:
            same = json.loads(json.dumps(dict(results))) == parsed
        except (TypeError, ValueError):
            same = False
        if not same:
            raise InputError("results.json: the parsed results differ from the bytes given")
    if not isinstance(results, Mapping):
        raise InputError("results.json: expected a JSON object")
    status = results.get("status")
    if status not in CERTIFICATION_STATUSES:
        raise InputError(f"results.json status '{status}': expected one of "
                         f"{', '.join(CERTIFICATION_STATUSES)}")
    policy = results.get("policy")
    if not isinstance(policy, Mapping) or not policy.get("name") or not policy.get("tier"):
        raise InputError("results.json policy: expected an object with name, version, tier "
                         "and sha256")
    try:
        policy_digest = normalise_digest(str(policy.get("sha256") or ""))
    except InputError:
        raise InputError(f"results.json policy.sha256 '{policy.get('sha256')}': expected a "
                         "SHA-256 hex digest") from None
    known = known_policy(session, policy, settings=settings)
    tier = str(policy["tier"])
    if tier not in known.tiers:
        raise InputError(f"results.json policy.tier '{tier}': policy '{known.name}' version "
                         f"{known.version} has tiers {', '.join(known.tiers)}")
    status = verify_results(results, known, tier)
    evidence: dict[str, str] = {"policy": policy_digest}
    model_info = results.get("model")
    if isinstance(model_info, Mapping) and model_info.get("sha256"):
        model_digest = _digest("results.json model.sha256", model_info["sha256"])
        if mv.artifact_digest and model_digest != mv.artifact_digest:
            raise ConflictError(
                f"results.json was produced for model {model_digest}, but {model_name} "
                f"version {version} is artifact {mv.artifact_digest}")
        if model_digest:
            evidence["model"] = model_digest
    data = results.get("data")
    if isinstance(data, Mapping):
        for key in ("evaluation", "reference"):
            part = data.get(key)
            if isinstance(part, Mapping) and part.get("sha256"):
                d = _digest(f"results.json data.{key}.sha256", part["sha256"])
                if d:
                    evidence[f"{key}_data"] = d
    st = settings_of(session, settings)
    results_digest = store_bytes(st, bytes(results_bytes))
    evidence["results"] = results_digest
    report_digest = None
    if report_bytes:
        report_digest = store_bytes(st, bytes(report_bytes))
        evidence["report"] = report_digest
    if attestation is not None:
        verified = _check_attestation(session, attestation, results_bytes, status,
                                      mv.artifact_digest or evidence.get("model"),
                                      f"{model_name} version {version}")
    cert = Certification(model_version_id=mv.id, policy_name=str(policy["name"]),
                         policy_version=str(policy.get("version") or ""),
                         policy_digest=policy_digest, tier=str(policy["tier"]), status=status,
                         results_digest=results_digest, report_digest=report_digest,
                         created_by=actor.id, created_at=utcnow())
    session.add(cert)
    session.flush()
    if attestation is not None:
        from assay.evidence.keys import store_attestation

        att = store_attestation(session, st, json.loads(attestation), verified,
                                kind="certification", subject_type="model_version",
                                subject_id=f"{model_name}@{version}",
                                ref=f"certification:{cert.id}")
        evidence["attestation"] = att.envelope_digest
    summary = results.get("summary") if isinstance(results.get("summary"), Mapping) else {}
    append_event(session, actor=actor, action="certification.record",
                 subject_type="model_version", subject_id=f"{model_name}@{version}",
                 payload={"certification_id": cert.id, "status": status,
                          "policy": cert.policy_name, "policy_version": cert.policy_version,
                          "tier": cert.tier, "summary": dict(summary or {})},
                 evidence=evidence)
    return cert


def _check_attestation(session: Session, envelope: bytes, results_bytes: bytes, status: str,
                       model_digest: str | None, what: str) -> Any:
    """The verified certification statement of ``envelope``; InputError naming the reason
    it is refused otherwise."""
    from assay.evidence import attest
    from assay.evidence.artifacts import digest_bytes
    from assay.evidence.keys import verify_trusted

    def refuse(reason: str, message: str) -> InputError:
        return InputError(f"attestation refused ({reason}): {message}",
                          details={"reason": reason})

    try:
        verified = verify_trusted(session, envelope)
    except attest.AttestationInvalid as exc:
        raise refuse(exc.reason, exc.message.split(": ", 1)[-1]) from None
    if verified.predicate_type != attest.CERTIFICATION:
        raise refuse("predicate_type", f"predicateType is {verified.predicate_type!r}, "
                     f"expected {attest.CERTIFICATION!r}")
    if not model_digest:
        raise refuse("subject_digest", f"{what} has no model artefact digest to compare the "
                     "attestation's subject with")
    want = attest.subject_digest(model_digest)
    if want not in verified.subject_digests():
        raise refuse("other_model", f"the attestation is about model sha256:"
                     f"{verified.subject_digests()[0]}, but {what} is artefact {model_digest}")
    results = verified.predicate.get("results")
    signed = results.get("sha256") if isinstance(results, Mapping) else None
    got = digest_bytes(bytes(results_bytes)).removeprefix("sha256:")
    if signed != got:
        raise refuse("results_digest", f"the attestation signs results sha256:{signed}, but "
                     f"the results.json given hashes to sha256:{got}")
    if verified.predicate.get("verdict") != status:
        raise refuse("verdict", f"the attestation says {verified.predicate.get('verdict')!r}, "
                     f"but the results recompute to {status!r}")
    return verified


def latest_certification(session: Session, version_id: int, *, policy_name: str | None = None,
                         tier: str | None = None) -> Certification | None:
    """The newest certification of a model version (optionally under one policy and tier)."""
    stmt = select(Certification).where(Certification.model_version_id == version_id)
    if policy_name:
        stmt = stmt.where(Certification.policy_name == policy_name)
    if tier:
        stmt = stmt.where(Certification.tier == tier)
    stmt = stmt.order_by(Certification.created_at.desc(), Certification.id.desc()).limit(1)
    return session.scalars(stmt).first()


def list_certifications(session: Session, version_id: int) -> list[Certification]:
    return list(session.scalars(select(Certification)
                                .where(Certification.model_version_id == version_id)
                                .order_by(Certification.id)))
