"""Evidence providers for the kinds whose data other domain modules own.

:mod:`assay.compliance.evidence` holds the providers of the evidence the
compliance module reads itself (checks, stages, documents, risk, monitoring);
this module registers, on import, the providers for:

- ``model_card``: *covered* when the version has a current model card (generated
  after its latest certification and latest narrative revision); *partial* when
  cards exist but the newest is stale; *missing* when none was generated.
- ``reproduction``: *covered* when the latest certification was reproduced
  successfully (``assay reproduce``, recorded); *partial* when the certification
  records what a reproduction needs (model, data, policy, environment, seed) but no
  successful reproduction is recorded, or the latest differs; *missing* without a
  certification.
- ``attestation``: *covered* when the latest certification was recorded with a
  DSSE envelope that verifies now against a trusted, non-revoked key; *partial*
  when only assay's own service-signed decisions (stage and gate decisions)
  exist, or the certification's envelope no longer verifies (revoked key);
  *missing* when the version has no attestation.
- ``incidents_process``: *covered* when the policy and tier the version is
  certified under define an ``incidents:`` section with deadlines and playbooks
  and every incident of the version is within its deadlines (no step overdue or
  done late) and, once resolved or closed, has the post-mortem its severity
  requires; *partial* when the process only comes from assay's defaults (the
  policy has no ``incidents:`` section) or some incident is overdue, late or
  lacks its post-mortem; *missing* when no incident process applies.
- ``impact_assessment``: *covered* when the version has an impact assessment with
  KPIs and entries in its impact register; *partial* when the assessment lacks
  KPIs or register entries; *missing* without an assessment.

docs/compliance.md lists the same rules.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from assay.compliance.evidence import (
    COVERED,
    MISSING,
    PARTIAL,
    EvidenceContext,
    Finding,
    _reproduction,
    register_provider,
)
from assay.errors import AssayError

__all__ = ["attestation", "impact_assessment", "incidents_process", "model_card",
           "reproduction", "version_incidents"]


def model_card(ctx: EvidenceContext, arg: str | None) -> Finding:
    from assay.registry.card_tables import ModelCardRecord
    from assay.registry.cards import card_state

    state = card_state(ctx.session, ctx.mv.id)
    if state.current is not None:
        c = state.current
        return Finding(COVERED, [{"model_card": c.id, "format": c.format, "digest": c.digest,
                                  "document_digest": c.document_digest,
                                  "certification": c.certification_id,
                                  "narrative_revision": c.narrative_revision}])
    newest = ctx.session.scalars(select(ModelCardRecord).where(
        ModelCardRecord.model_version_id == ctx.mv.id, ModelCardRecord.kind == "card")
        .order_by(ModelCardRecord.id.desc()).limit(1)).first()
    if newest is None:
        return Finding(MISSING, missing=[f"a model card of version {ctx.version}: "
                                         + state.reason])
    return Finding(PARTIAL, [{"model_card": newest.id, "digest": newest.digest,
                              "document_digest": newest.document_digest, "stale": True}],
                   [f"a current model card ({state.reason})"])


def reproduction(ctx: EvidenceContext, arg: str | None) -> Finding:
    from assay.registry.cards import reproduction_state

    recorded = _reproduction(ctx, arg)
    if ctx.certification is None:
        return recorded
    row, reason = reproduction_state(ctx.session, ctx.mv.id)
    if row is not None:
        return Finding(COVERED, [*recorded.found, {
            "reproduction": row.id, "certification": ctx.certification.id,
            "results": row.results_digest, "compared": row.compared,
            "record": row.record_digest}], recorded.missing)
    status = PARTIAL if recorded.found else MISSING
    return Finding(status, recorded.found, [f"a successful reproduction ({reason})",
                                            *recorded.missing])


def _verifies(ctx: EvidenceContext, envelope_digest: str) -> str | None:
    """``None`` when the stored envelope verifies against a trusted key now, else why not."""
    from assay.evidence import attest, open_artifact
    from assay.evidence.keys import verify_trusted

    try:
        verify_trusted(ctx.session, open_artifact(ctx.settings, envelope_digest))
    except attest.AttestationInvalid as exc:
        return f"{exc.reason}: {exc.message}"
    except AssayError as exc:
        return exc.message
    return None


def attestation(ctx: EvidenceContext, arg: str | None) -> Finding:
    from assay.evidence.keys import attestations_of

    rows = attestations_of(ctx.session, f"{ctx.model}@{ctx.version}")
    cert = ctx.certification
    found: list[dict[str, Any]] = []
    problems: list[str] = []
    if cert is not None:
        for a in rows:
            if a.kind == "certification" and a.ref == f"certification:{cert.id}":
                why = _verifies(ctx, a.envelope_digest)
                ref = {"attestation": a.id, "kind": a.kind, "ref": a.ref,
                       "envelope": a.envelope_digest, "keyid": a.keyid}
                if why is None:
                    return Finding(COVERED, [ref])
                found.append({**ref, "verifies": False})
                problems.append(f"the envelope of certification #{cert.id} to verify "
                                f"against a trusted key ({why})")
    decisions = [a for a in rows if a.kind in ("stage_decision", "gate_decision")]
    found += [{"attestation": a.id, "kind": a.kind, "ref": a.ref,
               "envelope": a.envelope_digest, "keyid": a.keyid} for a in decisions]
    needs = (f"certification #{cert.id} recorded with a DSSE envelope signed by a trusted "
             "key (assay certify --sign-key, recorded with its attestation)"
             if cert is not None else "a certification recorded with a signed attestation")
    if not found:
        return Finding(MISSING, missing=[needs])
    return Finding(PARTIAL, found, problems or [needs])


def version_incidents(ctx: EvidenceContext) -> list[Any]:
    """The incidents opened about the version, oldest first."""
    from assay.operate.incident_tables import Incident

    return list(ctx.session.scalars(select(Incident).where(
        Incident.model_version_id == ctx.mv.id).order_by(Incident.id)))


def _incident_problems(inc: Any, now: Any) -> tuple[list[str], list[str]]:
    """What keeps one incident from counting as handled: ``(deadline problems,
    post-mortem problems)``, each as what would satisfy it."""
    from assay.operate.incident_views import overdue_steps
    from assay.store.db import as_utc

    late = [f"incident #{inc.id} to {step} within its deadline (overdue since "
            f"{as_utc(getattr(inc, f'{step}_due')):%Y-%m-%d %H:%M} UTC)"
            for step in overdue_steps(inc, now)]
    for step, done in (("acknowledge", inc.acknowledged_at), ("mitigate", inc.mitigated_at),
                       ("report", inc.reported_at)):
        due = getattr(inc, f"{step}_due")
        if due is not None and done is not None and as_utc(done) > as_utc(due):
            late.append(f"incident #{inc.id}: the '{step}' step was done late "
                        f"({as_utc(done):%Y-%m-%d %H:%M} UTC, due {as_utc(due):%Y-%m-%d %H:%M})")
    postmortem = []
    if (inc.state in ("resolved", "closed") and (inc.rules or {}).get("postmortem_required")
            and not inc.postmortem_digest):
        postmortem.append(f"a post-mortem of incident #{inc.id} ({inc.severity} requires one)")
    return late, postmortem


def incidents_process(ctx: EvidenceContext, arg: str | None) -> Finding:
    from assay.operate.incidents import plan_for
    from assay.store.db import utcnow

    try:
        plan = plan_for(ctx.session, ctx.mv)
    except AssayError as exc:
        return Finding(MISSING, missing=[f"an incident process for the version ({exc.message})"])
    rules = plan.rules
    explicit = "incidents" in plan.policy.extra_sections
    found: list[dict[str, Any]] = [{
        "policy": plan.policy.name, "policy_sha256": plan.policy.sha256, "tier": plan.tier,
        "incidents_section": "policy" if explicit else "assay defaults",
        "severities_with_deadlines": sorted(rules.deadlines),
        "playbooks": sorted(rules.playbooks)}]
    missing: list[str] = []
    if not rules.deadlines or not rules.playbooks:
        return Finding(MISSING, found, [f"deadlines and playbooks in the 'incidents:' section "
                                        f"of policy '{plan.policy.name}'"])
    if not explicit:
        missing.append(f"an 'incidents:' section in policy '{plan.policy.name}' (the "
                       "process comes from assay's defaults)")
    now = utcnow()
    for inc in version_incidents(ctx):
        late, postmortem = _incident_problems(inc, now)
        found.append({"incident": inc.id, "severity": inc.severity, "state": inc.state,
                      "within_deadlines": not late, "postmortem": inc.postmortem_digest})
        missing += late + postmortem
    return Finding(PARTIAL if missing else COVERED, found, missing)


def impact_assessment(ctx: EvidenceContext, arg: str | None) -> Finding:
    from assay.impact.assessment import current_assessment, list_register
    from assay.impact.kpis import list_kpis

    a = current_assessment(ctx.session, ctx.model, ctx.version)
    if a is None:
        return Finding(MISSING, missing=[f"an impact assessment of version {ctx.version} "
                                         "(assay impact assess)"])
    kpis = list_kpis(ctx.session, ctx.model, ctx.version)
    register = list_register(ctx.session, ctx.model, ctx.version)
    found = [{"impact_assessment": a["revision"], "digest": a["digest"], "kpis": len(kpis),
              "register_entries": len(register)}]
    missing = []
    if not kpis:
        missing.append("KPIs of the impact assessment (assay impact kpi add)")
    if not register:
        missing.append("entries in the impact register (assay impact register add)")
    return Finding(PARTIAL if missing else COVERED, found, missing)


register_provider("model_card", model_card)
register_provider("reproduction", reproduction)
register_provider("attestation", attestation)
register_provider("incidents_process", incidents_process)
register_provider("impact_assessment", impact_assessment)
