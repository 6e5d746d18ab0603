"""Model cards: the card assembled from the store, its narrative, the cards and notices
generated (stored as evidence), and the reproductions of certifications.

Every route calls :mod:`assay.registry.cards` with the authenticated user as the
actor; who may edit the narrative or generate a card is decided there (403).
Anyone signed in may read.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from assay.api.deps import Principal, acting, current_principal, reading
from assay.api.downloads import attachment

router = APIRouter(prefix="/api", tags=["model cards"])

NAME = Path(..., min_length=1, max_length=200, description="Model name")
VERSION = Path(..., min_length=1, max_length=100, description="Version string")
_TEXT = Field(None, max_length=20000)


class RiskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=2000)
    mitigation_strategy: str = Field("", max_length=20000)


class NarrativeIn(BaseModel):
    """The whole narrative (fields left out are empty in the new revision)."""

    model_config = ConfigDict(extra="forbid")

    overview: str | None = _TEXT
    intended_use: str | None = _TEXT
    out_of_scope_uses: list[str] | None = Field(None, max_length=200)
    users: list[str] | None = Field(None, max_length=200)
    affected_people: str | None = _TEXT
    limitations: list[str] | None = Field(None, max_length=200)
    tradeoffs: list[str] | None = Field(None, max_length=200)
    ethical_considerations: list[RiskIn] | None = Field(None, max_length=200)
    caveats: list[str] | None = Field(None, max_length=200)
    recommendations: list[str] | None = Field(None, max_length=200)
    human_review: str | None = _TEXT
    contact: str | None = _TEXT
    contest: str | None = _TEXT
    licenses: list[str] | None = Field(None, max_length=200)
    references: list[str] | None = Field(None, max_length=200)
    citations: list[str] | None = Field(None, max_length=200)


class NarrativePut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fields: NarrativeIn
    expected_revision: int | None = Field(None, ge=0, le=2**31 - 1, description=(
        "Refuse (409) unless the narrative is at this revision (0: none yet)"))


class NarrativeOut(BaseModel):
    revision: int
    fields: dict[str, Any]
    digest: str
    created_by: str
    created_at: str | None


class NarrativesOut(BaseModel):
    current: NarrativeOut | None
    history: list[NarrativeOut]


class GenerateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["html", "md", "json", "pdf"] = "html"
    kind: Literal["card", "notice"] = "card"


class CardRecordOut(BaseModel):
    id: int
    kind: str
    format: str
    digest: str
    document_digest: str
    narrative_revision: int | None
    certification_id: int | None
    generated_by: str
    generated_at: str | None


class CardsOut(BaseModel):
    cards: list[CardRecordOut]
    current: int | None = Field(description="The current card's id, if one is current")
    reason: str = Field(description="Why no card is current (empty when one is)")


class ReproductionOut(BaseModel):
    id: int
    results_digest: str
    certification_id: int | None
    reproduced: bool
    compared: int
    mismatches: list[dict[str, Any]]
    record_digest: str
    created_by: str
    created_at: str | None


@router.get("/models/{name}/versions/{version}/card", response_model=dict[str, Any],
            summary="The model card assembled from the store (Model Card Toolkit v0.0.2 JSON)")
def card_json(request: Request, name: str = NAME, version: str = VERSION,
              principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    from assay.registry.cards import card_document

    with reading(request) as s:
        s.info["settings"] = request.app.state.settings
        return card_document(s, name, version)


@router.get("/models/{name}/versions/{version}/card/narrative", response_model=NarrativesOut,
            summary="The card's narrative: the latest revision and every earlier one")
def get_narrative(request: Request, name: str = NAME, version: str = VERSION,
                  principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    from assay.registry.cards import list_narratives

    with reading(request) as s:
        rows = [r.to_dict() for r in list_narratives(s, name, version)]
    return {"current": rows[-1] if rows else None, "history": rows}


@router.put("/models/{name}/versions/{version}/card/narrative", response_model=NarrativeOut,
            summary="Record a new revision of the card's narrative")
def put_narrative(body: NarrativePut, request: Request, name: str = NAME,
                  version: str = VERSION,
                  principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    from assay.registry.cards import save_narrative

    fields = body.fields.model_dump(exclude_none=True)
    with acting(request, principal) as (s, actor):
        return save_narrative(s, actor, name, version, fields,
                              expected_revision=body.expected_revision).to_dict()


@router.post("/models/{name}/versions/{version}/cards", response_model=CardRecordOut,
             status_code=201,
             summary="Generate a card or notice from the store and keep it as evidence")
def generate(body: GenerateIn, request: Request, name: str = NAME, version: str = VERSION,
             principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    from assay.registry.cards import generate_card

    with acting(request, principal) as (s, actor):
        s.info["settings"] = request.app.state.settings
        _, row = generate_card(s, actor, name, version, body.format, kind=body.kind)
        return row.to_dict()


@router.get("/models/{name}/versions/{version}/cards", response_model=CardsOut,
            summary="The cards and notices generated for a version, and the current card")
def list_generated(request: Request, name: str = NAME, version: str = VERSION,
                   principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    from assay.registry.cards import card_state, list_cards
    from assay.registry.models import get_version

    with reading(request) as s:
        rows = [r.to_dict() for r in list_cards(s, name, version)]
        state = card_state(s, get_version(s, name, version).id)
        return {"cards": rows, "current": state.current.id if state.current else None,
                "reason": state.reason}


_MEDIA = {"json": "application/json", "md": "text/markdown; charset=utf-8",
          "pdf": "application/pdf"}


@router.get("/models/{name}/versions/{version}/cards/{card_id}/download",
            summary="The stored bytes of a generated card or notice",
            responses={200: {"content": {"application/octet-stream": {}},
                             "description": "The card"}})
def download(request: Request, name: str = NAME, version: str = VERSION,
             card_id: int = Path(..., ge=1, le=2**31 - 1),
             principal: Principal = Depends(current_principal)) -> Response:
    from assay.errors import NotFoundError
    from assay.evidence import open_artifact
    from assay.registry.cards import list_cards

    with reading(request) as s:
        row = next((r for r in list_cards(s, name, version) if r.id == card_id), None)
        if row is None:
            raise NotFoundError(f"{name}@{version} has no generated card #{card_id}")
        digest, fmt, kind = row.digest, row.format, row.kind
    data = open_artifact(request.app.state.settings, digest)
    file_name = f"{name}-{version}-{kind}.{fmt}"
    if fmt == "html":  # generated by assay, but served like any stored file: sandboxed
        return attachment(data, file_name)
    return Response(data, media_type=_MEDIA[fmt],
                    headers={"Content-Disposition": f'attachment; filename="{card_id}.{fmt}"',
                             "X-Content-Type-Options": "nosniff"})


@router.get("/models/{name}/versions/{version}/reproductions",
            response_model=list[ReproductionOut],
            summary="Reproductions of the version's certifications")
def reproductions(request: Request, name: str = NAME, version: str = VERSION,
                  principal: Principal = Depends(current_principal)) -> list[dict[str, Any]]:
    from assay.registry.reproduce import list_reproductions

    with reading(request) as s:
        return [r.to_dict() for r in list_reproductions(s, name, version)]
