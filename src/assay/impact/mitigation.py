"""Bias mitigation proposals: group-specific thresholds and reweighing weights.

Nothing here changes a model, a threshold or a policy. A proposal is a document (its
before/after numbers, a chart) that a validator may record as evidence of a model
version; applying it means registering a new version (with the thresholds in its
decision rule, or retrained with the weights) and certifying that version again
(docs/mitigation.md).

**Group-specific thresholds** (:func:`propose_thresholds`): a positive decision is
``score >= t_g`` for the row's group ``g``. Each group's options come from
:class:`~assay.impact.value.ScoreStats` (scores sorted once, counts per distinct
score, reversed cumulative sums): at every threshold that changes a decision, its
selection rate, TPR, FPR and value, all exact. The fairness target is a window: every
group's rate (selection rate for ``demographic_parity_difference``, TPR for
``equal_opportunity_difference``, TPR *and* FPR for ``equalized_odds_difference``)
lies in ``[a, a + target]``. As the rates rise monotonically as a group's threshold
falls, the options inside a window are one run of consecutive thresholds (for
equalized odds, the intersection of two runs is still one run), so each group's best
option in a window is a range-maximum query, and the search tries every lower end
``a`` among the rates the groups reach (up to :data:`MAX_CANDIDATES` per rate,
chosen at evenly spaced ranks when there are more). The constraint always holds
exactly on the data; the value is the best over the windows tried (exact when no rate
had to be thinned; the result says). The objective is the accuracy (value model
``tp=1, tn=1, fp=0, fn=0``) or any value model of :mod:`assay.impact.value`.

**Reweighing** (:func:`reweighing`, Kamiran & Calders 2012): each row of group ``g``
and label ``y`` gets ``w(g, y) = P(g) P(y) / P(g, y)``; in the weighted data the group
and the label are independent, exactly, and the total weight is the row count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from assay.errors import InputError
from assay.impact.frontier import _RangeMax
from assay.impact.value import ScoreStats, ValueModel, group_curve, score_stats

CONSTRAINTS = ("demographic_parity_difference", "equal_opportunity_difference",
               "equalized_odds_difference")
#: The value model whose total is the number of right decisions.
ACCURACY = ValueModel(tp=1.0, fp=0.0, tn=1.0, fn=0.0)
#: Lower ends tried per rate (more distinct rates are thinned to this many).
MAX_CANDIDATES = 4096
#: ... per rate for equalized odds (pairs of lower ends: this squared).
MAX_CANDIDATES_2D = 384
DEFAULT_CURVE = (0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2)
NOTICE = ("A proposal only: no model, threshold or policy was changed. Applying it means "
          "registering a new model version with this decision rule (or retrained with "
          "these weights) and certifying that version again.")
_EPS = 1e-12


def _rates(stats: ScoreStats, model: ValueModel, g: int) -> dict[str, np.ndarray]:
    """Group ``g``'s options in ascending selection: threshold index, value, rates."""
    pos, curve, sel = group_curve(stats, model, g)
    n0, n1 = stats.counts[g, 0].sum(), stats.counts[g, 1].sum()
    rev = slice(None, None, -1)
    with np.errstate(all="ignore"):
        return {"j": pos[rev], "v": np.asarray(curve, float)[rev],
                "selection_rate": ((sel[0] + sel[1]) / max(n0 + n1, 1))[rev],
                "tpr": (sel[1] / n1 if n1 else np.zeros(sel.shape[1]))[rev],
                "fpr": (sel[0] / n0 if n0 else np.zeros(sel.shape[1]))[rev]}


def _axes(constraint: str) -> tuple[str, ...]:
    return {"demographic_parity_difference": ("selection_rate",),
            "equal_opportunity_difference": ("tpr",),
            "equalized_odds_difference": ("tpr", "fpr")}[constraint]


def _thin(values: np.ndarray, limit: int) -> tuple[np.ndarray, bool]:
    u = np.unique(values)
    if len(u) <= limit:
        return u, False
    return u[np.linspace(0, len(u) - 1, limit).round().astype(np.int64)], True


def _search(options: list[dict[str, np.ndarray]], axes: tuple[str, ...], target: float
            ) -> tuple[float, list[int], bool] | None:
    """The best total value with every group's rates in windows of width ``target``:
    (value, each group's option index, thinned) or None when no window fits all."""
    limit = MAX_CANDIDATES if len(axes) == 1 else MAX_CANDIDATES_2D
    cands, thinned = [], False
    for ax in axes:
        c, t = _thin(np.concatenate([o[ax] for o in options]), limit)
        cands.append(c)
        thinned |= t
    grids = np.meshgrid(*cands, indexing="ij")
    lows = [g.ravel() for g in grids]
    total = np.zeros(len(lows[0]))
    ok = np.ones(len(lows[0]), bool)
    picks = []
    for o in options:
        lo = np.zeros(len(total), np.int64)
        hi = np.full(len(total), len(o["v"]), np.int64)
        for ax, a in zip(axes, lows, strict=True):
            lo = np.maximum(lo, np.searchsorted(o[ax], a - _EPS, "left"))
            hi = np.minimum(hi, np.searchsorted(o[ax], a + target + _EPS, "right"))
        feasible = hi > lo
        ok &= feasible
        idx = np.zeros(len(total), np.int64)
        if "_rm" not in o:
            o["_rm"] = _RangeMax(o["v"])  # type: ignore[assignment]
        if feasible.any():
            idx[feasible] = o["_rm"].argmax(lo[feasible], hi[feasible])  # type: ignore[attr-defined]
        total += np.where(feasible, o["v"][idx], -np.inf)
        picks.append(idx)
    if not ok.any():
        return None
    total = np.where(ok, total, -np.inf)
    best = int(np.argmax(total))
    return float(total[best]), [int(p[best]) for p in picks], thinned


def _threshold(stats: ScoreStats, j: int) -> float | None:
    return float(stats.scores[j]) if j < len(stats.scores) else None


def _metrics_at(stats: ScoreStats, model: ValueModel, g: int, j: int) -> dict[str, Any]:
    """Group ``g``'s numbers when its threshold is the ``j``-th distinct score."""
    c = stats.counts[g]
    tp, fp = int(c[1, j:].sum()), int(c[0, j:].sum())
    p, n = int(c[1].sum()), int(c[0].sum())
    fn, tn = p - tp, n - fp
    total = p + n
    pos, curve, _ = group_curve(stats, model, g)
    value = float(curve[int(np.searchsorted(pos, j, "left"))])
    acc_curve = group_curve(stats, ACCURACY, g)[1]
    right = float(acc_curve[int(np.searchsorted(pos, j, "left"))])
    return {"rows": total, "threshold": _threshold(stats, j),
            "selection_rate": (tp + fp) / total if total else None,
            "tpr": tp / p if p else None, "fpr": fp / n if n else None,
            "accuracy": right / total if total else None, "value": value,
            "value_per_decision": value / total if total else None,
            "tp": tp, "fp": fp, "tn": tn, "fn": fn}


def _gaps(per_group: Mapping[str, Mapping[str, Any]]) -> dict[str, float | None]:
    def gap(k: str) -> float | None:
        xs = [r[k] for r in per_group.values() if r[k] is not None]
        return float(max(xs) - min(xs)) if len(xs) >= 2 else None

    dp, tpr, fpr = gap("selection_rate"), gap("tpr"), gap("fpr")
    eo = None if tpr is None or fpr is None else max(tpr, fpr)
    return {"demographic_parity_difference": dp, "equal_opportunity_difference": tpr,
            "equalized_odds_difference": eo}


def _summary(stats: ScoreStats, model: ValueModel, js: Sequence[int]) -> dict[str, Any]:
    per = {name: _metrics_at(stats, model, g, j)
           for g, (name, j) in enumerate(zip(stats.groups, js, strict=True))}
    n = stats.n
    right = sum((r["accuracy"] or 0) * r["rows"] for r in per.values())
    value = sum(r["value"] for r in per.values())
    sel = sum(r["tp"] + r["fp"] for r in per.values())
    return {"groups": per, "accuracy": right / n, "value": value,
            "value_per_decision": value / n, "selection_rate": sel / n, "gaps": _gaps(per)}


def _check(constraint: str, max_gap: float) -> None:
    if constraint not in CONSTRAINTS:
        raise InputError(f"{{constraint}}: unknown fairness target {constraint!r} (expected "
                         f"{', '.join(CONSTRAINTS)})", fields=["constraint"])
    if not 0.0 <= float(max_gap) <= 1.0:
        raise InputError(f"{{max_gap}}: a difference of rates is between 0 and 1, got "
                         f"{max_gap}", fields=["max_gap"])


def propose_thresholds(stats: ScoreStats, *, constraint: str = "demographic_parity_difference",
                       max_gap: float = 0.05, threshold: float = 0.5,
                       value: ValueModel | None = None,
                       curve_targets: Sequence[float] | None = DEFAULT_CURVE) -> dict[str, Any]:
    """Group thresholds meeting ``constraint <= max_gap`` at the least loss of value
    (default: accuracy), with the numbers before (one ``threshold`` for everybody) and
    after, and the trade-off curve over ``curve_targets``. Plain JSON."""
    _check(constraint, max_gap)
    if len(stats.groups) < 2:
        raise InputError("{sensitive}: group thresholds need at least two groups (got "
                         f"{len(stats.groups)})", fields=["sensitive"])
    model = value or ACCURACY
    axes = _axes(constraint)
    options = [_rates(stats, model, g) for g in range(len(stats.groups))]
    for g, name in enumerate(stats.groups):
        if "tpr" in axes and stats.counts[g, 1].sum() == 0:
            raise InputError(f"group {name!r} has no rows of the positive label: its "
                             "true-positive rate is undefined")
        if "fpr" in axes and stats.counts[g, 0].sum() == 0:
            raise InputError(f"group {name!r} has no rows of the negative label: its "
                             "false-positive rate is undefined")
    j0 = int(np.searchsorted(stats.scores, threshold, "left"))
    before = _summary(stats, model, [j0] * len(stats.groups))
    found = _search(options, axes, float(max_gap))
    after = None
    thinned = False
    if found is not None:
        _, picks, thinned = found
        after = _summary(stats, model, [int(o["j"][p]) for o, p in zip(options, picks,
                                                                       strict=True)])
    curve = []
    for t in curve_targets or ():
        r = _search(options, axes, float(t))
        if r is None:
            curve.append({"target": float(t), "feasible": False})
            continue
        s = _summary(stats, model, [int(o["j"][p]) for o, p in zip(options, r[1],
                                                                   strict=True)])
        curve.append({"target": float(t), "feasible": True, "achieved": s["gaps"][constraint],
                      "accuracy": s["accuracy"], "value_per_decision": s["value_per_decision"]})
    limit = MAX_CANDIDATES if len(axes) == 1 else MAX_CANDIDATES_2D
    out: dict[str, Any] = {
        "method": "group-specific thresholds", "constraint": constraint, "max_gap": max_gap,
        "objective": "accuracy" if value is None else "value",
        "value_model": model.as_dict(), "rows": stats.n, "grouping": stats.grouping or None,
        "feasible": after is not None, "before": before, "after": after,
        "thresholds": ({g: r["threshold"] for g, r in after["groups"].items()}
                       if after else None),
        "cost": ({"accuracy": before["accuracy"] - after["accuracy"],
                  "value": before["value"] - after["value"],
                  "value_per_decision": before["value_per_decision"]
                  - after["value_per_decision"],
                  "gap_before": before["gaps"][constraint],
                  "gap_after": after["gaps"][constraint]} if after else None),
        "curve": curve,
        "search": ("exact over every distinct score" if not thinned else
                   f"lower ends of the windows thinned to {limit} "
                   "per rate: the constraint holds exactly, the value may fall short of the "
                   "optimum by what one step between tried windows holds"),
        "rule": "positive decision when score >= the group's threshold (null: nobody)",
        "notice": NOTICE,
    }
    return out


def reweighing(y: Any, groups: Any, *, grouping: str = "group") -> tuple[np.ndarray,
                                                                         list[dict[str, Any]]]:
    """Kamiran–Calders weights: per row ``P(g) P(y) / P(g, y)``, and the per-cell table
    (group, label, rows, expected rows, weight)."""
    yy = np.asarray(y)
    if yy.dtype.kind == "b":
        yy = yy.astype(np.int64)
    if yy.dtype.kind not in "iuf" or not np.isin(yy, (0, 1)).all():
        raise InputError("labels: expected 0/1 (1 = the positive label)")
    g = np.asarray(groups).astype(str)
    if len(g) != len(yy):
        raise InputError(f"{grouping}: {len(g)} rows, but the labels have {len(yy)}")
    if len(g) == 0:
        raise InputError("no rows to reweigh")
    names, code = np.unique(g, return_inverse=True)
    cells = np.bincount(code * 2 + yy.astype(np.int64), minlength=2 * len(names)
                        ).reshape(len(names), 2).astype(np.float64)
    n = cells.sum()
    expected = np.outer(cells.sum(axis=1), cells.sum(axis=0)) / n
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(cells > 0, expected / cells, 0.0)
    table = [{"group": str(names[i]), "label": lab, "rows": int(cells[i, lab]),
              "expected_rows": float(expected[i, lab]), "weight": float(w[i, lab])}
             for i in range(len(names)) for lab in (0, 1)]
    return w[code, yy.astype(np.int64)], table


def propose_reweighing(y: Any, groups: Any, *, grouping: str = "group") -> tuple[
        np.ndarray, dict[str, Any]]:
    """:func:`reweighing` as a proposal: the per-row weights and the document (cells,
    the label rate per group before and after weighting)."""
    w, table = reweighing(y, groups, grouping=grouping)
    yy = np.asarray(y).astype(np.int64)
    g = np.asarray(groups).astype(str)
    rates = {}
    for name in np.unique(g):
        m = g == name
        rates[str(name)] = {"rows": int(m.sum()), "label_rate_before": float(yy[m].mean()),
                            "label_rate_after": float((w[m] * yy[m]).sum() / w[m].sum())}
    return w, {"method": "reweighing (Kamiran-Calders)", "grouping": grouping,
               "rows": len(yy), "cells": table, "groups": rates,
               "label_rate": float(yy.mean()), "notice": NOTICE}


def thresholds_from_data(data: Any, *, target: str, positive_label: Any, score: str,
                         sensitive: Sequence[str], value: ValueModel | None = None,
                         **kwargs: Any) -> dict[str, Any]:
    """:func:`propose_thresholds` on a data file or frame."""
    from assay.impact.value import stats_from_data

    if not sensitive:
        raise InputError("{sensitive}: name the protected attribute(s) to mitigate for",
                         fields=["sensitive"])
    stats = stats_from_data(data, target=target, positive_label=positive_label, score=score,
                            model=value or ACCURACY, sensitive=sensitive)
    out = propose_thresholds(stats, value=value, **kwargs)
    out["source"] = {"target": target, "score": score, "sensitive": list(sensitive)}
    return out


def reweigh_data(data: Any, *, target: str, positive_label: Any, sensitive: Sequence[str],
                 out: Any = None, cells: Any = None, html: Any = None) -> dict[str, Any]:
    """:func:`propose_reweighing` on a data file or frame; writes the per-row weights to
    ``out`` (``.csv`` or ``.parquet``: one column ``weight`` in the rows' order), the cell
    table to ``cells`` (CSV) and the HTML page to ``html`` when given."""
    from pathlib import Path

    import pyarrow as pa

    from assay.impact.value import group_column, read_columns
    from assay.metrics import _cells
    from assay.metrics.frame import SEP

    if not sensitive:
        raise InputError("{sensitive}: name the protected attribute(s) to reweigh for",
                         fields=["sensitive"])
    cols = read_columns(data, [target, *sensitive])
    y = _cells.binarize(cols[target], target, positive_label)
    w, doc = propose_reweighing(y, group_column(cols, sensitive), grouping=SEP.join(sensitive))
    doc["source"] = {"target": target, "positive_label": str(positive_label),
                     "sensitive": list(sensitive)}
    if out is not None:
        path = Path(out)
        table = pa.table({"weight": w})
        try:
            if path.suffix.lower() == ".parquet":
                import pyarrow.parquet as pq

                pq.write_table(table, path)
            elif path.suffix.lower() == ".csv":
                import pyarrow.csv as pcsv

                pcsv.write_csv(table, path)
            else:
                raise InputError(f"{path}: expected a .csv or .parquet file name")
        except OSError as exc:
            raise InputError(f"{path}: cannot write the weights: {exc}") from None
        doc["weights_file"] = path.name
    if cells is not None:
        lines = ["group,label,rows,expected_rows,weight"]
        for r in doc["cells"]:
            g = '"' + r["group"].replace('"', '""') + '"'
            lines.append(f"{g},{r['label']},{r['rows']},{r['expected_rows']!r},"
                         f"{r['weight']!r}")
        try:
            Path(cells).write_text("\n".join(lines) + "\n", encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{cells}: cannot write the cell table: {exc}") from None
    if html is not None:
        Path(html).write_text(render_html(doc), encoding="utf-8")
    return doc


# --------------------------------------------------------------------------- rendering


def tradeoff_svg(result: Mapping[str, Any]) -> str | None:
    """The accuracy (or value) - fairness trade-off curve of a thresholds proposal."""
    from assay.report import charts

    key = "accuracy" if result.get("objective") == "accuracy" else "value_per_decision"
    pts = [(r["achieved"], r[key]) for r in result.get("curve") or [] if r.get("feasible")]
    c = result.get("constraint", "")
    before = result.get("before") or {}
    after = result.get("after") or {}
    b = ((before.get("gaps") or {}).get(c), before.get(key)) if before else None
    a = ((after.get("gaps") or {}).get(c), after.get(key)) if after else None
    return charts.tradeoff(pts, before=b if b and None not in b else None,
                           proposal=a if a and None not in a else None,
                           title=f"{key.replace('_', ' ')} kept at each level of {c}",
                           xlabel=f"{c} (achieved)", ylabel=key.replace("_", " "))


def _f(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def render_html(result: Mapping[str, Any]) -> str:
    """A self-contained HTML page of a proposal (thresholds or reweighing)."""
    from html import escape as e

    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
             f"<title>Mitigation proposal: {e(str(result.get('method', '')))}</title>",
             "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}"
             "table{border-collapse:collapse}td,th{border:1px solid #d0d7de;padding:.3em .6em;"
             "text-align:right}th:first-child,td:first-child{text-align:left}"
             ".notice{background:#fff8c5;padding:.6em;border:1px solid #d4a72c}</style>"
             "</head><body>",
             f"<h1>Mitigation proposal: {e(str(result.get('method', '')))}</h1>",
             f"<p class='notice'>{e(NOTICE)}</p>"]
    if result.get("method") == "group-specific thresholds":
        c = result["constraint"]
        parts.append(f"<p>Fairness target: <b>{e(c)} &le; {_f(result['max_gap'])}</b>; "
                     f"objective: {e(result['objective'])} (value model "
                     f"{e(str(result['value_model']))}); {result['rows']} rows; grouping "
                     f"{e(str(result.get('grouping')))}. Search: {e(result['search'])}.</p>")
        if not result["feasible"]:
            parts.append("<p><b>No set of thresholds meets the target.</b></p>")
        cols = ["threshold", "selection_rate", "tpr", "fpr", "accuracy", "value_per_decision"]
        for label in ("before", "after"):
            doc = result.get(label)
            if not doc:
                continue
            head = "Before (one threshold)" if label == "before" else "After (proposal)"
            parts.append(f"<h2>{head}</h2>"
                         f"<p>accuracy {_f(doc['accuracy'])}, value per decision "
                         f"{_f(doc['value_per_decision'])}, {e(c)} "
                         f"{_f(doc['gaps'][c])}</p><table><tr><th>group</th>"
                         + "".join(f"<th>{e(k)}</th>" for k in cols) + "</tr>")
            for g, row in doc["groups"].items():
                parts.append(f"<tr><td>{e(g)}</td>"
                             + "".join(f"<td>{_f(row[k])}</td>" for k in cols) + "</tr>")
            parts.append("</table>")
        if result.get("cost"):
            cost = result["cost"]
            parts.append(f"<h2>Cost</h2><p>accuracy {_f(cost['accuracy'])}, value "
                         f"{_f(cost['value'])} ({_f(cost['value_per_decision'])} per "
                         f"decision); {e(c)} from {_f(cost['gap_before'])} to "
                         f"{_f(cost['gap_after'])}.</p>")
        svg = tradeoff_svg(result)
        if svg:
            parts.append("<h2>Trade-off</h2>" + svg)
    else:
        parts.append(f"<p>{result['rows']} rows; grouping {e(str(result.get('grouping')))}; "
                     f"label rate {_f(result['label_rate'])}.</p><table><tr><th>group</th>"
                     "<th>label</th><th>rows</th><th>expected rows</th><th>weight</th></tr>")
        for r in result["cells"]:
            parts.append(f"<tr><td>{e(r['group'])}</td><td>{r['label']}</td><td>{r['rows']}"
                         f"</td><td>{_f(r['expected_rows'])}</td><td>{_f(r['weight'])}</td>"
                         "</tr>")
        parts.append("</table><h2>Label rate per group</h2><table><tr><th>group</th>"
                     "<th>rows</th><th>before</th><th>after weighting</th></tr>")
        for g, r in result["groups"].items():
            parts.append(f"<tr><td>{e(g)}</td><td>{r['rows']}</td>"
                         f"<td>{_f(r['label_rate_before'])}</td>"
                         f"<td>{_f(r['label_rate_after'])}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


__all__ = ["ACCURACY", "CONSTRAINTS", "NOTICE", "propose_reweighing", "propose_thresholds",
           "render_html", "reweigh_data", "reweighing", "score_stats", "thresholds_from_data",
           "tradeoff_svg"]
