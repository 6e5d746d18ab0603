"""CycloneDX 1.6 ML-BOM of a model version.

The BOM is built with ``cyclonedx-python-lib``: a ``machine-learning-model``
component for the version (SHA-256 of its artefact), ``data`` components for
its evaluation, reference and training data sets (with their digests), and
``library`` components with package URLs for the software its certification
ran on (``environment.packages`` of results.json). The library has no model
card type yet, so the ``modelCard`` of the model component (model
parameters, the certification's metrics as quantitative analysis, the
considerations the inventory records) is added to the serialised JSON; the
result is validated against the official CycloneDX 1.6 JSON schema that the
library ships (:func:`validate_bom`), and an invalid BOM is never returned.
"""

from __future__ import annotations

import json
import math
from typing import Any

from sqlalchemy.orm import Session

from assay.compliance.evidence import EvidenceContext
from assay.errors import AssayError

_DIGEST = "sha256:"


class BomError(AssayError):
    """The BOM did not validate against the CycloneDX schema."""


def _hex(digest: str | None) -> str | None:
    if not digest or not str(digest).startswith(_DIGEST):
        return None
    return str(digest)[len(_DIGEST):]


def _prefixed(digest: Any) -> str | None:
    if not digest:
        return None
    return _DIGEST + str(digest).removeprefix(_DIGEST)


def _num(x: Any) -> str | None:
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        return None
    return f"{x:.6g}"


def _model_card(ctx: EvidenceContext, dataset_refs: list[str]) -> dict[str, Any]:
    res = ctx.results or {}
    roles = res.get("roles") or {}
    params: dict[str, Any] = {}
    if roles.get("task"):
        params["task"] = str(roles["task"])
    if ctx.mv.feature_pipeline:
        params["modelArchitecture"] = ctx.mv.feature_pipeline[:500]
    kind = (res.get("model") or {}).get("kind")
    if kind:
        params["architectureFamily"] = str(kind)
    if dataset_refs:
        params["datasets"] = [{"ref": r} for r in dataset_refs]
    features = roles.get("features")
    if features:
        params["inputs"] = [{"format": f"tabular: {len(features)} features"}]
    if roles.get("score") or roles.get("prediction") or kind:
        params["outputs"] = [{"format": "score" if roles.get("score") else "prediction"}]
    metrics = []
    for c in res.get("checks") or []:
        for m in c.get("measurements") or []:
            value = _num(m.get("value"))
            if value is None:
                continue
            pm: dict[str, Any] = {"type": str(c.get("id")), "value": value,
                                  "slice": str(m.get("label") or "overall")}
            ci = m.get("ci")
            if ci and _num(ci[0]) is not None and _num(ci[1]) is not None:
                pm["confidenceInterval"] = {"lowerBound": _num(ci[0]),
                                            "upperBound": _num(ci[1])}
            metrics.append(pm)
    card: dict[str, Any] = {}
    if params:
        card["modelParameters"] = params
    if metrics:
        card["quantitativeAnalysis"] = {"performanceMetrics": metrics}
    model = ctx.mv.model
    considerations: dict[str, Any] = {}
    if model.intended_use:
        considerations["useCases"] = [model.intended_use]
    if model.out_of_scope_uses:
        considerations["technicalLimitations"] = [f"Out of scope: {model.out_of_scope_uses}"]
    if model.stakeholders:
        considerations["users"] = [str(s) for s in model.stakeholders]
    fair = [c for c in res.get("checks") or [] if str(c.get("id", "")).startswith("fairness.")]
    if fair:
        considerations["fairnessAssessments"] = [
            {"groupAtRisk": ", ".join(roles.get("sensitive") or []) or "protected groups",
             "harms": f"{c.get('id')}: {c.get('status')}"} for c in fair]
    if considerations:
        card["considerations"] = considerations
    return card


def build_bom(session: Session, model: str, version: str, *,
              settings: Any | None = None) -> dict[str, Any]:
    """The ML-BOM of ``model`` ``version`` as a CycloneDX 1.6 JSON document (validated)."""
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output import make_outputter
    from cyclonedx.schema import OutputFormat, SchemaVersion
    from packageurl import PackageURL

    ctx = EvidenceContext(session, model, version, settings=settings)
    mv = ctx.mv
    res = ctx.results or {}

    def hashes(digest: str | None) -> list[Any]:
        h = _hex(digest)
        return [HashType(alg=HashAlgorithm.SHA_256, content=h)] if h else []

    model_ref = f"model:{mv.model.name}@{mv.version}"
    props = [Property(name="assay:model:tier", value=str(mv.model.tier or "")),
             Property(name="assay:model:decision_type", value=mv.model.decision_type)]
    if ctx.certification is not None:
        props += [Property(name="assay:certification:id", value=str(ctx.certification.id)),
                  Property(name="assay:certification:status", value=ctx.certification.status),
                  Property(name="assay:certification:results",
                           value=ctx.certification.results_digest)]
    if mv.code_revision:
        props.append(Property(name="assay:code_revision", value=mv.code_revision))
    ml = Component(name=mv.model.name, version=mv.version,
                   type=ComponentType.MACHINE_LEARNING_MODEL, bom_ref=model_ref,
                   description=mv.model.purpose or None,
                   hashes=hashes(mv.artifact_digest), properties=props)
    by_digest: dict[str, list[str]] = {}  # digest -> roles, in order
    sources: dict[str, str | None] = {}

    def add_data(role: str, digest: str | None, source: str | None) -> None:
        h = _hex(digest)
        if h:
            by_digest.setdefault(h, []).append(role)
            sources[h] = sources.get(h) or source or None

    data = res.get("data") or {}
    evaluation = (data.get("evaluation") or {}).get("sha256")
    add_data("evaluation", mv.evaluation_data_digest or _prefixed(evaluation),
             mv.evaluation_data_source)
    add_data("reference", _prefixed((data.get("reference") or {}).get("sha256")), None)
    add_data("training", mv.training_data_digest, mv.training_data_source)
    data_sets = [Component(
        name=f"{mv.model.name}-{roles[0]}-data", version=mv.version, type=ComponentType.DATA,
        bom_ref=f"data:{h[:16]}", description=sources[h], hashes=hashes(_DIGEST + h),
        properties=[Property(name="assay:data:role", value=r) for r in roles])
        for h, roles in by_digest.items()]

    libraries = []
    for name, ver in sorted(((res.get("environment") or {}).get("packages") or {}).items()):
        if not ver:
            continue
        purl = PackageURL(type="pypi", name=name.lower(), version=str(ver))
        libraries.append(Component(name=name, version=str(ver), type=ComponentType.LIBRARY,
                                   purl=purl, bom_ref=str(purl)))
    bom = Bom()
    bom.metadata.component = ml
    for c in [*data_sets, *libraries]:
        bom.components.add(c)
    bom.register_dependency(ml, [*data_sets, *libraries])
    text = make_outputter(bom, OutputFormat.JSON, SchemaVersion.V1_6).output_as_string()
    doc = json.loads(text)
    card = _model_card(ctx, [c.bom_ref.value for c in data_sets])
    if card:
        doc["metadata"]["component"]["modelCard"] = card
    error = validate_bom(doc)
    if error:
        raise BomError(f"the ML-BOM of {mv.model.name} {mv.version} does not validate against "
                       f"CycloneDX 1.6: {error}")
    return doc


def validate_bom(doc: dict[str, Any]) -> str | None:
    """``None`` when ``doc`` validates against the official CycloneDX 1.6 JSON schema
    (strict), else the first error."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    err = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(doc))
    return None if err is None else str(err)
