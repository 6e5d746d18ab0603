"""The technical documentation pack of a model version, for one framework.

:func:`write_pack` writes a directory: ``index.html`` and ``index.json``
(each clause of the framework with the files that document it), one file or
more per section (model card, validation report, risk, impact assessment,
workflow record, monitoring, incidents, audit excerpt, coverage), and
``manifest.json`` with the SHA-256 of every file. ``manifest.intoto-statement.json``
is an in-toto Statement v1 whose subjects are those files and the manifest
(:func:`pack_statement`); ``manifest.intoto.json`` is that statement in a DSSE
envelope signed with assay's service key, also kept in the store's
``attestations`` (kind ``documentation_pack``), so that ``assay attest verify
DIR/manifest.intoto.json --subject DIR/FILE`` checks any file of the pack.

The directory is built under a temporary name beside ``out`` and renamed in
one step: a failure leaves no pack, never half of one.

Sections come from a registry (:func:`register_section`) so that modules
which bring new evidence (model cards, incidents, impact assessments) plug in;
a section whose evidence does not exist is listed as ``missing`` with what
would provide it, and no file is made up for it.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from assay.compliance.coverage import Coverage, badge, coverage, page, render_coverage_html
from assay.compliance.evidence import EvidenceContext
from assay.compliance.packs import Pack, load_pack
from assay.errors import InputError

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://assay.dev/compliance-pack/v1"
MANIFEST = "manifest.json"
STATEMENT = "manifest.intoto-statement.json"
ENVELOPE = "manifest.intoto.json"


@dataclass
class Section:
    """What one section contributed: its files (name -> bytes) or why it is missing."""

    files: dict[str, bytes] = field(default_factory=dict)
    missing: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


SectionBuilder = Callable[[EvidenceContext, Coverage], Section]
#: section name -> (title, builder), in the order of the index.
_SECTIONS: dict[str, tuple[str, SectionBuilder]] = {}
#: which clause evidence kinds each section documents (for the index).
_SECTION_KINDS: dict[str, tuple[str, ...]] = {}


def register_section(name: str, title: str, builder: SectionBuilder, *,
                     kinds: tuple[str, ...] = ()) -> None:
    """Add (or replace) a section of the pack; ``kinds`` are the evidence kinds it holds."""
    _SECTIONS[name] = (title, builder)
    _SECTION_KINDS[name] = kinds


def _json(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode()


def _page(title: str, body: str) -> bytes:
    return page(title, f"<h1>{html.escape(title)}</h1>{body}").encode()


def _table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(r.get(c, '')))}</td>" for c in cols)
                   + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# --------------------------------------------------------------------------- sections


def _model_card(ctx: EvidenceContext, cov: Coverage) -> Section:
    """The current card as it was generated (its document read back from the evidence
    store), else the card assembled from the store now, marked as not issued."""
    from assay.evidence import open_artifact
    from assay.registry.cards import card_document, card_state
    from assay.report.card import render_card

    state = card_state(ctx.session, ctx.mv.id)
    if state.current is not None:
        doc = json.loads(open_artifact(ctx.settings, state.current.document_digest))
        info = {"card": state.current.id, "current": True,
                "document_digest": state.current.document_digest}
    else:
        doc = card_document(ctx.session, ctx.model, ctx.version)
        info = {"card": None, "current": False,
                "note": "assembled from the store for this pack; no current card was "
                        f"issued ({state.reason})"}
    return Section({"model-card/card.html": render_card(doc, "html"),
                    "model-card/card.json": render_card(doc, "json")}, info=info)


def _validation_report(ctx: EvidenceContext, cov: Coverage) -> Section:
    from assay.evidence import open_artifact

    cert = ctx.certification
    if cert is None:
        return Section(missing="a certification of the version (assay certify, then record it)")
    results = open_artifact(ctx.settings, cert.results_digest)
    if cert.report_digest:
        report = open_artifact(ctx.settings, cert.report_digest)
        how = "stored"
    else:
        from assay.report import render_report

        report = render_report(json.loads(results)).encode()
        how = "rendered from results.json"
    return Section({"validation/report.html": report, "validation/results.json": results},
                   info={"certification": cert.id, "status": cert.status,
                         "results": cert.results_digest, "report": how})


def _risk(ctx: EvidenceContext, cov: Coverage) -> Section:
    from assay.risk.service import (
        assessment_record,
        latest_assessment,
        list_risks,
        risk_dict,
    )

    a = latest_assessment(ctx.session, ctx.model, ctx.version)
    risks = [risk_dict(ctx.session, r) for r in list_risks(ctx.session, model_name=ctx.model)]
    if a is None and not risks:
        return Section(missing="a risk assessment and risks in the register")
    doc = {"assessment": assessment_record(a, ctx.model, ctx.version) if a else None,
           "register": risks}
    return Section({"risk/risk.json": _json(doc)},
                   info={"assessment": a.id if a else None, "risks": len(risks)})


def _impact(ctx: EvidenceContext, cov: Coverage) -> Section:
    from assay.impact.report import gather, render

    record = gather(ctx.session, ctx.model, ctx.version)
    a = record["assessment"]
    if a is None:
        return Section(missing="an impact assessment of the version (assay impact assess)")
    return Section({"impact/assessment.json": _json(record),
                    "impact/report.html": render(record).encode()},
                   info={"revision": a["revision"], "digest": a["digest"],
                         "kpis": len(record["kpis"]), "register": len(record["register"])})


def _workflow(ctx: EvidenceContext, cov: Coverage) -> Section:
    from assay.workflow.views import status

    st = status(ctx.session, ctx.model, settings=ctx.settings)
    versions = [v for v in st.versions if v.version == ctx.version]
    if not versions or ctx.submission is None:
        return Section(missing="a workflow record (the version was never submitted)")
    from dataclasses import asdict

    v = asdict(versions[0])
    body = (f"<p>Gate: {'allowed' if v['gate']['allowed'] else 'blocked'}</p><h2>Stages</h2>"
            + _table(v["stages"], ["stage", "title", "status", "roles", "completed_at"])
            + "<h2>Timeline</h2>"
            + _table(v["timeline"], ["at", "event", "stage", "user", "role", "text"])
            + "<h2>Waivers</h2>" + _table(v["waivers"], list(v["waivers"][0])
                                           if v["waivers"] else []))
    return Section({"workflow/workflow.json": _json(v),
                    "workflow/workflow.html": _page(
                        f"Workflow record: {ctx.model} {ctx.version}", body)},
                   info={"submission": ctx.submission.id, "state": ctx.submission.state})


def _monitoring(ctx: EvidenceContext, cov: Coverage) -> Section:
    from assay.monitor.service import list_alerts

    m = ctx.monitoring
    if m is None:
        return Section(missing="a monitoring plan in the policy tier of the version")
    pol, tier, plan = m
    rules = [{"id": r.key, "rule": r.spec.id, "threshold": r.spec.threshold.to_dict()
              if r.spec.threshold else None, "severity": str(r.spec.severity),
              "action": r.action, "regulations": list(r.spec.regulations)}
             for r in plan.rules]
    alerts = list_alerts(ctx.session, model=ctx.model, version=ctx.version)[-100:]
    doc = {"policy": pol.name, "policy_sha256": pol.sha256, "tier": tier,
           "window": plan.window, "retention_days": plan.retention_days, "rules": rules,
           "recent_alerts": alerts}
    return Section({"monitoring/monitoring.json": _json(doc)},
                   info={"rules": len(rules), "alerts": len(alerts)})


def _incidents(ctx: EvidenceContext, cov: Coverage) -> Section:
    """The incident process of the version's policy and tier, and every incident of the
    version with its deadlines, state, playbook steps and post-mortem."""
    from assay.compliance.providers import version_incidents
    from assay.errors import AssayError
    from assay.operate.incident_views import incident_to_dict
    from assay.operate.incidents import plan_for

    try:
        plan = plan_for(ctx.session, ctx.mv)
    except AssayError as exc:
        return Section(missing=f"an incident process for the version ({exc.message})")
    r = plan.rules
    process = {"policy": plan.policy.name, "policy_sha256": plan.policy.sha256,
               "tier": plan.tier, "from_policy": "incidents" in plan.policy.extra_sections,
               "severities": list(r.severities),
               "deadlines": {sev: {step: str(d.of(step)) if d.of(step) else None
                                   for step in ("acknowledge", "mitigate", "report")}
                             for sev, d in r.deadlines.items()},
               "escalation": list(r.escalation), "closers": list(r.closers),
               "postmortem_required_from": r.postmortem_required_from,
               "close_requires_second_person_from": r.close_requires_second_person_from,
               "playbooks": {k: [st.to_dict() for st in v] for k, v in r.playbooks.items()}}
    incidents = [incident_to_dict(ctx.session, inc) for inc in version_incidents(ctx)]
    rows = [{"id": i["id"], "title": i["title"], "severity": i["severity"],
             "state": i["state"], "serious": "yes" if i["serious"] else "",
             "deadlines": "; ".join(
                 f"{d['step']} by {d['due']}" + (" (OVERDUE)" if d["overdue"] else "")
                 + (" (late)" if d["late"] else "") for d in i["deadlines"] if d["due"]),
             "post-mortem": i["postmortem_digest"] or ("required" if i["postmortem_required"]
                                                      else "")} for i in incidents]
    deadline_rows = [{"severity": sev, **v} for sev, v in process["deadlines"].items()]
    body = (f"<p>Policy {html.escape(plan.policy.name)}, tier {html.escape(str(plan.tier))}"
            + ("" if process["from_policy"] else " (assay's default incident rules)")
            + ".</p><h2>Deadlines after awareness</h2>"
            + _table(deadline_rows, ["severity", "acknowledge", "mitigate", "report"])
            + "<h2>Playbooks</h2><p>" + html.escape(", ".join(process["playbooks"]) or "none")
            + f"</p><h2>Incidents of version {html.escape(ctx.version)}</h2>"
            + (_table(rows, ["id", "title", "severity", "state", "serious", "deadlines",
                             "post-mortem"]) if rows else "<p>No incident was opened.</p>"))
    return Section({"incidents/incidents.json": _json({"process": process,
                                                       "incidents": incidents}),
                    "incidents/incidents.html": _page(
                        f"Incidents: {ctx.model} {ctx.version}", body)},
                   info={"incidents": len(incidents),
                         "overdue": sum(1 for i in incidents if i["overdue"])})


def audit_excerpt(session: Session, model: str, version: str) -> dict[str, Any]:
    """Every audit event about the model or this version, verified against the chain.

    ``verification`` holds the result of recomputing the whole chain and the
    head (sequence number and hash) it ends at: the anchor a reader checks the
    excerpt against (each event's ``hash`` and ``prev_hash`` link into it).
    """
    from assay.store.audit import HASHED_FIELDS, event_hash, list_events, verify_chain

    events = [e for e in list_events(session, model=model, limit=None, newest_first=False)
              if e.subject_type == "model" or e.subject_id == f"{model}@{version}"]
    records = [e.to_dict() for e in events]
    rehashed = all(event_hash(r["prev_hash"], {k: r[k] for k in HASHED_FIELDS}) == r["hash"]
                   for r in records)
    v = verify_chain(session)
    return {"model": model, "version": version, "events": records,
            "verification": {**v.to_dict(), "excerpt_events": len(records),
                             "excerpt_hashes_match": rehashed,
                             "anchor": {"seq": v.head_seq, "hash": v.head_hash}}}


def _audit(ctx: EvidenceContext, cov: Coverage) -> Section:
    ex = audit_excerpt(ctx.session, ctx.model, ctx.version)
    lines = "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in ex["events"])
    return Section({"audit/events.jsonl": lines.encode(),
                    "audit/verification.json": _json(ex["verification"])},
                   info={"events": len(ex["events"]), "chain_ok": ex["verification"]["ok"]})


def _coverage(ctx: EvidenceContext, cov: Coverage) -> Section:
    return Section({"coverage/coverage.json": _json(cov.to_dict()),
                    "coverage/coverage.html": render_coverage_html(cov).encode()},
                   info=cov.summary)


register_section("model_card", "Model card", _model_card, kinds=("model_card",))
register_section("validation_report", "Validation report", _validation_report,
                 kinds=("check", "check_present", "reproduction"))
register_section("risk", "Risk assessment and register", _risk,
                 kinds=("risk_assessment", "risk_register"))
register_section("impact_assessment", "Impact assessment", _impact,
                 kinds=("impact_assessment",))
register_section("workflow", "Workflow record", _workflow, kinds=("stage", "document"))
register_section("monitoring", "Monitoring plan and recent alerts", _monitoring,
                 kinds=("monitoring_plan", "monitoring_rule"))
register_section("incidents", "Incidents", _incidents, kinds=("incidents_process",))
register_section("audit", "Audit excerpt (verified against the chain)", _audit,
                 kinds=("attestation",))
register_section("coverage", "Coverage report", _coverage, kinds=())


# --------------------------------------------------------------------------- the pack


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pack_statement(manifest: dict[str, Any]) -> dict[str, Any]:
    """The in-toto Statement v1 over a pack's manifest: one subject per file (with its
    SHA-256) and the manifest itself; the predicate names the model, version and
    framework. Wrap it in a DSSE envelope to sign the pack."""
    subjects = [{"name": f["path"], "digest": {"sha256": f["sha256"]}}
                for f in manifest["files"]]
    subjects.append({"name": MANIFEST, "digest": {"sha256": manifest["manifest_sha256"]}})
    return {"_type": STATEMENT_TYPE, "subject": subjects, "predicateType": PREDICATE_TYPE,
            "predicate": {"model": manifest["model"], "version": manifest["version"],
                          "framework": manifest["framework"],
                          "generated_at": manifest["generated_at"]}}


@dataclass
class PackResult:
    out: Path
    manifest: dict[str, Any]
    statement: dict[str, Any]
    sections: dict[str, dict[str, Any]]
    #: the signed DSSE envelope of ``statement`` (``manifest.intoto.json``)
    envelope: dict[str, Any] | None = None


def build_pack_files(session: Session, model: str, version: str, framework: str | Pack, *,
                     settings: Any | None = None, now: datetime | None = None
                     ) -> tuple[dict[str, bytes], dict[str, dict[str, Any]], Coverage]:
    """Every file of the pack except the manifest and the statement, in memory."""
    pack = framework if isinstance(framework, Pack) else load_pack(framework)
    ctx = EvidenceContext(session, model, version, settings=settings)
    cov = coverage(session, model, version, pack, settings=settings, now=now)
    files: dict[str, bytes] = {}
    sections: dict[str, dict[str, Any]] = {}
    for name, (title, builder) in _SECTIONS.items():
        sec = builder(ctx, cov)
        files.update(sec.files)
        sections[name] = {"title": title, "status": "missing" if sec.missing else "included",
                          "files": sorted(sec.files), "missing": sec.missing,
                          "info": sec.info, "kinds": list(_SECTION_KINDS.get(name, ()))}
    index = _index(pack, cov, sections)
    files["index.json"] = _json(index)
    files["index.html"] = _index_html(index)
    return files, sections, cov


def _kinds_of(req: Any) -> set[str]:
    return {req.kind} if req.is_leaf else {k for i in req.items for k in _kinds_of(i)}


def _index(pack: Pack, cov: Coverage, sections: dict[str, dict[str, Any]]) -> dict[str, Any]:
    clauses = []
    for c in pack.clauses:
        kinds = _kinds_of(c.evidence)
        files = sorted({f for s in sections.values() if kinds & set(s["kinds"])
                        for f in s["files"]})
        clauses.append({"id": c.id, "citation": c.citation, "title": c.title,
                        "status": cov.clause(c.id).status, "files": files})
    return {"model": cov.model, "version": cov.version, "framework": pack.to_dict(),
            "generated_at": cov.generated_at, "summary": cov.summary, "clauses": clauses,
            "sections": sections}


def _index_html(index: dict[str, Any]) -> bytes:
    e = html.escape

    def links(files: list[str]) -> str:
        return "<br>".join(f"<a href='{e(f)}'>{e(f)}</a>" for f in files)

    rows = "".join(
        f"<tr><td>{e(c['citation'])}</td><td>{e(c['title'])}</td><td>{badge(c['status'])}</td>"
        f"<td>{links(c['files'])}</td></tr>" for c in index["clauses"])
    secs = "".join(
        f"<li>{badge(s['status'])} <b>{e(s['title'])}</b>: "
        + (", ".join(f"<a href='{e(f)}'>{e(f)}</a>" for f in s["files"])
           if s["status"] == "included" else e(s["missing"] or "")) + "</li>"
        for s in index["sections"].values())
    fw = index["framework"]
    sm = index["summary"]
    body = (f"<p>{e(fw['title'])} pack version {e(fw['version'])}; generated "
            f"{e(index['generated_at'])}. {sm['covered']} covered, {sm['partial']} partial, "
            f"{sm['missing']} missing of {sm['total']} clauses. Digests of every file are in "
            f"<a href='{MANIFEST}'>{MANIFEST}</a>.</p><h2>Sections</h2><ul>{secs}</ul>"
            f"<h2>Clauses</h2><table><thead><tr><th>Clause</th><th>Title</th><th>Status</th>"
            f"<th>Files</th></tr></thead><tbody>{rows}</tbody></table>")
    return _page(f"Technical documentation: {index['model']} {index['version']}", body)


def _sign(session: Session, settings: Any | None, statement: dict[str, Any], model: str,
          version: str, manifest_sha256: str) -> dict[str, Any]:
    """The pack's statement signed with the service key (the same signer as the workflow's
    stage decisions), stored and linked to the version in ``attestations``."""
    from assay.evidence import open_artifact
    from assay.evidence.keys import sign_and_store
    from assay.registry.policies import settings_of

    st = settings_of(session, settings)
    row = sign_and_store(session, st, statement, kind="documentation_pack",
                         subject_type="model_version", subject_id=f"{model}@{version}",
                         ref=f"manifest:sha256:{manifest_sha256}")
    return {"row": row, "envelope": json.loads(open_artifact(st, row.envelope_digest))}


def write_pack(session: Session, actor: Any, model: str, version: str,
               framework: str | Pack, out: str | os.PathLike[str], *,
               settings: Any | None = None, now: datetime | None = None) -> PackResult:
    """Write the documentation pack of ``model`` ``version`` to the new directory ``out``,
    its manifest's statement signed (``manifest.intoto.json``).

    ``actor`` must be allowed to read the audit trail (auditor, compliance, risk
    officer, admin); the export is recorded in the audit trail. ``out`` must
    not exist; the pack is built in a temporary directory beside it and renamed.
    """
    from assay.registry import roles as R
    from assay.registry.users import require_role
    from assay.store.audit import append_event

    require_role(actor, *R.AUDIT_READERS, action="export documentation packs")
    dest = Path(out)
    if dest.exists():
        raise InputError(f"{dest}: already exists (give a new directory for the pack)")
    if not dest.parent.is_dir():
        raise InputError(f"{dest.parent}: no such directory")
    files, sections, cov = build_pack_files(session, model, version, framework,
                                            settings=settings, now=now)
    listing = [{"path": p, "sha256": _sha256(b), "size": len(b)} for p, b in sorted(files.items())]
    manifest = {"model": cov.model, "version": cov.version,
                "framework": cov.framework["framework"],
                "framework_version": cov.framework["version"],
                "framework_sha256": cov.framework["sha256"],
                "generated_at": cov.generated_at, "files": listing}
    manifest_bytes = _json(manifest)
    statement = pack_statement({**manifest, "manifest_sha256": _sha256(manifest_bytes)})
    files[MANIFEST] = manifest_bytes
    files[STATEMENT] = _json(statement)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    try:
        att = _sign(session, settings, statement, cov.model, cov.version,
                    _sha256(manifest_bytes))
        files[ENVELOPE] = _json(att["envelope"])
        for rel, data in files.items():
            p = tmp / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        os.chmod(tmp, 0o755)
        # recorded before the rename: if the event cannot be written there is no pack
        append_event(session, actor=actor, action="compliance.pack_export",
                     subject_type="model_version", subject_id=f"{cov.model}@{cov.version}",
                     payload={"framework": cov.framework["framework"],
                              "framework_version": cov.framework["version"],
                              "summary": cov.summary, "files": len(files)},
                     evidence={"manifest": "sha256:" + _sha256(manifest_bytes),
                               "attestation": att["row"].envelope_digest})
        session.flush()
        os.rename(tmp, dest)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise InputError(f"{dest}: cannot write the pack ({exc.strerror or exc}); nothing "
                         "was written") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return PackResult(dest, manifest, statement, sections, att["envelope"])


def pack_zip(session: Session, actor: Any, model: str, version: str,
             framework: str | Pack, *, settings: Any | None = None) -> tuple[bytes, PackResult]:
    """The documentation pack as the bytes of a zip archive (for downloads); the export
    is checked and audited as by :func:`write_pack`."""
    import io
    import zipfile

    with tempfile.TemporaryDirectory(prefix="assay-pack-") as tmp:
        res = write_pack(session, actor, model, version, framework, Path(tmp) / "pack",
                         settings=settings)
        buf = io.BytesIO()
        root = f"{res.manifest['model']}-{res.manifest['version']}-{res.manifest['framework']}"
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for p in sorted(res.out.rglob("*")):
                if p.is_file():
                    zf.write(p, f"{root}/{p.relative_to(res.out).as_posix()}")
    return buf.getvalue(), res
