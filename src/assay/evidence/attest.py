"""Signed attestations: in-toto Statement v1 in DSSE envelopes (Ed25519, ECDSA P-256).

This module knows nothing of models, policies or workflows: it builds and checks
the envelope, the statement and the signature. The predicates assay writes (a
certification, a stage decision, a gate decision, a monitoring window) are made by
the domain layer and described in ``docs/attestations.md``.

- The envelope is the standard DSSE JSON ``{"payloadType", "payload", "signatures":
  [{"keyid", "sig"}]}`` with ``payload`` and ``sig`` in standard base64; a signature
  is over the pre-authentication encoding :func:`pae`.
- The payload is the statement serialised as canonical JSON (:func:`canonical_json`).
- A key's id is the SHA-256 (64 hex digits) of the DER SubjectPublicKeyInfo of its
  public key (``openssl pkey -pubin -outform DER | sha256sum``).

Verification failures raise :class:`AttestationInvalid`, whose ``reason`` names
what was wrong (``signature``, ``payload_type``, ``untrusted_key``, ``subject``,
``statement``, ...); malformed input (not JSON, not an envelope, not a key) raises
:class:`~assay.errors.InputError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from assay.errors import AssayError, InputError

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_BASE = "https://assay.dev/attestation/"
CERTIFICATION = PREDICATE_BASE + "certification/v1"
STAGE_DECISION = PREDICATE_BASE + "stage-decision/v1"
GATE_DECISION = PREDICATE_BASE + "gate-decision/v1"
MONITORING_WINDOW = PREDICATE_BASE + "monitoring-window/v1"
PREDICATE_TYPES = (CERTIFICATION, STAGE_DECISION, GATE_DECISION, MONITORING_WINDOW)

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


class AttestationInvalid(AssayError):
    """An envelope that is well formed but does not verify; ``reason`` says why."""

    exit_code = 1
    code = "attestation_invalid"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"attestation invalid ({reason}): {message}",
                         details={"reason": reason})
        self.reason = reason


# --------------------------------------------------------------------------- encoding


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding of ``payload`` with ``payload_type``."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def canonical_json(obj: Any) -> bytes:
    """``obj`` as UTF-8 JSON with sorted keys and no insignificant whitespace."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _b64decode(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise InputError(f"envelope: {what} must be a base64 string, got "
                         f"{type(text).__name__}")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise InputError(f"envelope: {what} is not valid base64") from None


# --------------------------------------------------------------------------- keys


def keyid(public_key: PublicKey) -> str:
    """SHA-256 (hex) of the DER SubjectPublicKeyInfo of ``public_key``."""
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _check_key_type(key: Any, where: str, kind: str) -> None:
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        if isinstance(key.curve, ec.SECP256R1):
            return
        raise InputError(f"{where}: an ECDSA {kind} key on {key.curve.name}; expected "
                         "Ed25519 or ECDSA P-256 (secp256r1)")
    raise InputError(f"{where}: a {type(key).__name__.lstrip('_')} {kind} key; expected "
                     "Ed25519 (or ECDSA P-256)")


def _read(source: bytes | str | os.PathLike[str], what: str) -> tuple[bytes, str]:
    if isinstance(source, bytes):
        return source, what
    path = Path(source)
    try:
        return path.read_bytes(), str(path)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None


def load_private_key(source: bytes | str | os.PathLike[str], *,
                     passphrase: bytes | None = None) -> PrivateKey:
    """An Ed25519 (or ECDSA P-256) private key from PEM (PKCS#8) bytes or a file path."""
    data, where = _read(source, "private key")
    if b"PUBLIC KEY-----" in data and b"PRIVATE KEY-----" not in data:
        raise InputError(f"{where}: a public key; signing needs the private key (PEM, "
                         "PKCS#8: -----BEGIN PRIVATE KEY-----)")
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except TypeError:
        if passphrase is None:
            raise InputError(f"{where}: the private key is encrypted and no passphrase was "
                             "given") from None
        raise InputError(f"{where}: a passphrase was given but the key is not "
                         "encrypted") from None
    except ValueError as exc:
        if passphrase is not None and "password" in str(exc).lower():
            raise InputError(f"{where}: the passphrase does not decrypt the private "
                             "key") from None
        raise InputError(f"{where}: not a PEM private key (expected PKCS#8, "
                         "-----BEGIN PRIVATE KEY-----)") from None
    _check_key_type(key, where, "private")
    return key  # type: ignore[return-value]


def load_public_key(source: bytes | str | os.PathLike[str]) -> PublicKey:
    """An Ed25519 (or ECDSA P-256) public key from PEM (SubjectPublicKeyInfo)."""
    data, where = _read(source, "public key")
    if b"PRIVATE KEY-----" in data:
        raise InputError(f"{where}: a private key; give the public key (-----BEGIN PUBLIC "
                         "KEY-----), never share the private one")
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise InputError(f"{where}: not a PEM public key (expected -----BEGIN PUBLIC "
                         "KEY-----)") from None
    _check_key_type(key, where, "public")
    return key  # type: ignore[return-value]


def public_pem(key: PrivateKey | PublicKey) -> str:
    """The PEM (SubjectPublicKeyInfo) of ``key``'s public half."""
    pub = key.public_key() if hasattr(key, "private_bytes") else key
    return pub.public_bytes(serialization.Encoding.PEM,  # type: ignore[union-attr]
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def private_pem(key: PrivateKey) -> bytes:
    """``key`` as unencrypted PKCS#8 PEM."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def generate_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def _sign(key: PrivateKey, message: bytes) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(message)
    return key.sign(message, ec.ECDSA(hashes.SHA256()))


def _verify(key: PublicKey, sig: bytes, message: bytes) -> bool:
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(sig, message)
        else:
            key.verify(sig, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


# --------------------------------------------------------------------------- statements


def subject_digest(digest: str) -> str:
    """A ``sha256:<hex>`` or bare hex digest as the 64 hex digits a statement carries."""
    value = str(digest).strip().lower().removeprefix("sha256:")
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise InputError(f"subject digest: expected 64 hex digits, got {digest!r}")
    return value


def statement(subjects: Iterable[tuple[str, str]], predicate_type: str,
              predicate: Mapping[str, Any]) -> dict[str, Any]:
    """An in-toto Statement v1: ``subjects`` are ``(name, sha256)`` pairs."""
    subject = [{"name": str(name), "digest": {"sha256": subject_digest(d)}}
               for name, d in subjects]
    if not subject:
        raise InputError("a statement needs at least one subject")
    return {"_type": STATEMENT_TYPE, "subject": subject, "predicateType": predicate_type,
            "predicate": dict(predicate)}


def sign_statement(stmt: Mapping[str, Any], key: PrivateKey) -> dict[str, Any]:
    """A DSSE envelope (as a dict) of ``stmt``, signed with ``key``."""
    payload = canonical_json(stmt)
    sig = _sign(key, pae(PAYLOAD_TYPE, payload))
    return {"payloadType": PAYLOAD_TYPE,
            "payload": base64.b64encode(payload).decode("ascii"),
            "signatures": [{"keyid": keyid(key.public_key()),
                            "sig": base64.b64encode(sig).decode("ascii")}]}


def envelope_bytes(envelope: Mapping[str, Any]) -> bytes:
    """The bytes assay stores for an envelope (canonical JSON, so digests are stable)."""
    return canonical_json(envelope)


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[tuple[str, bytes], ...]  # (keyid, sig)
    raw: dict[str, Any]


def parse_envelope(source: bytes | str | Mapping[str, Any], *,
                   where: str = "envelope") -> Envelope:
    """Check that ``source`` (JSON bytes/text or a dict) is a DSSE envelope."""
    if isinstance(source, Mapping):
        doc: Any = dict(source)
    else:
        try:
            doc = json.loads(source)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(f"{where}: not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise InputError(f"{where}: expected a DSSE envelope (a JSON object with "
                         f"payloadType, payload, signatures), got {type(doc).__name__}")
    missing = [k for k in ("payloadType", "payload", "signatures") if k not in doc]
    if missing:
        raise InputError(f"{where}: not a DSSE envelope: missing {', '.join(missing)}")
    if not isinstance(doc["payloadType"], str):
        raise InputError(f"{where}: payloadType must be a string")
    payload = _b64decode(doc["payload"], "payload")
    sigs = doc["signatures"]
    if not isinstance(sigs, list) or not sigs:
        raise InputError(f"{where}: signatures must be a non-empty list")
    parsed = []
    for i, s in enumerate(sigs):
        if not isinstance(s, dict) or "sig" not in s:
            raise InputError(f"{where}: signatures[{i}] must be an object with sig and keyid")
        kid = s.get("keyid", "")
        if not isinstance(kid, str):
            raise InputError(f"{where}: signatures[{i}].keyid must be a string")
        parsed.append((kid, _b64decode(s["sig"], f"signatures[{i}].sig")))
    return Envelope(doc["payloadType"], payload, tuple(parsed), doc)


@dataclass(frozen=True)
class Verified:
    """A statement whose signature verified, and the key that signed it."""

    statement: dict[str, Any]
    keyid: str
    payload_type: str

    @property
    def predicate_type(self) -> str:
        return str(self.statement["predicateType"])

    @property
    def predicate(self) -> dict[str, Any]:
        return self.statement["predicate"]

    def subject_digests(self) -> list[str]:
        return [s["digest"]["sha256"] for s in self.statement["subject"]]


def _check_statement(payload: bytes) -> dict[str, Any]:
    try:
        stmt = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise AttestationInvalid("statement", "the payload is not JSON") from None
    if not isinstance(stmt, dict) or stmt.get("_type") != STATEMENT_TYPE:
        got = stmt.get("_type") if isinstance(stmt, dict) else type(stmt).__name__
        raise AttestationInvalid("statement", f"expected an in-toto Statement "
                                 f"(_type {STATEMENT_TYPE}), got {got!r}")
    subjects = stmt.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise AttestationInvalid("statement", "the statement has no subject")
    for i, s in enumerate(subjects):
        d = s.get("digest") if isinstance(s, dict) else None
        if not isinstance(d, dict) or not isinstance(d.get("sha256"), str):
            raise AttestationInvalid("statement", f"subject[{i}] has no sha256 digest")
    if not isinstance(stmt.get("predicateType"), str):
        raise AttestationInvalid("statement", "the statement has no predicateType")
    if not isinstance(stmt.get("predicate", {}), dict):
        raise AttestationInvalid("statement", "the predicate must be an object")
    stmt.setdefault("predicate", {})
    return stmt


def verify_envelope(envelope: Envelope | bytes | str | Mapping[str, Any],
                    keys: Mapping[str, PublicKey] | Iterable[PublicKey]) -> Verified:
    """Verify a DSSE envelope against ``keys`` (a keyid → key map, or keys).

    The payload type must be in-toto's; some signature must be by one of ``keys``
    and verify over the PAE; the payload must be an in-toto Statement v1.
    """
    env = envelope if isinstance(envelope, Envelope) else parse_envelope(envelope)
    if env.payload_type != PAYLOAD_TYPE:
        raise AttestationInvalid("payload_type", f"payloadType is {env.payload_type!r}, "
                                 f"expected {PAYLOAD_TYPE!r}")
    by_id = dict(keys) if isinstance(keys, Mapping) else {keyid(k): k for k in keys}
    message = pae(env.payload_type, env.payload)
    known = [(kid, sig) for kid, sig in env.signatures if kid in by_id]
    if not known and not any(kid == "" for kid, _ in env.signatures):
        ids = ", ".join(kid[:16] or "(none)" for kid, _ in env.signatures)
        raise AttestationInvalid("untrusted_key", f"signed by key {ids}, which is not a "
                                 "trusted key")
    for kid, sig in env.signatures:
        candidates = [by_id[kid]] if kid in by_id else (list(by_id.values()) if not kid
                                                         else [])
        for key in candidates:
            if _verify(key, sig, message):
                return Verified(_check_statement(env.payload), keyid(key), env.payload_type)
    if not known:
        raise AttestationInvalid("untrusted_key", "no signature verifies with a trusted key")
    raise AttestationInvalid("signature", "the signature does not match the payload (the "
                             "envelope was altered or signed with another key)")


def require_subject(verified: Verified, digest: str, *, what: str = "the artifact") -> None:
    """Refuse unless ``digest`` is one of the statement's subjects."""
    want = subject_digest(digest)
    if want not in verified.subject_digests():
        got = ", ".join(d[:16] for d in verified.subject_digests())
        raise AttestationInvalid("subject", f"the statement is about sha256 {got}..., not "
                                 f"{what} (sha256 {want[:16]}...)")
