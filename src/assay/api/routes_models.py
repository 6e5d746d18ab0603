"""Models, versions, the inventory and evidence uploads."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Path, Query, Request, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from assay.api.deps import Principal, acting, current_principal, reading, require_roles
from assay.errors import InputError

router = APIRouter(prefix="/api", tags=["models"])

NAME = Path(..., min_length=1, max_length=200, description="Model name")
VERSION = Path(..., min_length=1, max_length=100, description="Version string")
TEXT = 20000
DIGEST = r"^(sha256:)?[0-9a-fA-F]{64}$"
MAX_EVIDENCE_BYTES = 200 * 1024 * 1024
#: Roles that may add evidence files (documents for stages).
EVIDENCE_WRITERS = ("data_scientist", "validator", "risk_officer", "compliance", "security",
                    "business_owner", "admin")


class ModelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    owner: str = Field(..., min_length=1, max_length=100, description="User name of the owner")
    decision_type: Literal["automated", "human_in_the_loop"]
    criticality: Literal["low", "medium", "high", "critical"]
    purpose: str = Field("", max_length=TEXT)
    intended_use: str = Field("", max_length=TEXT)
    out_of_scope_uses: str = Field("", max_length=TEXT)
    business_unit: str = Field("", max_length=200)
    stakeholders: list[str] = Field(default_factory=list, max_length=100)
    deployment_status: Literal["proposed", "development", "validation", "approved",
                               "deployed", "suspended", "retired"] = "development"
    next_review_at: datetime | None = None


class ModelPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    owner: str | None = Field(None, min_length=1, max_length=100)
    decision_type: Literal["automated", "human_in_the_loop"] | None = None
    criticality: Literal["low", "medium", "high", "critical"] | None = None
    purpose: str | None = Field(None, max_length=TEXT)
    intended_use: str | None = Field(None, max_length=TEXT)
    out_of_scope_uses: str | None = Field(None, max_length=TEXT)
    business_unit: str | None = Field(None, max_length=200)
    stakeholders: list[str] | None = Field(None, max_length=100)
    deployment_status: Literal["proposed", "development", "validation", "approved",
                               "deployed", "suspended", "retired"] | None = None
    next_review_at: datetime | None = None


class VersionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(..., min_length=1, max_length=100,
                         pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
    artifact_digest: str | None = Field(None, pattern=DIGEST)
    training_data_digest: str | None = Field(None, pattern=DIGEST)
    training_data_source: str = Field("", max_length=TEXT)
    evaluation_data_digest: str | None = Field(None, pattern=DIGEST)
    evaluation_data_source: str = Field("", max_length=TEXT)
    feature_pipeline: str = Field("", max_length=TEXT)
    code_revision: str = Field("", max_length=200)
    parent_version: str | None = Field("latest", max_length=100,
                                       description="'latest' (default), a version, or null")


class InventoryItem(BaseModel):
    name: str
    purpose: str
    tier: str | None
    status: str
    deployment_status: str
    criticality: str
    decision_type: str
    owner: str
    business_unit: str
    latest_version: str | None
    versions: int
    certification: str | None
    approval: str | None
    next_review_at: str | None
    overdue: bool
    days_overdue: int
    approved_version: str | None = Field(
        None, description="The newest version approved for deployment (not expired)")


class Evidence(BaseModel):
    digest: str
    size: int
    name: str | None


@router.get("/models", response_model=list[InventoryItem],
            summary="The inventory: tier, status, owner, next review, overdue")
def list_models(request: Request, q: str | None = Query(None, max_length=200),
                tier: Literal["high", "medium", "low", "none"] | None = None,
                status: Literal["proposed", "development", "validation", "approved",
                                "deployed", "suspended", "retired"] | None = None,
                overdue: bool = False,
                principal: Principal = Depends(current_principal)) -> list[dict]:
    from assay.api import views

    with reading(request) as s:
        return views.inventory(s, q=q, tier=tier, status=status, overdue=overdue)


@router.post("/models", response_model=dict[str, Any], status_code=201,
             summary="Register a model in the inventory")
def register(body: ModelIn, request: Request,
             principal: Principal = Depends(current_principal)) -> dict:
    from assay.registry import register_model

    fields = body.model_dump(exclude={"name"})
    if fields["next_review_at"] is None:
        fields.pop("next_review_at")
    with acting(request, principal) as (s, actor):
        return register_model(s, actor, body.name, **fields).to_dict()


@router.get("/models/{name}", response_model=dict[str, Any],
            summary="A model with every version, its certification and approval state")
def get_model(request: Request, name: str = NAME,
              principal: Principal = Depends(current_principal)) -> dict:
    from assay.api import views

    with reading(request) as s:
        return views.model_detail(s, name)


@router.patch("/models/{name}", response_model=dict[str, Any],
              summary="Change inventory fields of a model")
def update(body: ModelPatch, request: Request, name: str = NAME,
           principal: Principal = Depends(current_principal)) -> dict:
    from assay.workflow import update_model

    fields = body.model_dump(exclude_unset=True)
    if not fields:
        raise InputError("nothing to change: give at least one field")
    with acting(request, principal) as (s, actor):
        return update_model(s, actor, name, **fields).to_dict()


@router.post("/models/{name}/versions", response_model=dict[str, Any], status_code=201,
             summary="Register a new version with its lineage and digests")
def add_version(body: VersionIn, request: Request, name: str = NAME,
                principal: Principal = Depends(current_principal)) -> dict:
    from assay.registry import add_version as registry_add_version

    fields = body.model_dump(exclude={"version"})
    with acting(request, principal) as (s, actor):
        return registry_add_version(s, actor, name, body.version, **fields).to_dict()


@router.get("/models/{name}/versions/{version}", response_model=dict[str, Any],
            summary="One version with its lineage and digests")
def get_version(request: Request, name: str = NAME, version: str = VERSION,
                principal: Principal = Depends(current_principal)) -> dict:
    from assay.registry import get_version as registry_get_version

    with reading(request) as s:
        return registry_get_version(s, name, version).to_dict()


@router.post("/evidence", response_model=Evidence, status_code=201,
             summary="Store a file (a document for a stage) as content-addressed evidence")
def upload_evidence(request: Request, file: UploadFile = File(...),
                    principal: Principal = Depends(current_principal)) -> dict:
    from assay.evidence import store_bytes

    require_roles(principal, *EVIDENCE_WRITERS)
    data = file.file.read(MAX_EVIDENCE_BYTES + 1)
    if len(data) > MAX_EVIDENCE_BYTES:
        raise InputError(f"file: larger than {MAX_EVIDENCE_BYTES // 2**20} MiB")
    if not data:
        raise InputError("file: empty")
    digest = store_bytes(request.app.state.settings, data)
    return {"digest": digest, "size": len(data), "name": file.filename}
