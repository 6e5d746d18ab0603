"""Signed checkpoints of the audit trail.

The hash chain shows that no event was altered, deleted or reordered
*relative to the events around it*; someone able to rewrite the database can
still rewrite the chain from some event on and re-hash everything after it.
A checkpoint is the head of the chain (``seq`` and ``hash``) signed with an
Ed25519 key that is kept away from the database. Verified later against the
public key, it proves the trail still contains that exact event — and so,
through the chain, every event before it.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from sqlalchemy.orm import Session

from assay.errors import InputError
from assay.store.audit import canonical_json, chain_head, format_time, verify_chain
from assay.store.db import utcnow

FORMAT = "assay.audit.checkpoint/1"


def generate_key(private_path: Path) -> Path:
    """Write a new Ed25519 private key (PEM, mode 0600) and its public key beside it (.pub)."""
    if private_path.exists():
        raise InputError(f"{private_path}: already exists (refusing to overwrite a key)")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    private_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public_path = private_path.with_name(private_path.name + ".pub")
    public_path.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return public_path


def _load_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise InputError(f"{path}: key file not found") from None
    except (ValueError, TypeError):
        raise InputError(f"{path}: expected an unencrypted Ed25519 private key in PEM "
                         "(make one with `assay audit keygen`)") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(f"{path}: expected an Ed25519 private key")
    return key


def _load_public(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except FileNotFoundError:
        raise InputError(f"{path}: public key file not found") from None
    except ValueError:
        raise InputError(f"{path}: expected an Ed25519 public key in PEM") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InputError(f"{path}: expected an Ed25519 public key")
    return key


def _signed_part(doc: dict[str, Any]) -> bytes:
    return canonical_json({k: doc[k] for k in ("format", "seq", "hash", "created_at",
                                                "signed_by")}).encode("utf-8")


def make_checkpoint(session: Session, key_path: Path, *, signed_by: str) -> dict[str, Any]:
    """Sign the current head of an intact chain; refuses to sign a broken one."""
    key = _load_private(key_path)
    result = verify_chain(session)
    if not result.ok:
        raise InputError(f"the audit trail is broken at event {result.first_bad_seq} "
                         f"({result.reason}); refusing to sign it")
    seq, head = chain_head(session)
    doc: dict[str, Any] = {"format": FORMAT, "seq": seq, "hash": head,
                           "created_at": format_time(utcnow()), "signed_by": signed_by}
    doc["signature"] = base64.b64encode(key.sign(_signed_part(doc))).decode("ascii")
    return doc


def read_checkpoint(path: Path, public_key: Path) -> tuple[int, str]:
    """The ``(seq, hash)`` anchor of a checkpoint file whose signature checks out."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: checkpoint file not found") from None
    except ValueError:
        raise InputError(f"{path}: not a JSON checkpoint") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputError(f"{path}: expected an assay checkpoint ({FORMAT})")
    try:
        signature = base64.b64decode(doc["signature"], validate=True)
        message = _signed_part(doc)
        seq, head = int(doc["seq"]), str(doc["hash"])
    except (KeyError, ValueError, TypeError):
        raise InputError(f"{path}: incomplete checkpoint (needs seq, hash, created_at, "
                         "signed_by, signature)") from None
    try:
        _load_public(public_key).verify(signature, message)
    except InvalidSignature:
        raise InputError(f"{path}: the signature does not match {public_key}: the checkpoint "
                         "was altered or signed with another key") from None
    return seq, head
