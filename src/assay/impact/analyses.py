"""Recorded impact numbers: a value curve, frontier, scenarios or sensitivity result kept
as evidence of a model version, and shown in the impact report.

:func:`record_analysis` stores the result (canonical JSON) and its chart (SVG, where
the kind has one) content-addressed in the evidence store, adds a row to
``impact_analyses`` (kind, who, when, the digests of the inputs, the parameters, the
result's digest) and appends an ``impact.analysis`` audit event with the digests as
evidence, in the caller's transaction. Only the editors of the impact record
(:data:`assay.impact.assessment.EDITORS`) may record.

:data:`SECTIONS` are the impact report's providers (see :mod:`assay.impact.report`):
each renders the latest recorded analysis of its kind, with its chart, when and by whom
it was computed and on which data digest, or says that none is recorded.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from assay.errors import InputError
from assay.impact.assessment import EDITORS
from assay.impact.tables import ANALYSIS_KINDS, CAUSAL_KINDS, ImpactAnalysis
from assay.registry import get_version, require_role
from assay.registry.roles import VALIDATOR
from assay.registry.tables import User, _iso
from assay.store.audit import append_event
from assay.store.db import utcnow

TITLES = {"value": "Value of decisions", "frontier": "Value-fairness frontier",
          "scenarios": "Scenarios", "sensitivity": "Sensitivity",
          "abtest": "A/B test", "did": "Difference-in-differences",
          "rdd": "Regression discontinuity", "comparison": "Model comparison",
          "mitigation": "Mitigation proposal"}
#: Who may record each kind (the editors of the impact record, and for comparisons and
#: mitigation proposals also the model validators, whose evidence they are).
RECORDERS = {"comparison": (*EDITORS, VALIDATOR), "mitigation": (*EDITORS, VALIDATOR)}
COMMANDS = {k: f"assay impact {k} ... --record MODEL VERSION" for k in ANALYSIS_KINDS}
COMMANDS.update(comparison="assay compare ... --record MODEL@VERSION",
                mitigation="assay mitigate ... --record MODEL@VERSION")


def _canonical(result: Mapping[str, Any]) -> bytes:
    try:
        return json.dumps(result, sort_keys=True, separators=(",", ":"),
                          allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise InputError(f"impact analysis: the result is not plain JSON ({exc})") from None


def _fmt(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def chart(kind: str, result: Mapping[str, Any]) -> str | None:
    """The chart (inline SVG) of an analysis result, None when the kind has none."""
    from assay.report import charts

    if kind == "did":
        if not result.get("event_study"):
            return None
        from assay.impact.causal import event_study_svg

        return event_study_svg(dict(result))
    if kind == "value":
        curve = list(result.get("curve") or [])
        step = max(1, len(curve) // 40)
        return charts.trend([(_fmt(r["threshold"]), r["value_per_decision"])
                             for r in curve[::step]],
                            title="Value per decision by threshold", ylabel="value/decision")
    if kind == "frontier":
        pts = [(_fmt(r["level"]), r["value_per_decision"] if r["feasible"] else None)
               for r in result.get("levels") or []]
        name = (result.get("settings") or {}).get("constraint", "constraint")
        return charts.trend(pts, title=f"Value per decision kept at each level of {name}",
                            ylabel="value/decision")
    if kind == "scenarios":
        base = result.get("baseline") or {}
        items = [("baseline", base.get("value_per_decision")),
                 *[(s["name"], s.get("value_per_decision"))
                   for s in result.get("scenarios") or []]]
        return charts.bars(items, title="Value per decision by scenario")
    if kind == "mitigation":
        from assay.impact.mitigation import tradeoff_svg

        return tradeoff_svg(result) if result.get("curve") else None
    if kind == "sensitivity":
        torn = result.get("tornado") or {}
        rows = [(f"{r['outcome']} = {r['assumption']}",
                 r["low"]["value_per_decision_at_baseline_threshold"],
                 r["high"]["value_per_decision_at_baseline_threshold"])
                for r in torn.get("rows") or []]
        if not rows:
            return None
        return charts.tornado(rows, torn["baseline_value_per_decision"],
                              title="Value per decision: one assumption at a time",
                              xlabel="value per decision at the baseline threshold")
    return None


def record_analysis(session: Session, actor: User, model: str, version: str, kind: str,
                    result: Mapping[str, Any], *, inputs: Mapping[str, str] | None = None,
                    parameters: Mapping[str, Any] | None = None, svg: str | None = None,
                    settings: Any = None) -> dict[str, Any]:
    """Keep ``result`` (the JSON of ``assay impact KIND --format json``) as evidence of
    ``model@version``. ``inputs`` maps each input (``data``, ``scenarios``, ``model``)
    to the sha256 digest of its bytes; ``svg`` defaults to :func:`chart` of the result.
    Returns the recorded analysis (as :func:`analysis_to_dict`)."""
    from assay.evidence import store_bytes
    from assay.workflow._registry import settings_of

    require_role(actor, *RECORDERS.get(kind, EDITORS), action="record impact analyses")
    if kind not in ANALYSIS_KINDS:
        raise InputError(f"impact analysis: unknown kind {kind!r} "
                         f"(expected one of {', '.join(ANALYSIS_KINDS)})")
    mv = get_version(session, model, version)
    cfg = settings_of(session, settings)
    data = _canonical(result)
    params = json.loads(_canonical(dict(parameters or {})))
    digest = store_bytes(cfg, data)
    if svg is None:
        svg = chart(kind, result)
    chart_digest = store_bytes(cfg, svg.encode("utf-8")) if svg else None
    row = ImpactAnalysis(model_version_id=mv.id, kind=kind,
                         inputs={str(k): str(v) for k, v in (inputs or {}).items()},
                         parameters=params, result_digest=digest, chart_digest=chart_digest,
                         created_by=actor.id, created_at=utcnow())
    session.add(row)
    session.flush()
    out = analysis_to_dict(row, actor.username)
    evidence = {f"impact_{kind}": digest}
    if chart_digest:
        evidence[f"impact_{kind}_chart"] = chart_digest
    evidence.update({f"input_{k}": v for k, v in row.inputs.items()})
    append_event(session, actor=actor, action="impact.analysis",
                 subject_type="model_version", subject_id=f"{model}@{version}",
                 payload={"id": row.id, "kind": kind, "parameters": params,
                          "inputs": row.inputs}, evidence=evidence)
    return out


def analysis_to_dict(a: ImpactAnalysis, created_by: str) -> dict[str, Any]:
    return {"id": a.id, "kind": a.kind, "inputs": dict(a.inputs or {}),
            "parameters": dict(a.parameters or {}), "result_digest": a.result_digest,
            "chart_digest": a.chart_digest, "created_by": created_by,
            "created_at": _iso(a.created_at)}


def latest_analysis(session: Session, model: str, version: str, kind: str, *,
                    settings: Any = None) -> dict[str, Any] | None:
    """The latest recorded analysis of ``kind`` for ``model@version`` with its ``result``
    and ``svg`` read back from the evidence store (checked against their digests), or
    None when none is recorded."""
    from assay.evidence import open_artifact
    from assay.workflow._registry import settings_of

    mv = get_version(session, model, version)
    a = session.scalars(select(ImpactAnalysis).where(
        ImpactAnalysis.model_version_id == mv.id, ImpactAnalysis.kind == kind)
        .order_by(ImpactAnalysis.id.desc()).limit(1)).first()
    if a is None:
        return None
    cfg = settings_of(session, settings)
    user = session.get(User, a.created_by)
    out = analysis_to_dict(a, user.username if user else "?")
    out["result"] = json.loads(open_artifact(cfg, a.result_digest))
    out["svg"] = (open_artifact(cfg, a.chart_digest).decode("utf-8")
                  if a.chart_digest else None)
    return out


def list_analyses(session: Session, model: str, version: str) -> list[dict[str, Any]]:
    """Every recorded analysis of ``model@version``, oldest first (without results)."""
    mv = get_version(session, model, version)
    rows = session.execute(select(ImpactAnalysis, User.username)
                           .join(User, User.id == ImpactAnalysis.created_by)
                           .where(ImpactAnalysis.model_version_id == mv.id)
                           .order_by(ImpactAnalysis.id))
    return [analysis_to_dict(a, name) for a, name in rows]


# --------------------------------------------------------------------------- report


def _table(kind: str, r: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    if kind == "comparison":
        rows = [["overall", m, _fmt(x.get("old")), _fmt(x.get("new")),
                 _fmt(x.get("difference")),
                 "-" if not x.get("ci") else f"[{_fmt(x['ci'][0])}, {_fmt(x['ci'][1])}]",
                 _fmt(x.get("p_value")), str(x.get("better") or "-")]
                for m, x in (r.get("overall") or {}).items()]
        return ["scope", "metric", "old", "new", "new - old", "interval", "p", "better"], rows
    if kind == "mitigation":
        if r.get("cells"):
            return (["group", "label", "rows", "weight"],
                    [[c["group"], str(c["label"]), str(c["rows"]), _fmt(c["weight"])]
                     for c in r["cells"]])
        after = (r.get("after") or {}).get("groups") or {}
        return (["group", "threshold before -> after", "selection rate", "TPR", "FPR",
                 "accuracy"],
                [[g, f"{_fmt(b['threshold'])} -> {_fmt((after.get(g) or {}).get('threshold'))}",
                  *[f"{_fmt(b[k])} -> {_fmt((after.get(g) or {}).get(k))}"
                    for k in ("selection_rate", "tpr", "fpr", "accuracy")]]
                 for g, b in ((r.get("before") or {}).get("groups") or {}).items()])
    if kind == "value":
        rows = [["overall", _fmt(r["best"].get("threshold")),
                 _fmt(r["best"].get("value_per_decision")),
                 _fmt(r["best"].get("selection_rate"))]]
        for g, row in (r.get("groups") or {}).items():
            rows.append([g, _fmt(row.get("own_best_threshold")),
                         _fmt(row.get("value_per_decision_at_best")), "-"])
        return ["group", "best threshold", "value/decision", "selection rate"], rows
    if kind == "frontier":
        return (["level", "value/decision", "price/decision", "achieved"],
                [[_fmt(x["level"]), _fmt(x.get("value_per_decision")) if x["feasible"]
                  else "infeasible", _fmt(x.get("price_per_decision")),
                  _fmt(x.get("achieved"))] for x in r.get("levels") or []])
    if kind == "scenarios":
        keys = [k for k in ("value_per_decision", "selection_rate", "true_positive_rate",
                            "demographic_parity_ratio") if k in (r.get("baseline") or {})]
        rows = [[name, *[_fmt(s.get(k)) for k in keys]]
                for name, s in [("baseline", r.get("baseline") or {}),
                                *[(s["name"], s) for s in r.get("scenarios") or []]]]
        return ["scenario", *keys], rows
    torn = r.get("tornado") or {}
    rows = [[x["outcome"], x["low"]["assumption"], x["high"]["assumption"], _fmt(x["swing"])]
            for x in torn.get("rows") or []]
    for f in (r.get("features") or {}).get("features") or []:
        rows.append([f"feature {f['feature']}", "-", "-", _fmt(f.get("remaining_share"))])
    return ["outcome / feature", "low", "high", "swing / remaining gap share"], rows


def _rows(n: Any) -> str:
    if isinstance(n, Mapping):
        return f"{sum(int(v) for v in n.values())} (" + ", ".join(
            f"{k} {v}" for k, v in n.items()) + ")"
    return _fmt(n)


def recorded_causal(session: Session, model: str, version: str) -> list[dict[str, Any]]:
    """The latest recorded causal estimate of each method (``abtest``, ``did``, ``rdd``)
    of ``model@version``: the estimate's JSON (method, estimate, se, ci, p_value, n,
    assumptions ...) with ``kind``, ``rows`` (n as text), ``svg`` (the event study of a
    DiD, else empty) and ``recorded`` (id, when, by whom, the data digest, the result's
    digest). Methods never recorded are left out."""
    out = []
    for kind in CAUSAL_KINDS:
        a = latest_analysis(session, model, version, kind)
        if a is None:
            continue
        out.append({**a["result"], "kind": kind, "title": TITLES[kind],
                    "rows": _rows(a["result"].get("n")), "svg": a["svg"] or "",
                    "recorded": {"id": a["id"], "created_at": a["created_at"],
                                 "created_by": a["created_by"],
                                 "data": a["inputs"].get("data", "unknown"),
                                 "result_digest": a["result_digest"]}})
    return out


#: Kinds whose report section is left out until one is recorded (they are optional
#: evidence, not part of every impact assessment).
OPTIONAL = ("comparison", "mitigation")


def _provider(kind: str) -> Callable[[Session, str, str], dict[str, Any]]:
    def section(session: Session, model: str, version: str) -> dict[str, Any]:
        a = latest_analysis(session, model, version, kind)
        if a is None and kind in OPTIONAL:
            return {}
        if a is None:
            return {"title": TITLES[kind],
                    "note": f"No {kind} analysis is recorded for this version "
                            f"(`{COMMANDS[kind]}` records one)."}
        data = a["inputs"].get("data", "unknown")
        params = ", ".join(f"{k}={v}" for k, v in sorted(a["parameters"].items())
                           if v not in (None, "", []))
        columns, rows = _table(kind, a["result"])
        return {"title": TITLES[kind],
                "note": f"Computed {a['created_at']} by {a['created_by']} on data {data}"
                        + (f" ({params})" if params else "")
                        + f"; result {a['result_digest']}.",
                "svg": a["svg"] or "", "columns": columns, "rows": rows}

    section.__name__ = f"{kind}_section"
    return section


#: The impact report's sections of recorded analyses, by kind, in report order.
SECTIONS: dict[str, Callable[[Session, str, str], dict[str, Any]]] = {
    k: _provider(k) for k in ("value", "frontier", "scenarios", "sensitivity", "comparison",
                              "mitigation")}
