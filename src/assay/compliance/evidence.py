"""Evidence providers: what the store holds that answers a requirement of a clause.

A provider is a function ``(ctx, arg) -> Finding`` registered for one evidence
kind with :func:`register_provider`. The providers of evidence other modules
own (model cards, reproductions, attestations, incidents, impact assessments)
are in :mod:`assay.compliance.providers`, which replaces the placeholders
below (``missing``, saying what would satisfy them) when the package is imported.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

COVERED = "covered"
PARTIAL = "partial"
MISSING = "missing"


@dataclass
class Finding:
    """What a provider found for one requirement."""

    status: str  # covered | partial | missing
    found: list[dict[str, Any]] = field(default_factory=list)  # ids and digests
    missing: list[str] = field(default_factory=list)  # what would satisfy it

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "found": self.found, "missing": self.missing}


class EvidenceContext:
    """The model version whose evidence is looked up, with lazily read store records."""

    def __init__(self, session: Session, model: str, version: str, *,
                 settings: Any | None = None) -> None:
        from assay.registry import get_version
        from assay.registry.policies import settings_of

        self.session = session
        self.model = model
        self.version = version
        self.mv = get_version(session, model, version)
        self.settings = settings_of(session, settings)

    @cached_property
    def certification(self) -> Any | None:
        from assay.registry.certifications import latest_certification

        return latest_certification(self.session, self.mv.id)

    @cached_property
    def results(self) -> dict[str, Any] | None:
        from assay.evidence import open_artifact

        cert = self.certification
        if cert is None:
            return None
        return json.loads(open_artifact(self.settings, cert.results_digest))

    @cached_property
    def submission(self) -> Any | None:
        from assay.workflow.tables import Submission

        return self.session.scalars(
            select(Submission).where(Submission.model_version_id == self.mv.id)
            .order_by(Submission.id.desc()).limit(1)).first()

    @cached_property
    def stages(self) -> dict[str, Any]:
        from assay.workflow.tables import StageState

        if self.submission is None:
            return {}
        rows = self.session.scalars(select(StageState)
                                    .where(StageState.submission_id == self.submission.id))
        return {r.stage: r for r in rows}

    @cached_property
    def documents(self) -> list[Any]:
        from assay.workflow.tables import Document, Submission

        ids = select(Submission.id).where(Submission.model_version_id == self.mv.id)
        return list(self.session.scalars(select(Document).where(Document.submission_id.in_(ids))
                                         .order_by(Document.id)))

    @cached_property
    def monitoring(self) -> Any | None:
        """``(policy, tier, plan)`` of the version, or ``None`` when it has none."""
        from assay.errors import AssayError
        from assay.monitor.service import plan_of

        try:
            return plan_of(self.session, self.mv)
        except AssayError:
            return None


Provider = Callable[[EvidenceContext, "str | None"], Finding]
_PROVIDERS: dict[str, Provider] = {}


def register_provider(kind: str, provider: Provider) -> None:
    """Use ``provider`` for requirements of ``kind`` (replaces the one registered before)."""
    _PROVIDERS[kind] = provider


def provider_for(kind: str) -> Provider:
    return _PROVIDERS[kind]


def find(ctx: EvidenceContext, kind: str, arg: str | None) -> Finding:
    """The finding for one leaf requirement."""
    return _PROVIDERS[kind](ctx, arg)


# --------------------------------------------------------------------------- providers


def _matches(check_id: str, pattern: str) -> bool:
    return check_id == pattern or (pattern.endswith(".") and check_id.startswith(pattern))


def _checks(ctx: EvidenceContext, pattern: str) -> list[dict[str, Any]]:
    res = ctx.results or {}
    return [c for c in res.get("checks") or [] if isinstance(c, dict)
            and _matches(str(c.get("id") or ""), pattern)]


def _no_certification(what: str) -> Finding:
    return Finding(MISSING, missing=[f"a certification of the version with {what}"])


def _check(ctx: EvidenceContext, arg: str | None, *, must_pass: bool) -> Finding:
    assert arg is not None
    what = f"check '{arg}'" if not arg.endswith(".") else f"checks '{arg}*'"
    if ctx.certification is None:
        return _no_certification(what)
    found = _checks(ctx, arg)
    if not found:
        return Finding(MISSING, missing=[f"{what} in the policy tier the version is certified "
                                         f"under (latest certification #{ctx.certification.id})"])
    cert = {"certification": ctx.certification.id, "results": ctx.certification.results_digest}
    refs = [{**cert, "check": c.get("name") or c["id"], "status": c.get("status")}
            for c in found]
    if not must_pass:
        return Finding(COVERED, refs)
    bad = [r for r in refs if r["status"] not in ("pass", "warn")]
    if not bad:
        return Finding(COVERED, refs)
    missing = [f"check '{r['check']}' to pass (it is '{r['status']}')" for r in bad]
    return Finding(PARTIAL if len(bad) < len(refs) else MISSING, refs, missing)


def _stage(ctx: EvidenceContext, arg: str | None) -> Finding:
    from assay.workflow.tables import STAGE_APPROVED, SignOff

    if ctx.submission is None:
        return Finding(MISSING, missing=[f"stage '{arg}' signed off (the version was never "
                                         "submitted for approval)"])
    st = ctx.stages.get(str(arg))
    if st is None:
        return Finding(MISSING, missing=[f"stage '{arg}' in the workflow of submission "
                                         f"#{ctx.submission.id} (its stages: "
                                         + ", ".join(ctx.stages) + ")"])
    signs = list(ctx.session.scalars(select(SignOff).where(
        SignOff.submission_id == st.submission_id, SignOff.stage == st.stage,
        SignOff.decision == "approve")))
    ref = {"submission": st.submission_id, "stage": st.stage, "status": st.status,
           "signoffs": len(signs)}
    if st.status == STAGE_APPROVED:
        return Finding(COVERED, [ref])
    if signs:
        return Finding(PARTIAL, [ref], [f"stage '{arg}' fully signed off (it is '{st.status}')"])
    return Finding(MISSING, [ref] if st.status != "pending" else [],
                   [f"stage '{arg}' signed off (it is '{st.status}')"])


def _document(ctx: EvidenceContext, arg: str | None) -> Finding:
    stage, _, name = str(arg).partition("/")
    docs = [d for d in ctx.documents if d.stage == stage and fnmatch.fnmatch(d.name, name)]
    if docs:
        return Finding(COVERED, [{"stage": d.stage, "document": d.name, "digest": d.digest}
                                 for d in docs])
    return Finding(MISSING, missing=[f"a document '{name}' attached to stage '{stage}'"])


def _risk_assessment(ctx: EvidenceContext, arg: str | None) -> Finding:
    from assay.risk.service import latest_assessment

    a = latest_assessment(ctx.session, ctx.model, ctx.version)
    if a is None:
        a = latest_assessment(ctx.session, ctx.model)
        if a is None:
            return Finding(MISSING, missing=["a risk assessment (assay risk assess)"])
        return Finding(PARTIAL, [{"risk_assessment": a.id, "tier": a.tier}],
                       [f"a risk assessment of version {ctx.version} (the latest is of "
                        "another version)"])
    return Finding(COVERED, [{"risk_assessment": a.id, "tier": a.tier,
                              "digest": a.record_digest}])


def _risk_register(ctx: EvidenceContext, arg: str | None) -> Finding:
    from assay.risk.service import list_risks

    risks = list_risks(ctx.session, model_name=ctx.model)
    if not risks:
        return Finding(MISSING, missing=["risks of the model in the risk register "
                                         "(assay risk register add)"])
    refs = [{"risk": r.id, "status": r.status, "mitigations": len(r.mitigations)}
            for r in risks]
    open_unmitigated = [r for r in risks if not r.mitigations and r.status not in
                        ("closed", "accepted")]
    if open_unmitigated:
        return Finding(PARTIAL, refs, [f"a mitigation (or acceptance) of risk #{r.id}"
                                       for r in open_unmitigated])
    return Finding(COVERED, refs)


def _monitoring_plan(ctx: EvidenceContext, arg: str | None) -> Finding:
    m = ctx.monitoring
    if m is None:
        return Finding(MISSING, missing=["a monitoring plan: a 'monitoring:' section with "
                                         "rules in the tier the version is certified under"])
    pol, tier, plan = m
    return Finding(COVERED, [{"policy": pol.name, "policy_sha256": pol.sha256, "tier": tier,
                              "rules": len(plan.rules), "window": plan.window}])


def _monitoring_rule(ctx: EvidenceContext, arg: str | None) -> Finding:
    m = ctx.monitoring
    if m is None:
        return Finding(MISSING, missing=[f"monitoring rule '{arg}' in a monitoring plan"])
    pol, tier, plan = m
    rules = [r for r in plan.rules
             if _matches(r.spec.id, str(arg)) or _matches(r.key, str(arg))]
    if not rules:
        return Finding(MISSING, missing=[f"monitoring rule '{arg}' in tier '{tier}' of "
                                         f"policy '{pol.name}'"])
    return Finding(COVERED, [{"policy": pol.name, "tier": tier, "rule": r.key} for r in rules])


def _reproduction(ctx: EvidenceContext, arg: str | None) -> Finding:
    if ctx.results is None:
        return _no_certification("recorded digests of model, data, policy and environment")
    res = ctx.results
    parts = {
        "model": (res.get("model") or {}).get("sha256"),
        "evaluation data": ((res.get("data") or {}).get("evaluation") or {}).get("sha256"),
        "policy": (res.get("policy") or {}).get("sha256"),
        "environment": (res.get("environment") or {}).get("packages"),
        "seed": ((res.get("settings") or {}).get("bootstrap") or {}).get("seed"),
    }
    found = [{"certification": ctx.certification.id, "part": k,
              "value": v if isinstance(v, str | int) else "recorded"}
             for k, v in parts.items() if v not in (None, "", {})]
    missing = [f"the {k} recorded in results.json" for k, v in parts.items()
               if v in (None, "", {})]
    status = COVERED if not missing else PARTIAL if found else MISSING
    return Finding(status, found, missing)


def not_built(kind: str, needs: str) -> Provider:
    """A provider for evidence assay does not keep yet: always ``missing`` with ``needs``."""

    def provider(ctx: EvidenceContext, arg: str | None) -> Finding:
        return Finding(MISSING, missing=[needs])

    provider.__name__ = f"missing_{kind}"
    return provider


register_provider("check", lambda ctx, arg: _check(ctx, arg, must_pass=True))
register_provider("check_present", lambda ctx, arg: _check(ctx, arg, must_pass=False))
register_provider("stage", _stage)
register_provider("document", _document)
register_provider("risk_assessment", _risk_assessment)
register_provider("risk_register", _risk_register)
register_provider("monitoring_plan", _monitoring_plan)
register_provider("monitoring_rule", _monitoring_rule)
register_provider("reproduction", _reproduction)
register_provider("model_card", not_built(
    "model_card", "a model card of the version (no model card provider is installed)"))
register_provider("attestation", not_built(
    "attestation", "a signed attestation of the version (no attestation provider is installed)"))
register_provider("incidents_process", not_built(
    "incidents_process", "an incident process and incident records (no incident provider is "
    "installed)"))
register_provider("impact_assessment", not_built(
    "impact_assessment", "an impact assessment of the version (no impact assessment provider "
    "is installed)"))
