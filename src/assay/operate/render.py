"""The program report as charts (inline SVG), CSV and a standalone HTML page.

Every function takes the report's JSON form (:meth:`ProgramReport.to_dict`), so the CLI,
the REST service and the web pages render the same numbers the same way.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from assay.report import charts

HERE = Path(__file__).parent
SEVERITY_COLOURS = {"block": charts.STATUS_COLOURS["fail"], "warn": charts.STATUS_COLOURS["warn"]}
CSV_COLUMNS = ("section", "group", "measure", "value")


def _week(label: str) -> str:
    return label[5:10] if len(label) >= 10 else label  # "2026-11-02..." -> "11-02"


def program_charts(report: Mapping[str, Any]) -> dict[str, str]:
    """The dashboard's charts, by name: time to approve per week, approval rate per week,
    burn-down, coverage by tier, alerts by severity. A chart with nothing to draw is left
    out."""
    tta = report["time_to_approve"]["by_week"]
    rate = report["approvals"]["by_week"]
    burn = report["burn_down"]
    cov = report["coverage"]["by_tier"]
    sev = report["responses"]["by_severity"]
    out = {
        "time_to_approve": charts.trend(
            [(_week(w["week"]), w["median"]) for w in tta],
            title="Median days from submission to approval, by week", ylabel="days"),
        "approval_rate": charts.trend(
            [(_week(w["week"]), w["rate"]) for w in rate],
            title="Approval rate, by week", ylabel="approved share", lo=0.0, hi=1.0),
        "burn_down": charts.trend(
            [(_week(p["at"]), p["open_score"]) for p in burn],
            title="Open risk score (burn-down)", ylabel="likelihood x impact",
            colour=charts.STATUS_COLOURS["fail"]),
        "coverage": charts.bars(
            [(t, c["share"]) for t, c in cov.items()],
            title="Share of models with a passing certification, by tier", hi=1.0,
            xlabel="share of the inventory", fmt="{:.0%}"),
        "alerts": charts.bars(
            [(s, v["raised"]) for s, v in sev.items()],
            title="Alerts and incidents raised, by severity", xlabel="raised",
            colours=[SEVERITY_COLOURS.get(s, charts.ACCENT) for s in sev], fmt="{:.0f}")
        if sev else None,
    }
    return {k: v for k, v in out.items() if v}


def _rows(report: Mapping[str, Any]) -> Iterator[tuple[str, str, str, Any]]:
    yield ("period", "", "since", report["since"])
    yield ("period", "", "until", report["until"])
    yield ("period", "", "as_of", report["as_of"])
    tta = report["time_to_approve"]
    for group, d in [("all", tta["overall"]),
                     *((f"tier:{t}", d) for t, d in tta["by_tier"].items()),
                     *((f"stage:{s}", d) for s, d in tta["by_stage"].items()),
                     *((f"week:{w['week']}", w) for w in tta["by_week"])]:
        yield ("time_to_approve", group, "count", d["count"])
        yield ("time_to_approve", group, "median_days", d["median"])
        yield ("time_to_approve", group, "p90_days", d["p90"])
    ap = report["approvals"]
    for measure in ("approved", "rejected", "rate"):
        yield ("approvals", "all", measure, ap[measure])
    for w in ap["by_week"]:
        for measure in ("approved", "rejected", "rate"):
            yield ("approvals", f"week:{w['week']}", measure, w[measure])
    for r in ap["rejections_by_reason"]:
        yield ("rejections", f"reason:{r['reason']}", "count", r["count"])
    for r in ap["rejections_by_stage"]:
        yield ("rejections", f"stage:{r['stage']}", "count", r["count"])
    for sev, v in report["responses"]["by_severity"].items():
        for measure in ("raised", "unacknowledged", "unresolved"):
            yield ("alerts", f"severity:{sev}", measure, v[measure])
        for kind in ("acknowledge", "resolve"):
            yield ("alerts", f"severity:{sev}", f"{kind}_count", v[kind]["count"])
            yield ("alerts", f"severity:{sev}", f"{kind}_median_hours", v[kind]["median"])
            yield ("alerts", f"severity:{sev}", f"{kind}_p90_hours", v[kind]["p90"])
    od = report["overdue_reviews"]
    yield ("overdue_reviews", "all", "count", od["count"])
    for item in od["items"]:
        yield ("overdue_reviews", f"model:{item['model']}", item["kind"],
               item["days_overdue"] if item["days_overdue"] is not None else "")
    for p in report["burn_down"]:
        yield ("burn_down", f"at:{p['at']}", "open_score", p["open_score"])
        yield ("burn_down", f"at:{p['at']}", "open_entries", p["open_entries"])
    cov = report["coverage"]
    for group, c in [("all", cov), *((f"tier:{t}", c) for t, c in cov["by_tier"].items())]:
        yield ("coverage", group, "models", c["models"])
        yield ("coverage", group, "covered", c["covered"])
        yield ("coverage", group, "share", c["share"])


def _cell(value: Any) -> str:
    """A CSV cell; text that a spreadsheet would run as a formula is prefixed with '."""
    if value is None:
        return ""
    text = str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def to_csv(report: Mapping[str, Any]) -> str:
    """The report in long form: one row per (section, group, measure) with its value."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in _rows(report):
        writer.writerow([_cell(v) for v in row])
    return buf.getvalue()


def _environment() -> Any:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(HERE / "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _num
    env.filters["pct"] = _pct
    return env


def _render(template: str, report: Mapping[str, Any]) -> str:
    from markupsafe import Markup

    from assay import __version__

    figures = {k: Markup(v) for k, v in program_charts(report).items()}
    return _environment().get_template(template).render(r=report, charts=figures,
                                                        version=__version__)


def render_html(report: Mapping[str, Any]) -> str:
    """A standalone page (inline CSS and SVG charts, no script, no network)."""
    return _render("program.html.j2", report)


def render_fragment(report: Mapping[str, Any]) -> str:
    """The page's body (headline figures, charts, tables) for embedding in a web page."""
    return _render("_program_body.html.j2", report)


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _pct(value: Any) -> str:
    return "—" if value is None else f"{value:.0%}"
