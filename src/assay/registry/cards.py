"""Model cards assembled from the store, the narrative people write for them, and the
record of every card generated.

A card is never retyped: :func:`card_document` reads the inventory (model,
version, lineage, owner), the latest certification's ``results.json`` (metrics
with their bootstrap intervals, overall and by group; the data digests and
sizes), the risk assessment and the open risks of the register, the policy's
monitoring plan for the tier, and, where one exists, an impact assessment. The
few fields only a person can write (intended use, out-of-scope uses, users,
limitations, ethical considerations, caveats, recommendations, contact...) are
the *narrative*: kept in revisions (:func:`save_narrative`), never edited in
place, and each generated card names the revision it used.

The document follows the Model Card Toolkit schema v0.0.2 (``model_details``,
``model_parameters``, ``quantitative_analysis``, ``considerations``); what
assay adds (risk tier, open risks, monitoring plan, certification digests,
impact) lives under ``model_details.assay``, since that schema allows no other
top-level keys. Rendering is :func:`assay.report.card.render_card`.

Every function that writes takes the acting user, checks the role, appends an
audit event and does not commit (the caller owns the transaction).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from assay.errors import AssayError, InputError
from assay.registry import roles as R
from assay.registry.card_tables import CardNarrative, ModelCardRecord, Reproduction
from assay.registry.certifications import latest_certification
from assay.registry.models import get_version
from assay.registry.policies import settings_of
from assay.registry.tables import Certification, ModelVersion, User
from assay.registry.users import require_role
from assay.store.audit import append_event
from assay.store.db import as_utc, utcnow

__all__ = [
    "CARD_FORMATS",
    "MCT_SCHEMA_VERSION",
    "NARRATIVE_EDITORS",
    "NARRATIVE_FIELDS",
    "CardState",
    "card_document",
    "card_state",
    "generate_card",
    "latest_narrative",
    "list_cards",
    "list_narratives",
    "notice_document",
    "parse_narrative",
    "save_narrative",
]

MCT_SCHEMA_VERSION = "0.0.2"
CARD_FORMATS = ("html", "md", "json", "pdf")
#: Who may write the narrative of a card.
NARRATIVE_EDITORS: tuple[str, ...] = (R.DATA_SCIENTIST, R.BUSINESS_OWNER, R.RISK_OFFICER,
                                      R.COMPLIANCE, R.ADMIN)
#: Who may generate (and so store) a card or a notice.
CARD_GENERATORS: tuple[str, ...] = (R.DATA_SCIENTIST, R.VALIDATOR, R.RISK_OFFICER,
                                    R.COMPLIANCE, R.BUSINESS_OWNER, R.ADMIN)

#: The narrative fields: name -> (kind, what it is). ``text`` is one string, ``list`` a
#: list of strings, ``risks`` a list of {name, mitigation_strategy}.
NARRATIVE_FIELDS: dict[str, tuple[str, str]] = {
    "overview": ("text", "what the model does, in a sentence or two"),
    "intended_use": ("text", "what the model is for"),
    "out_of_scope_uses": ("list", "uses the model is not meant for"),
    "users": ("list", "who uses the model's output"),
    "affected_people": ("text", "who the model's decisions affect"),
    "limitations": ("list", "known technical limits"),
    "tradeoffs": ("list", "known trade-offs"),
    "ethical_considerations": ("risks", "risks to people, each with its mitigation"),
    "caveats": ("list", "caveats for readers of the card"),
    "recommendations": ("list", "recommendations for users"),
    "human_review": ("text", "how people review the model's decisions"),
    "contact": ("text", "whom to contact, e.g. to contest a decision"),
    "contest": ("text", "how a person can contest a decision"),
    "licenses": ("list", "licence identifiers (SPDX) or licence texts"),
    "references": ("list", "links to more information (URIs)"),
    "citations": ("list", "how to cite the model"),
}


# --------------------------------------------------------------------------- narrative


def parse_narrative(text: str, source: str) -> dict[str, Any]:
    """The narrative in a YAML (or JSON) text, validated; errors name ``source:line``."""
    from assay.errors import PolicyError
    from assay.policy._yaml import load_yaml_with_lines, position_of

    try:
        doc, positions = load_yaml_with_lines(text, source)
    except PolicyError as exc:
        raise InputError(str(exc)) from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise InputError(f"{source}:1: expected a mapping of narrative fields "
                         f"({', '.join(NARRATIVE_FIELDS)})")

    def where(path: tuple[str | int, ...]) -> str:
        pos = position_of(path, positions)
        return f"{source}:{pos[0]}" if pos else source

    return validate_narrative(doc, where=where)


def validate_narrative(doc: Mapping[str, Any], *, where: Any = None) -> dict[str, Any]:
    """The narrative fields of ``doc``, checked (unknown fields, wrong types, empty text)."""
    def at(path: tuple[str | int, ...]) -> str:
        return where(path) if where else "narrative"

    out: dict[str, Any] = {}
    for key, value in doc.items():
        key = str(key)
        if key not in NARRATIVE_FIELDS:
            raise InputError(f"{at((key,))}: unknown narrative field '{key}'; expected one of "
                             f"{', '.join(NARRATIVE_FIELDS)}")
        kind, what = NARRATIVE_FIELDS[key]
        if value is None:
            continue
        if kind == "text":
            if not isinstance(value, str):
                raise InputError(f"{at((key,))}: '{key}' ({what}): expected text, got "
                                 f"{type(value).__name__}")
            if value.strip():
                out[key] = value.strip()
        elif kind == "list":
            items = [value] if isinstance(value, str) else value
            if not isinstance(items, list):
                raise InputError(f"{at((key,))}: '{key}' ({what}): expected a list of texts, "
                                 f"got {type(value).__name__}")
            clean = []
            for i, item in enumerate(items):
                if not isinstance(item, str) or not item.strip():
                    raise InputError(f"{at((key, i))}: '{key}' item {i + 1}: expected a "
                                     f"non-empty text, got {item!r}")
                clean.append(item.strip())
            out[key] = clean
        else:
            if not isinstance(value, list):
                raise InputError(f"{at((key,))}: '{key}' ({what}): expected a list of "
                                 "{name, mitigation_strategy}")
            risks = []
            for i, item in enumerate(value):
                if not isinstance(item, Mapping) or not str(item.get("name") or "").strip():
                    raise InputError(f"{at((key, i))}: '{key}' item {i + 1}: expected a "
                                     "mapping with a 'name' (and a 'mitigation_strategy')")
                extra = set(map(str, item)) - {"name", "mitigation_strategy"}
                if extra:
                    raise InputError(f"{at((key, i, sorted(extra)[0]))}: '{key}' item {i + 1}: "
                                     f"unknown key '{sorted(extra)[0]}'; expected name, "
                                     "mitigation_strategy")
                mitigation = item.get("mitigation_strategy")
                if mitigation is not None and not isinstance(mitigation, str):
                    raise InputError(f"{at((key, i, 'mitigation_strategy'))}: '{key}' item "
                                     f"{i + 1}: mitigation_strategy: expected text")
                risks.append({"name": str(item["name"]).strip(),
                              "mitigation_strategy": (mitigation or "").strip()})
            out[key] = risks
    return out


def latest_narrative(session: Session, version_id: int) -> CardNarrative | None:
    return session.scalars(select(CardNarrative)
                           .where(CardNarrative.model_version_id == version_id)
                           .order_by(CardNarrative.revision.desc()).limit(1)).first()


def list_narratives(session: Session, model_name: str, version: str) -> list[CardNarrative]:
    mv = get_version(session, model_name, version)
    return list(session.scalars(select(CardNarrative)
                                .where(CardNarrative.model_version_id == mv.id)
                                .order_by(CardNarrative.revision)))


def save_narrative(session: Session, actor: User, model_name: str, version: str,
                   fields: Mapping[str, Any], *, expected_revision: int | None = None,
                   now: datetime | None = None) -> CardNarrative:
    """Record a new revision of the narrative of a version's card (the whole narrative:
    fields left out are empty in the new revision). ``expected_revision`` guards against
    overwriting someone else's change (ConflictError when the latest differs)."""
    from assay.errors import ConflictError
    from assay.evidence import digest_bytes

    require_role(actor, *NARRATIVE_EDITORS, action="edit model card narratives")
    mv = get_version(session, model_name, version)
    clean = validate_narrative(fields)
    last = latest_narrative(session, mv.id)
    current = last.revision if last else 0
    if expected_revision is not None and expected_revision != current:
        raise ConflictError(f"the narrative of {model_name}@{version} is at revision {current}, "
                            f"not {expected_revision}: someone changed it; read it again")
    digest = digest_bytes(_canonical(clean))
    row = CardNarrative(model_version_id=mv.id, revision=current + 1, fields=clean,
                        digest=digest, created_by=actor.id, created_at=now or utcnow())
    session.add(row)
    session.flush()
    append_event(session, actor=actor, action="card.narrative",
                 subject_type="model_version", subject_id=f"{model_name}@{version}",
                 payload={"revision": row.revision, "fields": sorted(clean)},
                 evidence={"narrative": digest})
    return row


# --------------------------------------------------------------------------- assembly


def card_document(session: Session, model: str, version: str, *,
                  narrative_revision: int | None = None) -> dict[str, Any]:
    """The model card of ``model`` ``version`` as a Model Card Toolkit (v0.0.2) document,
    assembled from the store (and the latest narrative, or ``narrative_revision``)."""
    from assay.evidence import open_artifact

    mv = get_version(session, model, version)
    m = mv.model
    st = settings_of(session)
    narrative_row = _narrative_row(session, mv, narrative_revision)
    nar: dict[str, Any] = dict(narrative_row.fields) if narrative_row else {}
    cert = latest_certification(session, mv.id)
    results: dict[str, Any] = {}
    if cert is not None:
        results = json.loads(open_artifact(st, cert.results_digest))

    overview = nar.get("overview") or m.purpose or ""
    owner = m.owner
    details: dict[str, Any] = {
        "name": m.name,
        "overview": overview,
        "owners": [{"name": owner.display_name or owner.username,
                    "contact": owner.email or nar.get("contact") or owner.username}],
        "version": {"name": mv.version, "date": as_utc(mv.created_at).date().isoformat()},
        "licenses": [_license(x) for x in nar.get("licenses", [])],
        "references": [{"reference": x} for x in nar.get("references", [])],
        "citations": [{"citation": x} for x in nar.get("citations", [])],
    }
    if mv.parent is not None:
        details["version"]["diff"] = f"follows version {mv.parent.version}"
    documentation = _documentation(m, mv)
    if documentation:
        details["documentation"] = documentation

    params: dict[str, Any] = {"data": _datasets(mv, results)}
    model_info = results.get("model") or {}
    if model_info.get("kind"):
        params["model_architecture"] = str(model_info["kind"])
    roles = results.get("roles") or {}
    if roles:
        params["input_format"] = _input_format(roles)
        params["output_format"] = _output_format(roles)

    use_cases = [d for d in (nar.get("intended_use") or m.intended_use or "",) if d]
    out_of_scope = nar.get("out_of_scope_uses") or _lines(m.out_of_scope_uses)
    limitations = list(nar.get("limitations", []))
    considerations = {
        "users": [{"description": u} for u in (nar.get("users")
                                               or list(m.stakeholders or []))],
        "use_cases": [{"description": u} for u in use_cases],
        "limitations": [{"description": x} for x in limitations]
        + [{"description": f"Out of scope: {x}"} for x in out_of_scope],
        "tradeoffs": [{"description": x} for x in nar.get("tradeoffs", [])],
        "ethical_considerations": [dict(r) for r in nar.get("ethical_considerations", [])]
        + _risk_considerations(session, mv),
    }
    details["assay"] = {
        "model": {"purpose": m.purpose, "business_unit": m.business_unit,
                  "decision_type": m.decision_type, "criticality": m.criticality,
                  "deployment_status": m.deployment_status,
                  "stakeholders": list(m.stakeholders or [])},
        "intended_use": nar.get("intended_use") or m.intended_use or "",
        "out_of_scope_uses": list(out_of_scope),
        "affected_people": nar.get("affected_people", ""),
        "caveats": list(nar.get("caveats", [])),
        "recommendations": list(nar.get("recommendations", [])),
        "human_review": nar.get("human_review") or _human_review(m),
        "contact": nar.get("contact", ""),
        "contest": nar.get("contest", ""),
        "lineage": _lineage(mv),
        "certification": _certification(cert, results),
        "factors": _factors(results),
        "risk": _risk(session, m, mv),
        "monitoring": _monitoring(session, cert, results),
        "impact": _impact(session, mv),
        "narrative": ({"revision": narrative_row.revision, "digest": narrative_row.digest,
                       "by": narrative_row.author.username,
                       "at": narrative_row.to_dict()["created_at"]}
                      if narrative_row else None),
    }
    return {
        "schema_version": MCT_SCHEMA_VERSION,
        "model_details": details,
        "model_parameters": params,
        "quantitative_analysis": _quantitative(results),
        "considerations": considerations,
    }


def notice_document(card: Mapping[str, Any]) -> dict[str, Any]:
    """The plain-language notice for the people a model's decisions affect, from its card:
    short sentences on purpose, data used, limits, safeguards and how to contest."""
    d = card.get("model_details", {})
    a = d.get("assay", {})
    cons = card.get("considerations", {})
    model = a.get("model", {})
    purpose = a.get("intended_use") or d.get("overview") or model.get("purpose") or ""
    data_used: list[str] = []
    for ds in card.get("model_parameters", {}).get("data", []):
        rows = ds.get("description", "")
        data_used.append(f"{ds.get('name', 'data')}: {rows}")
    features = card.get("model_parameters", {}).get("input_format", "")
    limits = [x["description"] for x in cons.get("limitations", [])]
    safeguards: list[str] = []
    if a.get("human_review"):
        safeguards.append(a["human_review"])
    cert = a.get("certification") or {}
    if cert.get("status"):
        safeguards.append(f"The model was tested against the policy '{cert.get('policy')}' "
                          f"before use. Result: {_plain_status(cert['status'])}.")
    reasons = cert.get("adverse_reasons") or {}
    if reasons.get("features"):
        safeguards.append(
            f"If a decision goes against you, you are told its main reasons (up to "
            f"{reasons.get('k') or len(reasons['features'])}). The factors that most often "
            f"count against applicants are: {', '.join(reasons['features'])}.")
    mon = a.get("monitoring") or {}
    if mon.get("rules"):
        safeguards.append(f"The model is checked {mon.get('window', 'regularly')} while it is "
                          "in use, and people are told when it drifts.")
    for r in cons.get("ethical_considerations", []):
        if r.get("mitigation_strategy"):
            safeguards.append(r["mitigation_strategy"])
    contact = a.get("contact") or ""
    contest = a.get("contest") or ""
    how = []
    if contest:
        how.append(contest)
    if contact:
        how.append(f"Contact: {contact}.")
    if not how:
        how.append("Ask the organisation that made the decision for a review by a person.")
    return {
        "model": d.get("name", ""), "version": d.get("version", {}).get("name", ""),
        "title": f"How {d.get('name', 'this model')} is used in decisions about you",
        "purpose": purpose, "affected_people": a.get("affected_people", ""),
        "data_used": data_used, "inputs": features, "limits": limits,
        "safeguards": safeguards, "contest": how,
        "source_card": {"narrative_revision": (a.get("narrative") or {}).get("revision"),
                        "certification": cert.get("results_digest")},
    }


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class CardState:
    """Whether a version has a current card, and why not."""

    current: ModelCardRecord | None
    reason: str

    @property
    def ok(self) -> bool:
        return self.current is not None


def generate_card(session: Session, actor: User, model: str, version: str, fmt: str, *,
                  kind: str = "card", now: datetime | None = None
                  ) -> tuple[bytes, ModelCardRecord]:
    """Assemble, render and store a card (``kind="card"``) or notice (``"notice"``) as
    evidence; return its bytes and its record."""
    from assay.evidence import store_bytes
    from assay.report.card import render_card, render_notice

    require_role(actor, *CARD_GENERATORS, action="generate model cards")
    if kind not in ("card", "notice"):
        raise InputError(f"kind '{kind}': expected card or notice")
    if fmt not in CARD_FORMATS or (kind == "notice" and fmt == "json"):
        allowed = CARD_FORMATS if kind == "card" else ("html", "md", "pdf")
        raise InputError(f"{kind} format '{fmt}': expected one of {', '.join(allowed)}")
    mv = get_version(session, model, version)
    doc = card_document(session, model, version)
    data = render_card(doc, fmt) if kind == "card" else render_notice(notice_document(doc), fmt)
    st = settings_of(session)
    digest = store_bytes(st, data)
    doc_digest = store_bytes(st, _canonical(doc))
    cert = latest_certification(session, mv.id)
    narrative = latest_narrative(session, mv.id)
    row = ModelCardRecord(model_version_id=mv.id, kind=kind, format=fmt, digest=digest,
                          document_digest=doc_digest,
                          narrative_revision=narrative.revision if narrative else None,
                          certification_id=cert.id if cert else None,
                          generated_by=actor.id, generated_at=now or utcnow())
    session.add(row)
    session.flush()
    append_event(session, actor=actor, action="card.generate" if kind == "card"
                 else "card.notice", subject_type="model_version",
                 subject_id=f"{model}@{version}",
                 payload={"format": fmt, "narrative_revision": row.narrative_revision,
                          "certification_id": row.certification_id},
                 evidence={kind: digest, "card_document": doc_digest}
                 | ({"results": cert.results_digest} if cert else {}))
    return data, row


def list_cards(session: Session, model: str, version: str) -> list[ModelCardRecord]:
    mv = get_version(session, model, version)
    return list(session.scalars(select(ModelCardRecord)
                                .where(ModelCardRecord.model_version_id == mv.id)
                                .order_by(ModelCardRecord.id)))


def card_state(session: Session, version_id: int) -> CardState:
    """The version's current card: generated after its latest certification and its latest
    narrative change (the newest such card), or why there is none."""
    cards = list(session.scalars(select(ModelCardRecord)
                                 .where(ModelCardRecord.model_version_id == version_id,
                                        ModelCardRecord.kind == "card")
                                 .order_by(ModelCardRecord.id.desc())))
    if not cards:
        return CardState(None, "no model card generated for this version (assay card)")
    newest = cards[0]
    cert = latest_certification(session, version_id)
    narrative = latest_narrative(session, version_id)
    if cert is not None and newest.certification_id != cert.id:
        return CardState(None, f"the model card predates certification #{cert.id}: "
                               "generate it again (assay card)")
    if narrative is not None and newest.narrative_revision != narrative.revision:
        return CardState(None, f"the model card predates narrative revision "
                               f"{narrative.revision}: generate it again (assay card)")
    return CardState(newest, "")


def reproduction_state(session: Session, version_id: int) -> tuple[Reproduction | None, str]:
    """The latest successful reproduction of the version's latest certification, or why
    there is none."""
    cert = latest_certification(session, version_id)
    if cert is None:
        return None, "no certification to reproduce"
    row = session.scalars(select(Reproduction)
                          .where(Reproduction.results_digest == cert.results_digest)
                          .order_by(Reproduction.id.desc()).limit(1)).first()
    if row is None:
        return None, (f"certification #{cert.id} has not been reproduced "
                      "(assay reproduce RESULTS_JSON)")
    if not row.reproduced:
        return None, (f"the latest reproduction of certification #{cert.id} differs "
                      f"({len(row.mismatches)} mismatches)")
    return row, ""


# --------------------------------------------------------------------------- helpers


def _canonical(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _narrative_row(session: Session, mv: ModelVersion,
                   revision: int | None) -> CardNarrative | None:
    if revision is None:
        return latest_narrative(session, mv.id)
    from assay.errors import NotFoundError

    row = session.scalars(select(CardNarrative)
                          .where(CardNarrative.model_version_id == mv.id,
                                 CardNarrative.revision == revision)).first()
    if row is None:
        raise NotFoundError(f"{mv.model.name}@{mv.version} has no narrative revision "
                            f"{revision}")
    return row


def _license(text: str) -> dict[str, str]:
    import re

    if re.fullmatch(r"[A-Za-z0-9.+-]+", text):
        return {"identifier": text}
    return {"custom_text": text}


def _lines(text: str) -> list[str]:
    return [x.strip(" -*\t") for x in (text or "").splitlines() if x.strip(" -*\t")]


def _documentation(m: Any, mv: ModelVersion) -> str:
    parts = []
    if mv.feature_pipeline:
        parts.append(f"Feature pipeline: {mv.feature_pipeline}.")
    if mv.code_revision:
        parts.append(f"Code revision: {mv.code_revision}.")
    return " ".join(parts)


def _datasets(mv: ModelVersion, results: Mapping[str, Any]) -> list[dict[str, Any]]:
    data = results.get("data") or {}
    out = []
    for role, digest, source, part in (
            ("training", mv.training_data_digest, mv.training_data_source,
             data.get("reference")),
            ("evaluation", mv.evaluation_data_digest, mv.evaluation_data_source,
             data.get("evaluation"))):
        part = part or {}
        if not (digest or source or part):
            continue
        desc = [f"{role.capitalize()} data"]
        size = [f"{part[k]} {k}" for k in ("rows", "columns") if part.get(k) is not None]
        if size:
            desc.append(", ".join(size))
        if digest or part.get("sha256"):
            desc.append(f"sha256 {str(digest or part['sha256']).removeprefix('sha256:')}")
        ds: dict[str, Any] = {"name": part.get("name") or source or f"{role} data",
                              "description": "; ".join(desc) + "."}
        sens = (results.get("roles") or {}).get("sensitive") or []
        if sens and role == "evaluation":
            ds["sensitive"] = {"sensitive_data": list(sens)}
        out.append(ds)
    return out


def _input_format(roles: Mapping[str, Any]) -> str:
    feats = roles.get("features")
    return (f"A table with the columns {', '.join(feats)}." if feats
            else "A table with the columns of the evaluation data other than the target.")


def _output_format(roles: Mapping[str, Any]) -> str:
    if roles.get("task") == "regression":
        return "A number per row."
    if roles.get("threshold") is None or roles.get("positive_label") is None:
        return "A prediction per row."
    return (f"A score per row; at or above {roles['threshold']} the prediction is "
            f"{roles['positive_label']}.")


def _metric_entries(block: Mapping[str, Any], slice_: str | None) -> list[dict[str, Any]]:
    out = []
    for name, m in block.items():
        if not isinstance(m, Mapping) or not isinstance(m.get("value"), (int, float)):
            continue
        entry: dict[str, Any] = {"type": name, "value": float(m["value"])}
        if slice_:
            entry["slice"] = slice_
        ci = m.get("ci")
        if isinstance(ci, (list, tuple)) and len(ci) == 2 and None not in ci:
            entry["confidence_interval"] = {"lower_bound": float(ci[0]),
                                            "upper_bound": float(ci[1])}
        out.append(entry)
    return out


def _quantitative(results: Mapping[str, Any]) -> dict[str, Any]:
    metrics = results.get("metrics") or {}
    perf = _metric_entries(metrics.get("overall") or {}, None)
    for attr, groups in (metrics.get("groups") or {}).items():
        for group, g in (groups or {}).items():
            if isinstance(g, Mapping):
                perf.extend(_metric_entries(g.get("metrics") or {}, f"{attr}={group}"))
    qa: dict[str, Any] = {"performance_metrics": perf}
    settings = results.get("settings") or {}
    boot = settings.get("bootstrap") or {}
    if boot:
        rows = f" on {metrics['n']} rows" if metrics.get("n") is not None else ""
        qa["graphics"] = {"description": (
            f"Intervals: {boot.get('confidence')} bootstrap ({boot.get('replicates')} "
            f"replicates, seed {boot.get('seed')}){rows}."), "collection": []}
    return qa


def _factors(results: Mapping[str, Any]) -> dict[str, Any]:
    metrics = results.get("metrics") or {}
    out: dict[str, Any] = {}
    for attr, groups in (metrics.get("groups") or {}).items():
        out[attr] = {str(g): {"n": v.get("n"), "judged": v.get("judged")}
                     for g, v in (groups or {}).items() if isinstance(v, Mapping)}
    return out


def _certification(cert: Certification | None, results: Mapping[str, Any]) -> dict[str, Any]:
    if cert is None:
        return {}
    from assay.explain import principal_reasons  # loads pandas: only when a card is built

    checks = results.get("checks") or []
    return {"id": cert.id, "status": cert.status, "policy": cert.policy_name,
            "policy_version": cert.policy_version, "policy_digest": cert.policy_digest,
            "tier": cert.tier, "results_digest": cert.results_digest,
            "report_digest": cert.report_digest, "created_at": cert.to_dict()["created_at"],
            "summary": dict(results.get("summary") or {}),
            "model_digest": "sha256:" + str((results.get("model") or {}).get("sha256"))
            if (results.get("model") or {}).get("sha256") else None,
            "failed_checks": [{"id": c.get("id"), "title": c.get("title"),
                               "status": c.get("status")}
                              for c in checks if c.get("status") in ("fail", "error")],
            "adverse_reasons": principal_reasons(results)}


def _lineage(mv: ModelVersion) -> dict[str, Any]:
    return {"artifact_digest": mv.artifact_digest,
            "training_data_digest": mv.training_data_digest,
            "training_data_source": mv.training_data_source,
            "evaluation_data_digest": mv.evaluation_data_digest,
            "evaluation_data_source": mv.evaluation_data_source,
            "feature_pipeline": mv.feature_pipeline, "code_revision": mv.code_revision,
            "parent_version": mv.parent.version if mv.parent else None,
            "developer": mv.creator.username}


def _human_review(m: Any) -> str:
    if m.decision_type == "human_in_the_loop":
        return "A person reviews every decision the model proposes before it is final."
    return ""


def _risk(session: Session, m: Any, mv: ModelVersion) -> dict[str, Any]:
    from assay.risk.tables import Risk, RiskAssessment

    ra = session.scalars(select(RiskAssessment)
                         .where(RiskAssessment.model_version_id == mv.id)
                         .order_by(RiskAssessment.created_at.desc(), RiskAssessment.id.desc())
                         .limit(1)).first()
    # every risk not closed (open, mitigating, accepted) about the model as a whole or
    # about this version
    risks = list(session.scalars(select(Risk).where(
        Risk.model_id == m.id, Risk.status != "closed",
        (Risk.model_version_id.is_(None)) | (Risk.model_version_id == mv.id))
        .order_by(Risk.id)))
    return {"tier": m.tier,
            "assessment": ({"tier": ra.tier, "score": ra.score, "score_tier": ra.score_tier,
                            "impact_level": ra.impact_level, "digest": ra.record_digest,
                            "policy": ra.policy_name} if ra else None),
            "open_risks": [{"id": r.id, "title": r.title, "category": r.category,
                            "severity": r.severity, "status": r.status,
                            "mitigations": [x.title for x in r.mitigations]}
                           for r in risks]}


def _risk_considerations(session: Session, mv: ModelVersion) -> list[dict[str, str]]:
    out = []
    for r in _risk(session, mv.model, mv)["open_risks"]:
        out.append({"name": f"{r['title']} ({r['severity']} risk, {r['status']})",
                    "mitigation_strategy": "; ".join(r["mitigations"])})
    return out


def _monitoring(session: Session, cert: Certification | None,
                results: Mapping[str, Any]) -> dict[str, Any] | None:
    if cert is None:
        return None
    from assay.registry.policies import known_policy

    try:
        pol = known_policy(session, results.get("policy") or {})
        plan = getattr(pol.tier(cert.tier), "monitoring", None)
    except AssayError:  # the policy file is no longer known: the card says no plan
        return None
    if plan is None:
        return None
    return {"window": plan.window, "retention_days": plan.retention_days,
            "rules": [{"rule": r.key, "check": r.spec.id, "action": r.action,
                       "threshold": dict(getattr(r.spec, "threshold", None) or {})
                       if isinstance(getattr(r.spec, "threshold", None), Mapping) else
                       str(getattr(r.spec, "threshold", "") or "")}
                      for r in plan.rules]}


def _impact(session: Session, mv: ModelVersion) -> dict[str, Any] | None:
    """The version's impact assessment, where one is recorded: its revision, the intended
    outcomes and for whom, each KPI with its latest values against target and guardrail,
    and the register's entries. None when there is none (or the impact package or its
    tables are not there). ``assay.impact`` is imported when called: it reads the
    registry itself, and the card is what brings the two together."""
    import importlib

    try:
        impact = importlib.import_module("assay.impact")
    except ImportError:
        return None
    from sqlalchemy import inspect

    if not inspect(session.connection()).has_table("impact_assessments"):
        return None  # its migration has not run on this database
    model, version = mv.model.name, mv.version
    a = impact.current_assessment(session, model, version)
    if a is None:
        return None
    theory = a.get("theory") or {}
    outcomes = []
    for o in theory.get("intended_outcomes") or []:
        if isinstance(o, dict):
            whom = ", ".join(str(w) for w in o.get("for_whom") or [])
            outcomes.append(f"{o.get('outcome', '')}" + (f" (for {whom})" if whom else ""))
    kpis = []
    for k in impact.list_kpis(session, model, version):
        latest = ", ".join(
            f"{p.get('group') or 'all'} {p['value']:.4g}" + (" (guardrail breached)"
                                                             if p.get("breach") else "")
            for p in k.get("latest") or [] if p.get("value") is not None)
        bounds = "; ".join(f"{name} {k[key]:g}" for name, key in
                           (("baseline", "baseline"), ("target", "target"),
                            ("guardrail", "guardrail")) if k.get(key) is not None)
        kpis.append(f"{k['name']}{' (' + k['unit'] + ')' if k.get('unit') else ''}: "
                    f"{latest or 'no value yet'}{' [' + bounds + ']' if bounds else ''}")
    register = impact.list_register(session, model, version)
    kinds = {kind: sum(1 for e in register if e.get("kind") == kind)
             for kind in ("negative", "positive")}
    return {
        "revision": a["revision"],
        "recorded": f"{a['created_at']} by {a.get('created_by') or 'unknown'}",
        "digest": a["digest"],
        "intended outcomes": "; ".join(outcomes) or "none stated",
        "KPIs": "; ".join(kpis) or "none defined",
        "impact register": (f"{len(register)} entries ({kinds['negative']} negative, "
                            f"{kinds['positive']} positive)") if register else "empty",
    }


def _plain_status(status: str) -> str:
    return {"passed": "passed", "passed_with_warnings": "passed, with warnings",
            "blocked": "not passed"}.get(status, status)
