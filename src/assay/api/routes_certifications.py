"""Certifications: upload results (and the report) of a run, run one on stored data, read them;
register the custom policies they may be recorded under.

Uploading is how CI records evidence: ``assay certify`` writes
``results.json`` and ``report.html``; the pipeline posts both and the store
keeps them content-addressed, linked to the model version, with an audit
event naming the authenticated uploader. The results are verified against
the policy they name (shipped, or registered with ``POST /api/policies``)
before anything is stored.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path as FilePath
from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Path, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from assay.api.deps import (
    POLICY_NAME,
    Principal,
    acting,
    current_principal,
    reading,
    require_roles,
)
from assay.api.views import certification_out, rendered_report
from assay.errors import InputError, NotFoundError

router = APIRouter(prefix="/api", tags=["certifications"])

NAME = Path(..., min_length=1, max_length=200, description="Model name")
VERSION = Path(..., min_length=1, max_length=100, description="Version string")
MAX_RESULTS_BYTES = 50 * 1024 * 1024
MAX_REPORT_BYTES = 100 * 1024 * 1024


class CertificationOut(BaseModel):
    id: int
    model: str
    version: str
    policy_name: str
    policy_version: str | None
    policy_digest: str | None
    tier: str | None
    status: str
    results_digest: str
    report_digest: str | None
    created_by: str | None
    created_at: str | None
    summary: dict[str, Any] = {}
    report_url: str | None = None


class RunIn(BaseModel):
    """Certify the version on the data and model stored with it (by digest)."""

    model_config = ConfigDict(extra="forbid")

    policy: str = Field(..., min_length=1, max_length=100, pattern=POLICY_NAME)
    tier: str = Field(..., min_length=1, max_length=50)
    target: str = Field(..., min_length=1, max_length=200)
    prediction: str | None = Field(None, max_length=200)
    score: str | None = Field(None, max_length=200)
    sensitive: list[str] = Field(default_factory=list, max_length=20)
    features: list[str] | None = Field(None, max_length=2000)
    positive_label: int | str = 1
    trust_model_file: bool = Field(
        False, description="Load the stored model file even if its scan names code outside "
                           "the allow-list (a certifier who also holds the security or admin "
                           "role; the finding is still reported by security.model_file).")
    task: Literal["classification", "multiclass", "regression"] = Field(
        "classification", description="'classification' (binary; a target with more than two "
        "classes is certified as multiclass), 'multiclass' or 'regression'")
    class_scores: dict[str, str] | None = Field(
        None, max_length=200, description="multiclass: class -> column of its probability")


@router.post("/models/{name}/versions/{version}/certifications/run",
             response_model=CertificationOut, status_code=201,
             summary="Certify the version on its stored evaluation data (and model) and record it")
def run(body: RunIn, request: Request, name: str = NAME, version: str = VERSION,
        principal: Principal = Depends(current_principal)) -> dict:
    """Runs ``certify`` on the evidence the version points at: its evaluation data,
    its training data as the drift reference, and its model artifact when no
    prediction column is named. Model files run code when loaded: only
    artifacts registered with the version are ever loaded."""
    from assay.certification import certify
    from assay.registry import get_version, record_certification
    from assay.registry.roles import CERTIFIERS

    require_roles(principal, *CERTIFIERS)
    if body.trust_model_file:  # loading a flagged model file runs its code on the server
        from assay.registry.roles import ADMIN, SECURITY

        require_roles(principal, SECURITY, ADMIN)
    settings = request.app.state.settings
    with reading(request) as s:
        mv = get_version(s, name, version)
        digests = {"evaluation": mv.evaluation_data_digest,
                   "reference": mv.training_data_digest, "model": mv.artifact_digest}
        from assay.registry.redteam import findings_for

        red_team = findings_for(s, name, version)
    if not digests["evaluation"]:
        raise InputError(f"model '{name}' version '{version}' has no stored evaluation data "
                         "(register the version with evaluation_data_digest)")
    if not body.prediction and not body.score and not body.class_scores \
            and not digests["model"]:
        raise InputError("prediction/score: name the prediction or score column, or register "
                         "the version's model artifact")
    with tempfile.TemporaryDirectory(prefix="assay-run-") as tmp:
        data = _materialise(settings, digests["evaluation"], FilePath(tmp), "evaluation")
        reference = (_materialise(settings, digests["reference"], FilePath(tmp), "reference")
                     if digests["reference"] else None)
        model = None
        if digests["model"] and not body.prediction:
            model = _materialise(settings, digests["model"], FilePath(tmp), "model")
        cert = certify(data=data, policy=body.policy, tier=body.tier, target=body.target,
                       model=model, reference=reference, prediction=body.prediction,
                       score=body.score, sensitive=body.sensitive, features=body.features,
                       positive_label=body.positive_label, task=body.task,
                       class_scores=body.class_scores,
                       trust_model_file=body.trust_model_file, red_team=red_team)
        written = cert.write(FilePath(tmp) / "out")
        results_bytes = written["results.json"].read_bytes()
        report = written.get("report.html")
        report_bytes = report.read_bytes() if report is not None else None
    with acting(request, principal) as (s, actor):
        row = record_certification(s, actor, name, version, None, results_bytes,
                                   report_bytes, settings=settings)
        return certification_out(s, row, name, version, json.loads(results_bytes))


def _materialise(settings, digest: str, folder: FilePath, stem: str) -> FilePath:
    """Write a stored artifact to a file whose suffix says its format."""
    from assay.evidence import open_artifact

    data = open_artifact(settings, digest)
    if stem == "model":
        suffix = ".joblib"
    elif data[:4] == b"PAR1":
        suffix = ".parquet"
    elif data[:2] == b"\x1f\x8b":
        suffix = ".csv.gz"
    else:
        suffix = ".csv"
    path = folder / f"{stem}{suffix}"
    path.write_bytes(data)
    return path


def load_results(settings, cert) -> dict:
    from assay.evidence import open_artifact

    return json.loads(open_artifact(settings, cert.results_digest))


def _parse_results(data: bytes) -> dict:
    if len(data) > MAX_RESULTS_BYTES:
        raise InputError(f"results: larger than {MAX_RESULTS_BYTES // 2**20} MiB")
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"results: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise InputError("results: expected a JSON object (results.json of assay certify)")
    for key in ("status", "policy", "checks"):
        if key not in doc:
            raise InputError(f"results: missing '{key}' (expected results.json of assay certify)")
    return doc


class PolicyOut(BaseModel):
    name: str
    version: str
    digest: str
    source: str
    shipped: bool = False
    registered_by: str | None = None
    registered_at: str | None = None


@router.post("/policies", response_model=PolicyOut, status_code=201,
             summary="Register a custom policy file, so certifications under it can be recorded")
def register_policy(request: Request,
                    file: UploadFile = File(..., description="The policy YAML file"),
                    principal: Principal = Depends(current_principal)) -> dict:
    """Validates the policy, keeps its bytes content-addressed in the evidence store and
    records who registered it. Registering the same file again returns the existing record
    (status 201 all the same); another file under a known name and version is a conflict."""
    from assay.registry import register_policy as registry_register_policy
    from assay.registry.policies import MAX_POLICY_BYTES, POLICY_REGISTRARS

    require_roles(principal, *POLICY_REGISTRARS)
    data = file.file.read(MAX_POLICY_BYTES + 1)
    with acting(request, principal) as (s, actor):
        row = registry_register_policy(s, actor, data, source=file.filename or "policy.yaml",
                                       settings=request.app.state.settings)
        return row.to_dict()


@router.get("/policies", response_model=list[PolicyOut],
            summary="The policies certifications may be recorded under: shipped and registered")
def list_policies(request: Request, principal: Principal = Depends(current_principal)
                  ) -> list[dict]:
    from assay.registry import list_registered_policies
    from assay.registry.policies import shipped_policy_records

    with reading(request) as s:
        registered = [r.to_dict() for r in list_registered_policies(s)]
    return shipped_policy_records() + registered


@router.post("/models/{name}/versions/{version}/certifications", response_model=CertificationOut,
             status_code=201, summary="Upload results.json (and report.html) of a run")
def upload(request: Request, name: str = NAME, version: str = VERSION,
           results: UploadFile = File(..., description="results.json written by assay certify"),
           report: UploadFile | None = File(None, description="report.html (optional)"),
           attestation: UploadFile | None = File(
               None, description="signed certification (DSSE envelope, results.intoto.json), "
                                 "verified against the trusted keys (optional)"),
           principal: Principal = Depends(current_principal)) -> dict:
    from assay.registry import record_certification

    results_bytes = results.file.read(MAX_RESULTS_BYTES + 1)
    doc = _parse_results(results_bytes)
    report_bytes = report.file.read(MAX_REPORT_BYTES + 1) if report is not None else None
    if report_bytes is not None and len(report_bytes) > MAX_REPORT_BYTES:
        raise InputError(f"report: larger than {MAX_REPORT_BYTES // 2**20} MiB")
    envelope = attestation.file.read(MAX_RESULTS_BYTES + 1) if attestation is not None else None
    if envelope is not None and len(envelope) > MAX_RESULTS_BYTES:
        raise InputError(f"attestation: larger than {MAX_RESULTS_BYTES // 2**20} MiB")
    with acting(request, principal) as (s, actor):
        cert = record_certification(s, actor, name, version, doc, results_bytes,
                                    report_bytes or None, settings=request.app.state.settings,
                                    attestation=envelope)
        return certification_out(s, cert, name, version, doc)


@router.get("/models/{name}/versions/{version}/certifications",
            response_model=list[CertificationOut], summary="Certifications of a version")
def list_certifications(request: Request, name: str = NAME, version: str = VERSION,
                        principal: Principal = Depends(current_principal)) -> list[dict]:
    from sqlalchemy import select

    from assay.registry import get_version
    from assay.registry.tables import Certification

    with reading(request) as s:
        mv = get_version(s, name, version)
        rows = s.scalars(select(Certification).where(Certification.model_version_id == mv.id)
                         .order_by(Certification.id.desc()))
        return [certification_out(s, c, name, version) for c in rows]


def _certification(s, name: str, version: str, cert_id: int):
    from assay.registry import get_version
    from assay.registry.tables import Certification

    mv = get_version(s, name, version)
    cert = s.get(Certification, cert_id)
    if cert is None or cert.model_version_id != mv.id:
        raise NotFoundError(f"certification {cert_id} of {name} {version}: no such record")
    return cert


@router.get("/models/{name}/versions/{version}/certifications/{cert_id}",
            response_model=dict[str, Any], summary="The stored results.json of a certification")
def results_json(request: Request, name: str = NAME, version: str = VERSION,
                 cert_id: int = Path(..., ge=1, le=2**31 - 1),
                 principal: Principal = Depends(current_principal)) -> dict:
    with reading(request) as s:
        cert = _certification(s, name, version, cert_id)
        return load_results(request.app.state.settings, cert)


# An uploaded report is shown, but sandboxed: no same-origin, no script, no navigation
# (a <meta http-equiv="refresh"> in it goes nowhere).
REPORT_CSP = ("sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
              "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


@router.get("/models/{name}/versions/{version}/certifications/{cert_id}/report",
            summary="The full HTML validation report",
            responses={200: {"content": {"text/html": {"schema": {"type": "string"}}},
                             "description": "The report page"}})
def report_html(request: Request, name: str = NAME, version: str = VERSION,
                cert_id: int = Path(..., ge=1, le=2**31 - 1),
                principal: Principal = Depends(current_principal)) -> Response:
    from assay.evidence import open_artifact

    with reading(request) as s:
        cert = _certification(s, name, version, cert_id)
        digest, results_digest = cert.report_digest, cert.results_digest
    settings = request.app.state.settings
    if digest:
        html = open_artifact(settings, digest)
    else:
        html = rendered_report(str(settings.evidence_dir), results_digest)
    return Response(html, media_type="text/html; charset=utf-8",
                    headers={"Content-Security-Policy": REPORT_CSP})
