"""Trusted keys (admin) and the signed attestations kept for a model version.

Routes call :mod:`assay.evidence.keys` with the authenticated user as the actor;
roles are checked there (register and revoke: admin; list: admin, auditor,
compliance, risk). A version's attestations are readable by anyone who may read
its certifications.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from assay.api.deps import Principal, acting, current_principal, reading

router = APIRouter(prefix="/api", tags=["attestations"])

NAME = Path(..., min_length=1, max_length=200, description="Model name")
VERSION = Path(..., min_length=1, max_length=100, description="Version string")
KEY = Path(..., min_length=1, max_length=100, description="Key name or keyid")


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., min_length=1, max_length=100)
    purpose: Literal["ci", "approver"]
    public_key: str = Field(..., min_length=1, max_length=10_000,
                            description="PEM SubjectPublicKeyInfo (-----BEGIN PUBLIC KEY-----)")
    owner: str | None = Field(None, min_length=1, max_length=100,
                              description="User name of the key's holder")


class KeyOut(BaseModel):
    keyid: str = Field(description="SHA-256 of the key's DER SubjectPublicKeyInfo")
    name: str
    purpose: str
    algorithm: str
    public_key: str
    owner_id: int | None
    created_by: str
    created_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None


class AttestationOut(BaseModel):
    kind: str
    predicate_type: str
    subject: str
    subject_digest: str
    envelope_digest: str
    keyid: str
    ref: str | None
    created_at: datetime
    envelope: dict[str, Any] = Field(description="The DSSE envelope")


@router.get("/keys", response_model=list[KeyOut], summary="Trusted keys (admin, auditor)")
def keys(request: Request, principal: Principal = Depends(current_principal)) -> list:
    from assay.evidence.keys import key_to_dict, list_keys

    with acting(request, principal) as (s, actor):
        return [key_to_dict(k) for k in list_keys(s, actor)]


@router.post("/keys", response_model=KeyOut, status_code=201,
             summary="Register a trusted public key (admin)")
def add_key(body: KeyIn, request: Request,
            principal: Principal = Depends(current_principal)) -> dict:
    from assay.evidence.keys import key_to_dict, register_key

    with acting(request, principal) as (s, actor):
        return key_to_dict(register_key(s, actor, body.name, body.public_key,
                                        purpose=body.purpose, owner=body.owner))


@router.post("/keys/{key}/revoke", response_model=KeyOut,
             summary="Revoke a trusted key (admin): its signatures are refused from now on")
def revoke(request: Request, key: str = KEY,
           principal: Principal = Depends(current_principal)) -> dict:
    from assay.evidence.keys import key_to_dict, revoke_key

    with acting(request, principal) as (s, actor):
        return key_to_dict(revoke_key(s, actor, key))


@router.get("/models/{name}/versions/{version}/attestations",
            response_model=list[AttestationOut],
            summary="Signed attestations of a version (certifications, stage and gate "
                    "decisions, monitoring windows), with their DSSE envelopes")
def attestations(request: Request, name: str = NAME, version: str = VERSION,
                 principal: Principal = Depends(current_principal)) -> list:
    from assay.evidence.keys import version_attestations

    with reading(request) as s:
        return version_attestations(s, request.app.state.settings, name, version)
