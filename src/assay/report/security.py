"""Readable details of the security checks for the HTML report (``security.*``).

:func:`check_extra` turns a check's ``details`` into facts (label, value), a
table and, where a picture reads faster, a bar chart drawn by
:mod:`assay.report.charts`. Everything returned is plain text for the
template to escape, except the chart, which ``charts`` has escaped already.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from assay.report import charts


def check_extra(c: Mapping[str, Any]) -> dict[str, Any] | None:
    """Facts, a table and a chart for one check of the security family (None otherwise)."""
    fn = _VIEWS.get(str(c.get("id", "")))
    details = c.get("details")
    if fn is None or not isinstance(details, Mapping) or not details:
        return None
    try:
        return fn(details)
    except (KeyError, TypeError, ValueError, AttributeError):  # a hand-edited results.json
        return None


def _model_file(d: Mapping[str, Any]) -> dict[str, Any]:
    findings = list(d.get("findings") or [])
    imports = dict(d.get("imports") or {})
    facts = [("Format", d.get("format")), ("SHA-256", d.get("sha256")),
             ("Distinct imports", len(imports)),
             ("Outside the allow-list", len(findings)),
             ("Loaded because trusted", "yes" if d.get("trusted") else "no")]
    if d.get("allow"):
        facts.append(("Also allowed by the policy", ", ".join(map(str, d["allow"]))))
    flagged = set(findings)
    names = [*findings, *sorted(n for n in imports if n not in flagged)]
    rows = [[n, imports.get(n, ""), "outside the allow-list" if n in flagged else "allowed"]
            for n in names[:60]]
    return {"facts": facts, "head": ["Import", "Times named", ""], "rows": rows,
            "caption": "What the file would import when loaded (findings first)"}


def _evasion(d: Mapping[str, Any]) -> dict[str, Any]:
    hist = dict(d.get("features_changed_histogram") or {})
    chart = charts.bars([(f"{k} feature{'s' if k != '1' else ''}", float(v))
                         for k, v in hist.items()],
                        title="Successful attacks by number of features changed",
                        xlabel="rows", fmt="{:.0f}") if sum(hist.values()) else None
    facts = [("Rows attacked", d.get("sample_rows")), ("Seed", d.get("seed")),
             ("Decisions flipped", d.get("successes")),
             ("Budget", f"{d.get('max_features')} feature(s), {d.get('max_change')} x "
                        f"max(|value|, sd) each, {d.get('query_budget')} queries per row"),
             ("Immutable", ", ".join(map(str, d.get("immutable") or [])) or "none"),
             ("Valid ranges from", d.get("ranges_from")),
             ("Queries used", f"{d.get('queries')} (at most {d.get('queries_per_row_max')} "
                              "per row)"),
             ("Scored with", d.get("scored_by"))]
    rows = [[k, v] for k, v in dict(d.get("most_changed_features") or {}).items()]
    return {"facts": facts, "chart": chart, "head": ["Feature changed", "Successful attacks"],
            "rows": rows, "caption": "Features the successful attacks changed",
            "no_forest": True}


def _label_noise(d: Mapping[str, Any]) -> dict[str, Any]:
    per = dict(d.get("per_class") or {})
    shares = [(f"label {k}", v["flagged"] / v["rows"] if v["rows"] else None)
              for k, v in per.items()]
    top = max([s for _, s in shares if s is not None] or [0.0])
    chart = charts.bars(shares, title="Share of suspect labels per class",
                        xlabel="share of the class's rows", hi=min(1.0, top * 1.25) or 1.0,
                        fmt="{:.2%}")
    facts = [("Rows screened", f"{d.get('sample_rows')} of {d.get('training_rows')} training "
                               "rows"),
             ("Model", f"{d.get('learner')}, {d.get('folds')}-fold out-of-fold probabilities"),
             ("Seed", d.get("seed")), ("Suspect labels", d.get("flagged")),
             ("Most suspect rows", ", ".join(map(str, (d.get("top_suspects") or [])[:20]))
              + " (0-based positions in the training data)")]
    rows = [[k, v["rows"], v["flagged"], f"{v['threshold']:.3f}"] for k, v in per.items()]
    return {"facts": facts, "chart": chart,
            "head": ["Given label", "Rows", "Suspect", "Class threshold"], "rows": rows,
            "caption": "Per class: the threshold is the mean probability the model gives "
                       "the class on rows labelled with it"}


def _red_team(d: Mapping[str, Any]) -> dict[str, Any]:
    blocking = set(d.get("blocking") or [])
    rows = []
    for f in d.get("findings") or []:
        ev = f.get("evidence_digest")
        rows.append([f"#{f.get('id')}" + (" (blocks)" if f.get("id") in blocking else ""),
                     f.get("technique"), f.get("severity"), f.get("outcome"), f.get("status"),
                     f"{f.get('recorded_by')} {f.get('recorded_at')}",
                     (f"{ev[:19]}… " if ev else "") + (f.get("note") or "")])
    return {"facts": [("Fails from severity", d.get("fail_from"))] if rows else [],
            "head": ["Finding", "Technique", "Severity", "Attack", "Status", "Recorded",
                     "Evidence"], "rows": rows, "caption": "Red-team findings recorded for "
                                                           "the version"}


_VIEWS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "security.model_file": _model_file,
    "security.evasion": _evasion,
    "security.label_noise": _label_noise,
    "security.red_team": _red_team,
}
