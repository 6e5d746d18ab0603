"""Read models shared by the JSON API and the web pages.

These gather what a page shows (the inventory with each model's latest
version, certification and approval state; one model with everything about
it) from the domain packages. They decide nothing: tiers come from risk,
states from the workflow, verdicts from certification.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session


def _aware(dt: datetime | None) -> datetime | None:
    if dt is None or dt.tzinfo is not None:
        return dt
    return dt.replace(tzinfo=UTC)


def _iso(dt: datetime | None) -> str | None:
    dt = _aware(dt)
    return dt.isoformat() if dt is not None else None


def _latest_submission_states(session: Session, version_ids: list[int]) -> dict[int, str]:
    """State of the newest submission of each version (plain columns, no records)."""
    from assay.workflow.tables import Submission

    if not version_ids:
        return {}
    out: dict[int, str] = {}
    for vid, state in session.execute(
            select(Submission.model_version_id, Submission.state)
            .where(Submission.model_version_id.in_(version_ids)).order_by(Submission.id)):
        out[vid] = state  # ordered by id: the newest wins
    return out


def inventory(session: Session, *, q: str | None = None, tier: str | None = None,
              status: str | None = None, overdue: bool = False,
              now: datetime | None = None) -> list[dict[str, Any]]:
    """The registry's inventory (tier, status, owner, next review, overdue) with each
    model's purpose and the approval state of its latest version; ``q`` searches name,
    purpose, owner and business unit."""
    from assay.registry import inventory as registry_inventory
    from assay.registry.tables import Model, ModelVersion
    from assay.workflow.tables import Submission

    rows = registry_inventory(session, now=now, tier=None if tier == "none" else tier,
                              status=status, overdue_only=overdue)
    if tier == "none":
        rows = [r for r in rows if r.tier is None]
    purposes = dict(session.execute(select(Model.name, Model.purpose)).all())
    needle = (q or "").strip().lower()
    if needle:
        rows = [r for r in rows if any(needle in (x or "").lower() for x in (
            r.name, purposes.get(r.name), r.owner, r.business_unit))]
    # The state of the newest submission of each model's latest version, in one
    # query (ordered by id: the newest wins).
    newest = select(func.max(ModelVersion.id)).group_by(ModelVersion.model_id)
    states = dict(session.execute(
        select(Model.name, Submission.state)
        .join(ModelVersion, ModelVersion.model_id == Model.id)
        .join(Submission, Submission.model_version_id == ModelVersion.id)
        .where(ModelVersion.id.in_(newest)).order_by(Submission.id)).all())
    out = []
    for r in rows:
        d = r.to_dict()
        d.update(purpose=purposes.get(r.name) or "", status=r.deployment_status,
                 approval=states.get(r.name))
        out.append(d)
    return out


#: Timeline entries per page on the model page.
TIMELINE_PAGE = 50


def timeline_page(timeline: list[dict[str, Any]], page: int | None, *,
                  per_page: int = TIMELINE_PAGE) -> dict[str, Any]:
    """One page of a version's timeline (in time order). Without ``page``, the last
    page: the newest events. A page past the end shows the last one."""
    total = len(timeline)
    pages = max(1, -(-total // per_page))
    page = pages if page is None else min(max(int(page), 1), pages)
    start = (page - 1) * per_page
    return {"items": timeline[start:start + per_page], "page": page, "pages": pages,
            "total": total, "first": start + 1 if total else 0,
            "last": min(start + per_page, total)}


def count_models(session: Session) -> int:
    from assay.registry.tables import Model

    return int(session.scalar(select(func.count()).select_from(Model)) or 0)


def _latest_cert_states(session: Session, version_ids: list[int]) -> dict[int, tuple[int, str]]:
    """``(id, status)`` of the newest certification of each version (plain columns)."""
    from assay.registry.tables import Certification

    if not version_ids:
        return {}
    newest = (select(func.max(Certification.id))
              .where(Certification.model_version_id.in_(version_ids))
              .group_by(Certification.model_version_id))
    rows = session.execute(select(Certification.model_version_id, Certification.id,
                                  Certification.status).where(Certification.id.in_(newest)))
    return {vid: (cid, status) for vid, cid, status in rows}


def model_detail(session: Session, name: str, *, now: datetime | None = None) -> dict[str, Any]:
    """One model: its inventory fields and every version with certification and approval."""
    from sqlalchemy.orm import lazyload

    from assay.registry import get_model
    from assay.registry.tables import Model, ModelVersion, User

    now = now or datetime.now(UTC)
    # Four plain queries; the records' owners and creators (and their roles) are
    # not loaded, only their names.
    found = session.execute(
        select(Model, User.username).outerjoin(User, User.id == Model.owner_id)
        .where(Model.name == name).options(lazyload(Model.owner)).limit(1)).first()
    if found is None:
        get_model(session, name)  # raises the registry's "unknown model" error
        raise AssertionError("unreachable")  # pragma: no cover
    m, owner = found
    versions = session.execute(
        select(ModelVersion, User.username).outerjoin(User, User.id == ModelVersion.created_by)
        .where(ModelVersion.model_id == m.id).options(lazyload(ModelVersion.creator))
        .order_by(ModelVersion.id)).all()
    vids = [v.id for v, _ in versions]
    certs = _latest_cert_states(session, vids)
    states = _latest_submission_states(session, vids)
    review = _aware(m.next_review_at)
    return {
        "name": m.name, "purpose": m.purpose, "intended_use": m.intended_use,
        "out_of_scope_uses": m.out_of_scope_uses, "owner": owner,
        "business_unit": m.business_unit, "stakeholders": list(m.stakeholders or []),
        "decision_type": m.decision_type, "deployment_status": m.deployment_status,
        "criticality": m.criticality, "tier": m.tier, "next_review_at": _iso(review),
        "overdue": bool(review and review < now), "created_at": _iso(m.created_at),
        "versions": [{
            "version": v.version, "created_at": _iso(v.created_at),
            "created_by": creator,
            "artifact_digest": v.artifact_digest,
            "training_data_digest": v.training_data_digest,
            "training_data_source": v.training_data_source,
            "evaluation_data_digest": v.evaluation_data_digest,
            "evaluation_data_source": v.evaluation_data_source,
            "feature_pipeline": v.feature_pipeline, "code_revision": v.code_revision,
            "certification": certs[v.id][1] if v.id in certs else None,
            "certification_id": certs[v.id][0] if v.id in certs else None,
            "approval": states.get(v.id),
        } for v, creator in versions],
    }


def certification_out(session, cert, model: str, version: str,
                      results: dict | None = None) -> dict:
    """A certification record as the API returns it (and the certification page shows it)."""
    from assay.auth.service import usernames

    created_by = cert.created_by
    if isinstance(created_by, int):
        created_by = usernames(session, {created_by}).get(created_by)
    created = cert.created_at.isoformat() if cert.created_at else None
    summary = (results or {}).get("summary") or {}
    base = f"/api/models/{model}/versions/{version}/certifications/{cert.id}"
    return {"id": cert.id, "model": model, "version": version,
            "policy_name": cert.policy_name, "policy_version": cert.policy_version,
            "policy_digest": cert.policy_digest, "tier": cert.tier, "status": cert.status,
            "results_digest": cert.results_digest, "report_digest": cert.report_digest,
            "created_by": created_by, "created_at": created, "summary": summary,
            "report_url": base + "/report"}


def certification_view(settings: Any, session: Session, name: str, version: str
                       ) -> dict[str, Any] | None:
    """The latest certification of a version with its checks and charts, for the page."""
    from assay.registry import get_version, latest_certification
    from assay.registry.tables import Model, ModelVersion

    version_id = session.scalar(
        select(ModelVersion.id).join(Model, Model.id == ModelVersion.model_id)
        .where(Model.name == name, ModelVersion.version == version))
    if version_id is None:
        version_id = get_version(session, name, version).id  # raises "no such version"
    cert = latest_certification(session, version_id)
    if cert is None:
        return None
    out = certification_out(session, cert, name, version)
    try:
        checks, charts = _results_view(str(settings.evidence_dir), cert.results_digest)
    except Exception:  # evidence missing or unreadable: show the record, say so
        out.update(checks=[], charts=[], evidence_error="the results evidence cannot be read")
        return out
    out.update(checks=[dict(c) for c in checks], charts=[dict(c) for c in charts])
    return out


@lru_cache(maxsize=64)
def _results_view(evidence_dir: str, digest: str) -> tuple[tuple, tuple]:
    """Checks and charts of one results document. Evidence is content-addressed and
    immutable, so the rendering is cached by digest."""
    from assay.config import Settings
    from assay.evidence import open_artifact
    from assay.report.html import build_context, fmt_num, fmt_threshold

    home = Path(evidence_dir).parent
    results = json.loads(open_artifact(Settings(home=home, database_url=""), digest))
    ctx = build_context(results)
    checks = []
    for fam in ctx.get("families", []):
        for c in fam[2]:
            value = c.get("value")
            checks.append({"id": c["id"], "title": c["title"], "status": c["status"],
                           "value_text": fmt_num(value) if value is not None else "—",
                           "threshold_text": fmt_threshold(c.get("threshold")),
                           "message": c.get("message") or ""})
    charts = []
    metrics = ctx.get("metrics") or {}
    for attr in metrics.get("attributes") or []:
        if attr.get("chart"):
            charts.append({"title": f"Metrics by {attr['name']} (with intervals)",
                           "svg": attr["chart"]})
    if metrics.get("calibration_chart"):
        charts.append({"title": "Calibration", "svg": metrics["calibration_chart"]})
    drift = ctx.get("drift") or {}
    if drift.get("chart"):
        charts.append({"title": "Drift (PSI by feature)", "svg": drift["chart"]})
    return tuple(checks), tuple(charts)


@lru_cache(maxsize=16)
def rendered_report(evidence_dir: str, results_digest: str) -> bytes:
    """The HTML report rendered from a stored results document, for a certification
    recorded without its report. Rendering draws every chart, and the results are
    content-addressed and immutable, so the page is cached by digest: every viewer
    of the certification gets the same bytes, a new certification a new entry."""
    from assay.config import Settings
    from assay.evidence import open_artifact
    from assay.report import render_report

    settings = Settings(home=Path(evidence_dir).parent, database_url="")
    return render_report(json.loads(open_artifact(settings, results_digest))).encode()


def risk_view(session: Session, name: str) -> dict[str, Any] | None:
    """The model's latest risk assessment with heat-map cells."""
    from assay.risk.service import latest_assessment

    a = latest_assessment(session, name)
    if a is None:
        return None
    from assay.auth.service import usernames

    cats = list(a.categories or [])
    cells: dict[tuple[int, int], list[str]] = {}
    for c in cats:
        cells.setdefault((int(c["likelihood"]), int(c["impact"])), []).append(
            str(c["category"]).replace("_", " "))
    decision = a.decision or {}
    return {"tier": a.tier, "score": a.score, "created_at": _iso(a.created_at),
            "assessor": usernames(session, {a.created_by}).get(a.created_by),
            "categories": cats, "cells": cells, "reasons": decision.get("reasons") or []}
