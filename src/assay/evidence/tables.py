"""Trusted keys and the attestations assay keeps. Created by migration ``0010_trusted_keys``.

A trusted key is a public key an admin registered (a CI runner's, an approver's)
or assay's own service key; an attestation row links a signed envelope (stored in
the evidence store, by digest) to what it is about.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from assay.registry.tables import TZ
from assay.store.db import Base

#: What a trusted key is for.
KEY_PURPOSES = ("ci", "approver", "service")
#: Kinds of attestation assay stores.
ATTESTATION_KINDS = ("certification", "stage_decision", "gate_decision", "monitoring_window",
                     "documentation_pack")


class TrustedKey(Base):
    """A public key whose signatures assay accepts until it is revoked."""

    __tablename__ = "trusted_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: SHA-256 (hex) of the key's DER SubjectPublicKeyInfo
    keyid: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False, unique=True)
    purpose: Mapped[str] = mapped_column(String(20), nullable=False)
    algorithm: Mapped[str] = mapped_column(String(20), nullable=False)
    public_key: Mapped[str] = mapped_column(Text, nullable=False)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_by: Mapped[str] = mapped_column(String(100), nullable=False)
    created_at: Mapped[datetime] = mapped_column(TZ, nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(TZ)
    revoked_by: Mapped[str | None] = mapped_column(String(100))


class Attestation(Base):
    """A signed envelope in the evidence store and what it is about."""

    __tablename__ = "attestations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), nullable=False)
    predicate_type: Mapped[str] = mapped_column(String(200), nullable=False)
    #: ``model_version`` and ``name@version``, like audit events
    subject_type: Mapped[str] = mapped_column(String(40), nullable=False)
    subject_id: Mapped[str] = mapped_column(String(200), nullable=False, index=True)
    #: the statement's first subject digest (``sha256:<hex>``)
    subject_digest: Mapped[str] = mapped_column(String(80), nullable=False)
    envelope_digest: Mapped[str] = mapped_column(String(80), nullable=False)
    keyid: Mapped[str] = mapped_column(String(64), nullable=False)
    #: the record it attests: ``certification:12``, ``signoff:7``, ``gate:...``
    ref: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(TZ, nullable=False)
