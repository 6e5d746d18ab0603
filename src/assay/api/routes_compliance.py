"""Compliance: coverage of a framework's clauses, the documentation pack (a zip
download) and the CycloneDX ML-BOM of a model version.

Readers are the roles that read the audit trail (auditor, compliance, risk
officer, admin): the pack holds an audit excerpt. Only shipped frameworks are
named over HTTP (never a path on the server). Exporting a pack is a read (a
GET, open to the read-only auditor) that the domain records in the audit trail.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from assay.api.deps import Principal, acting, current_principal, reading, require_roles
from assay.api.downloads import attachment
from assay.errors import InputError
from assay.registry.roles import AUDIT_READERS

router = APIRouter(prefix="/api", tags=["compliance"])

NAME = Path(..., min_length=1, max_length=200, description="Model name")
VERSION = Path(..., min_length=1, max_length=100, description="Version string")
FRAMEWORK = Query("eu-ai-act", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$",
                  description="A shipped framework (see GET /api/compliance/frameworks)")


def _shipped(framework: str) -> str:
    from assay.compliance import shipped_packs

    names = shipped_packs()
    if framework not in names:
        raise InputError(f"framework '{framework}': expected one of "
                         + ", ".join(f"'{n}'" for n in names))
    return framework


@router.get("/compliance/frameworks", response_model=list[dict[str, Any]],
            summary="The shipped mapping packs (anyone signed in)")
def frameworks(principal: Principal = Depends(current_principal)) -> list[dict[str, Any]]:
    from assay.compliance import load_pack, shipped_packs

    packs = [load_pack(n) for n in shipped_packs()]
    return [{**p.to_dict(), "clauses": len(p.clauses)} for p in packs]


@router.get("/models/{name}/versions/{version}/compliance/coverage",
            response_model=dict[str, Any],
            summary="Per clause: covered, partial or missing, with the evidence "
                    "(auditor, compliance, risk officer, admin)")
def coverage_route(request: Request, name: str = NAME, version: str = VERSION,
                   framework: str = FRAMEWORK,
                   principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    from assay.compliance import coverage

    require_roles(principal, *AUDIT_READERS)
    with reading(request) as s:
        return coverage(s, name, version, _shipped(framework)).to_dict()


@router.get("/models/{name}/versions/{version}/compliance/pack",
            summary="The technical documentation pack as a zip (auditor, compliance, risk "
                    "officer, admin; audited)",
            responses={200: {"content": {"application/octet-stream": {
                "schema": {"type": "string", "format": "binary"}}},
                "description": "The pack directory as a zip archive"}})
def pack_route(request: Request, name: str = NAME, version: str = VERSION,
               framework: str = FRAMEWORK,
               principal: Principal = Depends(current_principal)) -> Response:
    from assay.compliance import pack_zip

    require_roles(principal, *AUDIT_READERS)
    fw = _shipped(framework)
    with acting(request, principal) as (s, actor):
        data, _ = pack_zip(s, actor, name, version, fw)
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", f"{name}-{version}-{fw}-pack.zip")
    return attachment(data, safe)


@router.get("/models/{name}/versions/{version}/compliance/bom",
            response_model=dict[str, Any],
            summary="CycloneDX 1.6 ML-BOM of the version, schema-validated (auditor, "
                    "compliance, risk officer, admin)")
def bom_route(request: Request, name: str = NAME, version: str = VERSION,
              principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    from assay.compliance import build_bom

    require_roles(principal, *AUDIT_READERS)
    with reading(request) as s:
        return build_bom(s, name, version)
