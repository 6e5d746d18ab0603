"""The HTML validation report: one self-contained page rendered from ``results.json``.

:func:`render_report` takes the dictionary that ``Certification.to_dict()``
returns (schema in ``docs/architecture.md``) and returns a complete HTML
document: inline CSS, charts as inline SVG, no script and no network access,
so it opens offline and can be archived or printed as it is. Every optional
block (model, metrics, drift, reference data) may be missing; the report then
says what is missing instead of failing. All text that comes from the user
(file names, column names, group labels, policy text) is escaped by Jinja2.
"""

from __future__ import annotations

import contextlib
import math
import shlex
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import (
    BytecodeCache,
    ChainableUndefined,
    Environment,
    FileSystemBytecodeCache,
    PackageLoader,
    select_autoescape,
)

from assay.errors import InputError
from assay.report import charts
from assay.report.explain_charts import explain_charts
from assay.report.novelty_chart import novelty_histogram
from assay.report.verdict import explain_verdict

FAMILY_ORDER = ("integrity", "performance", "calibration", "fairness", "drift", "robustness",
                "privacy", "explain", "explainability")
FAMILY_TITLES = {
    "integrity": "Data integrity",
    "performance": "Performance",
    "calibration": "Calibration",
    "fairness": "Fairness",
    "drift": "Drift and stability",
    "robustness": "Robustness",
    "privacy": "Privacy",
    "explainability": "Explainability",
    "explain": "Explainability",
}
STATUS_SYMBOLS = {"pass": "✓", "warn": "!", "fail": "✗", "skip": "–", "error": "⚠"}
STATUS_WORDS = {"pass": "pass", "warn": "warning", "fail": "fail", "skip": "skipped",
                "error": "error"}
#: Title and style of each verdict; the text under it says why (``explain_verdict``).
VERDICTS = {
    "passed": ("Passed", "pass"),
    "passed_with_warnings": ("Passed with warnings", "warn"),
    "blocked": ("Blocked by the policy", "fail"),
}
#: Per-group metrics shown in the report's tables, in this order (the rest stay in
#: results.json); the first ones are also charted.
PREFERRED_METRICS = ("selection_rate", "base_rate", "tpr", "true_positive_rate", "fpr",
                     "false_positive_rate", "accuracy", "precision", "roc_auc", "auc", "ece",
                     "brier", "rmse", "mae", "r2")
TABLE_METRICS = 7
CHART_METRICS = 4

_env: Environment | None = None


class _TemplateCache(FileSystemBytecodeCache):
    """Jinja2's cache of compiled templates, in its private per-user directory
    (created mode 0700 under the temporary directory and refused if anyone else owns
    it). Compiling the report's template costs more than rendering it; a cached
    entry is used only while the template's source is unchanged (Jinja2 checks its
    checksum). A cache that cannot be written is no error: the template is compiled.
    """

    def dump_bytecode(self, bucket: Any) -> None:
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)


def _template_cache() -> BytecodeCache | None:
    try:
        return _TemplateCache(pattern="assay-%s.cache")
    except (OSError, RuntimeError):  # no safe private directory: compile every time
        return None


def _environment() -> Environment:
    global _env
    if _env is None:
        _env = _new_environment(_template_cache())
    return _env


def _new_environment(cache: BytecodeCache | None) -> Environment:
    env = Environment(
        loader=PackageLoader("assay.report", "templates"),
        bytecode_cache=cache,
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=ChainableUndefined,
    )
    env.filters["num"] = fmt_num
    env.filters["ci"] = fmt_ci
    env.filters["threshold"] = fmt_threshold
    env.filters["symbol"] = lambda s: STATUS_SYMBOLS.get(str(s), "?")
    env.filters["word"] = lambda s: STATUS_WORDS.get(str(s), str(s))
    env.filters["short"] = lambda d: (str(d)[:12] + "…") if d and len(str(d)) > 12 else d
    return env


def fmt_num(x: Any, digits: int = 4) -> str:
    """A number for people: 4 significant digits, '—' when absent."""
    if x is None or isinstance(x, bool):
        return "—" if x is None else str(x)
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if math.isnan(x):
            return "—"
        if math.isinf(x):
            return "∞" if x > 0 else "−∞"
        if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e6):
            return f"{x:.{digits - 1}e}"
        return f"{x:.{digits}g}"
    return str(x)


def fmt_ci(ci: Any) -> str:
    if not ci or len(ci) != 2 or ci[0] is None or ci[1] is None:
        return ""
    return f"[{fmt_num(ci[0])}, {fmt_num(ci[1])}]"


def fmt_threshold(t: Any) -> str:
    if not t:
        return "—"
    lo, hi = t.get("min"), t.get("max")
    if lo is not None and hi is not None:
        return f"{fmt_num(lo)} to {fmt_num(hi)}"
    if lo is not None:
        return f"≥ {fmt_num(lo)}"
    if hi is not None:
        return f"≤ {fmt_num(hi)}"
    return "—"


def render_report(results: Mapping[str, Any]) -> str:
    """Render ``results.json`` (as a dict) to a self-contained HTML document."""
    if not isinstance(results, Mapping):
        raise InputError(f"report: expected the results.json object (a mapping), "
                         f"got {type(results).__name__}")
    if "checks" not in results or not isinstance(results.get("checks"), list):
        raise InputError("report: results have no 'checks' list; expected the results.json "
                         "written by 'assay certify' (schema_version 1.0)")
    ctx = build_context(results)
    return _environment().get_template("report.html.j2").render(**ctx)


def write_report(results: Mapping[str, Any], path: str | Path) -> Path:
    """Render the report and write it to ``path`` (UTF-8); return the path."""
    out = Path(path)
    out.write_text(render_report(results), encoding="utf-8")
    return out


def _num_or_none(x: Any) -> float | None:
    if isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x):
        return float(x)
    return None


def _rows_from_measurements(ms: list[dict[str, Any]]) -> list[charts.Row]:
    rows = []
    for m in ms:
        ci = m.get("ci") or [None, None]
        rows.append(charts.Row(label=str(m.get("label", "")), value=_num_or_none(m.get("value")),
                               lo=_num_or_none(ci[0]), hi=_num_or_none(ci[1]),
                               status=m.get("status"), judged=m.get("judged", True) is not False))
    return rows


def _details_chart(c: Mapping[str, Any]) -> str | None:
    """A chart drawn from a check's details, for the checks whose details hold one."""
    details = c.get("details") or {}
    if not isinstance(details, Mapping):
        return None
    roc = details.get("roc")
    if c.get("id") == "privacy.membership_inference" and isinstance(roc, Mapping):
        return charts.roc(roc.get("fpr") or [], roc.get("tpr") or [],
                          auc=_num_or_none(details.get("auc")),
                          title="Membership inference attack", name="attack",
                          xlabel="evaluation rows taken for members",
                          ylabel="training rows recognised")
    for what in ("k", "l"):
        by_size = details.get(f"rows_by_class_{what}")
        if c.get("id") == f"privacy.{'k_anonymity' if what == 'k' else 'l_diversity'}" \
                and isinstance(by_size, Mapping):
            from assay.report.privacy_charts import class_sizes

            return class_sizes(by_size, what=what)
    imp = details.get("importance")
    if c.get("id") == "privacy.data_minimisation" and isinstance(imp, list):
        rows = [charts.Row(label=str(i.get("feature")), value=_num_or_none(i.get("mean")),
                           lo=_num_or_none((i.get("ci") or [None, None])[0]),
                           hi=_num_or_none((i.get("ci") or [None, None])[1]))
                for i in imp if isinstance(i, Mapping)]
        return charts.forest(rows, title="Permutation importance",
                             xlabel=f"increase of the loss ({details.get('metric', '')}) "
                                    "when the feature is shuffled", reference=0.0)
    return None


def _check_view(c: Mapping[str, Any]) -> dict[str, Any]:
    ms = [m for m in (c.get("measurements") or []) if isinstance(m, Mapping)]
    chart = None
    extra = _extra(c)
    if extra and extra.get("no_forest"):
        pass  # measurements on different scales: the family's own view shows them
    elif len([m for m in ms if _num_or_none(m.get("value")) is not None]) >= 2:
        threshold = c.get("threshold") or None
        chart = charts.forest(_rows_from_measurements(ms), title=str(c.get("title") or c.get("id")),
                              threshold=threshold)
    chart = _details_chart(c) or chart
    details = c.get("details") if isinstance(c.get("details"), Mapping) else {}
    if isinstance(details.get("score_histogram"), Mapping):  # integrity.out_of_distribution
        chart = novelty_histogram(details["score_histogram"]) or chart
    if str(c.get("id", "")).startswith("explain."):  # importance bars with whiskers
        extra = explain_charts(c)
        if extra:
            keep = chart if c.get("id") == "explain.group_dependence" else None
            chart = "\n".join(x for x in (keep, extra) if x)
    status = str(c.get("status") or "error")
    message = c.get("message") or ""
    if not message and c.get("worst") is not None and c.get("value") is not None:
        ci = fmt_ci(c.get("ci"))
        message = (f"{c['worst']}: {fmt_num(c['value'])}{' ' + ci if ci else ''}, "
                   f"required {fmt_threshold(c.get('threshold'))}")
    return {
        "id": c.get("id", "?"),
        "anchor": "check-" + "".join(ch if ch.isalnum() else "-" for ch in str(c.get("id", "?"))),
        "family": c.get("family") or str(c.get("id", "other")).split(".")[0],
        "title": c.get("title") or c.get("id"),
        "status": status,
        "severity": c.get("severity") or "block",
        "judge_on": c.get("judge_on") or "point",
        "threshold": c.get("threshold"),
        "value": c.get("value"),
        "ci": c.get("ci"),
        "worst": c.get("worst"),
        "message": message,
        "rationale": c.get("rationale") or "",
        "regulations": list(c.get("regulations") or []),
        "source": c.get("source"),
        "measurements": ms,
        "details": c.get("details") or {},
        "chart": chart,
        "machine": _machine(details.get("machine")),
        "extra": extra,
        "blocking": status == "fail" and (c.get("severity") or "block") == "block",
    }


def _machine(m: Any) -> str | None:
    """The machine operational figures were measured on, in one line."""
    if not isinstance(m, Mapping):
        return None
    libs = ", ".join(f"{k} {v}" for k, v in (m.get("libraries") or {}).items() if v)
    cores = m.get("cores")
    return "; ".join(str(p) for p in (
        m.get("cpu"), f"{cores} logical cores" if cores else None,
        f"Python {m.get('python')}" if m.get("python") else None, m.get("os"), libs or None)
        if p)


def _extra(c: Mapping[str, Any]) -> dict[str, Any] | None:
    """Readable details of a check whose family has a view (the security checks)."""
    if str(c.get("family") or "") != "security":
        return None
    from assay.report.security import check_extra

    return check_extra(c)


def _metrics_view(metrics: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not metrics:
        return None
    overall = metrics.get("overall") or {}
    groups = metrics.get("groups") or metrics.get("by_group") or {}
    attributes = []
    for attr, by_group in groups.items():
        if not isinstance(by_group, Mapping):
            continue
        names: list[str] = []
        for g in by_group.values():
            for m in (g.get("metrics") or {}):
                if m not in names:
                    names.append(m)
        ordered = ([m for m in PREFERRED_METRICS if m in names]
                   + [m for m in names if m not in PREFERRED_METRICS])
        attributes.append({
            "name": attr,
            "metric_names": ordered[:TABLE_METRICS],
            "omitted": ordered[TABLE_METRICS:],
            "groups": by_group,
            "chart": charts.group_metrics(dict(by_group), attribute=str(attr),
                                          metrics=ordered[:CHART_METRICS]),
        })
    fairness = []
    for attr, gaps in (metrics.get("fairness") or {}).items():
        if not isinstance(gaps, Mapping):
            continue
        diff_rows, ratio_rows = [], []
        for name, g in gaps.items():
            if not isinstance(g, Mapping):
                continue
            ci = g.get("ci") or [None, None]
            row = charts.Row(label=str(name), value=_num_or_none(g.get("value")),
                             lo=_num_or_none(ci[0]), hi=_num_or_none(ci[1]), status="info")
            (ratio_rows if _is_ratio(str(name)) else diff_rows).append(row)
        chart_list = [c for c in (
            charts.forest(diff_rows, title=f"Fairness differences by {attr}",
                          xlabel="difference (0 = parity)", reference=0.0),
            charts.forest(ratio_rows, title=f"Fairness ratios by {attr}",
                          xlabel="ratio (1 = parity)", reference=1.0),
        ) if c]
        pairwise = _gaps_to_reference(gaps)
        if pairwise is not None:
            pairwise["chart"] = charts.group_metrics(
                pairwise["groups"], attribute=str(attr), metrics=pairwise["measures"][:4],
                reference=0.0,
                title=f"Gap of each group to {pairwise['reference']} (group minus reference)")
        fairness.append({"name": attr, "gaps": gaps, "charts": chart_list,
                         "pairwise": pairwise})
    calibration = metrics.get("calibration")
    roc = metrics.get("roc")
    auc = None
    for key in ("auc", "roc_auc"):
        entry = overall.get(key)
        if isinstance(entry, Mapping):
            auc = _num_or_none(entry.get("value"))
        elif entry is not None:
            auc = _num_or_none(entry)
        if auc is not None:
            break
    multiclass = None
    if metrics.get("task") == "multiclass":
        classes = [str(c) for c in metrics.get("classes") or []]
        sample = metrics.get("score_sample") or {}
        multiclass = {
            "classes": classes,
            "per_class": metrics.get("per_class") or [],
            "sample": sample,
            "chart": charts.confusion_matrix(classes, metrics.get("confusion_matrix") or []),
            "fairness": metrics.get("fairness_by_class") or {},
        }
    return {
        "multiclass": multiclass,
        "notes": [str(n) for n in metrics.get("notes") or []],
        "overall": overall,
        "attributes": attributes,
        "fairness": fairness,
        "calibration_chart": charts.reliability(calibration) if isinstance(calibration, Mapping)
        else None,
        "roc_chart": charts.roc(roc.get("fpr") or [], roc.get("tpr") or [], auc=auc)
        if isinstance(roc, Mapping) else None,
    }


PAIRWISE_ORDER = ("demographic_parity", "statistical_parity", "equal_opportunity", "fpr",
                  "fnr", "predictive_parity", "accuracy", "roc_auc", "ece")


def _gaps_to_reference(gaps: Mapping[str, Any]) -> dict[str, Any] | None:
    """Per-group differences to the reference group, one column per fairness measure.

    Measures that repeat the same per-group numbers (the same gaps under
    another name) are shown once; ratios are left to the summary table.
    """
    columns: dict[str, dict[str, Any]] = {}
    reference = None
    seen: list[Any] = []
    for name, g in gaps.items():
        if not isinstance(g, Mapping) or _is_ratio(str(name)):
            continue
        per, ref = g.get("groups"), g.get("reference")
        nested = g.get("gaps_to_reference")
        if isinstance(nested, Mapping):
            per, ref = nested.get("groups"), nested.get("reference")
        if not isinstance(per, Mapping) or not per or per in seen:
            continue
        seen.append(per)
        reference = reference or ref
        columns[str(name).removesuffix("_difference")] = per
    if not columns:
        return None
    measures = sorted(columns, key=lambda m: (PAIRWISE_ORDER.index(m)
                                              if m in PAIRWISE_ORDER else len(PAIRWISE_ORDER)))
    groups: dict[str, dict[str, Any]] = {}
    for m in measures:
        for grp, e in columns[m].items():
            if isinstance(e, Mapping):
                groups.setdefault(str(grp), {"metrics": {}})["metrics"][m] = e
    return {"reference": reference if reference is not None else "the reference group",
            "measures": measures[:TABLE_METRICS], "omitted": measures[TABLE_METRICS:],
            "groups": groups}


def _is_ratio(name: str) -> bool:
    """Fairness measures on the ratio scale (parity at 1), by their name."""
    parts = name.lower().replace("-", "_").split("_")
    return "ratio" in parts or name.lower().startswith("disparate_impact")


def _drift_view(drift: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not drift:
        return None
    features = drift.get("features") or {}
    psi = {name: f.get("psi") for name, f in features.items() if isinstance(f, Mapping)}
    ordered = sorted(features.items(),
                     key=lambda kv: -(_num_or_none(kv[1].get("psi")) or -1.0)
                     if isinstance(kv[1], Mapping) else 1.0)
    return {
        "features": ordered,
        "drifted_share": drift.get("drifted_share"),
        "chart": charts.psi_bars(psi),
    }


def _command(results: Mapping[str, Any]) -> str | None:
    """The ``assay certify`` command that reproduces these results, when it can be rebuilt."""
    if results.get("command"):
        cmd = results["command"]
        return cmd if isinstance(cmd, str) else shlex.join(str(a) for a in cmd)
    policy = results.get("policy") or {}
    data = results.get("data") or {}
    evaluation = data.get("evaluation") or {}
    roles = results.get("roles") or {}
    if not evaluation.get("name") or not roles.get("target"):
        return None
    policy_ref = policy.get("path") or policy.get("name") or "?"
    if policy.get("name") and "/assay/policy/policies/" in str(policy.get("path") or ""):
        policy_ref = policy["name"]  # a shipped policy: its name works on any machine
    args = ["assay", "certify", "--policy", str(policy_ref),
            "--tier", str(policy.get("tier") or "?")]
    model = results.get("model") or {}
    if model.get("path") or model.get("name"):
        args += ["--model", str(model.get("path") or model.get("name"))]
    reference = data.get("reference") or {}
    if reference.get("path") or reference.get("name"):
        args += ["--train", str(reference.get("path") or reference["name"])]
    args += ["--data", str(evaluation.get("path") or evaluation["name"]),
             "--target", str(roles["target"])]
    csv = evaluation.get("csv") or reference.get("csv") or {}
    if csv.get("na_values"):
        args += ["--na-values", ",".join(str(v) for v in csv["na_values"])]
    if csv.get("delimiter") not in (None, ","):
        args += ["--delimiter", "tab" if csv["delimiter"] == "\t" else str(csv["delimiter"])]
    if roles.get("sensitive"):
        args += ["--sensitive", ",".join(str(s) for s in roles["sensitive"])]
    for key, flag in (("prediction", "--prediction"), ("score", "--score"),
                      ("weight", "--weight")):
        if roles.get(key):
            args += [flag, str(roles[key])]
    if roles.get("features"):
        args += ["--features", ",".join(str(f) for f in roles["features"])]
    if roles.get("task") == "regression":
        args += ["--task", "regression"]
    elif roles.get("positive_label") not in (None, 1, "1"):
        args += ["--positive-label", str(roles["positive_label"])]
    return shlex.join(args)


def build_context(results: Mapping[str, Any]) -> dict[str, Any]:
    """Everything the template shows, computed once (the template only lays it out)."""
    checks = [_check_view(c) for c in results.get("checks") or [] if isinstance(c, Mapping)]
    counts = {k: 0 for k in ("pass", "warn", "fail", "skip", "error")}
    for c in checks:
        counts[c["status"]] = counts.get(c["status"], 0) + 1
    summary = results.get("summary") or counts
    by_family: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in checks:
        by_family[c["family"]].append(c)
    families = [(f, FAMILY_TITLES.get(f, f.replace("_", " ").capitalize()), by_family[f])
                for f in [*FAMILY_ORDER, *sorted(set(by_family) - set(FAMILY_ORDER))]
                if f in by_family]
    order = {"fail": 0, "error": 1, "warn": 2}
    findings = sorted((c for c in checks if c["status"] in order),
                      key=lambda c: (0 if c["blocking"] else 1, order[c["status"]]))
    # Measurements reported but not judged because their group is too small; others
    # that are not judged are shown for information in their check's table.
    min_size = (results.get("settings") or {}).get("min_group_size")
    small_groups = []
    for c in checks:
        for m in c["measurements"]:
            if m.get("judged") is not False:
                continue
            n, note = m.get("n"), str(m.get("note") or "")
            small = (isinstance(n, int) and isinstance(min_size, int) and n < min_size) or \
                "minimum" in note.lower()
            if small:
                small_groups.append({"check": c, "label": m.get("label"), "n": n,
                                     "note": note or "below the minimum group size"})
    metrics = results.get("metrics") or None
    drift = results.get("drift") or (metrics or {}).get("drift") or None
    status = str(results.get("status") or "")
    if status in VERDICTS:
        why = explain_verdict(results)
        verdict = (*VERDICTS[status], why[:1].upper() + why[1:] + ".")
    else:
        verdict = (status or "Unknown", "error", "The results do not carry a verdict.")
    created = results.get("created_at")
    return {
        "r": results,
        "verdict": {"title": verdict[0], "status": verdict[1], "text": verdict[2]},
        "policy": results.get("policy") or {},
        "model": results.get("model") or None,
        "data": results.get("data") or {},
        "roles": results.get("roles") or {},
        "settings": results.get("settings") or {},
        "environment": results.get("environment") or {},
        "summary": summary,
        "checks": checks,
        "families": families,
        "findings": findings,
        "skipped": [c for c in checks if c["status"] == "skip"],
        "small_groups": small_groups,
        "metrics": _metrics_view(metrics),
        "drift": _drift_view(drift),
        "command": _command(results),
        "created_at": created,
        "status_symbols": STATUS_SYMBOLS,
    }
