"""Trusted keys, assay's service signing key, and the attestations kept in the store.

- Admins register the public keys of CI runners and approvers
  (:func:`register_key`), list and revoke them; each change is an audit event.
  Envelopes verify only against registered keys that are not revoked
  (:func:`verify_trusted`).
- assay signs its own statements (stage decisions, gate decisions, monitoring
  windows) with a service key: the PKCS#8 PEM file named by ``ASSAY_SIGNING_KEY``
  when set, else ``ASSAY_HOME/signing.key``, created on first use with mode
  0600. Its public key is registered as trusted with purpose ``service`` the
  first time it signs.
- Each envelope is stored content-addressed in the evidence store, and a row of
  ``attestations`` says what it is about (:func:`store_attestation`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from assay.config import Settings
from assay.errors import ConflictError, InputError, NotFoundError
from assay.evidence import attest
from assay.evidence.artifacts import store_bytes
from assay.evidence.tables import ATTESTATION_KINDS, KEY_PURPOSES, Attestation, TrustedKey
from assay.registry import roles as R
from assay.registry.tables import User
from assay.registry.users import get_user, require_role
from assay.store.audit import append_event
from assay.store.db import utcnow

SIGNING_KEY_ENV = "ASSAY_SIGNING_KEY"
SIGNING_KEY_FILE = "signing.key"
SERVICE_KEY_NAME = "assay-service"
SERVICE_ACTOR = "assay-service"

__all__ = ["ATTESTATION_KINDS", "KEY_PURPOSES", "attestation_to_dict", "attestations_of",
           "key_to_dict", "list_keys", "register_key", "revoke_key", "service_key",
           "sign_and_store", "store_attestation", "verify_trusted"]


def _algorithm(key: attest.PublicKey) -> str:
    return "ed25519" if not hasattr(key, "curve") else "ecdsa-p256"


def key_to_dict(k: TrustedKey) -> dict[str, Any]:
    return {"keyid": k.keyid, "name": k.name, "purpose": k.purpose, "algorithm": k.algorithm,
            "public_key": k.public_key, "owner_id": k.owner_id, "created_by": k.created_by,
            "created_at": k.created_at, "revoked_at": k.revoked_at, "revoked_by": k.revoked_by}


def register_key(session: Session, actor: User, name: str, public_key_pem: bytes | str, *,
                 purpose: str, owner: str | None = None) -> TrustedKey:
    """Register a public key as trusted (admins only)."""
    require_role(actor, R.ADMIN, action="register trusted keys")
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise InputError("{name}: expected a key name of 1 to 100 characters",
                         fields=["name"])
    if purpose not in KEY_PURPOSES:
        raise InputError(f"{{purpose}} '{purpose}': expected one of "
                         f"{', '.join(KEY_PURPOSES)}", fields=["purpose"])
    if purpose == "service":
        raise InputError("{purpose} 'service' is assay's own key, registered by assay "
                         "itself; register CI runners' keys as 'ci' and approvers' as "
                         "'approver'", fields=["purpose"])
    pem = public_key_pem.encode() if isinstance(public_key_pem, str) else public_key_pem
    key = attest.load_public_key(bytes(pem))
    return _add(session, actor.username, name, key, purpose,
                get_user(session, owner).id if owner else None)


def _add(session: Session, actor: str, name: str, key: attest.PublicKey, purpose: str,
         owner_id: int | None) -> TrustedKey:
    kid = attest.keyid(key)
    same = session.scalar(select(TrustedKey).where(TrustedKey.keyid == kid))
    if same is not None:
        raise ConflictError(f"key {kid[:16]}... is registered already as '{same.name}'"
                            + (" (revoked)" if same.revoked_at else ""))
    if session.scalar(select(TrustedKey).where(TrustedKey.name == name)) is not None:
        raise ConflictError(f"a trusted key named '{name}' exists already")
    row = TrustedKey(keyid=kid, name=name, purpose=purpose, algorithm=_algorithm(key),
                     public_key=attest.public_pem(key), owner_id=owner_id, created_by=actor,
                     created_at=utcnow())
    session.add(row)
    session.flush()
    append_event(session, actor=actor, action="key.register", subject_type="trusted_key",
                 subject_id=kid, payload={"name": name, "purpose": purpose,
                                          "algorithm": row.algorithm, "owner_id": owner_id})
    return row


def _find(session: Session, key: str) -> TrustedKey:
    row = session.scalar(select(TrustedKey).where(
        (TrustedKey.name == key) | (TrustedKey.keyid == key.lower())))
    if row is None:
        raise NotFoundError(f"no trusted key named or with keyid '{key}'")
    return row


def list_keys(session: Session, actor: User) -> list[TrustedKey]:
    """Every trusted key, revoked ones too (admins, auditors, compliance, risk)."""
    require_role(actor, *R.AUDIT_READERS, action="list trusted keys")
    return list(session.scalars(select(TrustedKey).order_by(TrustedKey.id)))


def revoke_key(session: Session, actor: User, key: str) -> TrustedKey:
    """Revoke a trusted key (by name or keyid): its signatures are refused from now on."""
    require_role(actor, R.ADMIN, action="revoke trusted keys")
    row = _find(session, key)
    if row.revoked_at is not None:
        raise ConflictError(f"trusted key '{row.name}' is revoked already")
    row.revoked_at = utcnow()
    row.revoked_by = actor.username
    append_event(session, actor=actor, action="key.revoke", subject_type="trusted_key",
                 subject_id=row.keyid, payload={"name": row.name, "purpose": row.purpose})
    return row


def verify_trusted(session: Session, envelope: bytes | str | Mapping[str, Any], *,
                   purposes: tuple[str, ...] | None = None) -> attest.Verified:
    """Verify ``envelope`` against the store's trusted keys (revoked keys refused)."""
    env = attest.parse_envelope(envelope)
    rows = list(session.scalars(select(TrustedKey)))
    active = {r.keyid: attest.load_public_key(r.public_key.encode()) for r in rows
              if r.revoked_at is None and (purposes is None or r.purpose in purposes)}
    revoked = {r.keyid: r for r in rows if r.revoked_at is not None}
    try:
        return attest.verify_envelope(env, active)
    except attest.AttestationInvalid as exc:
        hit = next((revoked[k] for k, _ in env.signatures if k in revoked), None)
        if exc.reason == "untrusted_key" and hit is not None:
            raise attest.AttestationInvalid(
                "revoked_key", f"signed by key '{hit.name}' ({hit.keyid[:16]}...), "
                f"revoked {hit.revoked_at:%Y-%m-%d %H:%M} UTC") from None
        raise


# --------------------------------------------------------------------------- service key


def _key_path(settings: Settings) -> Path:
    given = os.environ.get(SIGNING_KEY_ENV, "").strip()
    return Path(given) if given else Path(settings.home) / SIGNING_KEY_FILE


def service_key(session: Session, settings: Settings) -> attest.PrivateKey:
    """assay's signing key (created on first use), registered as a trusted service key."""
    path = _key_path(settings)
    if not path.exists() and not os.environ.get(SIGNING_KEY_ENV, "").strip():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(attest.private_pem(attest.generate_key()))
    where = f"{SIGNING_KEY_ENV}={path}" if os.environ.get(SIGNING_KEY_ENV) else str(path)
    try:
        key = attest.load_private_key(path.read_bytes())
    except OSError as exc:
        raise InputError(f"{where}: cannot read the signing key "
                         f"({exc.strerror or exc})") from None
    except InputError as exc:
        raise InputError(f"{where}: {exc.message.removeprefix('private key: ')}") from None
    kid = attest.keyid(key.public_key())
    row = session.scalar(select(TrustedKey).where(TrustedKey.keyid == kid))
    if row is None:
        name = SERVICE_KEY_NAME
        taken = session.scalar(select(TrustedKey).where(TrustedKey.name == name))
        if taken is not None:
            name = f"{SERVICE_KEY_NAME}-{kid[:12]}"
        if session.get_bind().dialect.name != "postgresql":  # SQLite: one writer at a time
            _add(session, SERVICE_ACTOR, name, key.public_key(), "service", None)
        else:
            try:
                with session.begin_nested():  # two first signatures at once: one registers
                    _add(session, SERVICE_ACTOR, name, key.public_key(), "service", None)
            except IntegrityError:
                row = session.scalar(select(TrustedKey).where(TrustedKey.keyid == kid))
                if row is None:
                    raise
    if row is not None and row.revoked_at is not None:
        raise ConflictError(f"assay's signing key '{row.name}' ({kid[:16]}...) is revoked; "
                            f"set {SIGNING_KEY_ENV} to a new key or remove {path} so that "
                            "a new one is made")
    return key


# --------------------------------------------------------------------------- stored envelopes


def store_attestation(session: Session, settings: Settings, envelope: Mapping[str, Any],
                      verified: attest.Verified, *, kind: str, subject_type: str,
                      subject_id: str, ref: str | None = None) -> Attestation:
    """Store ``envelope`` in the evidence store and link it to its subject."""
    if kind not in ATTESTATION_KINDS:
        raise InputError(f"attestation kind '{kind}': expected one of "
                         f"{', '.join(ATTESTATION_KINDS)}")
    digest = store_bytes(settings, attest.envelope_bytes(envelope))
    row = Attestation(kind=kind, predicate_type=verified.predicate_type,
                      subject_type=subject_type, subject_id=subject_id,
                      subject_digest="sha256:" + verified.subject_digests()[0],
                      envelope_digest=digest, keyid=verified.keyid, ref=ref,
                      created_at=utcnow())
    session.add(row)
    session.flush()
    return row


def sign_and_store(session: Session, settings: Settings, stmt: Mapping[str, Any], *,
                   kind: str, subject_type: str, subject_id: str,
                   ref: str | None = None) -> Attestation:
    """Sign ``stmt`` with the service key and store it (see :func:`store_attestation`)."""
    key = service_key(session, settings)
    envelope = attest.sign_statement(stmt, key)
    verified = attest.Verified(dict(stmt), attest.keyid(key.public_key()), attest.PAYLOAD_TYPE)
    return store_attestation(session, settings, envelope, verified, kind=kind,
                             subject_type=subject_type, subject_id=subject_id, ref=ref)


def attestations_of(session: Session, subject_id: str, *,
                    kind: str | None = None) -> list[Attestation]:
    q = select(Attestation).where(Attestation.subject_id == subject_id)
    if kind is not None:
        q = q.where(Attestation.kind == kind)
    return list(session.scalars(q.order_by(Attestation.id)))


def attestation_to_dict(a: Attestation) -> dict[str, Any]:
    return {"kind": a.kind, "predicate_type": a.predicate_type, "subject": a.subject_id,
            "subject_digest": a.subject_digest, "envelope_digest": a.envelope_digest,
            "keyid": a.keyid, "ref": a.ref, "created_at": a.created_at}


def version_attestations(session: Session, settings: Settings, model_name: str,
                         version: str) -> list[dict[str, Any]]:
    """Every attestation kept for a model version, oldest first, each with its envelope
    (read back from the evidence store and checked against its digest)."""
    import json

    from assay.evidence.artifacts import open_artifact
    from assay.registry.models import get_version

    get_version(session, model_name, version)  # NotFoundError for an unknown version
    out = []
    for a in attestations_of(session, f"{model_name}@{version}"):
        item = attestation_to_dict(a)
        item["envelope"] = json.loads(open_artifact(settings, a.envelope_digest))
        out.append(item)
    return out
