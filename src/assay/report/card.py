"""Rendering a model card (and the notice for the people a model affects).

The card is the Model Card Toolkit document that
:func:`assay.registry.cards.card_document` assembles from the store; this module
only turns it into bytes: JSON (the document itself), Markdown, a self-contained
HTML page in the validation report's style (charts as inline SVG), or a PDF
printed from that HTML by WeasyPrint.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from assay.errors import AssayError, InputError
from assay.report import charts
from assay.report.html import _environment, fmt_num

__all__ = ["CARD_FORMATS", "NOTICE_FORMATS", "PdfUnavailable", "html_to_pdf", "render_card",
           "render_notice"]

CARD_FORMATS = ("html", "md", "json", "pdf")
NOTICE_FORMATS = ("html", "md", "pdf")
#: Per-group metrics shown in the card's group table and charts, in this order.
GROUP_METRICS = ("selection_rate", "tpr", "fpr", "accuracy", "roc_auc", "ece", "rmse", "mae")


class PdfUnavailable(AssayError):
    """WeasyPrint (or the Pango library it needs) is not installed."""

    code = "pdf_unavailable"


def render_card(card: Mapping[str, Any], fmt: str) -> bytes:
    """The card in ``fmt`` (``html``, ``md``, ``json`` or ``pdf``), as bytes."""
    if fmt == "json":
        return (json.dumps(card, indent=2, ensure_ascii=False, allow_nan=False)
                + "\n").encode("utf-8")
    if fmt == "md":
        return _card_markdown(card).encode("utf-8")
    if fmt in ("html", "pdf"):
        html = _environment().get_template("card.html.j2").render(**_card_context(card))
        return html.encode("utf-8") if fmt == "html" else html_to_pdf(html)
    raise InputError(f"card format '{fmt}': expected one of {', '.join(CARD_FORMATS)}")


def render_notice(notice: Mapping[str, Any], fmt: str) -> bytes:
    """The plain-language notice in ``fmt`` (``html``, ``md`` or ``pdf``), as bytes."""
    if fmt == "md":
        return _notice_markdown(notice).encode("utf-8")
    if fmt in ("html", "pdf"):
        html = _environment().get_template("notice.html.j2").render(n=notice)
        return html.encode("utf-8") if fmt == "html" else html_to_pdf(html)
    raise InputError(f"notice format '{fmt}': expected one of {', '.join(NOTICE_FORMATS)}")


def html_to_pdf(html: str) -> bytes:
    """A PDF of ``html``, printed by WeasyPrint; PdfUnavailable when it cannot run."""
    try:
        from weasyprint import HTML
    except (ImportError, OSError) as exc:
        raise PdfUnavailable(
            "PDF output needs WeasyPrint and the Pango library (on Debian/Ubuntu: apt-get "
            f"install libpango-1.0-0 libpangoft2-1.0-0); it could not be loaded: {exc}"
            .replace("\n", " ")) from None
    return HTML(string=html).write_pdf()


# --------------------------------------------------------------------------- HTML


def _card_context(card: Mapping[str, Any]) -> dict[str, Any]:
    q = card.get("quantitative_analysis") or {}
    perf = q.get("performance_metrics") or []
    overall = [m for m in perf if not m.get("slice")]
    by_group: dict[str, dict[str, Any]] = {}
    for m in perf:
        if m.get("slice"):
            by_group.setdefault(m["slice"], {})[m["type"]] = m
    present = {name for vals in by_group.values() for name in vals}
    group_metrics = [m for m in GROUP_METRICS if m in present]
    svgs = []
    for name in group_metrics[:3]:
        rows = []
        for slice_, vals in by_group.items():
            m = vals.get(name)
            if m is None:
                continue
            ci = m.get("confidence_interval") or {}
            rows.append(charts.Row(label=slice_, value=m["value"], lo=ci.get("lower_bound"),
                                   hi=ci.get("upper_bound"), status="info"))
        svg = charts.forest(rows, title=f"{name} by group (bootstrap interval)", xlabel=name)
        if svg:
            svgs.append(svg)
    # a card from elsewhere (or an older assay) may lack any part: render what it has
    d = {"owners": [], "version": {}, **(card.get("model_details") or {})}
    a = {"model": {}, "lineage": {}, "factors": {}, "risk": {}, "out_of_scope_uses": [],
         "caveats": [], "recommendations": [], **(d.get("assay") or {})}
    p = {"data": [], **(card.get("model_parameters") or {})}
    c = {key: [] for key in ("users", "use_cases", "limitations", "tradeoffs",
                             "ethical_considerations")} | (card.get("considerations") or {})
    return {"card": card, "d": d, "a": a, "p": p, "q": q, "c": c, "overall": overall,
            "by_group": by_group, "group_metrics": group_metrics, "charts": svgs}


# --------------------------------------------------------------------------- Markdown


def _md(text: Any) -> str:
    """Text safe in a Markdown table cell or line."""
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")


def _interval(m: Mapping[str, Any]) -> str:
    ci = m.get("confidence_interval")
    return f"[{fmt_num(ci['lower_bound'])}, {fmt_num(ci['upper_bound'])}]" if ci else "—"


def _card_markdown(card: Mapping[str, Any]) -> str:
    ctx = _card_context(card)
    d, a, p, c = ctx["d"], ctx["a"], ctx["p"], ctx["c"]
    out = [f"# Model card: {_md(d.get('name'))}", "",
           f"Version {_md(d.get('version', {}).get('name'))} · "
           f"{_md(d.get('version', {}).get('date'))}"
           + (f" · narrative revision {a['narrative']['revision']}" if a.get("narrative")
              else "")
           + f" · Model Card Toolkit schema {card.get('schema_version')}", "",
           "## Model details", "",
           f"- Overview: {_md(d.get('overview') or '—')}",
           "- Owners: " + ", ".join(f"{_md(o.get('name'))} ({_md(o.get('contact'))})"
                                    for o in d.get("owners", [])),
           f"- Decision type: {_md(a.get('model', {}).get('decision_type'))}",
           f"- Architecture: {_md(p.get('model_architecture') or '—')}",
           f"- Input: {_md(p.get('input_format') or '—')}",
           f"- Output: {_md(p.get('output_format') or '—')}", "",
           "## Intended use", "",
           f"- Intended use: {_md(a.get('intended_use') or '—')}",
           "- Out-of-scope uses: " + (("; ".join(map(_md, a.get("out_of_scope_uses", []))))
                                      or "not stated"),
           "- Users: " + (", ".join(_md(u["description"]) for u in c.get("users", []))
                          or "not stated"),
           f"- Human review: {_md(a.get('human_review') or '—')}", ""]
    out += ["## Metrics", ""]
    if ctx["overall"]:
        out += ["| Metric | Value | Interval |", "|---|---:|---:|"]
        out += [f"| {_md(m['type'])} | {fmt_num(m['value'])} | {_interval(m)} |"
                for m in ctx["overall"]]
    else:
        out.append("No certification holds metrics for this version.")
    if ctx["by_group"]:
        names = ctx["group_metrics"]
        out += ["", "### By group", "", "| Group | " + " | ".join(names) + " |",
                "|---|" + "---:|" * len(names)]
        for slice_, vals in ctx["by_group"].items():
            cells = [f"{fmt_num(vals[n]['value'])} {_interval(vals[n])}" if n in vals else "—"
                     for n in names]
            out.append(f"| {_md(slice_)} | " + " | ".join(cells) + " |")
    out += ["", "## Data", ""]
    out += [f"- {_md(ds.get('name'))}: {_md(ds.get('description'))}" for ds in p.get("data", [])]
    out += [f"- {k.replace('_', ' ')}: `{_md(v)}`" for k, v in a.get("lineage", {}).items() if v]
    cert = a.get("certification") or {}
    out += ["", "## Certification", ""]
    if cert:
        out += [f"- Status: {_md(cert.get('status'))}",
                f"- Policy: {_md(cert.get('policy'))} {_md(cert.get('policy_version'))}, "
                f"tier {_md(cert.get('tier'))}",
                f"- Results: `{_md(cert.get('results_digest'))}`"]
    else:
        out.append("This version has not been certified.")
    risk = a.get("risk") or {}
    out += ["", "## Risk", "", f"- Risk tier: {_md(risk.get('tier') or 'not tiered')}"]
    out += [f"- Open risk: {_md(r['title'])} ({_md(r['severity'])}, {_md(r['status'])})"
            for r in risk.get("open_risks", [])]
    out += ["", "## Impact and KPIs", ""]
    out += ([f"- {_md(k)}: {_md(v)}" for k, v in (a.get("impact") or {}).items()]
            or ["No impact assessment recorded."])
    mon = a.get("monitoring") or {}
    out += ["", "## Monitoring plan", ""]
    if mon.get("rules"):
        out.append(f"Windows: {_md(mon.get('window'))}, kept {mon.get('retention_days')} days.")
        out += [f"- {_md(r['rule'])}: {_md(r['check'])} {_md(r['threshold'])} → "
                f"{_md(r['action'])}" for r in mon["rules"]]
    else:
        out.append("The policy sets no monitoring plan for this tier.")
    out += ["", "## Considerations", ""]
    out += [f"- Limitation: {_md(x['description'])}" for x in c.get("limitations", [])]
    out += [f"- Trade-off: {_md(x['description'])}" for x in c.get("tradeoffs", [])]
    out += [f"- Ethical consideration: {_md(r['name'])} — mitigation: "
            f"{_md(r.get('mitigation_strategy') or '—')}"
            for r in c.get("ethical_considerations", [])]
    out += [f"- Caveat: {_md(x)}" for x in a.get("caveats", [])]
    out += [f"- Recommendation: {_md(x)}" for x in a.get("recommendations", [])]
    if a.get("contact"):
        out.append(f"- Contact: {_md(a['contact'])}")
    return "\n".join(out) + "\n"


def _notice_markdown(n: Mapping[str, Any]) -> str:
    out = [f"# {_md(n.get('title'))}", "", f"Model {_md(n.get('model'))}, version "
           f"{_md(n.get('version'))}.", "", "## What it is for", "",
           _md(n.get("purpose") or "The organisation has not described the purpose yet.")]
    if n.get("affected_people"):
        out += ["", f"It is used in decisions about: {_md(n['affected_people'])}"]
    out += ["", "## What data it uses", ""]
    if n.get("inputs"):
        out += [_md(n["inputs"]), ""]
    out += [f"- {_md(x)}" for x in n.get("data_used", [])]
    out += ["", "## What it cannot do well", ""]
    out += [f"- {_md(x)}" for x in n.get("limits", [])] or ["No limits have been written "
                                                             "down yet."]
    out += ["", "## How you are protected", ""]
    out += [f"- {_md(x)}" for x in n.get("safeguards", [])] or ["No safeguards have been "
                                                                 "written down yet."]
    out += ["", "## How to contest a decision", ""]
    out += [_md(x) for x in n.get("contest", [])]
    return "\n".join(out) + "\n"
